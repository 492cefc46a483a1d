"""What the SQLite ledger runs per request: statements counted through SQLite's own trace hook.

A reserve and its settle are each one transaction of a few statements; on an event loop, the writes
queued in one turn share one transaction, which reads each period once and writes its net change
once (the rows of holds and settle ids are one each), and calls made inline (busy timeout 0) do
not reset the connection's busy timeout around every call; the sweep of
expired reservations and forgotten settle ids runs once a second of ledger time, and skipping it in
between changes no figure. Counts, not times.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from router.ledger import Hold, Line, Refusal, Totals
from router.ledger.sqlite import AsyncSqliteLedger, SqliteLedger

T0 = 1_764_547_000.0
DAY = Line("support", "day", 1_764_460_800.0, 1_764_547_200.0, 1.0)
TOTAL = Line("*", "total", 0.0, None, 10.0)


class Traced:
    """The statements the ledger's connection runs, as SQLite reports them."""

    def __init__(self, ledger: SqliteLedger) -> None:
        self.statements: list[str] = []
        ledger._db.set_trace_callback(self.statements.append)

    def take(self) -> list[str]:
        taken, self.statements[:] = list(self.statements), []
        return taken


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    opened = SqliteLedger(tmp_path / "ledger.db")
    yield opened
    opened.close()


def _hold(outcome: Hold | Refusal) -> Hold:
    assert isinstance(outcome, Hold), outcome
    return outcome


def test_a_reserve_and_its_settle_run_nine_statements_for_one_line(ledger: SqliteLedger) -> None:
    _hold(ledger.reserve([DAY], 0.1, ttl_s=60, now=T0))  # the first one sweeps
    traced = Traced(ledger)
    hold = _hold(ledger.reserve([DAY], 0.1, ttl_s=60, now=T0 + 0.5))
    reserve = traced.take()
    totals = ledger.settle(hold, 0.05, now=T0 + 0.5)
    settle = traced.take()
    # Add to the period (returning its figures, which the reserve is checked against), insert the row.
    assert [s.split()[0] for s in reserve] == ["BEGIN", "INSERT", "INSERT", "COMMIT"]
    # Mark the id settled, delete the hold's row, add to the period.
    assert [s.split()[0] for s in settle] == ["BEGIN", "INSERT", "DELETE", "INSERT", "COMMIT"]
    assert totals == {DAY.key: Totals(0.05, 0.1)}  # the first reservation is still held


def test_each_more_line_adds_one_upsert_and_one_row(ledger: SqliteLedger) -> None:
    _hold(ledger.reserve([DAY, TOTAL], 0.1, ttl_s=60, now=T0))
    traced = Traced(ledger)
    hold = _hold(ledger.reserve([DAY, TOTAL], 0.1, ttl_s=60, now=T0 + 0.5))
    assert len(traced.take()) == 6  # BEGIN, an upsert per line, a reservation row per line, COMMIT
    assert ledger.settle(hold, 0.1, now=T0 + 0.5) == {
        DAY.key: Totals(0.1, 0.1),
        TOTAL.key: Totals(0.1, 0.1),
    }
    assert len(traced.take()) == 6  # BEGIN, the settle id, one delete, an upsert per line, COMMIT


async def test_calls_inline_on_an_event_loop_set_the_busy_timeout_once(tmp_path: Path) -> None:
    ledger = AsyncSqliteLedger(tmp_path / "ledger.db")
    try:
        traced = Traced(ledger._sqlite)
        for n in range(5):
            hold = _hold(await ledger.reserve([DAY], 0.01, ttl_s=60, now=T0 + n / 10))
            await ledger.settle(hold, 0.01, now=T0 + n / 10)
            await ledger.totals([DAY], now=T0 + n / 10)
        pragmas = [s for s in traced.take() if s.startswith("PRAGMA busy_timeout")]
        assert pragmas == ["PRAGMA busy_timeout = 0"]
        # Another process holds the write lock: the batch goes to the worker thread, which waits
        # for it with the full timeout.
        with write_locked(tmp_path / "ledger.db"):
            reserving = asyncio.create_task(ledger.reserve([DAY], 0.01, ttl_s=60, now=T0))
            await asyncio.sleep(0.05)
            assert not reserving.done()
        _hold(await reserving)
        pragmas = [s for s in traced.take() if s.startswith("PRAGMA busy_timeout")]
        assert pragmas == ["PRAGMA busy_timeout = 5000"]
    finally:
        await ledger.close()


