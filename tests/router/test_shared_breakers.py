"""Breakers shared through Redis: when one instance opens a model's breaker, the fleet skips it."""

from __future__ import annotations

import asyncio

import pytest
from router_fakes import FakeProviders, ModelScript, status

import router
from policies.schema import CooldownSpec
from router._health import Cooldown, RedisBreakerStore, SharedBreakers

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


class Instance:
    """One process's breakers with its Redis I/O performed as the sync driver performs it: writes
    published after each change (``Publish``), a read before each planning (``Fetch``)."""

    def __init__(self, url: str, clocks: Clocks, models: tuple[str, ...] = ("a", "b")) -> None:
        # refresh_s=0: read Redis on every snapshot, so the test sees other instances at once.
        self.breakers = SharedBreakers(clocks.mono, models, wall_clock=clocks.wall, refresh_s=0)
        self.store = RedisBreakerStore(url)

    def _publish(self) -> None:
        self.store.write(self.breakers.drain())

    def failed(self, model: str, kind: str, cooldown: CooldownSpec) -> None:
        self.breakers.failed(model, kind, cooldown)
        self._publish()

    def succeeded(self, model: str) -> None:
        self.breakers.succeeded(model)
        self._publish()

    def admit(self, model: str) -> str | None:
        return self.breakers.admit(model)

    def snapshot(self) -> dict[str, str]:
        if self.breakers.fetch_due():
            self.breakers.fetched(self.store.fetch(self.breakers.keys))
        return dict(self.breakers.snapshot())

    def close(self) -> None:
        self.store.close()


def _instance(url: str, clocks: Clocks) -> Instance:
    return Instance(url, clocks)


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
    breakers = Instance("redis://127.0.0.1:1/0", clocks, ("a",))
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


def _closing_policy(redis_url: str, fake: FakeProviders) -> dict[str, object]:
    model = {"provider": "openai", "api_base": fake.openai_base, "api_key_env": "ROUTER_SHARED_KEY"}
    return {
        "ledger": redis_url,
        "retry": {"attempts": 1},
        "cooldown": {"failures": 2, "window_s": 60, "cooldown_s": 30},
        "models": {"gpt-4o-mini": model, "gpt-4o": model},
        "routes": {"auto": {"candidates": ["gpt-4o-mini"], "fallbacks": ["gpt-4o"]}},
    }


def _shared_key(redis_url: str) -> bool:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return bool(client.exists("router:breaker:gpt-4o-mini"))
    finally:
        client.close()


def test_a_streamed_trial_that_succeeds_closes_the_shared_breaker(
    redis_url: str, fake: FakeProviders, clocks: Clocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER_SHARED_KEY", "fake-key")
    fake.script(ModelScript("gpt-4o-mini", faults=(status(503), status(503))))
    client = router.OpenAI(policy=_closing_policy(redis_url, fake), clock=clocks.mono, wall_clock=clocks.wall)
    messages = [{"role": "user", "content": "hi"}]
    for _ in range(2):
        assert client.chat.completions.create(model="auto", messages=messages).routing.model == "gpt-4o"
    assert _shared_key(redis_url)  # published when the breaker opened
    clocks.now += 31  # cooldown over: the next request is the half-open trial
    stream = client.chat.completions.create(model="auto", messages=messages, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert stream.routing.model == "gpt-4o-mini"
    assert not _shared_key(redis_url)  # the stream's success was published when it ended
    client.close()


async def test_the_async_client_publishes_and_closes_shared_breakers_off_its_loop(
    redis_url: str, fake: FakeProviders, clocks: Clocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER_SHARED_KEY", "fake-key")
    fake.script(ModelScript("gpt-4o-mini", faults=(status(503), status(503))))
    policy = _closing_policy(redis_url, fake)
    messages = [{"role": "user", "content": "hi"}]
    opener = router.AsyncOpenAI(policy=policy, clock=clocks.mono, wall_clock=clocks.wall)
    for _ in range(2):
        answer = await opener.chat.completions.create(model="auto", messages=messages)
        assert answer.routing.model == "gpt-4o"
    await opener.close()  # lets the writes on the worker thread land
    assert _shared_key(redis_url)

    prober = router.AsyncOpenAI(policy=policy, clock=clocks.mono, wall_clock=clocks.wall)
    # A request that cannot touch gpt-4o-mini asks for the fleet's state (read on a worker thread).
    await prober.chat.completions.create(model="gpt-4o", messages=messages)
    await asyncio.gather(*prober._router._background)  # the read has landed
    skipped = await prober.chat.completions.create(model="auto", messages=messages)
    assert "another instance" in skipped.routing.rejected["gpt-4o-mini"]
    clocks.now += 31
    stream = await prober.chat.completions.create(model="auto", messages=messages, stream=True)
    assert [chunk async for chunk in stream]
    assert stream.routing.model == "gpt-4o-mini"
    await prober.close()
    assert not _shared_key(redis_url)
