"""Chaos: 200 concurrent requests through one ``router.AsyncOpenAI`` while providers misbehave.

One model fails half its calls at random (OpenAI wire, through our fast path), one never answers
(Gemini, through litellm), one is healthy (Anthropic, through litellm); a quarter of the requests
stream. Real clock, short per-call timeouts, a deadline of a few seconds. Every request must end
within its deadline, either answered or with a documented error; none may be lost, and none
answered twice.

The time limits are calibrated on this run: the same burst against healthy models first measures
how long this machine, now, takes to serve it (``calm``), and the chaos burst gets its per-call
timeout and deadline on top of that. A busy machine gets longer limits instead of a failed test.

"Within its deadline" is judged against this run's own event loop, not a fixed allowance: a probe
task measures how late the loop wakes its tasks, and a request may overrun its deadline by no more
than a few of those delays (the time to be woken at the deadline and to close the call). On a busy
machine the loop is slow for everyone, the requests and the probe alike, so the bound grows with it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from router_fakes import FakeProviders, ModelScript, hang

from policies.schema import Policy
from router import AsyncOpenAI, DeadlineExceededError, RoutedChatCompletion, RoutingRecord

KEY_ENV = "ROUTER_CHAOS_FAKE_KEY"
REQUESTS = 200
# On top of the calm burst's slowest request (see the module docstring).
DEADLINE_S = 3.0
CALL_TIMEOUT_S = 0.5
IDLE_S = 1.0
PROBE_S = 0.01
FLAKY, HANGING, HEALTHY = "gpt-4o-mini", "gemini-2.5-flash-lite", "claude-haiku-4-5"


def _policy(fake: FakeProviders, deadline_s: float, idle_s: float) -> Policy:
    return Policy.model_validate(
        {
            "timeout_s": deadline_s,
            "stream_idle_timeout_s": idle_s,
            "retry": {"attempts": 2, "backoff_initial_s": 0.1, "backoff_max_s": 0.4},
            "models": {
                FLAKY: {"provider": "openai", "api_base": fake.openai_base, "api_key_env": KEY_ENV},
                HANGING: {"provider": "gemini", "api_base": fake.gemini_base, "api_key_env": KEY_ENV},
                HEALTHY: {"provider": "anthropic", "api_base": fake.anthropic_base, "api_key_env": KEY_ENV},
            },
            "routes": {"chaos": {"candidates": [FLAKY, HANGING, HEALTHY]}, "calm": {"candidates": [HEALTHY]}},
        }
    )


def _messages(index: int) -> list[ChatCompletionMessageParam]:
    # The index rides in the prompt, so the fake's request log can be tied to each request.
    return [{"role": "user", "content": f"chaos request {index}: what is the capital of France?"}]


async def _one(client: AsyncOpenAI, index: int, route: str = "chaos") -> tuple[int, float, Any]:
    """One request to its end (a stream read to its last chunk); its outcome and how long it took."""
    started = time.monotonic()
    outcome: Any
    try:
        if index % 4 == 0:
            stream = await client.chat.completions.create(model=route, messages=_messages(index), stream=True)
            async with stream:
                chunks = [chunk async for chunk in stream]
            assert [
                c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
            ] == ["stop"]
            outcome = stream.routing
        else:
            outcome = await client.chat.completions.create(model=route, messages=_messages(index))
    except Exception as exc:  # every outcome is checked below; nothing may escape unseen
        outcome = exc
    return index, time.monotonic() - started, outcome


async def _warm_up(client: AsyncOpenAI) -> None:
    """One answer from each model, streamed and not: litellm imports a provider's modules on its
    first call, on the event loop, which on a busy machine blocks the loop for seconds. A cold
    start is not what this test is about (tests/router/test_conduct.py covers the import)."""
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": "warm up"}]
    for model in (FLAKY, HANGING, HEALTHY):
        await client.chat.completions.create(model=model, messages=question)
        stream = await client.chat.completions.create(model=model, messages=question, stream=True)
        async with stream:
            async for _ in stream:
                pass


def _record(outcome: Any) -> RoutingRecord:
    if isinstance(outcome, RoutedChatCompletion):
        return outcome.routing
    if isinstance(outcome, RoutingRecord):
        return outcome
    record = getattr(outcome, "routing", None)
    assert isinstance(record, RoutingRecord), f"{type(outcome).__name__} without a routing record: {outcome}"
    return record


class LoopLag:
    """How late the event loop wakes a task that asked to sleep ``PROBE_S``: the worst seen."""

    def __init__(self) -> None:
        self.worst = 0.0

    async def watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(PROBE_S)
            self.worst = max(self.worst, loop.time() - asked - PROBE_S)


@pytest.mark.slow
@pytest.mark.usefixtures("litellm_imported")
async def test_200_concurrent_requests_under_chaos_each_end_in_time_answered_once_or_with_a_documented_error(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    async with AsyncOpenAI(policy=_policy(fake, deadline_s=600, idle_s=600)) as client:
        await _warm_up(client)
        calm_results = await asyncio.gather(*(_one(client, i, "calm") for i in range(REQUESTS)))
    assert all(isinstance(o, RoutedChatCompletion | RoutingRecord) for _, _, o in calm_results), calm_results
    calm = max(elapsed for _, elapsed, _ in calm_results)
    deadline_s, call_timeout_s, idle_s = DEADLINE_S + 2 * calm, CALL_TIMEOUT_S + calm, IDLE_S + calm
    fake.reset()
    fake.script(
        ModelScript(FLAKY, fail_rate=0.5, fail_status=503, seed=7),
        ModelScript(HANGING, faults=(hang(60),), repeat_faults=True),
        ModelScript(HEALTHY, latency_s=0.01),
    )
    lag = LoopLag()
    probe = asyncio.create_task(lag.watch())
    async with AsyncOpenAI(policy=_policy(fake, deadline_s, idle_s), timeout=call_timeout_s) as client:
        results = await asyncio.gather(*(_one(client, i) for i in range(REQUESTS)))
    probe.cancel()

    # None lost: one outcome per request, each either an answer or a documented error.
    assert sorted(index for index, _, _ in results) == list(range(REQUESTS))
    answered = {i: o for i, _, o in results if isinstance(o, RoutedChatCompletion | RoutingRecord)}
    failed = {i: o for i, _, o in results if i not in answered}
    assert len(answered) + len(failed) == REQUESTS
    for error in failed.values():
        assert isinstance(error, DeadlineExceededError | openai.APIError), repr(error)
    assert answered  # the burst is not all-or-nothing: the flaky model's successes get through

    # Every request ended within its deadline: any overrun is the loop's own lateness (woken late at
    # the deadline, then closing the call), measured in this run, never a call left running past it.
    slowest = max(elapsed for _, elapsed, _ in results)
    allowance = 4 * lag.worst + 0.25
    print(f"chaos: calm burst {calm:.2f}s, slowest {slowest:.2f}s, loop lag up to {lag.worst:.2f}s")
    assert slowest <= deadline_s + allowance, f"slowest {slowest:.2f}s; loop lag up to {lag.worst:.2f}s"

    # None answered twice: distinct requests and responses, one successful attempt per answer.
    records = {i: _record(o) for i, _, o in results}
    assert len({r.request_id for r in records.values()}) == REQUESTS
    ids = [o.id for o in answered.values() if isinstance(o, RoutedChatCompletion)]
    assert len(ids) == len(set(ids))
    for index, record in records.items():
        successes = [a for a in record.attempts if a.error is None]
        assert len(successes) == (1 if index in answered else 0)
        if successes:
            assert record.attempts[-1] is successes[0] and record.model == successes[0].model

    # The providers saw no call the router did not record: no hidden retries, no duplicate answers.
    seen: Counter[tuple[int, str]] = Counter()
    for logged in fake.requests:
        text = str(logged.body)
        index = int(text.split("chaos request ", 1)[1].split(":", 1)[0])
        seen[(index, logged.model)] += 1
    for index, record in records.items():
        tried = Counter(a.model for a in record.attempts)
        for model in (FLAKY, HANGING, HEALTHY):
            assert seen[(index, model)] <= tried[model], (index, model, record.attempts)
        if index in answered:
            assert seen[(index, record.model or "")] >= 1

    # The chaos really happened: all three behaviours were met.
    outcomes = Counter(a.error for r in records.values() for a in r.attempts)
    assert outcomes["server"] > 0 and outcomes["timeout"] > 0 and outcomes[None] == len(answered)
