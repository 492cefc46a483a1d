"""Streams of ``ChatCompletionChunk`` that know which model is speaking and what it cost.

Shaped like openai's ``Stream``: iterate it, use it as a context manager, ``close()`` it. Once
it is exhausted, ``.routing`` holds the full record with usage and cost. A stream that ends
without its finish reason, stalls past ``stream_idle_timeout_s`` or breaks after content reached
the caller raises ``StreamInterruptedError``: never a silently truncated answer.

A budgeted stream settles its reservation once: at the end (exact cost from usage), when it is
interrupted or closed early (the prompt plus what arrived), or when it is set aside for a
content filter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterator
from types import TracebackType
from typing import Any, Final

import httpx
import openai
from openai.types.chat import ChatCompletionChunk

from providers.base import JSON, Deployment
from providers.errors import error_class
from router._exceptions import StreamInterruptedError
from router._pipeline import Session, StreamTracker
from router._response import chunk
from router._routing import RoutingRecord

_ROUTER_URL: Final = "router://chat/completions"

# Errors we raise ourselves; their messages hold no provider text, so they may be quoted.
_OWN_MESSAGE: Final = "router-own-message"


class _ChunkBytes(httpx.SyncByteStream):
    """The body of a routed stream's ``.response``: its chunks as server-sent events.

    Closing the response closes the stream, as openai's stream helpers (``chat.completions.stream``)
    do when they are done with it.
    """

    def __init__(self, stream: RoutedStream) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        for item in self._stream:
            yield b"data: " + item.model_dump_json(exclude_unset=True).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    def close(self) -> None:
        self._stream.close()


class _AsyncChunkBytes(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncRoutedStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for item in self._stream:
            yield b"data: " + item.model_dump_json(exclude_unset=True).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        await self._stream.close()


def _response(stream: _StreamBase, body: httpx.SyncByteStream | httpx.AsyncByteStream) -> httpx.Response:
    headers = {
        "content-type": "text/event-stream",
        "x-request-id": stream._session.request.request_id,
        "x-router-model": stream._deployment.name,
    }
    return httpx.Response(200, headers=headers, stream=body, request=httpx.Request("POST", _ROUTER_URL))


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
        self._settled = False
        self._http_response: httpx.Response | None = None

    @property
    def routing(self) -> RoutingRecord:
        """The decision record; complete (usage, cost) once the stream is exhausted."""
        return self._routing or self._session.record(self._deployment)

    def _emit(self, data: JSON) -> ChatCompletionChunk | None:
        """The caller's chunk for an already observed provider chunk; None for a usage chunk not asked for."""
        if not data.get("choices") and not self._session.request.caller_wants_usage:
            return None
        return chunk(data, self._deployment.name)

    def _cost_so_far(self) -> float | None:
        """What to settle at: the exact cost when usage arrived, else the prompt plus the text so far."""
        return self._session.partial_cost(self._deployment, self._tracker)

    def _complete(self) -> None:
        """The provider's stream ended: complete only if it said how the answer ended."""
        if self._routing is None:
            self._routing = self._session.succeeded(
                self._deployment, self._tracker.usage, ttft_ms=self._ttft_ms
            )

    def _interrupted(self, exc: BaseException) -> StreamInterruptedError:
        record = self._session.interrupted(self._deployment, exc, self._ttft_ms)
        if getattr(exc, _OWN_MESSAGE, False):
            reason = str(getattr(exc, "message", exc))
        else:
            # The provider's own text may quote the prompt: name the failure, not its words.
            status = getattr(exc, "status_code", None)
            reason = (
                f"{error_class(exc)} error ({type(exc).__name__}{f', status {status}' if status else ''})"
            )
        error = StreamInterruptedError(
            model=self._deployment.name,
            chunks=self._tracker.chunks,
            characters=self._tracker.characters,
            reason=reason,
        )
        error.routing = self._routing = record
        self._session.stream_failed(error, record)
        return error


def _cut() -> openai.APIConnectionError:
    # Every OpenAI-shaped stream closes its choice with a finish_reason; without one the answer
    # was cut, however politely the connection closed.
    error = openai.APIConnectionError(
        message="the stream ended without a finish reason", request=httpx.Request("POST", _ROUTER_URL)
    )
    setattr(error, _OWN_MESSAGE, True)
    return error


def _idle(seconds: float) -> openai.APITimeoutError:
    error = openai.APITimeoutError(request=httpx.Request("POST", _ROUTER_URL))
    error.message = f"no chunk for {seconds:g}s (stream_idle_timeout_s)"
    setattr(error, _OWN_MESSAGE, True)
    return error


