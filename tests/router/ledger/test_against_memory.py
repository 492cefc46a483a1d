"""SQLite and Redis answer every sequence of operations exactly as the in-memory reference does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.ledger import Hold, Ledger, Line, open_ledger
from router.ledger.memory import MemoryLedger

LINES = (
    Line("a", "day", 0.0, 86_400.0, 1.0),
    Line("b", "hour", 0.0, 3_600.0, 0.6),
    Line("*", "total", 0.0, None, 1.5),
)
line_sets = st.lists(st.sampled_from(LINES), min_size=1, max_size=3, unique=True)
nanos = st.integers(min_value=0, max_value=700_000_000).map(lambda n: n / 1e9)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), line_sets, nanos, st.sampled_from([5.0, 30.0])),
        st.tuples(st.just("settle"), st.integers(0, 20), nanos),
        st.tuples(st.just("release"), st.integers(0, 20)),
        st.tuples(st.just("wait"), st.sampled_from([1.0, 10.0, 40.0])),
    ),
    max_size=40,
)


def run(ledger: Ledger, script: list[tuple[Any, ...]]) -> list[Any]:
    """Apply the script; what each step answered, with hold ids (random) left out."""
    now, holds, seen = 1_000.0, [], []
    for step in script:
        if step[0] == "reserve":
            result = ledger.reserve(step[1], step[2], ttl_s=step[3], now=now)
            if isinstance(result, Hold):
                holds.append(result)
                seen.append(("held", result.lines, result.amount_usd, result.expires_at))
            else:
                seen.append(result)
        elif step[0] in ("settle", "release") and holds:
            hold = holds.pop(step[1] % len(holds))
            seen.append(
                ledger.settle(hold, step[2], now=now) if step[0] == "settle" else ledger.release(hold)
            )
        elif step[0] == "wait":
            now += step[1]
        seen.append(ledger.totals(LINES, now=now))
    seen.append(ledger.report(now=now))
    return seen


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_backend_matches_the_reference_step_by_step(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    redis_base = request.getfixturevalue("redis_server") if backend == "redis" else None

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(script=operations)
    def check(script: list[tuple[Any, ...]]) -> None:
        if redis_base is not None:
            url = f"{redis_base}/1"
            import redis

            with redis.Redis.from_url(url) as client:
                client.flushdb()
        else:
            url = f"sqlite:///{Path(tmp_path_factory.mktemp('model')) / 'ledger.db'}"
        ledger = open_ledger(url)
        try:
            assert run(ledger, script) == run(MemoryLedger(), script)
        finally:
            ledger.close()

    check()


# A script cut into batches: each step is (op, batch break after it?). Settles and releases name a
# hold the reference granted earlier (in this batch or before), as the router's own calls do.
batched_operations = st.lists(
    st.tuples(
        st.one_of(
            st.tuples(st.just("reserve"), line_sets, nanos, st.sampled_from([5.0, 30.0])),
            st.tuples(st.just("settle"), st.integers(0, 20), nanos, st.booleans()),
            st.tuples(st.just("release"), st.integers(0, 20)),
            st.tuples(st.just("settle-again"), st.integers(0, 20), nanos),
            st.tuples(st.just("wait"), st.sampled_from([1.0, 10.0, 40.0])),
        ),
        st.booleans(),
    ),
    max_size=40,
)


def test_the_sqlite_ledgers_batches_answer_as_the_reference_does_one_call_at_a_time(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """``SqliteLedger.apply`` decides a batch in Python against running figures (router/ledger/_batch.py):
    every op's answer, and the figures after each batch, must be what the in-memory reference gives
    for the same calls made one at a time — waits (and so expiries) inside a batch included."""
    from router.ledger.sqlite import ReleaseOp, ReserveOp, SettleOp, SqliteLedger

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(script=batched_operations)
    def check(script: list[tuple[tuple[Any, ...], bool]]) -> None:
        reference = MemoryLedger()
        ledger = SqliteLedger(Path(tmp_path_factory.mktemp("batched")) / "ledger.db")
        try:
            now, number = 1_000.0, 0
            granted: list[Hold] = []  # the reference's open holds
            settled: list[Hold] = []
            batch: list[Any] = []
            expected: list[object] = []
            for step, cut in script:
                if step[0] == "reserve":
                    number += 1
                    hold = Hold(f"{number:032x}", tuple(step[1]), step[2], now + step[3])
                    answer = reference.reserve(step[1], step[2], ttl_s=step[3], now=now, hold_id=hold.id)
                    if isinstance(answer, Hold):
                        granted.append(answer)
                    batch.append(ReserveOp(hold, now))
                    expected.append(answer)
                elif step[0] == "settle" and granted:
                    hold = granted.pop(step[1] % len(granted))
                    settled.append(hold)
                    batch.append(SettleOp(hold, step[2], now, estimated=step[3]))
                    expected.append(reference.settle(hold, step[2], now=now, estimated=step[3]))
                elif step[0] == "settle-again" and settled:
                    # A replayed settle (a journal, a retry) counts once, whatever cost it carries.
                    hold = settled[step[1] % len(settled)]
                    batch.append(SettleOp(hold, step[2], now))
                    expected.append(reference.settle(hold, step[2], now=now))
                elif step[0] == "release" and granted:
                    hold = granted.pop(step[1] % len(granted))
                    batch.append(ReleaseOp(hold))
                    expected.append(reference.release(hold))
                elif step[0] == "wait":
                    now += step[1]
                if cut and batch:
                    outcomes = ledger.apply(batch)
                    assert [error for _, error in outcomes] == [None] * len(batch)
                    assert [result for result, _ in outcomes] == expected
                    assert ledger.totals(LINES, now=now) == reference.totals(LINES, now=now)
                    batch, expected = [], []
            if batch:
                assert [result for result, _ in ledger.apply(batch)] == expected
            assert ledger.totals(LINES, now=now) == reference.totals(LINES, now=now)
            assert ledger.report(now=now) == reference.report(now=now)
        finally:
            ledger.close()

    check()


alone_operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), line_sets, nanos, st.sampled_from([5.0, 30.0])),
        st.tuples(st.just("settle"), st.integers(0, 20), nanos, st.booleans()),
        st.tuples(st.just("settle-again"), st.integers(0, 20), nanos),
        st.tuples(st.just("settle-unknown"), line_sets, nanos),
        st.tuples(st.just("wait"), st.sampled_from([1.0, 10.0, 40.0])),
    ),
    max_size=40,
)


def test_a_sqlite_reserve_or_settle_alone_writes_and_answers_as_a_batch_of_one(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A reserve or settle alone (every sync call's) skips the batch's bookkeeping (``_reserve_alone``,
    ``_settle_alone``): in twin files, with no sweep (so expired holds stay behind unswept), each op
    must answer as ``_Batch`` does with the op alone and leave every table row for row the same."""
    import sqlite3

    from router.ledger._batch import Op, ReserveOp, SettleOp, _Batch, apply_in
    from router.ledger.sqlite import SqliteLedger

    def run(db: sqlite3.Connection, op: Op, alone: bool) -> object:
        db.execute("BEGIN IMMEDIATE")
        result = apply_in(db, [op])[0] if alone else _Batch(db, [op]).run()[0]
        db.execute("COMMIT")
        return result

    def rows(db: sqlite3.Connection) -> list[list[Any]]:
        return [
            db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("spend", "reservations", "settled")
        ]

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(script=alone_operations)
    def check(script: list[tuple[Any, ...]]) -> None:
        directory = Path(tmp_path_factory.mktemp("alone"))
        twins = [SqliteLedger(directory / "alone.db"), SqliteLedger(directory / "batch.db")]
        try:
            now, number = 1_000.0, 0
            granted: list[Hold] = []
            settled: list[Hold] = []
            for step in script:
                op: Op | None = None
                if step[0] == "reserve":
                    number += 1
                    op = ReserveOp(Hold(f"{number:032x}", tuple(step[1]), step[2], now + step[3]), now)
                elif step[0] == "settle" and granted:
                    hold = granted.pop(step[1] % len(granted))
                    settled.append(hold)
                    op = SettleOp(hold, step[2], now, estimated=step[3])
                elif step[0] == "settle-again" and settled:
                    op = SettleOp(settled[step[1] % len(settled)], step[2], now)
                elif step[0] == "settle-unknown":  # a hold the ledger never saw (fail_open)
                    number += 1
                    op = SettleOp(Hold(f"{number:032x}", tuple(step[1]), 0.1, now + 5.0), step[2], now)
                elif step[0] == "wait":
                    now += step[1]
                if op is None:
                    continue
                alone, batch = (run(twin._db, op, alone=n == 0) for n, twin in enumerate(twins))
                assert alone == batch
                assert rows(twins[0]._db) == rows(twins[1]._db)
                if isinstance(op, ReserveOp) and isinstance(alone, Hold):
                    granted.append(alone)
        finally:
            for twin in twins:
                twin.close()

    check()
