"""How much of everything a run does: the full defaults and the quick smoke-run counts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Options:
    # Sync latency: calls per line after the warm-up, split into interleaved rounds.
    calls: int = 10_000
    litellm_calls: int = 3_000  # litellm is 4-8 times slower; this keeps each line near 10-20 s
    warmup: int = 500
    litellm_warmup: int = 100
    rounds: int = 10
    # Async throughput: total requests per round at this concurrency, each round a fresh process per client.
    async_requests: int = 3_200
    concurrency: tuple[int, ...] = (64, 512)
    async_rounds: int = 3
    # Fault soak: rounds of concurrent requests through router.AsyncOpenAI (benchmarks/soak.py).
    soak_rounds: int = 40
    soak_requests: int = 500
    # Cold import: fresh processes per module.
    import_runs: int = 11
    # Planning: seconds of timed calls per cell (at least 50 calls).
    planning_budget_s: float = 1.0
    # Memory: requests in all, RSS baseline taken after the warm-up.
    rss_requests: int = 50_000
    rss_warmup: int = 5_000
    quick: bool = False


QUICK = Options(
    calls=300,
    litellm_calls=100,
    warmup=30,
    litellm_warmup=10,
    rounds=3,
    async_requests=640,
    async_rounds=1,
    soak_rounds=4,
    soak_requests=200,
    import_runs=3,
    planning_budget_s=0.05,
    rss_requests=3_000,
    rss_warmup=300,
    quick=True,
)
