"""Fault-injection helpers: a fake clock, one policy over the three fake protocols, and callers that
drive ``router.OpenAI`` and ``router.AsyncOpenAI`` through the same test code.

A test asks the ``caller`` fixture for a client; it is parametrized over ``sync`` and ``async``, so
every behaviour is checked through both public clients. The async caller keeps one event loop for
the whole test (an ``asyncio.Runner``), as an application keeps one for its client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from openai.types.chat import ChatCompletionChunk
from router_fakes import FakeProviders

from policies.schema import Policy
from router import AsyncOpenAI, OpenAI, RoutedChatCompletion, RoutingRecord

KEY_ENV = "ROUTER_RESILIENCE_FAKE_KEY"
# One model per wire protocol: OpenAI through our httpx fast path, Gemini and Anthropic through litellm.
MODELS = ("gpt-4o-mini", "gemini-2.5-flash-lite", "claude-haiku-4-5")
PROVIDERS = {"gpt-4o-mini": "openai", "gemini-2.5-flash-lite": "gemini", "claude-haiku-4-5": "anthropic"}
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


class FakeClock:
    """Monotonic seconds that move only when slept on or advanced; every sleep is recorded."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def fallback_of(model: str) -> str:
    """The first fallback of route ``first-<model>``: the next of MODELS in order."""
    return next(m for m in MODELS if m != model)


def build_policy(
    fake: FakeProviders,
    *,
    models: Mapping[str, Mapping[str, Any]] | None = None,
    routes: Mapping[str, Mapping[str, Any]] | None = None,
    **top: Any,
) -> Policy:
    """The three fake models, a route ``first-<model>`` per model (the others as fallbacks, in order),
    no same-model retries unless ``top`` says otherwise; ``models`` adds keys to a model's entry."""
    bases = {"openai": fake.openai_base, "gemini": fake.gemini_base, "anthropic": fake.anthropic_base}
    entries = {
        name: {"provider": provider, "api_base": bases[provider], "api_key_env": KEY_ENV}
        for name, provider in PROVIDERS.items()
    }
    for name, extra in (models or {}).items():
        entries[name] = {**entries[name], **extra}
    all_routes: dict[str, Any] = {
        f"first-{name}": {"candidates": [name], "fallbacks": [m for m in MODELS if m != name]}
        for name in MODELS
    }
    all_routes.update(routes or {})
    return Policy.model_validate({"retry": {"attempts": 1}, **top, "models": entries, "routes": all_routes})


class Caller(Protocol):
    """One router client, sync or async, driven through blocking calls."""

    clock: FakeClock | None

    def create(self, **kwargs: Any) -> RoutedChatCompletion: ...

    def stream(self, into: list[ChatCompletionChunk], **kwargs: Any) -> RoutingRecord:
        """Stream to the end, appending each chunk to ``into`` as it arrives; the final record."""
        ...

    def close(self) -> None: ...


class SyncCaller:
    def __init__(self, policy: Policy, clock: FakeClock | None, **client: Any) -> None:
        self.clock = clock
        if clock is not None:
            client.update(clock=clock, sleep=clock.sleep)
        self.client = OpenAI(policy=policy, **client)

    def create(self, **kwargs: Any) -> RoutedChatCompletion:
        response: RoutedChatCompletion = self.client.chat.completions.create(**kwargs)
        return response

    def stream(self, into: list[ChatCompletionChunk], **kwargs: Any) -> RoutingRecord:
        stream = self.client.chat.completions.create(stream=True, **kwargs)
        with stream:
            for chunk in stream:
                into.append(chunk)
        return stream.routing

    def close(self) -> None:
        self.client.close()


class AsyncCaller:
    def __init__(
        self, runner: asyncio.Runner, policy: Policy, clock: FakeClock | None, **client: Any
    ) -> None:
        self.clock = clock
        self._runner = runner
        if clock is not None:
            client.update(clock=clock, sleep=clock.async_sleep)
        self.client = AsyncOpenAI(policy=policy, **client)

    def create(self, **kwargs: Any) -> RoutedChatCompletion:
        response: RoutedChatCompletion = self._runner.run(self.client.chat.completions.create(**kwargs))
        return response

    def stream(self, into: list[ChatCompletionChunk], **kwargs: Any) -> RoutingRecord:
        async def consume() -> RoutingRecord:
            stream = await self.client.chat.completions.create(stream=True, **kwargs)
            async with stream:
                async for chunk in stream:
                    into.append(chunk)
            return stream.routing

        return self._runner.run(consume())

    def close(self) -> None:
        self._runner.run(self.client.close())


MakeCaller = Callable[..., Caller]


def attempts(record: RoutingRecord | None) -> list[tuple[str, str | None, int | None]]:
    """(model, error class, status) of every attempt, in order."""
    assert record is not None
    return [(a.model, a.error, a.status) for a in record.attempts]


def text_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