@contextlib.contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """SQLite's write lock on ``path``, held by another connection (as another process would)."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("COMMIT")
    finally:
        other.close()


async def test_writes_queued_in_one_turn_of_the_event_loop_commit_in_one_transaction(tmp_path: Path) -> None:
    ledger = AsyncSqliteLedger(tmp_path / "ledger.db")
    try:
        _hold(await ledger.reserve([DAY], 0.01, ttl_s=60, now=T0))  # the first one sweeps
        traced = Traced(ledger._sqlite)
        holds = await asyncio.gather(*(ledger.reserve([DAY], 0.01, ttl_s=60, now=T0) for _ in range(20)))
        reserves = traced.take()
        await asyncio.gather(*(ledger.settle(_hold(hold), 0.005, now=T0) for hold in holds))
        settles = traced.take()
        # One transaction for all twenty, which adds to the period once; per reserve its hold's row;
        # the twenty settle ids in two inserts (16 + 4 rows); the holds' rows deleted in one statement.
        assert [s.split()[0] for s in reserves] == ["BEGIN", "INSERT", *["INSERT"] * 20, "COMMIT"]
        assert [s.split()[0] for s in settles] == ["BEGIN", "INSERT", "INSERT", "DELETE", "INSERT", "COMMIT"]
        assert [s.count("), (") + 1 for s in settles[1:3]] == [16, 4]
        assert await ledger.totals([DAY], now=T0) == {DAY.key: Totals(0.1, 0.01)}
    finally:
        await ledger.close()


def test_a_refused_reservation_leaves_no_row_and_no_sum(ledger: SqliteLedger) -> None:
    held = _hold(ledger.reserve([TOTAL, DAY], 0.75, ttl_s=60, now=T0))
    refused = ledger.reserve([TOTAL, DAY], 0.5, ttl_s=60, now=T0)
    assert refused == Refusal(DAY, 0.0, 0.75, 0.5)
    # TOTAL was added before DAY refused: the rollback took it back.
    assert ledger.totals([TOTAL, DAY], now=T0) == {TOTAL.key: Totals(0.0, 0.75), DAY.key: Totals(0.0, 0.75)}
    rows = ledger._db.execute("SELECT id FROM reservations").fetchall()
    assert {row[0] for row in rows} == {held.id}


def test_expired_rows_are_swept_once_a_second_of_ledger_time(ledger: SqliteLedger) -> None:
    def reservations() -> int:
        count: int = ledger._db.execute("SELECT COUNT(*) FROM reservations").fetchone()[0]
        return count

    _hold(ledger.reserve([DAY], 0.5, ttl_s=0.5, now=T0))  # sweeps; expires at T0 + 0.5
    _hold(ledger.reserve([DAY], 0.5, ttl_s=60, now=T0 + 0.25))
    # At T0 + 0.75 the first has expired but is not swept yet: it no longer counts all the same.
    _hold(ledger.reserve([DAY], 0.5, ttl_s=60, now=T0 + 0.75))
    assert ledger.totals([DAY], now=T0 + 0.75)[DAY.key] == Totals(0.0, 1.0)
    assert reservations() == 3
    _hold(ledger.reserve([DAY], 0.0, ttl_s=60, now=T0 + 1.0))  # a second after the last sweep
    assert reservations() == 3  # the expired one went, the new one came
    assert ledger.totals([DAY], now=T0 + 1.0)[DAY.key] == Totals(0.0, 1.0)


def test_a_settle_replayed_after_its_reservation_expired_is_counted_once(ledger: SqliteLedger) -> None:
    hold = _hold(ledger.reserve([DAY], 0.5, ttl_s=1, now=T0))
    assert ledger.settle(hold, 0.25, now=T0 + 5) == {DAY.key: Totals(0.25, 0.0)}
    _hold(ledger.reserve([DAY], 0.0, ttl_s=60, now=T0 + 10))  # sweeps: the reservation row is gone
    assert ledger.settle(hold, 0.25, now=T0 + 11) == {DAY.key: Totals(0.25, 0.0)}


def test_the_statements_are_plain_sqlite(tmp_path: Path, ledger: SqliteLedger) -> None:
    # Another process (or an older router) reads the same file with plain SQL.
    hold = _hold(ledger.reserve([DAY], 0.5, ttl_s=60, now=T0))
    ledger.settle(hold, 0.125, now=T0)
    other = sqlite3.connect(tmp_path / "ledger.db")
    try:
        row = other.execute(
            "SELECT spent_nanos, reserved_nanos FROM spend WHERE key = ?", (DAY.key,)
        ).fetchone()
    finally:
        other.close()
    assert row == (125_000_000, 0)


def _wal_frames(ledger: SqliteLedger) -> int:
    """Pages appended to the WAL so far (each a frame: a 24-byte header and the page)."""
    wal = Path(f"{ledger.path}-wal")
    page_size: int = ledger._db.execute("PRAGMA page_size").fetchone()[0]
    return (wal.stat().st_size - 32) // (page_size + 24) if wal.exists() else 0


def _no_checkpoints(ledger: SqliteLedger) -> None:
    """Stop the checkpointer: a RESTART would start the WAL over between two counts."""
    ledger._checkpointer.stop()
    ledger._checkpointer._thread.join()


def test_a_new_file_commits_three_pages_for_a_reserve_and_five_for_its_settle(ledger: SqliteLedger) -> None:
    _no_checkpoints(ledger)
    _hold(ledger.reserve([DAY], 0.1, ttl_s=60, now=T0))  # the first one sweeps and makes the period's row
    written = []
    for n in range(5):
        before = _wal_frames(ledger)
        hold = _hold(ledger.reserve([DAY], 0.1, ttl_s=60, now=T0 + n / 10))
        reserved = _wal_frames(ledger)
        ledger.settle(hold, 0.05, now=T0 + n / 10)
        written.append((reserved - before, _wal_frames(ledger) - reserved))
    # A reserve: the period's row, the hold's row and its index entry. A settle: the settle id and its
    # index entry, the hold's row and index entry deleted, the period's row. Small pages (1 KiB): each
    # is copied to the WAL and checksummed whole.
    assert written == [(3, 5)] * 5
    assert ledger._db.execute("PRAGMA page_size").fetchone()[0] == 1024


# The layout files made by routers before the WITHOUT ROWID tables had: rowid tables (two B-trees for a
# text key), an index of reservations by expiry, 4 KiB pages.
_OLDER_LAYOUT = """
CREATE TABLE spend (key TEXT PRIMARY KEY, scope TEXT NOT NULL, window TEXT NOT NULL,
    period_start REAL NOT NULL, resets_at REAL, spent_nanos INTEGER NOT NULL DEFAULT 0,
    reserved_nanos INTEGER NOT NULL DEFAULT 0, estimated_nanos INTEGER NOT NULL DEFAULT 0);
