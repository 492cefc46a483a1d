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
