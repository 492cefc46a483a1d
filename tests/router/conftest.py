"""Fixtures for the router tests: ``make_caller`` builds sync and async clients over the fake providers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from router_fakes import FakeProviders

from policies.schema import Policy

from .fault_helpers import KEY_ENV, AsyncCaller, Caller, FakeClock, MakeCaller, SyncCaller


@pytest.fixture(params=["sync", "async"])
def make_caller(
    request: pytest.FixtureRequest,
    fake: FakeProviders,
    monkeypatch: pytest.MonkeyPatch,
    litellm_imported: None,
) -> Iterator[MakeCaller]:
    """Build a router client over ``policy`` with a FakeClock (``real_clock=True``: the real one).

    Parametrized: every test that uses it runs once through ``router.OpenAI`` and once through
    ``router.AsyncOpenAI``.
    """
    monkeypatch.setenv(KEY_ENV, "fake-key")
    made: list[Caller] = []
    runner = asyncio.Runner() if request.param == "async" else None

    def make(
        policy: Policy, *, clock: FakeClock | None = None, real_clock: bool = False, **client: Any
    ) -> Caller:
        chosen = None if real_clock else (clock or FakeClock())
        caller: Caller = (
            SyncCaller(policy, chosen, **client)
            if runner is None
            else AsyncCaller(runner, policy, chosen, **client)
        )
        made.append(caller)
        return caller

    try:
        yield make
    finally:
        for caller in made:
            caller.close()
        if runner is not None:
            runner.close()
