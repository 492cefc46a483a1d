"""The outcome store: what ``client.feedback()`` and ``router train --from-ledger`` need of each request.

It lives where the ledger lives — two tables in the SQLite ledger file, keys beside the budgets in
Redis, a dict for ``memory://`` — with its own connection, so budgets never wait on it.

A row per request judged by learned adequacy: the model that answered, route, feature and cost,
and the prompt's *term counts* under the adequacy file's featurizer (vocabulary indices and how
often each occurs, not the text; the text too only when the policy's ``log_content`` is on).
Term counts are enough to retrain: the vocabulary is stored once per featurizer, the IDF weights
are refitted from the counts, and each model's classifier is refitted on the rows it answered.
Rows never scored are forgotten after ``KEEP_UNSCORED_S``; scored rows are training data and stay.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from router.ledger import DEFAULT_BUSY_TIMEOUT_S
from router.ledger._types import LedgerError

KEEP_UNSCORED_S: Final = 30 * 86_400
_REDIS_PREFIX: Final = "router:{feedback}:"


@dataclass(frozen=True, slots=True)
class Routed:
    """One routed request as kept for feedback. ``features``: ``Features.encode`` of its counts."""

    request_id: str
    at: float
    route: str | None
    feature: str
    model: str
    cost_usd: float | None
    featurizer: str | None  # the adequacy file's featurizer_id; None without learned adequacy
    features: str | None
    text: str | None = None  # only with log_content
    score: float | None = None
    scored_at: float | None = None


class FeedbackStore(Protocol):
    def add(self, rows: Sequence[Routed], featurizers: Mapping[str, str], *, now: float) -> None:
        """Keep ``rows`` and the featurizers (id -> JSON spec) they were counted under."""

    def score(self, request_id: str, score: float, *, now: float) -> bool:
        """Record an outcome; False when no such request is kept."""

    def scored(self) -> list[Routed]:
        """Every row with an outcome, oldest first."""

    def featurizer(self, featurizer_id: str) -> dict[str, Any] | None: ...

    def close(self) -> None: ...


class MemoryFeedback:
    """``memory://``: this process only, like the ledger."""

    def __init__(self) -> None:
        self._rows: dict[str, Routed] = {}
        self._featurizers: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, rows: Sequence[Routed], featurizers: Mapping[str, str], *, now: float) -> None:
        with self._lock:
            self._featurizers.update(featurizers)
            for row in rows:
                self._rows[row.request_id] = row
            stale = [k for k, r in self._rows.items() if r.score is None and r.at < now - KEEP_UNSCORED_S]
            for key in stale:
                del self._rows[key]

    def score(self, request_id: str, score: float, *, now: float) -> bool:
        from dataclasses import replace

        with self._lock:
            row = self._rows.get(request_id)
            if row is None:
                return False
            self._rows[request_id] = replace(row, score=score, scored_at=now)
            return True

    def scored(self) -> list[Routed]:
        with self._lock:
            return sorted((r for r in self._rows.values() if r.score is not None), key=lambda r: r.at)

    def featurizer(self, featurizer_id: str) -> dict[str, Any] | None:
        spec = self._featurizers.get(featurizer_id)
        return None if spec is None else dict(json.loads(spec))

    def close(self) -> None:
        pass


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS routed_requests (
    request_id TEXT PRIMARY KEY,
    at         REAL NOT NULL,
    route      TEXT,
    feature    TEXT NOT NULL,
    model      TEXT NOT NULL,
    cost_usd   REAL,
    featurizer TEXT,
    features   TEXT,
    text       TEXT,
    score      REAL,
    scored_at  REAL
);
CREATE INDEX IF NOT EXISTS routed_requests_by_age ON routed_requests (at) WHERE score IS NULL;
CREATE TABLE IF NOT EXISTS featurizers (
    id   TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);
