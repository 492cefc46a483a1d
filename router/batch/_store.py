"""The batch job store: uploaded files, jobs, each line's plan and state, each provider submission.

SQLite, in a file beside the SQLite ledger (``ledger.sqlite3`` → ``ledger.batches.sqlite3``), so
that any process of the machine can resume a job another one started; in memory for a ``memory://``
ledger; on the same Redis server for a Redis ledger (``_redis_store``). Every state change is one
transaction, written *before* the call it prepares, so a process killed at any point leaves a store
that says what a provider may already have.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from router.ledger import default_ledger_path, parse_ledger_url

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_files (
    id TEXT PRIMARY KEY, filename TEXT NOT NULL, purpose TEXT NOT NULL, created_at REAL NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_jobs (
    id TEXT PRIMARY KEY, created_at REAL NOT NULL, input_file_id TEXT NOT NULL, endpoint TEXT NOT NULL,
    completion_window TEXT NOT NULL, metadata TEXT, status TEXT NOT NULL, ended_at REAL,
    cancelled_at REAL
);
CREATE TABLE IF NOT EXISTS batch_lines (
    job_id TEXT NOT NULL, n INTEGER NOT NULL, custom_id TEXT NOT NULL, body TEXT NOT NULL,
    feature TEXT NOT NULL, candidates TEXT NOT NULL, attempt INTEGER NOT NULL, state TEXT NOT NULL,
    group_id TEXT, hold TEXT, result TEXT, cost_usd REAL, error TEXT, history TEXT NOT NULL,
    PRIMARY KEY (job_id, n)
);
CREATE INDEX IF NOT EXISTS batch_lines_state ON batch_lines (job_id, state);
CREATE TABLE IF NOT EXISTS batch_groups (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, model TEXT NOT NULL, protocol TEXT NOT NULL,
    provider_id TEXT, state TEXT NOT NULL, created_at REAL NOT NULL, owner TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    created_at: float
    data: bytes


@dataclass(frozen=True, slots=True)
class JobRow:
    id: str
    created_at: float
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: Mapping[str, str] | None
    status: str  # in_progress | completed | cancelling | cancelled
    ended_at: float | None = None
    cancelled_at: float | None = None


@dataclass(frozen=True, slots=True)
class LineRow:
    """One input line. ``state``: planned (not with any provider) | submitting | submitted |
    realtime (due on the routed chat path) | answering (its real-time call made by the process in
    ``group_id``, "rt:host:pid") | succeeded | failed. ``candidates`` are model names in plan order;
    ``attempt`` indexes them."""

    job_id: str
    n: int
    custom_id: str
    body: Mapping[str, Any]
    feature: str
    candidates: tuple[str, ...]
    attempt: int
    state: str
    group_id: str | None = None
    hold: Mapping[str, Any] | None = None
    result: Mapping[str, Any] | None = None
    cost_usd: float | None = None
    error: Mapping[str, Any] | None = None
    history: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def model(self) -> str | None:
        return self.candidates[self.attempt] if self.attempt < len(self.candidates) else None


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One provider batch: ``submitting`` is written before the call, ``submitted`` with its id after."""

    id: str
    job_id: str
    model: str
    protocol: str
    provider_id: str | None
    state: str  # submitting | submitted | done | abandoned
    created_at: float
    owner: str = ""  # "host:pid" of the process submitting it: a live one is not a crash to recover


def _group_values(g: GroupRow) -> tuple[Any, ...]:
    return (g.id, g.job_id, g.model, g.protocol, g.provider_id, g.state, g.created_at, g.owner)


