"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from router_fakes import FakeProviders

from providers.litellm_adapter import import_litellm

# Processes the tests start (python -c ..., python -m router_fakes) find the fake providers in the
# checkout's fakes/ as pytest does (pythonpath in pyproject.toml), installed or not.
_FAKES = str(Path(__file__).resolve().parents[1] / "fakes")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_FAKES, os.environ.get("PYTHONPATH")) if p)

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


@pytest.fixture(scope="session", autouse=True)
def litellm_imported() -> None:
    """litellm imported before any test: a client counts its first import against the request's
    deadline (tests/router/test_conduct.py tests that, in fresh interpreters), which is not what
    the other tests are about, whichever of them happens to run first."""
    import_litellm()