"""
_COLUMNS: Final = (
    "request_id, at, route, feature, model, cost_usd, featurizer, features, text, score, scored_at"
)


class SqliteFeedback:
    """Two tables in the SQLite ledger file, on a connection of their own."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            if self._db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the feedback tables in {self.path}: {exc}") from exc

    def add(self, rows: Sequence[Routed], featurizers: Mapping[str, str], *, now: float) -> None:
        with self._lock, self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO featurizers (id, spec) VALUES (?, ?)", featurizers.items())
            db.executemany(
                f"INSERT OR REPLACE INTO routed_requests ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [_values(row) for row in rows],
            )
            db.execute("DELETE FROM routed_requests WHERE score IS NULL AND at < ?", (now - KEEP_UNSCORED_S,))

    def score(self, request_id: str, score: float, *, now: float) -> bool:
        with self._lock, self._transaction() as db:
            cursor = db.execute(
                "UPDATE routed_requests SET score = ?, scored_at = ? WHERE request_id = ?",
                (score, now, request_id),
            )
            return cursor.rowcount > 0

    def scored(self) -> list[Routed]:
        with self._lock:
            try:
                found = self._db.execute(
                    f"SELECT {_COLUMNS} FROM routed_requests WHERE score IS NOT NULL ORDER BY at"
                ).fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot read the feedback in {self.path}: {exc}") from exc
        return [Routed(*row) for row in found]

    def featurizer(self, featurizer_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT spec FROM featurizers WHERE id = ?", (featurizer_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write the feedback in {self.path}: {exc}") from exc


def _values(row: Routed) -> tuple[Any, ...]:
    return (
        row.request_id,
        row.at,
        row.route,
        row.feature,
        row.model,
        row.cost_usd,
        row.featurizer,
        row.features,
        row.text,
        row.score,
        row.scored_at,
    )


class RedisFeedback:
    """A hash per request (expiring unless scored), a sorted set of the scored ones, the featurizers."""

    def __init__(self, url: str, *, prefix: str = _REDIS_PREFIX) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix

    def _key(self, request_id: str) -> str:
        return f"{self._prefix}r:{request_id}"

    def add(self, rows: Sequence[Routed], featurizers: Mapping[str, str], *, now: float) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for featurizer_id, spec in featurizers.items():
            pipe.set(f"{self._prefix}f:{featurizer_id}", spec, nx=True)
        for row in rows:
            fields: dict[Any, Any] = {
                k: json.dumps(v) for k, v in zip(_COLUMNS.split(", "), _values(row), strict=True)
            }
            pipe.hset(self._key(row.request_id), mapping=fields)
            pipe.expire(self._key(row.request_id), KEEP_UNSCORED_S)
        pipe.execute()

    def score(self, request_id: str, score: float, *, now: float) -> bool:
        key = self._key(request_id)
        if not self._redis.exists(key):
            return False
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"score": json.dumps(score), "scored_at": json.dumps(now)})
        pipe.persist(key)
        pipe.zadd(f"{self._prefix}scored", {request_id: now})
        pipe.execute()
        return True

    def scored(self) -> list[Routed]:
        ids = [
            i.decode() if isinstance(i, bytes) else str(i)
            for i in self._redis.zrange(f"{self._prefix}scored", 0, -1)
        ]
        pipe = self._redis.pipeline(transaction=False)
        for request_id in ids:
            pipe.hgetall(self._key(request_id))
        rows = []
        for found in pipe.execute():
            if found:
                fields = {k.decode(): json.loads(v) for k, v in found.items()}
                rows.append(Routed(**fields))
        return sorted(rows, key=lambda r: r.at)

    def featurizer(self, featurizer_id: str) -> dict[str, Any] | None:
        spec = self._redis.get(f"{self._prefix}f:{featurizer_id}")
        return None if spec is None else dict(json.loads(spec))

    def close(self) -> None:
        self._redis.close()


def open_feedback(url: str | None) -> FeedbackStore:
    """The outcome store of the ledger at ``url`` (the same URL forms as ``open_ledger``)."""
    from router.ledger import _no_redis, _prepare

    target = _prepare(url)
    if target.kind == "memory":
        return MemoryFeedback()
    if target.kind == "sqlite":
        return SqliteFeedback(target.location, busy_timeout_s=target.busy_timeout_s)
    try:
        return RedisFeedback(target.location)
    except ImportError as exc:
        raise _no_redis(exc) from exc