class BatchStore(Protocol):
    """What the batch service reads and writes: ``JobStore`` (SQLite) or ``RedisJobStore``."""

    path: str

    def close(self) -> None: ...
    def put_file(self, stored: StoredFile) -> None: ...
    def file(self, file_id: str) -> StoredFile | None: ...
    def insert_job(self, job: JobRow, lines: Sequence[LineRow]) -> None: ...
    def job(self, job_id: str) -> JobRow | None: ...
    def jobs(self, limit: int = 20, after: str | None = None) -> list[JobRow]: ...
    def set_job(self, job_id: str, **fields: Any) -> None: ...
    def lines(self, job_id: str, *states: str) -> list[LineRow]: ...
    def counts(self, job_id: str) -> dict[str, int]: ...
    def save(self, lines: Sequence[LineRow], groups: Sequence[GroupRow] = ()) -> None: ...
    def claim(
        self, changes: Sequence[tuple[LineRow, LineRow]], groups: Sequence[GroupRow] = ()
    ) -> list[LineRow]: ...
    def groups(self, job_id: str, *states: str) -> list[GroupRow]: ...


def open_store(ledger_url: str | None) -> BatchStore:
    """The job store that goes with a ledger: Redis for a Redis ledger, else SQLite (see store_path)."""
    target = parse_ledger_url(ledger_url)
    if target.kind == "redis":
        from router.batch._redis_store import RedisJobStore  # redis is imported only for Redis ledgers

        return RedisJobStore(target.location)
    return JobStore(store_path(ledger_url))


def store_path(ledger_url: str | None) -> str:
    """Where the SQLite job store of a ledger lives (":memory:" for a memory ledger)."""
    target = parse_ledger_url(ledger_url)
    if target.kind == "memory":
        return ":memory:"
    path = Path(target.location) if target.kind == "sqlite" else default_ledger_path()
    return str(path.with_name(path.stem + ".batches.sqlite3"))


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _load(value: str | None) -> Any:
    return None if value is None else json.loads(value)


_LINE_COLUMNS = (
    "job_id, n, custom_id, body, feature, candidates, attempt, state, group_id, hold, result, cost_usd,"
    " error, history"
)
_PUT_LINE = f"INSERT OR REPLACE INTO batch_lines ({_LINE_COLUMNS}) VALUES ({', '.join('?' * 14)})"
_PUT_GROUP = "INSERT OR REPLACE INTO batch_groups VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def _line(row: Sequence[Any]) -> LineRow:
    return LineRow(
        job_id=row[0],
        n=row[1],
        custom_id=row[2],
        body=json.loads(row[3]),
        feature=row[4],
        candidates=tuple(json.loads(row[5])),
        attempt=row[6],
        state=row[7],
        group_id=row[8],
        hold=_load(row[9]),
        result=_load(row[10]),
        cost_usd=row[11],
        error=_load(row[12]),
        history=tuple(json.loads(row[13])),
    )


def _line_values(line: LineRow) -> tuple[Any, ...]:
    return (
        line.job_id,
        line.n,
        line.custom_id,
        json.dumps(line.body),
        line.feature,
        json.dumps(line.candidates),
        line.attempt,
        line.state,
        line.group_id,
        _dump(line.hold),
        _dump(line.result),
        line.cost_usd,
        _dump(line.error),
        json.dumps(line.history),
    )