CREATE TABLE reservations (id TEXT NOT NULL, key TEXT NOT NULL, amount_nanos INTEGER NOT NULL,
    expires_at REAL NOT NULL, PRIMARY KEY (id, key));
CREATE INDEX reservations_by_key ON reservations (key, expires_at);
CREATE INDEX reservations_by_expiry ON reservations (expires_at);
CREATE TABLE warnings (key TEXT NOT NULL, threshold REAL NOT NULL, PRIMARY KEY (key, threshold));
CREATE TABLE settled (id TEXT PRIMARY KEY, forget_at REAL NOT NULL);
CREATE INDEX settled_by_age ON settled (forget_at);
PRAGMA user_version = 2;
"""


def test_a_file_in_an_older_routers_layout_keeps_it_and_counts_the_same(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    older = sqlite3.connect(path)
    older.execute("PRAGMA page_size = 4096")
    older.execute("PRAGMA journal_mode = WAL")
    older.executescript(_OLDER_LAYOUT)
    older.close()
    ledger = SqliteLedger(path)
    try:
        expiring = _hold(ledger.reserve([DAY, TOTAL], 0.25, ttl_s=0.5, now=T0))
        hold = _hold(ledger.reserve([DAY, TOTAL], 0.25, ttl_s=60, now=T0))
        assert ledger.settle(hold, 0.125, now=T0) == {
            DAY.key: Totals(0.125, 0.25),
            TOTAL.key: Totals(0.125, 0.25),
        }
        assert ledger.settle(hold, 0.125, now=T0) == {  # a replay counts once
            DAY.key: Totals(0.125, 0.25),
            TOTAL.key: Totals(0.125, 0.25),
        }
        assert ledger.reserve([DAY], 0.875, ttl_s=60, now=T0 + 0.25) == Refusal(DAY, 0.125, 0.25, 0.875)
        _hold(ledger.reserve([DAY], 0.875, ttl_s=60, now=T0 + 2))  # the expired hold is swept and freed
        rows = ledger._db.execute("SELECT id FROM reservations").fetchall()
        assert expiring.id not in {row[0] for row in rows}
        assert ledger._db.execute("PRAGMA page_size").fetchone()[0] == 4096
        indexes = ledger._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        assert ("reservations_by_expiry",) in indexes
    finally:
        ledger.close()
