"""One model on several deployments, through the public clients against the fake providers."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from typing import Any

import openai
import pytest
from router_fakes import FakeProviders, ModelScript, status

from policies.schema import Policy
from router import AsyncOpenAI, OpenAI
from router._deployments import Balancer
from router._engine import Engine
from router.ledger._rates import MemoryRates
from router.ledger._types import WouldWait
from router.testing import capture_events

from .fault_helpers import FakeClock

KEY_ENV = "ROUTER_DEPLOY_TEST_KEY"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "fake-key")


def pool_policy(
    fake: FakeProviders,
    deployments: list[dict[str, Any]],
    *,
    model: dict[str, Any] | None = None,
    **top: Any,
) -> Policy:
    """Model ``pooled`` on openai-compatible deployments (each its own model id on the fake), then
    a fallback model ``backup``."""
    return Policy.model_validate(
        {
            "retry": {"attempts": 1},
            "models": {
                "pooled": {
                    "provider": "openai_compatible",
                    "api_base": fake.openai_base,
                    "api_key_env": KEY_ENV,
                    "input_cost_per_mtok": 1,
                    "output_cost_per_mtok": 2,
                    "deployments": [{"model": d["name"], **d} for d in deployments],
                    **(model or {}),
                },
                "backup": {
                    "provider": "openai_compatible",
                    "model": "backup-model",
                    "api_base": fake.openai_base,
                    "api_key_env": KEY_ENV,
                    "input_cost_per_mtok": 5,
                    "output_cost_per_mtok": 5,
                },
            },
            "routes": {"auto": {"candidates": ["pooled"], "fallbacks": ["backup"]}},
            **top,
        }
    )


def client_for(policy: Policy, clock: FakeClock | None = None, seed: int | None = 7) -> OpenAI:
    clock = clock or FakeClock(1_700_000_000.0)
    client = OpenAI(policy=policy, clock=clock, wall_clock=clock, sleep=clock.sleep)
    if seed is not None:
        client._router._balancer._rng = random.Random(seed)
    return client


def served_by(fake: FakeProviders) -> Counter[str]:
    return Counter(r.model for r in fake.requests)


def test_weighted_1_2_1_sends_1000_requests_within_5_percent_of_25_50_25(fake: FakeProviders) -> None:
    policy = pool_policy(
        fake, [{"name": "d1", "weight": 1}, {"name": "d2", "weight": 2}, {"name": "d3", "weight": 1}]
    )
    with client_for(policy) as client:
        for _ in range(1000):
            client.chat.completions.create(model="auto", messages=QUESTION)
    counts = served_by(fake)
    assert sum(counts.values()) == 1000
    for name, share in (("d1", 0.25), ("d2", 0.50), ("d3", 0.25)):
        assert abs(counts[name] / 1000 - share) <= 0.05, counts


def test_a_429_moves_to_the_next_deployment_of_the_same_model_before_the_next_model(
    fake: FakeProviders,
) -> None:
    fake.script(ModelScript("d1", faults=(status(429),), repeat_faults=True))
    policy = pool_policy(fake, [{"name": "d1"}, {"name": "d2"}])
    with client_for(policy) as client:
        records = [client.chat.completions.create(model="auto", messages=QUESTION).routing for _ in range(20)]
    assert {r.deployment for r in records} == {"d2"}
    assert "backup-model" not in served_by(fake)
    failed_first = [r for r in records if len(r.attempts) == 2]
    assert failed_first, "the weighted draw never put d1 first in 20 requests"
    for record in failed_first:
        assert [(a.deployment, a.error) for a in record.attempts] == [("d1", "rate_limited"), ("d2", None)]


def test_a_failing_deployment_is_skipped_by_its_breaker_while_the_others_serve(fake: FakeProviders) -> None:
    fake.script(ModelScript("d1", faults=(status(500),), repeat_faults=True))
    policy = pool_policy(
        fake,
        [{"name": "d1"}, {"name": "d2"}, {"name": "d3"}],
        cooldown={"failures": 2, "window_s": 60, "cooldown_s": 300},
    )
    with client_for(policy) as client:
        records = [client.chat.completions.create(model="auto", messages=QUESTION).routing for _ in range(40)]
    counts = served_by(fake)
    assert counts["d1"] == 2  # two failures open its breaker; the clock never reaches the cooldown's end
    assert counts["d2"] + counts["d3"] == 40 and counts["d2"] > 5 and counts["d3"] > 5
    assert "backup-model" not in counts
    last = records[-1]
    assert last.rejected["pooled/d1"].startswith("cooling down after 2 failures")


def test_both_deployments_failing_falls_back_to_the_next_model(fake: FakeProviders) -> None:
    for name in ("d1", "d2"):
        fake.script(ModelScript(name, faults=(status(503),), repeat_faults=True))
    with client_for(pool_policy(fake, [{"name": "d1"}, {"name": "d2"}])) as client:
        record = client.chat.completions.create(model="auto", messages=QUESTION).routing
    assert sorted(a.deployment for a in record.attempts[:2]) == ["d1", "d2"]
    assert record.model == "backup" and record.deployment is None


def test_least_busy_spreads_requests_in_flight_evenly_instead_of_favouring_the_first(
    fake: FakeProviders,
) -> None:
    for name in ("d1", "d2", "d3"):
        fake.script(ModelScript(name, latency_s=0.2))
    policy = pool_policy(
        fake, [{"name": "d1"}, {"name": "d2"}, {"name": "d3"}], model={"balance": "least_busy"}
    )

    async def burst() -> None:
        async with AsyncOpenAI(policy=policy) as client:
            await asyncio.gather(
                *(client.chat.completions.create(model="auto", messages=QUESTION) for _ in range(9))
            )

    asyncio.run(burst())
    assert served_by(fake) == Counter({"d1": 3, "d2": 3, "d3": 3})


def test_latency_sends_most_requests_to_the_deployment_with_the_lower_moving_average(
    fake: FakeProviders,
) -> None:
    fake.script(ModelScript("slow", latency_s=0.15))
    policy = pool_policy(fake, [{"name": "slow"}, {"name": "fast"}], model={"balance": "latency"})
    with OpenAI(policy=policy) as client:  # the real clock: latency is what is measured
        for _ in range(12):
            client.chat.completions.create(model="auto", messages=QUESTION)
    counts = served_by(fake)
    assert counts["slow"] == 1  # tried once (never observed), then the faster one
    assert counts["fast"] == 11


def test_usage_skips_deployments_at_their_rpm_with_the_reason_then_falls_back(fake: FakeProviders) -> None:
    policy = pool_policy(
        fake, [{"name": "d1", "rpm": 2}, {"name": "d2", "rpm": 2}], model={"balance": "usage"}
    )
    with client_for(policy) as client:
        records = [client.chat.completions.create(model="auto", messages=QUESTION).routing for _ in range(5)]
    assert Counter(r.deployment for r in records[:4]) == Counter({"d1": 2, "d2": 2})
    assert records[4].model == "backup"
    assert records[4].rejected["pooled/d1"].startswith("at its limit (2 rpm); a slot frees in 60.0s")
    assert "every deployment is unavailable" in records[4].rejected["pooled"]


def test_route_completed_says_which_deployments_were_passed_over_and_why(fake: FakeProviders) -> None:
    policy = pool_policy(fake, [{"name": "d1", "rpm": 1}], model={"balance": "usage"})
    with client_for(policy) as client, capture_events() as events:
        for _ in range(2):
            client.chat.completions.create(model="auto", messages=QUESTION)
    first, second = [e for e in events if e["event"] == "route.completed"]
    assert "skipped" not in first and first["model"] == "pooled"
    assert second["model"] == "backup" and second["attempts"] == 1  # no attempt failed: the log says why
    assert second["skipped"]["pooled/d1"].startswith("at its limit (1 rpm); a slot frees in 60.0s")
    assert second["skipped"]["pooled"].startswith("every deployment is unavailable")


def test_usage_alternates_between_deployments_by_headroom(fake: FakeProviders) -> None:
    policy = pool_policy(
        fake, [{"name": "d1", "rpm": 10}, {"name": "d2", "rpm": 30}], model={"balance": "usage"}
    )
    with client_for(policy) as client:
        for _ in range(20):
            client.chat.completions.create(model="auto", messages=QUESTION)
    counts = served_by(fake)
    # Headroom is the share left: 30 rpm keeps more of it, so d2 takes three times d1's share.
    assert counts == Counter({"d1": 5, "d2": 15})


def test_when_all_limited_wait_sleeps_until_a_slot_frees_then_sends(fake: FakeProviders) -> None:
    clock = FakeClock(1_700_000_000.0)
    policy = pool_policy(
        fake,
        [{"name": "d1", "rpm": 1}, {"name": "d2", "rpm": 1}],
        model={"balance": "usage", "when_all_limited": "wait"},
    )
    with client_for(policy, clock) as client:
        records = [client.chat.completions.create(model="auto", messages=QUESTION).routing for _ in range(3)]
    assert [r.model for r in records] == ["pooled"] * 3
    assert clock.sleeps == [pytest.approx(60.0)]
    assert records[2].attempts[0].wait_s == pytest.approx(60.0)
    assert records[2].attempts[0].picked_by == "when_all_limited: wait 60.0s for a slot"


def test_when_all_limited_wait_falls_back_when_no_slot_frees_before_the_deadline(
    fake: FakeProviders,
) -> None:
    clock = FakeClock(1_700_000_000.0)
    policy = pool_policy(
        fake,
        [{"name": "d1", "rpm": 1}],
        model={"balance": "usage", "when_all_limited": "wait"},
        timeout_s=30,
    )
    with client_for(policy, clock) as client:
        records = [client.chat.completions.create(model="auto", messages=QUESTION).routing for _ in range(2)]
    assert [r.model for r in records] == ["pooled", "backup"]
    assert clock.sleeps == []
    assert "no slot frees before the deadline" in records[1].rejected["pooled"]


def test_a_route_overrides_the_models_balance(fake: FakeProviders) -> None:
    policy = pool_policy(fake, [{"name": "d1", "rpm": 1}, {"name": "d2", "rpm": 1}])
    policy = policy.model_copy(
        update={
            "routes": {
                "auto": policy.routes["auto"].model_copy(
                    update={"when_all_limited": "wait", "balance": "usage"}
                )
            }
        }
    )
    clock = FakeClock(1_700_000_000.0)
    with client_for(policy, clock) as client:
        for _ in range(3):
            client.chat.completions.create(model="auto", messages=QUESTION)
    assert clock.sleeps == [pytest.approx(60.0)]


def test_a_deployments_price_override_prices_the_calls_it_serves(fake: FakeProviders) -> None:
    fake.script(ModelScript("d1", prompt_tokens=1_000_000, completion_tokens=0))
    policy = pool_policy(fake, [{"name": "d1", "input_cost_per_mtok": 0.5}])
    with client_for(policy) as client:
        record = client.chat.completions.create(model="auto", messages=QUESTION).routing
    assert record.cost_usd == pytest.approx(0.5)


def test_a_deployment_without_its_key_is_left_out_and_the_others_serve(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROUTER_DEPLOY_MISSING", raising=False)
    policy = pool_policy(fake, [{"name": "d1", "api_key_env": "ROUTER_DEPLOY_MISSING"}, {"name": "d2"}])
    with client_for(policy) as client:
        for _ in range(10):
            client.chat.completions.create(model="auto", messages=QUESTION)
        pool = client._router._engine.pools["pooled"]
    assert served_by(fake) == Counter({"d2": 10})
    assert pool.unavailable == {
        "d1": (
            "no API key: set ROUTER_DEPLOY_MISSING or remove the deployment"
            " (or name another variable in api_key_env:)"
        )
    }


def test_attempt_and_completed_events_name_the_deployment(fake: FakeProviders) -> None:
    fake.script(ModelScript("d1", faults=(status(500),), repeat_faults=True))
    policy = pool_policy(fake, [{"name": "d1", "weight": 1000}, {"name": "d2", "weight": 0.001}])
    with client_for(policy, seed=1) as client, capture_events() as events:
        client.chat.completions.create(model="auto", messages=QUESTION)
    attempts = [e for e in events if e["event"] == "route.attempt"]
    assert [(e["deployment"], e["outcome"]) for e in attempts] == [("d1", "error"), ("d2", "ok")]
    assert attempts[0]["picked_by"] == "weighted: weight 1000 of 1000"
    completed = next(e for e in events if e["event"] == "route.completed")
    assert completed["deployment"] == "d2" and completed["model"] == "pooled"


def test_the_routing_record_names_the_deployment_in_its_dict(fake: FakeProviders) -> None:
    with client_for(pool_policy(fake, [{"name": "only"}])) as client:
        record = client.chat.completions.create(model="auto", messages=QUESTION).routing
    data = record.to_dict()
    assert data["deployment"] == "only"
    assert data["attempts"][0]["deployment"] == "only"


def test_async_client_balances_like_the_sync_one(fake: FakeProviders) -> None:
    policy = pool_policy(
        fake, [{"name": "d1", "rpm": 3}, {"name": "d2", "rpm": 3}], model={"balance": "usage"}
    )
    clock = FakeClock(1_700_000_000.0)

    async def run() -> list[Any]:
        async with AsyncOpenAI(
            policy=policy, clock=clock, wall_clock=clock, sleep=clock.async_sleep
        ) as client:
            return [
                (await client.chat.completions.create(model="auto", messages=QUESTION)).routing
                for _ in range(7)
            ]

    records = asyncio.run(run())
    assert Counter(r.deployment for r in records[:6]) == Counter({"d1": 3, "d2": 3})
    assert records[6].model == "backup"


def test_streams_are_balanced_and_fail_over_between_deployments(fake: FakeProviders) -> None:
    fake.script(ModelScript("d1", faults=(status(503),), repeat_faults=True))
    policy = pool_policy(fake, [{"name": "d1", "weight": 1000}, {"name": "d2", "weight": 0.001}])
    with client_for(policy, seed=3) as client:
        stream = client.chat.completions.create(model="auto", messages=QUESTION, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("[d2]")
    assert [(a.deployment, a.error) for a in stream.routing.attempts] == [("d1", "server"), ("d2", None)]


def test_a_stream_abandoned_midway_stops_counting_as_in_flight_once_no_request_could_still_run(
    fake: FakeProviders,
) -> None:
    clock = FakeClock(1_700_000_000.0)
    policy = pool_policy(
        fake, [{"name": "d1"}, {"name": "d2"}], model={"balance": "least_busy"}, timeout_s=100
    )
    with client_for(policy, clock) as client:
        stream = client.chat.completions.create(model="auto", messages=QUESTION, stream=True)
        next(iter(stream))
        stream.close()  # abandoned: the session never hears how it ended
        balancer = client._router._balancer
        pool = client._router._engine.pools["pooled"]
        busy = {key: load.in_flight for key, load in balancer.loads(pool, "least_busy").items()}
        assert sorted(busy.values()) == [0, 1]
        clock.advance(100 + 60 + 1)  # timeout_s + stream_idle_timeout_s: no request runs this long
        busy = {key: load.in_flight for key, load in balancer.loads(pool, "least_busy").items()}
        assert busy == {"pooled/d1": 0, "pooled/d2": 0}


def test_a_429_asking_to_wait_too_long_takes_that_deployment_out_until_then(fake: FakeProviders) -> None:
    fake.script(ModelScript("d1", faults=(status(429, retry_after=120),)))
    policy = pool_policy(fake, [{"name": "d1", "weight": 1000}, {"name": "d2", "weight": 0.001}])
    with client_for(policy, seed=2) as client:
        first = client.chat.completions.create(model="auto", messages=QUESTION).routing
        later = [client.chat.completions.create(model="auto", messages=QUESTION).routing for _ in range(5)]
    assert [(a.deployment, a.error) for a in first.attempts] == [("d1", "rate_limited"), ("d2", None)]
    assert {r.deployment for r in later} == {"d2"}  # d1 is held back for its 120 s, though it is favoured
    assert later[0].rejected["pooled/d1"].startswith("cooling down after a 429 asking to wait 120s")


def test_retry_attempts_allow_that_many_rounds_over_the_deployments_then_the_next_model(
    fake: FakeProviders,
) -> None:
    for name in ("d1", "d2"):
        fake.script(ModelScript(name, faults=(status(503),), repeat_faults=True))
    policy = pool_policy(fake, [{"name": "d1"}, {"name": "d2"}], retry={"attempts": 2})
    with client_for(policy) as client:
        record = client.chat.completions.create(model="auto", messages=QUESTION).routing
    pooled = [a.deployment for a in record.attempts if a.model == "pooled"]
    assert sorted(pooled) == ["d1", "d1", "d2", "d2"]
    assert pooled[0] != pooled[1] and pooled[2] != pooled[3]  # each round tries every deployment
    assert record.model == "backup"


def test_a_budget_reserves_at_the_price_of_the_deployment_called(fake: FakeProviders, tmp_path: Any) -> None:
    policy = pool_policy(
        fake,
        [{"name": "dear", "input_cost_per_mtok": 100, "output_cost_per_mtok": 400}],
        features={"bot": {"budget": {"limit_usd": 100, "window": "day"}}},
    )
    clock = FakeClock(1_700_000_000.0)
    with OpenAI(
        policy=policy, ledger=f"sqlite:///{tmp_path}/l.db", clock=clock, wall_clock=clock, sleep=clock.sleep
    ) as client:
        record = client.chat.completions.create(
            model="auto", messages=QUESTION, max_tokens=50, metadata={"feature": "bot"}
        ).routing
    assert record.deployment == "dear"
    assert record.cost_usd is not None and record.cost_usd > 0.001  # priced at the deployment's rates
    assert [e.kind for e in record.budget_events if e.kind == "overrun"] == []  # reserved enough for it


def test_a_claim_due_just_after_another_clients_waits_its_turn_rather_than_falling_back(
    fake: FakeProviders, tmp_path: Any
) -> None:
    # Two processes share the counters; one's clock reads 10 ms ahead of the other's. Its claim
    # lands first, so the other's is due 10 ms after its own `now`, with the window far from full.
    policy = pool_policy(
        fake, [{"name": "d1", "rpm": 1000}], model={"balance": "usage"}, ledger=f"sqlite:///{tmp_path}/l.db"
    )
    behind, ahead = FakeClock(1_700_000_000.0), FakeClock(1_700_000_000.010)
    with client_for(policy, ahead) as first, client_for(policy, behind) as second:
        first.chat.completions.create(model="auto", messages=QUESTION)
        record = second.chat.completions.create(model="auto", messages=QUESTION).routing
    assert record.model == "pooled" and record.deployment == "d1"
    assert behind.sleeps == [pytest.approx(0.010)]  # sent in turn: no window holds more than its claims
    assert record.attempts[0].wait_s == pytest.approx(0.010)
    assert record.attempts[0].picked_by.endswith("sent 10 ms later, in turn behind another request's claim")


def test_a_claim_due_more_than_a_moment_later_still_falls_back_when_the_policy_says_so(
    fake: FakeProviders, tmp_path: Any
) -> None:
    # A slot a full minute away is a full deployment, not a turn: `fallback` does not wait for it.
    policy = pool_policy(
        fake, [{"name": "d1", "rpm": 1000}], model={"balance": "usage"}, ledger=f"sqlite:///{tmp_path}/l.db"
    )
    behind, ahead = FakeClock(1_700_000_000.0), FakeClock(1_700_000_001.0)
    with client_for(policy, ahead) as first, client_for(policy, behind) as second:
        first.chat.completions.create(model="auto", messages=QUESTION)
        record = second.chat.completions.create(model="auto", messages=QUESTION).routing
    assert record.model == "backup" and behind.sleeps == []
    assert record.rejected["pooled/d1"].startswith("at its limit (1000 rpm); a slot frees in 1.0s")


class TickingClock(FakeClock):
    """Wall time that moves a tenth of a millisecond at every read, as a busy process's clock does
    (48 requests reading it a few times each stay well within a quarter of a second)."""

    def __call__(self) -> float:
        self.now += 0.0001
        return self.now


def test_a_busy_async_client_on_shared_counters_keeps_to_the_deployment_far_from_its_limits(
    fake: FakeProviders, tmp_path: Any
) -> None:
    # 48 requests at once: their claims run on threads, in any order, each with the `now` its request
    # read. Refusing those due a few milliseconds later sent about a fifth of them to the fallback.
    policy = pool_policy(
        fake,
        [{"name": "d1", "rpm": 100_000}, {"name": "d2", "rpm": 100_000}],
        model={"balance": "usage"},
        ledger=f"sqlite:///{tmp_path}/l.db",
    )
    clock = TickingClock(1_700_000_000.0)

    async def run() -> list[Any]:
        async with AsyncOpenAI(
            policy=policy, clock=clock, wall_clock=clock, sleep=clock.async_sleep
        ) as client:
            answers = await asyncio.gather(
                *(client.chat.completions.create(model="auto", messages=QUESTION) for _ in range(48))
            )
            return [a.routing for a in answers]

    records = asyncio.run(run())
    assert Counter(r.model for r in records) == Counter({"pooled": 48})
    assert all(a.wait_s < 0.25 for r in records for a in r.attempts)


def test_counters_out_of_reach_serve_unchecked_with_a_warning(
    fake: FakeProviders, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on: Redis refuses at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = pool_policy(
        fake, [{"name": "d1", "rpm": 1}, {"name": "d2", "rpm": 1}], model={"balance": "usage"}
    )
    with (
        OpenAI(policy=policy, ledger=f"redis://127.0.0.1:{port}/0") as client,
        caplog.at_level("WARNING", "router"),
    ):
        records = [client.chat.completions.create(model="auto", messages=QUESTION).routing for _ in range(3)]
        errors = client._router._balancer.counter_errors
    assert [r.model for r in records] == ["pooled"] * 3  # over the 2 rpm: nothing could count them
    assert errors > 0
    assert "the rate counters could not be reached" in caplog.text


class _FlakyCounters(MemoryRates):
    """In-process counters that refuse every read while ``down``, as a Redis that went away."""

    errors = (ConnectionError,)

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def usage(self, keys: Any, now: float) -> dict[str, tuple[int, int]]:
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return super().usage(keys, now)


def test_an_outage_of_the_rate_counters_warns_once_then_at_most_every_minute_and_says_when_it_ends(
    fake: FakeProviders, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    policy = pool_policy(
        fake, [{"name": "d1", "rpm": 5}, {"name": "d2", "rpm": 5}], model={"balance": "usage"}
    )
    counters = _FlakyCounters()
    balancer = Balancer(Engine(policy, env={}), counters, wall_clock=clock)
    pool = balancer.pools["pooled"]
    with caplog.at_level("INFO", "router"):
        counters.down = True
        for _ in range(100):  # a busy client: two calls a request while the counters are away
            balancer.loads(pool, "usage")
        clock.advance(30)
        balancer.loads(pool, "usage")
        clock.advance(31)
        balancer.loads(pool, "usage")
        counters.down = False
        balancer.loads(pool, "usage")
        balancer.loads(pool, "usage")
        counters.down = True  # a second outage is warned of at once
        balancer.loads(pool, "usage")
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "router"]
    assert [level for level, _ in said] == ["WARNING", "WARNING", "INFO", "WARNING"]
    assert "could not be reached (ConnectionError: Error 111" in said[0][1]
    assert "(1 call failed since the last warning" in said[0][1]
    assert "(101 calls failed since the last warning" in said[1][1]
    assert "answer again after 61.0 s out of reach (0 calls failed" in said[2][1]
    assert "(1 call failed" in said[3][1]
    assert balancer.counter_errors == 103


def test_a_client_copy_shares_the_outage_it_was_warned_of(
    fake: FakeProviders, caplog: pytest.LogCaptureFixture
) -> None:
    policy = pool_policy(fake, [{"name": "d1", "rpm": 5}], model={"balance": "usage"})
    counters = _FlakyCounters()
    balancer = Balancer(Engine(policy, env={}), counters, wall_clock=FakeClock())
    copy = balancer.for_engine(Engine(policy, env={}))
    counters.down = True
    with caplog.at_level("WARNING", "router"):
        balancer.loads(balancer.pools["pooled"], "usage")
        copy.loads(copy.pools["pooled"], "usage")
    assert len([r for r in caplog.records if r.name == "router"]) == 1


def test_every_deployment_cooling_down_after_429s_answers_429_with_the_soonest_retry_after(
    fake: FakeProviders,
) -> None:
    from router import RateLimitCooldownError

    for name in ("d1", "d2"):
        fake.script(ModelScript(name, faults=(status(429, retry_after=120),), repeat_faults=True))
    policy = pool_policy(fake, [{"name": "d1"}, {"name": "d2"}])
    with client_for(policy) as client:
        with pytest.raises(openai.RateLimitError):  # the providers' own 429, after both were tried
            client.chat.completions.create(model="pooled", messages=QUESTION)
        sent = len(fake.requests)
        with pytest.raises(RateLimitCooldownError) as caught:
            client.chat.completions.create(model="pooled", messages=QUESTION)
    assert len(fake.requests) == sent == 2  # nothing more was sent: both deployments are held back
    assert caught.value.retry_after_s == pytest.approx(120.0)
    assert set(caught.value.cooling) == {"pooled/d1", "pooled/d2"}


class _HeldCounters:
    """SQLite rate counters whose claims wait until the test lets them go: a claim in progress."""

    def __init__(self, path: str) -> None:
        from router.ledger._rates import SqliteRates

        self._rates = SqliteRates(path)
        self.errors = self._rates.errors
        self.entered = threading.Event()
        self.release = threading.Event()
        self.released_in_time: list[bool] = []

    def claim(self, key: str, **kwargs: Any) -> Any:
        self.entered.set()
        # A safety bound only: on a blocked event loop nothing could set it, and the claim goes on.
        self.released_in_time.append(self.release.wait(timeout=10))
        return self._rates.claim(key, **kwargs)

    def without_waiting(self, call: Any) -> Any:
        # What another process's write lock on the file does to a call that may not wait.
        if not self.release.is_set():
            raise WouldWait
        return self._rates.without_waiting(call)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rates, name)


async def test_the_async_client_serves_other_work_while_a_rate_claim_waits_on_the_counters(
    fake: FakeProviders, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    counters = _HeldCounters(str(tmp_path / "ledger.db.rates"))
    monkeypatch.setattr("router.ledger._rates.open_rates", lambda url: counters)
    policy = pool_policy(fake, [{"name": "d1", "rpm": 5}, {"name": "d2", "rpm": 5}])
    ticks = 0

    async def other_work() -> None:
        nonlocal ticks
        while not counters.entered.is_set():  # the request's claim has not begun yet
            await asyncio.sleep(0)
        for _ in range(10):  # the loop turns while the claim waits on its worker thread
            ticks += 1
            await asyncio.sleep(0)
        counters.release.set()

    async with AsyncOpenAI(policy=policy) as client:
        answer, _ = await asyncio.gather(
            client.chat.completions.create(model="auto", messages=QUESTION), other_work()
        )
        deployment = answer.routing.attempts[0].deployment
        assert len(counters.claims(f"pooled/{deployment}")) == 1  # the claim was made, once
    assert ticks == 10 and counters.released_in_time == [True]
    assert answer.routing.model == "pooled" and deployment in ("d1", "d2")


async def test_the_async_client_claims_on_its_loop_when_no_other_process_holds_the_counters(
    fake: FakeProviders, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hop to a thread and back cost more than the claim: 2.6 ms of CPU a request at 64 in flight
    # against 1.3 ms inline. Nothing here may go to a thread.
    async def no_thread(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a rate counter call went to a thread with the file free")

    monkeypatch.setattr("router._client.asyncio.to_thread", no_thread)
    policy = pool_policy(
        fake, [{"name": "d1", "rpm": 5}, {"name": "d2", "rpm": 5}], ledger=f"sqlite:///{tmp_path}/l.db"
    )
    async with AsyncOpenAI(policy=policy) as client:
        answers = [await client.chat.completions.create(model="auto", messages=QUESTION) for _ in range(3)]
    from router.ledger._rates import SqliteRates

    rates = SqliteRates(tmp_path / "l.db.rates")
    try:
        used = rates.usage(["pooled/d1", "pooled/d2"], time.time())
    finally:
        rates.close()
    tokens = sum(a.usage.total_tokens for a in answers if a.usage is not None)
    assert sum(n for n, _ in used.values()) == 3 and sum(t for _, t in used.values()) == tokens  # settled


async def test_a_claim_that_meets_another_processes_lock_waits_on_a_thread_not_on_the_loop(
    fake: FakeProviders, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from router.ledger._rates import SqliteRates

    claims: list[tuple[bool, bool]] = []  # (on the event loop's thread, with the connection that waits)
    real_claim = SqliteRates.claim

    def claim(self: SqliteRates, key: str, **kwargs: Any) -> Any:
        claims.append((threading.current_thread() is threading.main_thread(), self._db is self._waiting))
        return real_claim(self, key, **kwargs)

    monkeypatch.setattr(SqliteRates, "claim", claim)
    policy = pool_policy(
        fake,
        [{"name": "d1", "rpm": 5}, {"name": "d2", "rpm": 5}],
        ledger=f"sqlite:///{tmp_path}/l.db",
    )
    ticks = 0

    async def other_work() -> None:
        nonlocal ticks
        for _ in range(50):  # the loop turns while the claim waits for the lock on its thread
            ticks += 1
            await asyncio.sleep(0.005)
        other.execute("COMMIT")

    # (a busy timeout as a safety bound: the thread waits for the lock however slow the loop)
    async with AsyncOpenAI(policy=policy, ledger=f"sqlite:///{tmp_path}/l.db?busy_timeout_s=60") as client:
        other = sqlite3.connect(tmp_path / "l.db.rates", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's write transaction, held
        try:
            answer, _ = await asyncio.gather(
                client.chat.completions.create(model="auto", messages=QUESTION), other_work()
            )
        finally:
            other.close()
    assert ticks == 50 and answer.routing.model == "pooled"
    assert claims == [(True, False), (False, True)]  # tried on the loop without waiting, then waited
    rates = SqliteRates(tmp_path / "l.db.rates")
    try:  # claimed once the lock was let go, not served unchecked after a busy timeout on the loop
        assert (
            rates.usage([f"pooled/{answer.routing.deployment}"], time.time())[
                f"pooled/{answer.routing.deployment}"
            ][0]
            == 1
        )
    finally:
        rates.close()


class _HeldSettles(_HeldCounters):
    """SQLite counters whose settle (the tokens really used, after the call) waits for the test."""

    def claim(self, key: str, **kwargs: Any) -> Any:
        return self._rates.claim(key, **kwargs)

    def without_waiting(self, call: Any) -> Any:
        if self.entered.is_set() or not self._claimed:  # the claim goes through; the settle meets the lock
            self._claimed = True
            return self._rates.without_waiting(call)
        raise WouldWait

    _claimed = False

    def settle(self, key: str, entry: str, tokens: int) -> None:
        self.entered.set()
        self.released_in_time.append(self.release.wait(timeout=10))
        self._rates.settle(key, entry, tokens)


async def test_the_async_client_settles_a_claim_off_its_event_loop_after_the_call(
    fake: FakeProviders, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    counters = _HeldSettles(str(tmp_path / "ledger.db.rates"))
    monkeypatch.setattr("router.ledger._rates.open_rates", lambda url: counters)
    policy = pool_policy(fake, [{"name": "d1", "rpm": 5}, {"name": "d2", "rpm": 5}])
    ticks = 0

    async def other_work() -> None:
        nonlocal ticks
        while not counters.entered.is_set():  # the answer is in; its settle has not begun yet
            await asyncio.sleep(0)
        for _ in range(10):  # the loop turns while the settle waits on its worker thread
            ticks += 1
            await asyncio.sleep(0)
        counters.release.set()

    async with AsyncOpenAI(policy=policy) as client:
        answer, _ = await asyncio.gather(
            client.chat.completions.create(model="auto", messages=QUESTION), other_work()
        )
        key = f"pooled/{answer.routing.deployment}"
        usage = answer.usage
        assert usage is not None
        used = counters.usage([key], time.time())
    assert ticks == 10 and counters.released_in_time == [True]
    # The claim now counts the tokens really used, not its estimate.
    assert used == {key: (1, usage.prompt_tokens + usage.completion_tokens)}
