"""Streams of ``ChatCompletionChunk`` that know which model is speaking and what it cost.

Shaped like openai's ``Stream``: iterate it, use it as a context manager, ``close()`` it. Once
it is exhausted, ``.routing`` holds the full record with usage and cost. A stream that ends
without its finish reason, stalls past ``stream_idle_timeout_s`` or breaks after content reached
the caller raises ``StreamInterruptedError``: never a silently truncated answer.

A budgeted stream settles its reservation once: at the end (exact cost from usage); when the
provider cuts it (the prompt plus what arrived); when it is set aside for a content filter; and
when the caller stops reading it (closed early, cancelled, dropped unread, garbage-collected) at
once, not at the reservation's expiry. A stream the caller stops reading was sent and may go on
being generated and billed, so it is charged as if cancelled: what arrived or the reserved worst
case, whichever is more, marked estimated.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterator
from functools import partial
from types import TracebackType
from typing import Any

import httpx
import openai
from openai.types.chat import ChatCompletionChunk

from providers.base import JSON, MALFORMED_EVENT, Deployment
from providers.errors import ROUTER_URL
from router._continuation import Continued, Prefix, Resumed, Splice, continuable
from router._exceptions import StreamInterruptedError
from router._response import chunk
from router._routing import RoutingRecord
from router._session import Session
from router._stream_state import Delivery, StreamTracker


class _Settlement:
    """A stream's one settle, shared with its finalizer, which must not hold the stream itself."""

    __slots__ = ("cost", "done", "settle")

    def __init__(self, settle: Callable[..., Any] | None, cost: Callable[[], float | None]) -> None:
        self.settle = settle
        self.cost = cost
        self.done = settle is None

    def take(self) -> bool:
        """True exactly once: for whoever settles."""
        if self.done:
            return False
        self.done = True
        return True


def _settle_dropped(settlement: _Settlement) -> None:
    """A sync stream collected before it settled (never iterated, or dropped mid-way)."""
    if settlement.take() and settlement.settle is not None:
        with contextlib.suppress(Exception):
            settlement.settle(settlement.cost(), True)


def _settle_dropped_async(
    loop: asyncio.AbstractEventLoop, spawn: Callable[[Awaitable[None]], None], settlement: _Settlement
) -> None:
    """An async stream collected before it settled: settle on its loop (a finalizer cannot await).
    With the loop already closed, nothing can run: the reservation expires at its TTL."""
    if loop.is_closed() or not settlement.take() or settlement.settle is None:
        return
    settle = settlement.settle

    def start() -> None:
        spawn(settle(settlement.cost(), True))

    with contextlib.suppress(RuntimeError):  # the loop closed in between
        loop.call_soon_threadsafe(start)


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
        "x-router-model": stream._model_name,
    }
    return httpx.Response(200, headers=headers, stream=body, request=httpx.Request("POST", ROUTER_URL))


