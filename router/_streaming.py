"""Streams of ``ChatCompletionChunk`` that know which model is speaking and what it cost.

Shaped like openai's ``Stream``: iterate it, use it as a context manager, ``close()`` it. Once
it is exhausted, ``.routing`` holds the full record with usage and cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Final

import httpx
import openai
from openai.types.chat import ChatCompletionChunk

from providers.base import JSON, Deployment
from router._exceptions import StreamInterruptedError
from router._pipeline import Session, StreamTracker
from router._response import chunk
from router._routing import RoutingRecord

_ROUTER_URL: Final = "router://chat/completions"


class _StreamBase:
    """What the sync and async streams share: turning provider chunks into the caller's chunks."""

    def __init__(
        self,
        session: Session,
        deployment: Deployment,
        buffered: list[JSON],
        tracker: StreamTracker,
        ttft_ms: float | None = None,
    ) -> None:
        self._session = session
        self._deployment = deployment
        self._buffered = buffered
        self._tracker = tracker
        self._ttft_ms = ttft_ms
        self._routing: RoutingRecord | None = None

    @property
    def routing(self) -> RoutingRecord:
        """The decision record; complete (usage, cost) once the stream is exhausted."""
        return self._routing or self._session.record(self._deployment)

    def _emit(self, data: JSON) -> ChatCompletionChunk | None:
        """The caller's chunk for an already observed provider chunk; None for a usage chunk not asked for."""
        if not data.get("choices") and not self._session.request.caller_wants_usage:
            return None
        return chunk(data, self._deployment.name)

    def _finish(self) -> None:
        """The provider's stream ended: complete only if it said how the answer ended."""
        if not self._tracker.finished:
            # Every OpenAI-shaped stream closes its choice with a finish_reason; without one the
            # answer was cut, however politely the connection closed.
            raise self._interrupted(_cut())
        if self._routing is None:
            self._routing = self._session.succeeded(
                self._deployment, self._tracker.usage, ttft_ms=self._ttft_ms
            )

    def _interrupted(self, exc: BaseException) -> StreamInterruptedError:
        self._session.failed_quietly(self._deployment, exc)
        error = StreamInterruptedError(
            model=self._deployment.name,
            chunks=self._tracker.chunks,
            characters=self._tracker.characters,
            reason=str(getattr(exc, "message", None) or exc),
        )
        error.routing = self._routing = self._session.record(self._deployment)
        return error


def _cut() -> openai.APIConnectionError:
    return openai.APIConnectionError(
        message="the stream ended without a finish reason", request=httpx.Request("POST", _ROUTER_URL)
    )


def _idle(seconds: float) -> openai.APITimeoutError:
    error = openai.APITimeoutError(request=httpx.Request("POST", _ROUTER_URL))
    error.message = f"no chunk for {seconds:g}s (stream_idle_timeout_s)"
    return error


class RoutedStream(_StreamBase):
    def __init__(
        self,
        session: Session,
        deployment: Deployment,
        buffered: list[JSON],
        tracker: StreamTracker,
        rest: Iterator[JSON],
        ttft_ms: float | None = None,
    ) -> None:
        super().__init__(session, deployment, buffered, tracker, ttft_ms)
        self._rest = rest
        self._iterator = self._chunks()

    def _chunks(self) -> Iterator[ChatCompletionChunk]:
        for data in self._buffered:
            out = self._emit(data)
            if out is not None:
                yield out
        self._buffered = []
        try:
            for data in self._rest:
                self._tracker.observe(data)
                out = self._emit(data)
                if out is not None:
                    yield out
        except openai.APIError as exc:
            raise self._interrupted(exc) from exc
        self._finish()

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self._iterator

    def __next__(self) -> ChatCompletionChunk:
        return next(self._iterator)

    def __enter__(self) -> RoutedStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        close: Any = getattr(self._rest, "close", None)
        if close is not None:
            close()


class AsyncRoutedStream(_StreamBase):
    def __init__(
        self,
        session: Session,
        deployment: Deployment,
        buffered: list[JSON],
        tracker: StreamTracker,
        rest: AsyncIterator[JSON],
        ttft_ms: float | None = None,
    ) -> None:
        super().__init__(session, deployment, buffered, tracker, ttft_ms)
        self._rest = rest
        self._iterator = self._chunks()

    async def _chunks(self) -> AsyncIterator[ChatCompletionChunk]:
        for data in self._buffered:
            out = self._emit(data)
            if out is not None:
                yield out
        self._buffered = []
        idle = self._session.resilience.stream_idle_timeout_s
        rest = self._rest
        try:
            while True:
                # The idle timeout as a hard stop: httpx enforces it per read on the fast path,
                # but litellm's streams do their own reading.
                try:
                    async with asyncio.timeout(idle):
                        data = await anext(rest)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    await self.close()
                    raise _idle(idle) from None
                self._tracker.observe(data)
                out = self._emit(data)
                if out is not None:
                    yield out
        except openai.APIError as exc:
            raise self._interrupted(exc) from exc
        self._finish()

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self._iterator

    async def __anext__(self) -> ChatCompletionChunk:
        return await self._iterator.__anext__()

    async def __aenter__(self) -> AsyncRoutedStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        aclose: Any = getattr(self._rest, "aclose", None)
        if aclose is not None:
            await aclose()