class JobStore:
    """The store's reads and writes; each write is one transaction. Thread-safe (one connection, a lock)."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL" if path == ":memory:" else "PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, values in statements:
                    self._db.execute(sql, values)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, values: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, values).fetchall()

    # --- files ---------------------------------------------------------------------------------------

    def put_file(self, stored: StoredFile) -> None:
        self._write(
            [
                (
                    "INSERT INTO batch_files VALUES (?, ?, ?, ?, ?)",
                    (stored.id, stored.filename, stored.purpose, stored.created_at, stored.data),
                )
            ]
        )

    def file(self, file_id: str) -> StoredFile | None:
        rows = self._read(
            "SELECT id, filename, purpose, created_at, data FROM batch_files WHERE id = ?", (file_id,)
        )
        return StoredFile(*rows[0]) if rows else None

    # --- jobs ----------------------------------------------------------------------------------------

    def insert_job(self, job: JobRow, lines: Sequence[LineRow]) -> None:
        """The job and every line's plan, in one transaction: all of it is known, or none."""
        statements: list[tuple[str, Sequence[Any]]] = [
            (
                "INSERT INTO batch_jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.created_at,
                    job.input_file_id,
                    job.endpoint,
                    job.completion_window,
                    _dump(job.metadata),
                    job.status,
                    job.ended_at,
                    job.cancelled_at,
                ),
            )
        ]
        statements += [
            (f"INSERT INTO batch_lines ({_LINE_COLUMNS}) VALUES ({', '.join('?' * 14)})", _line_values(line))
            for line in lines
        ]
        self._write(statements)

    def job(self, job_id: str) -> JobRow | None:
        rows = self._read("SELECT * FROM batch_jobs WHERE id = ?", (job_id,))
        return self._job(rows[0]) if rows else None

    def jobs(self, limit: int = 20, after: str | None = None) -> list[JobRow]:
        """Newest first, as openai lists batches."""
        if after is None:
            rows = self._read("SELECT * FROM batch_jobs ORDER BY created_at DESC, id DESC LIMIT ?", (limit,))
        else:
            rows = self._read(
                "SELECT * FROM batch_jobs WHERE (created_at, id) < (SELECT created_at, id FROM batch_jobs "
                "WHERE id = ?) ORDER BY created_at DESC, id DESC LIMIT ?",
                (after, limit),
            )
        return [self._job(row) for row in rows]

    @staticmethod
    def _job(row: Sequence[Any]) -> JobRow:
        return JobRow(row[0], row[1], row[2], row[3], row[4], _load(row[5]), row[6], row[7], row[8])

    def set_job(self, job_id: str, **fields: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self._write([(f"UPDATE batch_jobs SET {assignments} WHERE id = ?", (*fields.values(), job_id))])

    # --- lines and groups ----------------------------------------------------------------------------

    def lines(self, job_id: str, *states: str) -> list[LineRow]:
        if states:
            marks = ", ".join("?" * len(states))
            sql = (
                f"SELECT {_LINE_COLUMNS} FROM batch_lines WHERE job_id = ? AND state IN ({marks}) ORDER BY n"
            )
            return [_line(row) for row in self._read(sql, (job_id, *states))]
        sql = f"SELECT {_LINE_COLUMNS} FROM batch_lines WHERE job_id = ? ORDER BY n"
        return [_line(row) for row in self._read(sql, (job_id,))]

    def counts(self, job_id: str) -> dict[str, int]:
        rows = self._read(
            "SELECT state, COUNT(*) FROM batch_lines WHERE job_id = ? GROUP BY state", (job_id,)
        )
        return {state: count for state, count in rows}

    def save(self, lines: Sequence[LineRow], groups: Sequence[GroupRow] = ()) -> None:
        """Lines and groups as given, in one transaction."""
        statements: list[tuple[str, Sequence[Any]]] = [(_PUT_LINE, _line_values(line)) for line in lines]
        statements += [(_PUT_GROUP, _group_values(g)) for g in groups]
        self._write(statements)

    def claim(
        self, changes: Sequence[tuple[LineRow, LineRow]], groups: Sequence[GroupRow] = ()
    ) -> list[LineRow]:
        """Write each (old, new) line whose stored state, group and attempt are still the old one's,
        and the groups if any line (or no line was asked) was written; in one transaction. Two
        processes moving the same job on therefore never both submit, or both retry, a line."""
        claimed: list[LineRow] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for old, new in changes:
                    row = self._db.execute(
                        "SELECT state, group_id, attempt FROM batch_lines WHERE job_id = ? AND n = ?",
                        (old.job_id, old.n),
                    ).fetchone()
                    if row is not None and tuple(row) == (old.state, old.group_id, old.attempt):
                        self._db.execute(_PUT_LINE, _line_values(new))
                        claimed.append(new)
                if claimed or not changes:
                    for g in groups:
                        self._db.execute(_PUT_GROUP, _group_values(g))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return claimed

    def groups(self, job_id: str, *states: str) -> list[GroupRow]:
        marks = ", ".join("?" * len(states))
        rows = self._read(
            f"SELECT * FROM batch_groups WHERE job_id = ? AND state IN ({marks}) ORDER BY created_at, id",
            (job_id, *states),
        )
        return [GroupRow(*row) for row in rows]
