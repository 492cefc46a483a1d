"""The libraries applications hand router's clients to, driven against the fake providers.

One policy serves every library: a route answered by Gemini, one by Anthropic, one whose OpenAI
candidate fails with a 500 so that another OpenAI model answers, and a single-model route for the
errors (a 429 and a 400) each library must surface the way it documents.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from router_fakes import FakeProviders, ModelScript, status

from policies.schema import Policy
from router import AsyncOpenAI, OpenAI

# Before litellm is first imported (Gemini and Anthropic go through it): no network here.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")

KEY_ENV = "ROUTER_ECOSYSTEM_FAKE_KEY"
PROVIDERS = {
    "gemini-2.5-flash-lite": "gemini",
    "claude-haiku-4-5": "anthropic",
    "gpt-4o-mini": "openai",
    "gpt-4o": "openai",
}


@dataclass(frozen=True, slots=True)
class Route:
    """A route of the test policy and the provider-side model that must answer it."""

    name: str
    answered_by: str
    failing: str | None = None
    """A model scripted to answer 500 before the route falls back to ``answered_by``."""


ROUTES = (
    Route("via-gemini", "gemini-2.5-flash-lite"),
    Route("via-anthropic", "claude-haiku-4-5"),
    Route("via-fallback", "gpt-4o", failing="gpt-4o-mini"),
)
SOLO = "solo"
"""A route with one OpenAI model (gpt-4o-mini) and no fallback: its errors reach the library."""


def policy(fake: FakeProviders) -> Policy:
    bases = {"openai": fake.openai_base, "gemini": fake.gemini_base, "anthropic": fake.anthropic_base}
    return Policy.model_validate(
        {
            "retry": {"attempts": 1},  # fallbacks, not same-model retries, are under test here
            "models": {
                name: {"provider": provider, "api_base": bases[provider], "api_key_env": KEY_ENV}
                for name, provider in PROVIDERS.items()
            },
            "routes": {
                "via-gemini": {"candidates": ["gemini-2.5-flash-lite"]},
                "via-anthropic": {"candidates": ["claude-haiku-4-5"]},
                "via-fallback": {"candidates": ["gpt-4o-mini"], "fallbacks": ["gpt-4o"]},
                SOLO: {"candidates": ["gpt-4o-mini"]},
            },
        }
    )


@pytest.fixture(params=ROUTES, ids=lambda route: route.name)
def route(request: pytest.FixtureRequest, fake: FakeProviders) -> Route:
    """Each route in turn; the fallback route's first candidate answers 500 to every request."""
    chosen: Route = request.param
    if chosen.failing is not None:
        fake.script(ModelScript(chosen.failing, faults=(status(500),), repeat_faults=True))
    return chosen


def answered(fake: FakeProviders, route: Route) -> None:
    """The route's model answered, and the fallback route really went through its failing model."""
    assert fake.requests_for(route.answered_by), f"{route.answered_by} was never asked"
    if route.failing is not None:
        assert fake.requests_for(route.failing), f"{route.failing} was never tried"


def rate_limited(fake: FakeProviders) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(429, retry_after=7),), repeat_faults=True))


def bad_request(fake: FakeProviders) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(400, message="Invalid 'messages'."),)))


@pytest.fixture
def client(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAI]:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    with OpenAI(policy=policy(fake), api_key="sk-unused") as made:
        yield made


@pytest.fixture
async def aclient(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AsyncOpenAI]:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    made = AsyncOpenAI(policy=policy(fake), api_key="sk-unused")
    try:
        yield made
    finally:
        await made.close()
