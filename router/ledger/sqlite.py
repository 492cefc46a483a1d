"""``sqlite:///path``: the default ledger. One machine, any number of processes and threads.

Each reserve and settle is one ``BEGIN IMMEDIATE`` transaction: SQLite lets one writer in at a
time across every process that has the file open, so check-then-add can never interleave.
WAL lets readers (``router spend``) run beside the writer; ``synchronous=NORMAL`` is durable
against a process crash, which is what a ledger on one machine has to survive, and skips the
fsync per transaction that FULL would cost.

Each period's row keeps the sum of the reservations stored for it (``reserved_nanos``), so a
reserve costs the same with five requests in flight or five thousand. Reservations carry their
expiry, so a process killed mid-call leaks nothing: each reserve first deletes the expired ones
(taking them off the sums), and readers subtract any expired ones not deleted yet. At a few
microseconds per statement, the number of statements is the cost, hence the combined ones.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from router.ledger._types import (
    Hold,
    InlineAsyncLedger,
    LedgerError,
    Line,
    Refusal,
    Report,
    Totals,
    check_amount,
    new_hold_id,
    to_nanos,
    to_nanos_down,
    to_nanos_up,
    to_usd,
)

_SCHEMA_VERSION: Final = 1
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS spend (
    key            TEXT PRIMARY KEY,
    scope          TEXT NOT NULL,
    window         TEXT NOT NULL,
    period_start   REAL NOT NULL,
    resets_at      REAL,
    spent_nanos    INTEGER NOT NULL DEFAULT 0,
    reserved_nanos INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS reservations (
    id           TEXT NOT NULL,
    key          TEXT NOT NULL,
    amount_nanos INTEGER NOT NULL,
    expires_at   REAL NOT NULL,
    PRIMARY KEY (id, key)
);
CREATE INDEX IF NOT EXISTS reservations_by_key ON reservations (key, expires_at);
CREATE INDEX IF NOT EXISTS reservations_by_expiry ON reservations (expires_at);
CREATE TABLE IF NOT EXISTS warnings (
    key       TEXT NOT NULL,
    threshold REAL NOT NULL,
    PRIMARY KEY (key, threshold)
);
"""
# spend.reserved_nanos is the sum of the key's rows in reservations; the live part leaves out
# expired rows not deleted yet (inside a reserve, there are none).
_LIVE_RESERVED: Final = (
    "reserved_nanos - (SELECT COALESCE(SUM(amount_nanos), 0) FROM reservations r"
    " WHERE r.key = spend.key AND r.expires_at <= ?)"
)
_FIGURES: Final = f"SELECT spent_nanos, {_LIVE_RESERVED} FROM spend WHERE key = ?"
# An upsert (SQLite 3.24+): the period's row is made by whichever change comes first.
_ADD: Final = (
    "INSERT INTO spend (key, scope, window, period_start, resets_at, spent_nanos, reserved_nanos)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
    " spent_nanos = spent_nanos + excluded.spent_nanos,"
    " reserved_nanos = reserved_nanos + excluded.reserved_nanos"
)