async def _nothing() -> AsyncGenerator[ChatCompletionChunk, None]:
    return
    yield  # an async generator that ends at once


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
        self._http_response: httpx.Response | None = None
        self._closed = False
        # What to do as the rest arrives (idle limit, cut, charge, interruption): decided there.
        self._delivery = Delivery(session, deployment, tracker, ttft_ms)
        # Mid-stream continuation (router._continuation): the chunks keep the first model's name;
        # the text delivered so far is kept only when the stream may be continued.
        self._model_name = deployment.name
        self._continued: Continued | None = None

    @property
    def routing(self) -> RoutingRecord:
        """The decision record; complete (usage, cost) once the stream is exhausted."""
        return self._routing or self._session.record(self._deployment)

    def _emit(self, data: JSON) -> ChatCompletionChunk | None:
        """The caller's chunk for an already observed provider chunk; None for a usage chunk not asked for."""
        if not data.get("choices") and (
            not self._session.request.caller_wants_usage or MALFORMED_EVENT in data
        ):
            return None
        continued = self._continued
        if continued is not None:
            data = continued.take(data)
        return chunk(data, self._model_name)

    def _may_continue(self, exc: openai.APIError) -> Prefix | None:
        """The prefix to continue this cut stream from, with the cut recorded; None to raise it."""
        continued = self._continued
        if continued is None or not continuable(
            continued.text(), continued.tool_calls or self._tracker.tool_calls, self._session.request.body
        ):
            return None
        continued.cut(self._session, self._deployment, self._tracker, exc, self._ttft_ms)
        return Prefix.of(continued.text())

    def _switch(self, resumed: Resumed, prefix: Prefix) -> _Settlement:
        """Read on from the continuation: its chunks join this stream (``Continued.take``); the
        settlement of its hold."""
        continued = self._continued
        assert continued is not None
        continued.splice = Splice(continued.first, prefix)
        continued.tool_calls = continued.tool_calls or self._tracker.tool_calls
        self._deployment = resumed.deployment
        self._buffered = resumed.buffered
        self._tracker = resumed.tracker
        self._ttft_ms = resumed.ttft_ms
        self._delivery = Delivery(self._session, resumed.deployment, resumed.tracker, resumed.ttft_ms)
        cost = partial(self._session.partial_cost, resumed.deployment, resumed.tracker)
        return _Settlement(resumed.settle, cost)

    def _cost_so_far(self) -> float | None:
        """What to settle at: the exact cost when usage arrived, else the prompt plus the text so far."""
        return self._session.partial_cost(self._deployment, self._tracker)

    def _complete(self) -> None:
        """The provider's stream ended complete (and settled): record the success once."""
        if self._routing is None:
            continued = self._continued
            # The caller paid for the cut attempts too.
            self._routing = self._delivery.completed(
                continued.cut_cost if continued is not None and continued.error else None
            )

    def _interrupted(self, exc: BaseException) -> StreamInterruptedError:
        """The error a broken stream raises, its attempt recorded and its failure logged: once a
        continuation was tried, the cut it could not recover (never a continuation's error)."""
        continued = self._continued
        error = (continued.unrecovered(self._session) if continued is not None else None) or (
            self._delivery.interrupted(exc)
        )
        self._routing = error.routing
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
        settle: Callable[[float | None, bool], None] | None = None,
        resume: Callable[[Prefix], Resumed | None] | None = None,
        publish: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(session, deployment, buffered, tracker, ttft_ms)
        self._rest = rest
        # Publishes what the stream's end told shared breakers (the driver's); None: not shared.
        self._publish = publish
        # Opens a continuation when the stream is cut after content (the driver's); None: off.
        self._resume = resume
        if resume is not None:
            self._continued = Continued()
        self._settlement = _Settlement(settle, partial(session.partial_cost, deployment, tracker))
        if settle is not None:
            weakref.finalize(self, _settle_dropped, self._settlement)
        # Made on first use: a generator holds its stream, so one made here would keep a stream
        # dropped unread alive until the cycle collector runs; without it, the finalizer runs at once.
        self._chunk_gen: Generator[ChatCompletionChunk, None, None] | None = None

    @property
    def response(self) -> httpx.Response:
        """Like openai's: headers (``x-request-id``, ``x-router-model``); closing it closes the stream."""
        if self._http_response is None:
            self._http_response = _response(self, _ChunkBytes(self))
        return self._http_response

    @response.setter
    def response(self, value: httpx.Response) -> None:
        self._http_response = value

    def settle_now(self, estimated: bool = False) -> None:
        """Settle the reservation at what this stream has cost so far (once); ``estimated``: the
        caller stopped reading, so at least the reserved worst case."""
        settlement = self._settlement
        if settlement.take() and settlement.settle is not None:
            settlement.settle(self._cost_so_far(), estimated)

    def _chunks(self) -> Generator[ChatCompletionChunk, None, None]:
        try:
            while True:  # once, or again for each continuation (stream_recovery: continue)
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
                    self._delivery.ended()
                    self.settle_now()
                    break
                except openai.APIError as exc:
                    self.settle_now(estimated=Delivery.charged_as_cancelled(exc))
                    if not self._continue(exc):
                        error = self._interrupted(exc)
                        if self._publish is not None:
                            self._publish()
                        raise error from exc
        finally:
            # The caller stopped reading (GeneratorExit, KeyboardInterrupt): charged as cancelled.
            self.settle_now(estimated=True)
        self._complete()
        if self._publish is not None:
            self._publish()

    def _continue(self, exc: openai.APIError) -> bool:
        """Switch to a continuation of this cut stream; False when none could be opened."""
        prefix = self._may_continue(exc)
        resumed = self._resume(prefix) if prefix is not None and self._resume is not None else None
        if resumed is None or prefix is None:
            return False
        self._close_rest()
        self._settlement = self._switch(resumed, prefix)
        self._rest = resumed.rest
        if resumed.settle is not None:
            weakref.finalize(self, _settle_dropped, self._settlement)
        return True

    def _close_rest(self) -> None:
        close: Any = getattr(self._rest, "close", None)
        if close is not None:
            close()

    def _chunk_iterator(self) -> Iterator[ChatCompletionChunk]:
        if self._chunk_gen is None:
            self._chunk_gen = self._chunks()
            if self._closed:  # closed before it was read: nothing more comes
                self._chunk_gen.close()
        return self._chunk_gen

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self._chunk_iterator()

    def __next__(self) -> ChatCompletionChunk:
        return next(self._chunk_iterator())

    def __enter__(self) -> RoutedStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._close_rest()
        # Like openai's Stream: once closed, iterating ends (and the response reads as closed).
        self._closed = True
        if self._chunk_gen is not None:
            with contextlib.suppress(ValueError):  # closed from inside its own iteration
                self._chunk_gen.close()
        if self._http_response is not None:
            self._http_response.is_closed = True
        # Closed before its end (a no-op after it): charged as cancelled.
        self.settle_now(estimated=True)


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
        settle: Callable[[float | None, bool], Awaitable[None]] | None = None,
        spawn: Callable[[Awaitable[None]], None] | None = None,
        resume: Callable[[Prefix], Awaitable[Resumed | None]] | None = None,
        publish: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(session, deployment, buffered, tracker, ttft_ms)
        self._rest = rest
        self._spawn = spawn
        self._publish = publish  # see RoutedStream
        self._resume = resume  # see RoutedStream
        if resume is not None:
            self._continued = Continued()
        self._settlement = _Settlement(settle, partial(session.partial_cost, deployment, tracker))
        if settle is not None and spawn is not None:
            loop = asyncio.get_running_loop()
            weakref.finalize(self, _settle_dropped_async, loop, spawn, self._settlement)
        self._chunk_gen: AsyncGenerator[ChatCompletionChunk, None] | None = None  # see RoutedStream

    @property
    def response(self) -> httpx.Response:
        """Like openai's: headers (``x-request-id``, ``x-router-model``); closing it closes the stream."""
        if self._http_response is None:
            self._http_response = _response(self, _AsyncChunkBytes(self))
        return self._http_response

    @response.setter
    def response(self, value: httpx.Response) -> None:
        self._http_response = value

    async def settle_now(self, estimated: bool = False) -> None:
        """Settle the reservation at what this stream has cost so far (once); see ``RoutedStream``."""
        settlement = self._settlement
        if settlement.take() and settlement.settle is not None:
            await settlement.settle(self._cost_so_far(), estimated)

    async def _chunks(self) -> AsyncGenerator[ChatCompletionChunk, None]:
        try:
            while True:  # once, or again for each continuation (stream_recovery: continue)
                delivery = self._delivery
                idle = delivery.idle_s
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
                            raise delivery.idle() from None
                        self._tracker.observe(data)
                        out = self._emit(data)
                        if out is not None:
                            yield out
                    delivery.ended()
                    await self.settle_now()
                    break
                except openai.APIError as exc:
                    await self.settle_now(estimated=Delivery.charged_as_cancelled(exc))
                    if not await self._continue(exc):
                        error = self._interrupted(exc)
                        if self._publish is not None:
                            await self._publish()
                        raise error from exc
        finally:
            # The caller stopped reading (cancelled, or dropped it: the loop closes the generator).
            await self.settle_now(estimated=True)
        self._complete()
        if self._publish is not None:
            await self._publish()

    async def _continue(self, exc: openai.APIError) -> bool:
        """``RoutedStream._continue``, awaited."""
        prefix = self._may_continue(exc)
        resumed = await self._resume(prefix) if prefix is not None and self._resume is not None else None
        if resumed is None or prefix is None:
            return False
        await self._close_rest()
        self._settlement = self._switch(resumed, prefix)
        self._rest = resumed.rest
        if resumed.settle is not None and self._spawn is not None:
            weakref.finalize(
                self, _settle_dropped_async, asyncio.get_running_loop(), self._spawn, self._settlement
            )
        return True

    def _chunk_iterator(self) -> AsyncIterator[ChatCompletionChunk]:
        if self._closed and self._chunk_gen is None:
            return _nothing()  # closed before it was read: nothing more comes
        if self._chunk_gen is None:
            self._chunk_gen = self._chunks()
        return self._chunk_gen

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self._chunk_iterator()

    async def __anext__(self) -> ChatCompletionChunk:
        return await self._chunk_iterator().__anext__()

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
        self._closed = True
        if self._chunk_gen is not None:
            with contextlib.suppress(RuntimeError):  # closed while another task awaits its next chunk
                await self._chunk_gen.aclose()
        if self._http_response is not None:
            self._http_response.is_closed = True
        # Closed before its end (a no-op after it): charged as cancelled.
        await self.settle_now(estimated=True)
