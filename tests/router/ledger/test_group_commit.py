"""Group commit on the async SQLite ledger: many calls, one transaction, the same decisions.

The writes queued in one turn of the event loop are done together; each reserve is checked against
what the ones before it left, a refusal or a failure touches nothing but its own call, a settle
replayed within a batch counts once; a batch that would wait for the lock is the worker thread's, which
wakes the loop once per batch. Counts, not times.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from router.ledger import Hold, Line, Refusal, Totals
from router.ledger.sqlite import AsyncSqliteLedger, ReleaseOp, ReserveOp, SettleOp, SqliteLedger

T0 = 1_764_547_000.0
CAP = Line("burst", "total", 0.0, None, 0.03)  # three reservations of $0.01
WIDE = Line("*", "total", 0.0, None, 1.0)


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[AsyncSqliteLedger]:
    opened = AsyncSqliteLedger(tmp_path / "ledger.db")
    yield opened
    await opened.close()


async def idle(ledger: AsyncSqliteLedger) -> None:
    """Wait until the worker has finished its last batch: what is queued next starts a new one.

    (Calls queued while a batch is being committed join the worker's next batch, whichever turn of
    the loop queued them: that is the point of group commit, but it makes counts vary.)
    """
    await asyncio.get_running_loop().run_in_executor(ledger._worker, lambda: None)


async def transactions(ledger: AsyncSqliteLedger) -> list[str]:
    """Every BEGIN the ledger's connection runs from now on (SQLite's trace hook, on any thread)."""
    await idle(ledger)
    begun: list[str] = []
    ledger._sqlite._db.set_trace_callback(lambda s: begun.append(s) if s.startswith("BEGIN") else None)
    return begun


def held(outcome: object) -> Hold:
    assert isinstance(outcome, Hold), outcome
    return outcome


async def test_reserves_in_one_batch_are_granted_in_order_until_the_cap_is_full(
    ledger: AsyncSqliteLedger,
) -> None:
    begun = await transactions(ledger)
    outcomes = await asyncio.gather(*(ledger.reserve([WIDE, CAP], 0.01, ttl_s=60, now=T0) for _ in range(5)))
    assert len(begun) == 1  # one transaction for the five
    assert [type(o).__name__ for o in outcomes] == ["Hold", "Hold", "Hold", "Refusal", "Refusal"]
    # The refusals name the line that refused, with what the three granted before them held.
    assert outcomes[3] == outcomes[4] == Refusal(CAP, 0.0, 0.03, 0.01)
    # A refused reservation took back what it had added to the line before the one that refused.
    figures = await ledger.totals([WIDE, CAP], now=T0)
    assert figures == {WIDE.key: Totals(0.0, 0.03), CAP.key: Totals(0.0, 0.03)}


async def test_a_settle_in_the_same_batch_makes_room_for_the_reserves_after_it(
    ledger: AsyncSqliteLedger,
) -> None:
    holds = [held(await ledger.reserve([CAP], 0.01, ttl_s=60, now=T0)) for _ in range(3)]
    begun = await transactions(ledger)
    # In queue order: a reserve (refused: the cap is held), a settle that frees $0.005, a reserve
    # of $0.005 that now fits, and one more that does not.
    outcomes: list[Any] = await asyncio.gather(
        ledger.reserve([CAP], 0.005, ttl_s=60, now=T0),
        ledger.settle(holds[0], 0.005, now=T0),
        ledger.reserve([CAP], 0.005, ttl_s=60, now=T0),
        ledger.reserve([CAP], 0.001, ttl_s=60, now=T0),
    )
    assert len(begun) == 1
    assert isinstance(outcomes[0], Refusal) and outcomes[0].reserved_usd == pytest.approx(0.03)
    assert outcomes[1] == {CAP.key: Totals(0.005, 0.02)}
    assert isinstance(outcomes[2], Hold)
    assert isinstance(outcomes[3], Refusal)
    assert await ledger.totals([CAP], now=T0) == {CAP.key: Totals(0.005, 0.025)}


async def test_a_settle_queued_twice_in_one_batch_counts_once(ledger: AsyncSqliteLedger) -> None:
    hold = held(await ledger.reserve([CAP], 0.01, ttl_s=60, now=T0))
    first, again = await asyncio.gather(
        ledger.settle(hold, 0.004, now=T0), ledger.settle(hold, 0.004, now=T0)
    )
    assert first == again == {CAP.key: Totals(0.004, 0.0)}


async def test_a_call_that_fails_in_a_batch_fails_alone_and_the_others_land(
    ledger: AsyncSqliteLedger,
) -> None:
    holds = [held(await ledger.reserve([CAP], 0.01, ttl_s=60, now=T0)) for _ in range(2)]
    # A line SQLite cannot store: its settle raises inside the batch's transaction.
    broken = Line("broken", "total", 0.0, object(), 1.0)  # type: ignore[arg-type]
    bad = Hold("f" * 24, (broken,), 0.01, T0 + 60)
    begun = await transactions(ledger)
    outcomes = await asyncio.gather(
        ledger.settle(holds[0], 0.002, now=T0),
        ledger.settle(bad, 0.002, now=T0),
        ledger.settle(holds[1], 0.003, now=T0),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], sqlite3.Error)
    assert outcomes[0] == {CAP.key: Totals(0.002, 0.01)}
    assert outcomes[2] == {CAP.key: Totals(0.005, 0.0)}
    assert len(begun) == 1 + 3  # the batch, rolled back; then each call in a transaction of its own
    assert await ledger.totals([CAP], now=T0) == {CAP.key: Totals(0.005, 0.0)}


def test_apply_on_the_sync_ledger_gives_each_op_its_own_outcome(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        hold = Hold("a" * 24, (CAP,), 0.02, T0 + 60)
        over = Hold("b" * 24, (CAP,), 0.02, T0 + 60)
        outcomes = ledger.apply(
            [ReserveOp(hold, T0), ReserveOp(over, T0), SettleOp(hold, 0.01, T0), ReleaseOp(over)]
        )
        assert outcomes == [
            (hold, None),
            (Refusal(CAP, 0.0, 0.02, 0.02), None),
            ({CAP.key: Totals(0.01, 0.0)}, None),
            (None, None),
        ]
    finally:
        ledger.close()


async def test_a_batch_that_would_wait_for_the_lock_goes_to_the_worker_and_wakes_the_loop_once(
    ledger: AsyncSqliteLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    wakeups: list[Callable[..., object]] = []
    call_soon_threadsafe = loop.call_soon_threadsafe

    def counted(callback: Callable[..., object], *args: Any, **kwargs: Any) -> asyncio.Handle:
        wakeups.append(callback)
        return call_soon_threadsafe(callback, *args, **kwargs)

    begun = await transactions(ledger)
    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    # Inline, with the lock free: one transaction, and no thread to wake the loop.
    assert all(isinstance(h, Hold) for h in await reserve_many(ledger, 50))
    assert (len(begun), len(wakeups)) == (1, 0)
    # Another process holds the write lock: the loop does not wait for it, the worker does; then
    # one transaction and one wake-up for the fifty.
    other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    reserving = asyncio.create_task(reserve_many(ledger, 50))
    await asyncio.sleep(0.05)
    assert not reserving.done()
    other.execute("COMMIT")
    other.close()
    assert all(isinstance(h, Hold) for h in await reserving)
    assert len(wakeups) == 1
    assert len(begun) == 1 + 2  # the attempt inline (refused at once) and the worker's


async def reserve_many(ledger: AsyncSqliteLedger, n: int) -> list[Hold | Refusal]:
    return await asyncio.gather(*(ledger.reserve([WIDE], 0.001, ttl_s=60, now=T0) for _ in range(n)))


async def test_a_reserve_cancelled_while_its_batch_runs_is_released_once_it_lands(
    ledger: AsyncSqliteLedger,
) -> None:
    task = asyncio.create_task(ledger.reserve([CAP], 0.03, ttl_s=60, now=T0))
    await asyncio.sleep(0)  # queued: its batch is on its way to the worker
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # It lands, then is released (on the worker, after the batch it was in).
    for _ in range(1000):
        if await ledger.totals([CAP], now=T0) == {CAP.key: Totals(0.0, 0.0)}:
            break
        await asyncio.sleep(0.005)
    assert await ledger.totals([CAP], now=T0) == {CAP.key: Totals(0.0, 0.0)}
    assert ledger._sqlite._db.execute("SELECT COUNT(*) FROM reservations").fetchone() == (0,)


async def test_a_settle_whose_caller_was_cancelled_still_lands(ledger: AsyncSqliteLedger) -> None:
    hold = held(await ledger.reserve([CAP], 0.01, ttl_s=60, now=T0))
    task = asyncio.create_task(ledger.settle(hold, 0.007, now=T0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await ledger.release(held(await ledger.reserve([CAP], 0.0, ttl_s=60, now=T0)))  # after it, in order
    assert await ledger.totals([CAP], now=T0) == {CAP.key: Totals(0.007, 0.0)}


async def test_a_closed_ledger_refuses_new_writes_with_an_error_rather_than_hang(tmp_path: Path) -> None:
    ledger = AsyncSqliteLedger(tmp_path / "ledger.db")
    await ledger.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        await ledger.reserve([CAP], 0.01, ttl_s=60, now=T0)


def test_calls_queued_on_a_loop_closed_before_its_flush_are_done_by_the_next_loop(tmp_path: Path) -> None:
    ledger = AsyncSqliteLedger(tmp_path / "ledger.db")
    hold = Hold("c" * 24, (CAP,), 0.01, T0 + 60)

    first = asyncio.new_event_loop()
    queued: list[asyncio.Future[object]] = []

    def queue_and_stop() -> None:
        queued.append(ledger._group.submit(ReserveOp(hold, T0)))  # its flush is scheduled...
        first.stop()  # ...for the next turn, which never comes

    first.call_soon(queue_and_stop)
    first.run_forever()
    first.close()
    (stranded,) = queued
    assert not stranded.done()

    async def later() -> Hold | Refusal:
        # A safety net, not a measurement: a stranded queue would hang here forever.
        return await asyncio.wait_for(ledger.reserve([CAP], 0.01, ttl_s=60, now=T0), timeout=30)

    try:
        assert isinstance(asyncio.run(later()), Hold)
        # Both landed: the stranded reservation too (its loop is gone; it expires at its TTL).
        assert ledger.sync.totals([CAP], now=T0) == {CAP.key: Totals(0.0, 0.02)}
    finally:
        asyncio.run(ledger.close())


def test_a_batch_grants_exactly_the_reserves_that_fit_in_order_even_a_smaller_one_after_a_refusal(
    tmp_path: Path,
) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        asks = [0.02, 0.02, 0.01, 0.005]  # on a $0.03 cap: the second does not fit, the third does
        holds = [Hold(f"{n:024x}", (WIDE, CAP), usd, T0 + 60) for n, usd in enumerate(asks)]
        outcomes = [result for result, _ in ledger.apply([ReserveOp(hold, T0) for hold in holds])]
        assert outcomes == [holds[0], Refusal(CAP, 0.0, 0.02, 0.02), holds[2], Refusal(CAP, 0.0, 0.03, 0.005)]
        # What was written is what one transaction per call would have left.
        assert ledger.totals([WIDE, CAP], now=T0) == {WIDE.key: Totals(0.0, 0.03), CAP.key: Totals(0.0, 0.03)}
        rows = ledger._db.execute("SELECT id, key FROM reservations ORDER BY id, key").fetchall()
        assert rows == sorted((hold.id, line.key) for hold in (holds[0], holds[2]) for line in hold.lines)
    finally:
        ledger.close()


def test_each_reserve_of_a_batch_counts_an_unswept_expired_hold_as_its_own_clock_says(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        first = ledger.reserve([CAP], 0.03, ttl_s=0.5, now=T0)  # sweeps at T0; expires at T0 + 0.5
        assert isinstance(first, Hold)
        early = Hold("e" * 24, (CAP,), 0.01, T0 + 60)
        late = Hold("f" * 24, (CAP,), 0.01, T0 + 60)
        # No sweep before T0 + 1: the expired hold is still a row, and each reserve judges it by its own now.
        outcomes = ledger.apply([ReserveOp(early, T0 + 0.4), ReserveOp(late, T0 + 0.6)])
        assert outcomes == [(Refusal(CAP, 0.0, 0.03, 0.01), None), (late, None)]
        assert ledger.totals([CAP], now=T0 + 0.6) == {CAP.key: Totals(0.0, 0.01)}
        # Settled late, the expired hold's row goes and its cost counts; the figures agree with a fresh read.
        (settled, _), (after, _) = ledger.apply([SettleOp(first, 0.02, T0 + 0.7), ReserveOp(early, T0 + 0.7)])
        assert settled == {CAP.key: Totals(0.02, 0.01)}
        assert after == Refusal(CAP, 0.02, 0.01, 0.01)
        assert ledger.totals([CAP], now=T0 + 0.7) == {CAP.key: Totals(0.02, 0.01)}
    finally:
        ledger.close()


def test_a_hold_reserved_and_settled_in_one_batch_leaves_no_row_and_counts_its_cost(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        hold = Hold("a" * 24, (WIDE, CAP), 0.02, T0 + 60)
        gone = Hold("b" * 24, (CAP,), 0.01, T0 + 60)
        outcomes = ledger.apply(
            [
                ReserveOp(hold, T0),
                ReserveOp(gone, T0),
                ReleaseOp(gone),
                SettleOp(hold, 0.015, T0, estimated=True),
            ]
        )
        assert [result for result, _ in outcomes] == [
            hold,
            gone,
            None,
            {WIDE.key: Totals(0.015, 0.0, 0.015), CAP.key: Totals(0.015, 0.0, 0.015)},
        ]
        assert ledger._db.execute("SELECT COUNT(*) FROM reservations").fetchone() == (0,)
        assert ledger.totals([CAP], now=T0) == {CAP.key: Totals(0.015, 0.0, 0.015)}
    finally:
        ledger.close()


def test_a_reserve_of_an_id_already_held_fails_alone_as_its_own_transaction_would(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        hold = Hold("c" * 24, (CAP,), 0.01, T0 + 60)
        assert ledger.reserve([CAP], 0.01, ttl_s=60, now=T0, hold_id=hold.id) == hold
        other = Hold("d" * 24, (CAP,), 0.01, T0 + 60)
        outcomes = ledger.apply([ReserveOp(hold, T0), ReserveOp(other, T0), ReleaseOp(hold)])
        assert isinstance(outcomes[0][1], sqlite3.IntegrityError)
        assert outcomes[1:] == [(other, None), (None, None)]
        assert ledger.totals([CAP], now=T0) == {CAP.key: Totals(0.0, 0.01)}
    finally:
        ledger.close()


def test_a_refused_reserve_leaves_the_period_it_would_have_opened_without_a_row(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        over = Hold("a" * 24, (WIDE, CAP), 0.05, T0 + 60)  # fits WIDE, not CAP
        assert ledger.apply([ReserveOp(over, T0)]) == [(Refusal(CAP, 0.0, 0.0, 0.05), None)]
        assert ledger._db.execute("SELECT COUNT(*) FROM spend").fetchone() == (0,)
        assert ledger._db.execute("SELECT COUNT(*) FROM reservations").fetchone() == (0,)
    finally:
        ledger.close()


def test_a_settle_in_a_batch_counts_the_holds_its_own_clock_counts_though_a_later_reserve_finds_them_expired(
    tmp_path: Path,
) -> None:
    """The batch sweeps expired holds at its earliest clock: a reserve's later clock must not drop a
    hold from the figures a settle before it reports (found by the batch-against-reference test)."""
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        first = ledger.reserve([CAP], 0.01, ttl_s=5, now=T0)
        other = ledger.reserve([CAP], 0.01, ttl_s=5, now=T0)
        assert isinstance(first, Hold) and isinstance(other, Hold)
        late = Hold("f" * 32, (CAP,), 0.01, T0 + 70)
        (settled, _), (granted, _) = ledger.apply([SettleOp(first, 0.005, T0 + 1), ReserveOp(late, T0 + 10)])
        assert settled == {CAP.key: Totals(0.005, 0.01)}  # `other` still held at T0 + 1
        assert granted == late  # and expired at T0 + 10
        assert ledger.totals([CAP], now=T0 + 10) == {CAP.key: Totals(0.005, 0.01)}
    finally:
        ledger.close()


def test_a_batch_holding_a_replayed_settle_is_done_op_by_op_and_counts_it_once(tmp_path: Path) -> None:
    """A batch's settle ids go in with one insert, which cannot tell which id was there already: when
    one was (a journal replayed), the batch is rolled back and each op done alone, which can."""
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        first, second, third = (Hold(f"{n:032x}", (WIDE,), 0.01, T0 + 60) for n in range(3))
        ledger.apply([ReserveOp(first, T0), ReserveOp(second, T0), ReserveOp(third, T0)])
        assert ledger.apply([SettleOp(first, 0.004, T0)]) == [({WIDE.key: Totals(0.004, 0.02)}, None)]
        begun: list[str] = []
        ledger._db.set_trace_callback(
            lambda s: begun.append(s) if s.startswith(("BEGIN", "ROLLBACK")) else None
        )
        outcomes = ledger.apply(
            [SettleOp(second, 0.002, T0), SettleOp(first, 0.004, T0), SettleOp(third, 0.001, T0)]
        )
        # The batch's transaction, rolled back; then one per op.
        assert begun == ["BEGIN IMMEDIATE", "ROLLBACK", *["BEGIN IMMEDIATE"] * 3]
        assert outcomes == [
            ({WIDE.key: Totals(0.006, 0.01)}, None),
            ({WIDE.key: Totals(0.006, 0.01)}, None),  # the replay: counted once, the first time
            ({WIDE.key: Totals(0.007, 0.0)}, None),
        ]
        assert ledger.totals([WIDE], now=T0) == {WIDE.key: Totals(0.007, 0.0)}
    finally:
        ledger.close()
