"""Breakers shared through Redis: when one instance opens a model's breaker, the fleet skips it."""

from __future__ import annotations

import pytest
from router_fakes import FakeProviders, ModelScript, status

import router
from policies.schema import CooldownSpec
from router._health import Cooldown, SharedBreakers

COOLDOWN = CooldownSpec(failures=2, window_s=60, cooldown_s=30)


class Clocks:
    """A monotonic and a wall clock that move together, as on one machine."""

    def __init__(self) -> None:
        self.now = 1000.0

    def mono(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def _instance(url: str, clocks: Clocks) -> SharedBreakers:
    # refresh_s=0: read Redis on every snapshot, so the test sees other instances at once.
    return SharedBreakers(clocks.mono, url, ("a", "b"), wall_clock=clocks.wall, refresh_s=0)


def test_a_breaker_opened_by_one_instance_is_skipped_by_another(redis_url: str, clocks: Clocks) -> None:
    first, second = _instance(redis_url, clocks), _instance(redis_url, clocks)
    first.failed("a", "server", COOLDOWN)
    first.failed("a", "server", COOLDOWN)
    reason = second.snapshot().get("a")
    assert reason is not None and "2 failures in 60s" in reason and "another instance" in reason
    assert second.admit("a") is not None
    assert "b" not in second.snapshot() and second.admit("b") is None
    first.close()
    second.close()


def test_the_shared_breaker_expires_with_the_cooldown(redis_url: str, clocks: Clocks) -> None:
    first, second = _instance(redis_url, clocks), _instance(redis_url, clocks)
    first.failed("a", "auth", COOLDOWN)
    assert "a" in second.snapshot()
    clocks.now += 31
    assert "a" not in second.snapshot()
    assert second.admit("a") is None
    first.close()
    second.close()


def test_a_successful_trial_closes_the_breaker_for_every_instance(redis_url: str, clocks: Clocks) -> None:
    first, second = _instance(redis_url, clocks), _instance(redis_url, clocks)
    first.failed("a", "not_found", COOLDOWN)
    assert "a" in second.snapshot()
    clocks.now += 31  # the local cooldown is over: first may try again (half-open)
    assert first.admit("a") is None
    first.succeeded("a")
    assert "a" not in second.snapshot()
    first.close()
    second.close()


def test_without_redis_the_local_state_still_decides(clocks: Clocks) -> None:
    breakers = SharedBreakers(
        clocks.mono, "redis://127.0.0.1:1/0", ("a",), wall_clock=clocks.wall, refresh_s=0
    )
    breakers.failed("a", "auth", COOLDOWN)
    assert "a" in breakers.snapshot()
    breakers.close()


def test_two_clients_on_one_redis_ledger_share_what_they_learn(
    redis_url: str, fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER_SHARED_KEY", "fake-key")
    model = {"provider": "openai", "api_base": fake.openai_base, "api_key_env": "ROUTER_SHARED_KEY"}
    policy = {
        "ledger": redis_url,
        "retry": {"attempts": 1},
        "cooldown": {"failures": 2, "window_s": 60, "cooldown_s": 30},
        "models": {"gpt-4o-mini": model, "gpt-4o": model},
        "routes": {"auto": {"candidates": ["gpt-4o-mini"], "fallbacks": ["gpt-4o"]}},
    }
    fake.script(ModelScript("gpt-4o-mini", faults=(status(503), status(503))))
    first, second = router.OpenAI(policy=policy), router.OpenAI(policy=policy)
    messages = [{"role": "user", "content": "hi"}]
    for _ in range(2):
        assert first.chat.completions.create(model="auto", messages=messages).routing.model == "gpt-4o"
    answered = second.chat.completions.create(model="auto", messages=messages)
    assert answered.routing.model == "gpt-4o"
    assert "another instance" in answered.routing.rejected["gpt-4o-mini"]
    assert len(fake.requests_for("gpt-4o-mini")) == 2  # the second client never called it
    first.close()
    second.close()


def test_another_instance_learns_which_kind_of_failure_opened_the_breaker(
    redis_url: str, clocks: Clocks
) -> None:
    first, second = _instance(redis_url, clocks), _instance(redis_url, clocks)
    first.failed("a", "rate_limited", COOLDOWN)
    first.failed("a", "rate_limited", COOLDOWN)
    clocks.now += 10
    reason = second.snapshot()["a"]
    assert isinstance(reason, Cooldown) and "another instance" in reason
    assert reason.kind == "rate_limited" and reason.until == pytest.approx(clocks.now + 20)
    first.close()
    second.close()
