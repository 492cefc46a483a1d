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
        # One transaction for all twenty, which adds to the period once; per reserve its hold's row,
        # per settle its id; the twenty holds' rows deleted in one statement.
        assert [s.split()[0] for s in reserves] == ["BEGIN", "INSERT", *["INSERT"] * 20, "COMMIT"]
        assert [s.split()[0] for s in settles] == [
            "BEGIN",
            *["INSERT"] * 20,
            "DELETE",
            "INSERT",
            "COMMIT",
        ]
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