class SqliteLedger:
    """A ledger in one SQLite file; safe to share between threads (one connection, one lock)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        try:
            # isolation_level=None: we issue BEGIN ourselves, so IMMEDIATE is what runs.
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise LedgerError(_cannot_open(self.path, exc)) from exc
        self._lock = threading.Lock()
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._write() as db:
                if db.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            self._db.close()
            raise LedgerError(_cannot_open(self.path, exc)) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: taken at BEGIN, so no other process can slip in before COMMIT."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One snapshot for several SELECTs, so totals of two lines are from the same moment."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    def reserve(
        self, lines: Sequence[Line], amount_usd: float, *, ttl_s: float, now: float
    ) -> Hold | Refusal:
        check_amount("amount_usd", amount_usd)
        amount = to_nanos_up(amount_usd)
        hold = Hold(new_hold_id(), tuple(lines), amount_usd, now + ttl_s)
        if not lines:
            return hold
        with self._write() as db:
            _purge(db, now)
            for line in lines:
                spent, reserved = _figures(db, line.key, now)
                if spent + reserved + amount > to_nanos_down(line.limit_usd):
                    return Refusal(line, to_usd(spent), to_usd(reserved), amount_usd)
            db.executemany(
                "INSERT INTO reservations (id, key, amount_nanos, expires_at) VALUES (?, ?, ?, ?)",
                [(hold.id, line.key, amount, hold.expires_at) for line in lines],
            )
            db.executemany(_ADD, [_change(line, 0, amount) for line in lines])
        return hold

    def settle(self, hold: Hold, cost_usd: float, *, now: float) -> dict[str, Totals]:
        check_amount("cost_usd", cost_usd)
        cost = to_nanos(cost_usd)
        with self._write() as db:
            held = _take(db, hold.id)  # empty if it expired and a reserve deleted it meanwhile
            db.executemany(_ADD, [_change(line, cost, -held.get(line.key, 0)) for line in hold.lines])
            return _totals(db, hold.lines, now)

    def release(self, hold: Hold) -> None:
        with self._write() as db:
            held = _take(db, hold.id)
            db.executemany(_ADD, [_change(line, 0, -held.get(line.key, 0)) for line in hold.lines])

    def totals(self, lines: Sequence[Line], *, now: float) -> dict[str, Totals]:
        with self._read() as db:
            return _totals(db, lines, now)

    def first_warning(self, line: Line, threshold: float) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO warnings (key, threshold) VALUES (?, ?)", (line.key, threshold)
            )
            return cursor.rowcount == 1

    def report(self, *, now: float) -> Report:
        with self._read() as db:
            rows = db.execute(
                f"SELECT scope, window, period_start, spent_nanos, {_LIVE_RESERVED} FROM spend"
                " ORDER BY scope, window, period_start",
                (now,),
            ).fetchall()
        return [
            (scope, window, float(start), Totals(to_usd(spent), to_usd(reserved)))
            for scope, window, start, spent, reserved in rows
            if spent or reserved
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class AsyncSqliteLedger(InlineAsyncLedger):
    """``SqliteLedger`` for asyncio code, called inline on the event loop.

    A reserve or settle is a transaction of a few tens of microseconds; handing it to a thread
    (``asyncio.to_thread``) costs more than that in the hop alone. The loop waits only while another
    process holds the write lock, which is as long as one such transaction.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0) -> None:
        super().__init__(SqliteLedger(path, busy_timeout_s=busy_timeout_s))


def _figures(db: sqlite3.Connection, key: str, now: float) -> tuple[int, int]:
    """(spent, live reserved) of one period in nano-dollars; zeros for a period never used."""
    row = db.execute(_FIGURES, (now, key)).fetchone()
    return (row[0], row[1]) if row else (0, 0)


def _totals(db: sqlite3.Connection, lines: Sequence[Line], now: float) -> dict[str, Totals]:
    result = {}
    for line in lines:
        spent, reserved = _figures(db, line.key, now)
        result[line.key] = Totals(to_usd(spent), to_usd(reserved))
    return result


def _change(line: Line, spent: int, reserved: int) -> tuple[object, ...]:
    """The parameters of ``_ADD``: add ``spent`` and ``reserved`` (negative: take off) to the period."""
    return (line.key, line.scope, line.window, line.period_start, line.resets_at, spent, reserved)


def _take(db: sqlite3.Connection, hold_id: str) -> dict[str, int]:
    """Delete a reservation's rows; returns what it held per key, for the caller to take off the sums."""
    held = dict(db.execute("SELECT key, amount_nanos FROM reservations WHERE id = ?", (hold_id,)).fetchall())
    if held:
        db.execute("DELETE FROM reservations WHERE id = ?", (hold_id,))
    return held


def _purge(db: sqlite3.Connection, now: float) -> None:
    """Delete the expired reservations and take them off their periods' sums."""
    # No GROUP BY: SQLite would walk the (key, expires_at) index, every row, to avoid a sort.
    expired = db.execute(
        "SELECT key, amount_nanos FROM reservations WHERE expires_at <= ?", (now,)
    ).fetchall()
    if expired:
        freed: dict[str, int] = {}
        for key, amount in expired:
            freed[key] = freed.get(key, 0) + amount
        db.executemany(
            "UPDATE spend SET reserved_nanos = reserved_nanos - ? WHERE key = ?",
            [(amount, key) for key, amount in freed.items()],
        )
        db.execute("DELETE FROM reservations WHERE expires_at <= ?", (now,))


def _cannot_open(path: Path, exc: sqlite3.Error) -> str:
    where = path if path.is_absolute() else f"{path} (relative to {Path.cwd()})"
    hint = ""
    if not path.parent.is_dir():
        hint = (
            f"; the directory {path.parent} does not exist — create it, or note that sqlite:///path is"
            " relative to the working directory and sqlite:////path (four slashes) is absolute"
        )
    return f"cannot open the SQLite ledger at {where}: {exc}{hint}"
