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
