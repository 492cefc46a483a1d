"""Providers' x-ratelimit-* headers on successful answers, folded into the deployments' rate counters.

The fake provider (router_fakes, OpenAI and Azure shapes) counts its own quota (a script's rpm/tpm) and
reports what is left on every answer, as OpenAI and Azure do. A deployment whose provider says
"0 requests left" on a success is skipped by the next request until the provider's reset, although
the router's own count (1 of 100 rpm) would still allow it: another client of the same key used the
rest. In-process counters, SQLite, and a real Redis; plain, streamed and async.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from router_fakes import FakeProviders, ModelScript

from policies.schema import Policy
from providers.base import RATE_LIMITS
from router import AsyncOpenAI, OpenAI

from .fault_helpers import FakeClock

KEY_ENV = "ROUTER_DEPLOY_HEADERS_KEY"
AZURE_KEY_ENV = "ROUTER_DEPLOY_HEADERS_AZURE_KEY"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "openai-key")
    monkeypatch.setenv(AZURE_KEY_ENV, "azure-key")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeProviders]:
    """Fake providers whose quotas run on the clients' clock: a reset is the same on both sides."""
    with FakeProviders(api_keys={"azure": "azure-key"}, clock=clock) as server:
        yield server


@pytest.fixture(params=["memory", "sqlite", "redis"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """Where the rate counters live: this process, a SQLite file, a real Redis."""
    if request.param == "memory":
        return None
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    url: str = request.getfixturevalue("redis_url")
    return url


def policy(fake: FakeProviders, *, shape: str = "openai") -> Policy:
    """``pooled`` on two deployments with 100 rpm each (the router's view); ``busy`` drawn first."""

    def deployment(name: str, weight: float) -> dict[str, Any]:
        if shape == "azure":
            return {
                "name": name,
                "provider": "azure",
                "model": name,
                "api_base": fake.azure_base("res"),
                "api_key_env": AZURE_KEY_ENV,
                "api_version": "2024-10-21",
                "weight": weight,
                "rpm": 100,
            }
        return {"name": name, "model": name, "weight": weight, "rpm": 100}

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
                    "deployments": [deployment("busy", 10**6), deployment("idle", 1)],
                }
            },
            "routes": {"auto": {"candidates": ["pooled"]}},
        }
    )


def _client(policy: Policy, clock: FakeClock, ledger: str | None) -> OpenAI:
    client = OpenAI(policy=policy, clock=clock, wall_clock=clock, sleep=clock.sleep, ledger=ledger)
    client._router._balancer._rng = random.Random(3)
    return client


def _deployment(client: OpenAI, stream: bool) -> tuple[str | None, dict[str, str]]:
    if stream:
        chunks = client.chat.completions.create(model="auto", messages=QUESTION, stream=True)
        for _ in chunks:
            pass
        record = chunks.routing
    else:
        record = client.chat.completions.create(model="auto", messages=QUESTION).routing
    return record.deployment, dict(record.rejected)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_deployment_its_provider_reports_out_of_requests_on_a_success_is_skipped_until_the_reset(
    fake: FakeProviders, clock: FakeClock, ledger: str | None, stream: bool
) -> None:
    fake.script(ModelScript("busy", rpm=1))  # the provider's quota: one request a minute on this key
    with _client(policy(fake), clock, ledger) as client:
        first, _ = _deployment(client, stream)
        clock.advance(1.0)
        second, rejected = _deployment(client, stream)
        clock.advance(60.0)  # past the provider's reset (59 s after the second request)
        third, _ = _deployment(client, stream)
    assert first == "busy"
    # The router had counted 1 of its 100 rpm: only the provider's "0 left" made it skip busy.
    assert second == "idle"
    assert rejected["pooled/busy"].startswith("at its limit (100 rpm)")
    assert third == "busy"
    assert fake.rate_limited == []  # never sent where the provider would have refused


def test_azure_deployments_report_their_quota_on_success_and_are_skipped_when_spent(
    fake: FakeProviders, clock: FakeClock
) -> None:
    fake.script(ModelScript("busy", rpm=1, tpm=10_000))
    with _client(policy(fake, shape="azure"), clock, None) as client:
        answer = client.chat.completions.with_raw_response.create(model="auto", messages=QUESTION)
        first = answer.parse().routing.deployment
        second, rejected = _deployment(client, False)
    assert first == "busy" and second == "idle"
    assert rejected["pooled/busy"].startswith("at its limit (100 rpm)")
    sent = fake.requests[0]
    assert sent.path.startswith("/azure/res/openai/deployments/busy/chat/completions?api-version=")
    assert fake.rate_limited == []


def test_the_async_client_folds_the_headers_of_a_success_too(fake: FakeProviders, clock: FakeClock) -> None:
    fake.script(ModelScript("busy", rpm=1))

    async def run() -> list[str | None]:
        client = AsyncOpenAI(policy=policy(fake), clock=clock, wall_clock=clock, sleep=clock.async_sleep)
        client._router._balancer._rng = random.Random(3)
        async with client:
            served = []
            for stream in (False, True, False):
                if stream:
                    chunks = await client.chat.completions.create(
                        model="auto", messages=QUESTION, stream=True
                    )
                    async for _ in chunks:
                        pass
                    served.append(chunks.routing.deployment)
                else:
                    answer = await client.chat.completions.create(model="auto", messages=QUESTION)
                    served.append(answer.routing.deployment)
                clock.advance(1.0)
            return served

    assert asyncio.run(run()) == ["busy", "idle", "idle"]
    assert fake.rate_limited == []


def test_answers_carry_no_rate_headers_where_no_deployment_has_limits(fake: FakeProviders) -> None:
    fake.script(ModelScript("plain-model", rpm=10))  # the provider sends them; nobody asks
    with OpenAI(
        policy={
            "models": {
                "plain": {
                    "provider": "openai_compatible",
                    "model": "plain-model",
                    "api_base": fake.openai_base,
                    "api_key_env": KEY_ENV,
                }
            }
        }
    ) as client:
        answer = client.chat.completions.create(model="plain", messages=QUESTION)
    assert RATE_LIMITS not in (answer.model_extra or {})
    assert answer.choices[0].message.content


def test_the_litellm_path_folds_anthropics_rate_headers_of_a_success(
    fake: FakeProviders, clock: FakeClock
) -> None:
    """litellm keeps a provider's headers in ``_hidden_params`` (Anthropic's mapped to x-ratelimit-*)."""
    fake.script(ModelScript("claude-busy", rpm=1))
    deployments = [
        {"name": "busy", "model": "claude-busy", "weight": 10**6, "rpm": 100},
        {"name": "idle", "model": "claude-idle", "weight": 1, "rpm": 100},
    ]
    anthropic = {
        "models": {
            "claude": {
                "provider": "anthropic",
                "api_base": fake.anthropic_base,
                "api_key_env": KEY_ENV,
                "input_cost_per_mtok": 1,
                "output_cost_per_mtok": 5,
                "deployments": deployments,
            }
        },
        "retry": {"attempts": 1},
    }
    with _client(Policy.model_validate(anthropic), clock, None) as client:
        served = []
        for _ in range(2):
            answer = client.chat.completions.create(model="claude", messages=QUESTION)
            served.append(answer.routing.deployment)
            clock.advance(1.0)
    assert served == ["busy", "idle"]
    assert fake.rate_limited == []