class RoutedStream(_StreamBase, openai.Stream[ChatCompletionChunk]):
    """An openai ``Stream`` of chunks (isinstance holds); its ``response`` is made on first use."""

    def __init__(
        self,
        session: Session,
        deployment: Deployment,
        buffered: list[JSON],
        tracker: StreamTracker,
        rest: Iterator[JSON],
        ttft_ms: float | None = None,
        settle: Callable[[float | None], None] | None = None,
    ) -> None:
        super().__init__(session, deployment, buffered, tracker, ttft_ms)
        self._rest = rest
        self._settle = settle
        self._generator = self._chunks()
        self._iterator = self._generator

    @property
    def response(self) -> httpx.Response:
        """Like openai's: headers (``x-request-id``, ``x-router-model``); closing it closes the stream."""
        if self._http_response is None:
            self._http_response = _response(self, _ChunkBytes(self))
        return self._http_response

    @response.setter
    def response(self, value: httpx.Response) -> None:
        self._http_response = value

    def settle_now(self) -> None:
        """Settle the reservation at what this stream has cost so far (once)."""
        if self._settle is not None and not self._settled:
            self._settled = True
            self._settle(self._cost_so_far())

    def _chunks(self) -> Generator[ChatCompletionChunk, None, None]:
        try:
            for data in self._buffered:
                out = self._emit(data)
                if out is not None:
                    yield out
            self._buffered = []
            for data in self._rest:
                self._tracker.observe(data)
                out = self._emit(data)
                if out is not None:
                    yield out
            if not self._tracker.finished:
                raise _cut()
        except openai.APIError as exc:
            self.settle_now()
            raise self._interrupted(exc) from exc
        finally:
            # Also when the caller stops iterating and drops the stream (GeneratorExit).
            self.settle_now()
        self._complete()

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
        # Like openai's Stream: once closed, iterating ends (and the response reads as closed).
        with contextlib.suppress(ValueError):  # closed from inside its own iteration
            self._generator.close()
        if self._http_response is not None:
            self._http_response.is_closed = True
        # Closed before its end: the provider charged for what it sent.
        self.settle_now()


class AsyncRoutedStream(_StreamBase, openai.AsyncStream[ChatCompletionChunk]):
    """An openai ``AsyncStream`` of chunks (isinstance holds); its ``response`` is made on first use."""

    def __init__(
        self,
        session: Session,
        deployment: Deployment,
        buffered: list[JSON],
        tracker: StreamTracker,
        rest: AsyncIterator[JSON],
        ttft_ms: float | None = None,
        settle: Callable[[float | None], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(session, deployment, buffered, tracker, ttft_ms)
        self._rest = rest
        self._settle = settle
        self._agenerator = self._chunks()
        self._iterator = self._agenerator

    @property
    def response(self) -> httpx.Response:
        """Like openai's: headers (``x-request-id``, ``x-router-model``); closing it closes the stream."""
        if self._http_response is None:
            self._http_response = _response(self, _AsyncChunkBytes(self))
        return self._http_response

    @response.setter
    def response(self, value: httpx.Response) -> None:
        self._http_response = value

    async def settle_now(self) -> None:
        """Settle the reservation at what this stream has cost so far (once)."""
        if self._settle is not None and not self._settled:
            self._settled = True
            await self._settle(self._cost_so_far())

    async def _chunks(self) -> AsyncGenerator[ChatCompletionChunk, None]:
        idle = self._session.resilience.stream_idle_timeout_s
        rest = self._rest
        try:
            for data in self._buffered:
                out = self._emit(data)
                if out is not None:
                    yield out
            self._buffered = []
            while True:
                # The idle timeout as a hard stop: httpx enforces it per read on the fast path,
                # but litellm's streams do their own reading.
                try:
                    async with asyncio.timeout(idle):
                        data = await anext(rest)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    await self._close_rest()
                    raise _idle(idle) from None
                self._tracker.observe(data)
                out = self._emit(data)
                if out is not None:
                    yield out
            if not self._tracker.finished:
                raise _cut()
        except openai.APIError as exc:
            await self.settle_now()
            raise self._interrupted(exc) from exc
        finally:
            # Also when the caller stops iterating and drops the stream (the loop closes the generator).
            await self.settle_now()
        self._complete()

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

    async def _close_rest(self) -> None:
        aclose: Any = getattr(self._rest, "aclose", None)
        if aclose is not None:
            await aclose()

    async def close(self) -> None:
        await self._close_rest()
        # Like openai's AsyncStream: once closed, iterating ends (and the response reads as closed).
        with contextlib.suppress(RuntimeError):  # closed while another task awaits its next chunk
            await self._agenerator.aclose()
        if self._http_response is not None:
            self._http_response.is_closed = True
        # Closed before its end: the provider charged for what it sent.
        await self.settle_now()
