"""litellm set up for offline use, and a helper to call it against the fake providers."""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from router_fakes import FakeProviders

# Before litellm is first imported: no price-map or beta-header downloads (there is no network here).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")

LITELLM_MODELS = {
    "gemini": "gemini/gemini-2.5-flash-lite",
    "anthropic": "anthropic/claude-haiku-4-5",
}
"""The provider-side names are the part after the slash: scripts and the request log use those."""

Complete = Callable[..., Any]


@pytest.fixture(scope="session")
def litellm() -> ModuleType:
    """litellm, imported once and only by the tests that need it (the import costs seconds)."""
    import litellm as module

    return module


@pytest.fixture(params=sorted(LITELLM_MODELS))
def provider(request: pytest.FixtureRequest) -> str:
    """Each protocol litellm reaches through the fake: "anthropic" and "gemini"."""
    return str(request.param)


def model_name(provider: str) -> str:
    return LITELLM_MODELS[provider].split("/", 1)[1]


def api_base(fake: FakeProviders, provider: str) -> str:
    return fake.gemini_base + "/v1beta" if provider == "gemini" else fake.anthropic_base


@pytest.fixture
def complete(litellm: ModuleType, fake: FakeProviders, provider: str) -> Complete:
    """``litellm.completion`` for ``provider`` against the fake, without retries."""

    def call(**kwargs: Any) -> Any:
        kwargs.setdefault("messages", [{"role": "user", "content": "What is the weather in Paris?"}])
        kwargs.setdefault("api_key", "test-key")
        kwargs.setdefault("num_retries", 0)
        return litellm.completion(model=LITELLM_MODELS[provider], api_base=api_base(fake, provider), **kwargs)

    return call
