"""The async fast path's default transport: aiohttp behind httpx's transport interface.

Why aiohttp: under cancellation (a deadline firing with ``asyncio.timeout`` around a call) httpcore 1.0.x
leaves pool connections marked busy with their sockets open, until the pool starves; and its pool caps
async throughput near the openai SDK's. aiohttp returns every connection on cancellation and carries
several times the load (the measurements are in docs/benchmarks.md, the script in
benchmarks/transports.py).

``AiohttpTransport`` is an ``httpx.AsyncBaseTransport``: an adapter may build ``httpx.Request`` objects
and read ``httpx.Response`` objects exactly as with httpx, and openai's error classes (which carry httpx
requests and responses) keep working. The chat fast path skips both for a plain answer (``post``: bytes
in, status and bytes out; about a third of the router's own CPU per request went into building httpx
objects around aiohttp) and builds them only for what needs them: an error status, a compressed body,
an exception. aiohttp's exceptions are translated here, in one place, to the httpx exceptions the error
table already knows. aiohttp is imported on first use, never at
``import router``; the session is created inside the running event loop.

Cancellation discipline: whatever is cancelled (connecting, waiting for headers, reading a body or a
stream), the aiohttp response is closed, which drops its connection (a half-read connection is never
pooled); a connection whose response was read to the end goes back to the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx
from httpx._decoders import LineDecoder, TextDecoder

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "AiohttpTransport",
    "Reply",
    "TransportLimits",
    "event_lines",
    "plain_event_stream",
    "send",
    "to_httpx",
]


@dataclass(frozen=True, slots=True)
class TransportLimits:
    """Connection pool settings of the default async transport.

    ``max_connections``: open connections in all (requests beyond wait for one, bounded by the call's
    deadline); ``max_connections_per_host``: 0 for no per-host cap; ``keepalive_expiry``: seconds an idle
    connection stays pooled before it is closed.
    """

    max_connections: int = 1000
    max_connections_per_host: int = 0
    keepalive_expiry: float = 15.0

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_connections_per_host < 0 or self.keepalive_expiry < 0:
            raise ValueError(
                "max_connections must be at least 1, max_connections_per_host and keepalive_expiry "
                f"not negative; got {self.max_connections}, {self.max_connections_per_host}, "
                f"{self.keepalive_expiry}"
            )


@dataclass(frozen=True, slots=True)
class Reply:
    """A response read to its end, as aiohttp gave it: no httpx object built.

    ``plain``: a success whose body is the bytes to parse (not compressed): no httpx.Response needed.
    """

    status: int
    reason: str | None
    headers: Sequence[tuple[bytes, bytes]]
    body: bytes
    plain: bool

    def to_httpx(self, request: httpx.Request) -> httpx.Response:
        """The httpx.Response for error handling (openai's errors carry one); read with ``aread``."""
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if self.reason:
            extensions["reason_phrase"] = self.reason.encode()
        return httpx.Response(
            self.status,
            headers=list(self.headers),
            stream=httpx.ByteStream(self.body),
            request=request,
            extensions=extensions,
        )


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx async transport over one aiohttp session (one connection pool), opened lazily."""

    def __init__(self, limits: TransportLimits | None = None) -> None:
        self._limits = limits or TransportLimits()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Closes the session when its event loop shuts down (see _closed_with_loop).
        self._closer: AsyncGenerator[None, None] | None = None
        # aiohttp timeouts by httpx's four phases: most calls share one or two, built once.
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._loop is not loop:
            # A session belongs to the loop that made it; a client reused under a new loop (one
            # asyncio.run after another) gets a new pool rather than a broken one.
            import urllib.request

            import aiohttp

            limits = self._limits
            connector = aiohttp.TCPConnector(
                limit=limits.max_connections,
                limit_per_host=limits.max_connections_per_host,
                keepalive_timeout=limits.keepalive_expiry,
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                # A byte pipe like httpcore: httpx decodes what the request asked for, and aiohttp adds
                # no headers of its own.
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                timeout=aiohttp.ClientTimeout(total=None),
                # HTTP(S)_PROXY and NO_PROXY, as httpx and openai honour them; aiohttp looks them up per
                # request, so only when some are set.
                trust_env=bool(urllib.request.getproxies()),
            )
            self._loop = loop
            self._closer = _closed_with_loop(session)
        return session

    def client_timeout(self, timeout: dict[str, float | None] | None) -> aiohttp.ClientTimeout:
        """aiohttp's timeout for httpx's four phases (``Timeout.as_dict()``; None: none)."""
        get = timeout.get if timeout else None
        # httpx's four phases, without a generator per call.
        key = () if get is None else (get("connect"), get("read"), get("write"), get("pool"))
        cached = self._timeouts.get(key)
        if cached is None:
            if len(self._timeouts) > 64:  # per-call timeouts of every value: keep the cache small
                self._timeouts.clear()
            cached = self._timeouts[key] = _client_timeout(timeout)
        return cached

    async def post(
        self,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        timeout: aiohttp.ClientTimeout,
        request: Callable[[], httpx.Request],
    ) -> Reply:
        """POST ``body`` and read the answer to its end: the chat fast path, no httpx object per call.

        ``timeout``: from ``client_timeout``. ``request`` builds the equivalent httpx.Request, only for
        an exception to carry (httpx's exceptions, like openai's, name their request). Cancelled or
        failed before the end, the response is closed, which drops its connection; read to the end,
        the connection is pooled.
        """
        session = self._open()
        mapped = _Mapped(request)
        with mapped:
            response = await session.request(
                "POST",
                url,
                headers=headers,
                data=body,
                timeout=timeout,
                allow_redirects=False,
                compress=None,
            )
        try:
            with mapped:
                content = await response.read()
        except BaseException:
            response.close()
            raise
        status = response.status
        plain = status < 400 and "Content-Encoding" not in response.headers
        return Reply(status, response.reason, response.raw_headers, content, plain)

    async def open_stream(
        self,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        timeout: aiohttp.ClientTimeout,
        request: Callable[[], httpx.Request],
    ) -> aiohttp.ClientResponse:
        """POST ``body`` and return the response once its headers are in, its body unread: the stream
        fast path. The caller owns the response: ``event_lines`` reads it, ``release`` pools its
        connection after the end, ``close`` drops it before; ``to_httpx`` hands it to an httpx.Response."""
        session = self._open()
        with _Mapped(request):
            return await session.request(
                "POST",
                url,
                headers=headers,
                data=body,
                timeout=timeout,
                allow_redirects=False,
                compress=None,
            )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        timeout = self.client_timeout(request.extensions.get("timeout"))
        body = request.content if request.stream is None else await request.aread()
        with _Mapped(lambda: request):
            response = await session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=body,
                timeout=timeout,
                allow_redirects=False,
                compress=None,
            )
        return to_httpx(response, request)

    def connections(self) -> tuple[int, int]:
        """(in use, idle) connections of the pool: for the tests and the soak benchmark."""
        session = self._session
        if session is None or session.closed:
            return (0, 0)
        connector: Any = session.connector
        acquired = len(connector._acquired)
        idle = sum(proto.is_connected() for conns in connector._conns.values() for proto, _ in conns)
        return (acquired, idle)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            with contextlib.suppress(RuntimeError):  # the loop that owned it is gone: nothing to close
                await session.close()


async def send(
    client: httpx.AsyncClient | AiohttpTransport, request: httpx.Request, *, stream: bool
) -> httpx.Response:
    """``client.send(request, stream=...)`` for either: a caller's httpx client, or the transport alone
    (no httpx client machinery per call). Without ``stream`` the body is read, or the connection closed."""
    if isinstance(client, httpx.AsyncClient):
        return await client.send(request, stream=stream)
    response = await client.handle_async_request(request)
    if not stream:
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
    return response


def to_httpx(response: aiohttp.ClientResponse, request: httpx.Request) -> httpx.Response:
    """The httpx.Response around an aiohttp response whose body is unread: it now owns the connection
    (its ``aclose`` releases it); should building it fail, the connection is closed."""
    try:
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason.encode()}
            if response.reason
            else {"http_version": b"HTTP/1.1"},
        )
    except BaseException:
        response.close()
        raise


def plain_event_stream(response: aiohttp.ClientResponse) -> bool:
    """A 200 ``text/event-stream`` in UTF-8 with no content coding: ``event_lines`` reads it exactly as
    httpx's ``aiter_lines`` would, so no httpx.Response is needed."""
    if response.status != 200:
        return False
    headers = response.headers
    if "Content-Encoding" in headers:
        return False
    media = headers.get("Content-Type", "").partition(";")[0].strip().lower()
    charset = response.charset
    return media == "text/event-stream" and (charset is None or charset.lower() in ("utf-8", "utf8"))


async def event_lines(
    response: aiohttp.ClientResponse, request: Callable[[], httpx.Request]
) -> AsyncIterator[str]:
    """The body's lines, split and decoded by httpx's own decoders (so exactly as ``aiter_lines``);
    aiohttp's failures come out as httpx's, carrying ``request()``."""
    text = TextDecoder("utf-8")
    lines = LineDecoder()
    with _Mapped(request):
        async for chunk in response.content.iter_any():
            for line in lines.decode(text.decode(chunk)):
                yield line
    for line in lines.decode(text.flush()):
        yield line
    for line in lines.flush():
        yield line


class _Body(httpx.AsyncByteStream):
    """The response body as httpx reads it; closing before the end drops the connection."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            with _Mapped(lambda: self._request):
                async for chunk in self._response.content.iter_any():
                    yield chunk
        except BaseException:
            self._response.close()
            raise

    async def aclose(self) -> None:
        # release() pools the connection when the body was read to its end and closes it otherwise.
        self._response.release()


def _closed_with_loop(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """An async generator, started, whose end closes ``session``: the running loop's asyncgen hooks
    track it, and ``asyncio.run`` (any loop's ``shutdown_asyncgens``) ends it before the loop closes.

    A client reused by one ``asyncio.run`` after another gets a new pool in each loop; without this,
    the pool of a finished loop kept its sockets open (a file descriptor each) until the garbage
    collector found them. Started here, synchronously: its body runs up to ``yield`` without awaiting.
    """

    async def closer() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if not session.closed:
                await session.close()

    generator = closer()
    step: Any = generator.__anext__()  # registers it with the running loop (firstiter hook)
    with contextlib.suppress(StopIteration):
        step.send(None)
    return generator


def _client_timeout(timeout: dict[str, float | None] | None) -> aiohttp.ClientTimeout:
    import aiohttp

    if not timeout:
        return aiohttp.ClientTimeout(total=None)
    pool, connect = timeout.get("pool"), timeout.get("connect")
    # aiohttp's ``connect`` covers waiting for a pooled connection and opening one; ``sock_read`` is
    # httpx's read timeout: the longest silence between two reads, headers and body alike.
    acquire = None if pool is None or connect is None else pool + connect
    return aiohttp.ClientTimeout(
        total=None, connect=acquire, sock_connect=connect, sock_read=timeout.get("read")
    )


class _Mapped:
    """Maps aiohttp's failures to the httpx exceptions they correspond to, most specific first; the
    httpx request they carry is built only then. A class, not a ``contextmanager`` generator: it runs
    twice on every call of the fast path."""

    __slots__ = ("_make_request",)

    def __init__(self, make_request: Callable[[], httpx.Request]) -> None:
        self._make_request = make_request

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> Literal[False]:
        if exc is None or not isinstance(exc, Exception):
            return False  # no error, or a cancellation, an interrupt: as they are
        mapped = _httpx_error(exc, self._make_request)
        if mapped is None:
            return False
        raise mapped from exc


def _httpx_error(exc: Exception, make_request: Callable[[], httpx.Request]) -> httpx.TransportError | None:
    """The httpx exception for one of aiohttp's (or aiohttp's own pool timeout), None for any other."""
    import aiohttp

    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(exc) or "connect timed out", request=make_request())
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return httpx.ReadTimeout(str(exc) or "read timed out", request=make_request())
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(str(exc) or "timed out", request=make_request())
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc), request=make_request())
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(str(exc) or "server disconnected", request=make_request())
    if isinstance(exc, aiohttp.ClientOSError):
        return httpx.ReadError(str(exc), request=make_request())
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(str(exc), request=make_request())
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(str(exc), request=make_request())
    if isinstance(exc, aiohttp.ClientError):
        return httpx.TransportError(str(exc), request=make_request())
    if isinstance(exc, TimeoutError):  # aiohttp's own (a pool wait past ``connect``); never the caller's
        message = str(exc) or "timed out waiting for a connection"
        return httpx.PoolTimeout(message, request=make_request())
    return None
