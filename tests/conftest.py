"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.fake import FakeProviders

# redis_server / redis_url: a real redis-server started for the session (tests/redis_server.py).
pytest_plugins = ["tests.redis_server"]


@pytest.fixture(scope="session")
def fake_providers() -> Iterator[FakeProviders]:
    """The fake OpenAI/Gemini/Anthropic server, started once per test session."""
    with FakeProviders() as server:
        yield server


@pytest.fixture
def fake(fake_providers: FakeProviders) -> FakeProviders:
    """The session's fake providers with no scripts and an empty request log."""
    fake_providers.reset()
    return fake_providers
