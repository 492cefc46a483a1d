"""The fast path: OpenAI-compatible chat completions over a bare httpx client.

OpenAI itself, Azure OpenAI, and any server that speaks ``/chat/completions`` (vLLM, Ollama,
Gemini's OpenAI endpoint, Groq, ...). Going straight to httpx skips the openai SDK's per-call
machinery (option merging, retries we do ourselves, response wrappers), which is most of its
overhead over a raw POST. ``_OpenAICompatibleBase`` builds requests and reads responses; the
sync and async classes only add I/O.
"""

from __future__ import annotations

import functools
import json
import json.encoder
import os
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from functools import partial
from typing import Any, Final

import httpx
import openai

from providers import _responses_wire as responses_wire
from providers._aiohttp import (
    AiohttpTransport,
    Reply,
    TransportLimits,
    event_lines,
    plain_event_stream,
    send,
    to_httpx,
)
from providers.base import (
    DEFAULT_TIMEOUT,
    JSON,
    MALFORMED_EVENT,
    NATIVE_RESPONSES,
    RATE_LIMITS,
    CallOptions,
    Deployment,
    rate_limit_headers,
)
from providers.errors import connection_error, malformed_response, status_error_from_response
from providers.tiers import set_tier

_DONE = "[DONE]"


class _OpenAICompatibleBase:
    """Everything that does no I/O: URLs, headers, body encoding, response and SSE decoding."""

    def __init__(self) -> None:
        # Per-deployment URL and headers, parsed once: httpx re-parses strings and dicts on every
        # Request (about 17 us a call). Deployments are frozen, so this never goes stale. Keyed by
        # the deployment object (kept alive here, so its id is not reused): client copies with
        # another key share this adapter with deployments of the same name.
        self._prepared: dict[int, _Prepared] = {}
        # orjson for plain bodies (providers/_json.py), loaded with the adapter, not at ``import router``.
        from providers._json import dumps

        self._dumps: Callable[[JSON], bytes | None] = dumps

    def _prepare(self, deployment: Deployment) -> tuple[httpx.URL, httpx.Headers]:
        prepared = self._prepared.get(id(deployment)) or self._prepare_new(deployment)
        return prepared.url, prepared.headers

    def _prepare_new(self, deployment: Deployment) -> _Prepared:
        url, headers = _url_and_headers(deployment)
        prepared = _Prepared(deployment, httpx.URL(url), httpx.Headers(headers))
        self._prepared[id(deployment)] = prepared
        return prepared

    def _headers(self, deployment: Deployment, options: CallOptions) -> httpx.Headers:
        headers = self._prepare(deployment)[1]
        if options.extra_headers:
            headers = headers.copy()
            headers.update(options.extra_headers)
        return headers

    def _build(
        self, deployment: Deployment, body: JSON, options: CallOptions, content: bytes | None = None
    ) -> httpx.Request:
        prepared = self._prepared.get(id(deployment)) or self._prepare_new(deployment)
        url, payload = _target(prepared.url, deployment, body)
        head = prepared.head
        if head is not None and url is prepared.url and not options.extra_query and not options.extra_headers:
            content = self._encode(payload) if content is None else content
            return _post(url, head, content, _timeout_dict(options))
        return httpx.Request(
            "POST",
            url,
            params=dict(options.extra_query) if options.extra_query else None,
            headers=self._headers(deployment, options),
            content=self._encode(payload) if content is None else content,
            extensions={"timeout": _timeout_dict(options)},
        )

    def _encode(self, payload: JSON) -> bytes:
        """The request body: orjson's bytes when the payload is plain JSON (the same values as the
        stdlib's; providers/_json.py), else the stdlib's encoding as before (``_encode``)."""
        return self._dumps(payload) or _encode(payload)

    @staticmethod
    def _read(response: httpx.Response, native: bool = False) -> JSON:
        if response.status_code >= 400:
            raise status_error_from_response(response)
        try:
            data = _loads(response.content)
        except ValueError as exc:
            raise malformed_response(response, "the body is not JSON") from exc
        if native:
            view = responses_wire.read_response(data)
            if isinstance(view, str):
                raise malformed_response(response, view)
            return view
        if not isinstance(data, dict) or "choices" not in data:
            raise malformed_response(response, "no 'choices' in the body")
        return data

    @staticmethod
    def _event(line: str, request: Callable[[], httpx.Request]) -> JSON | None:
        """One SSE line → a chunk dict, or None for comments, blank lines and other fields.

        An event that is not a JSON object is not fatal by itself: it becomes a ``MALFORMED_EVENT``
        marker (skipped and counted by the router), and the stream is judged by how it ends.
        """
        if not line.startswith("data:"):
            return None
        data = line[5:].strip()
        if data == _DONE:
            raise _StreamDone
        try:
            chunk = json.loads(data)
        except ValueError:
            return {MALFORMED_EVENT: True}
        if not isinstance(chunk, dict):
            return {MALFORMED_EVENT: True}
        if "error" in chunk and "choices" not in chunk:
            raise _stream_error(chunk, request())
        return chunk


def _target(url: httpx.URL, deployment: Deployment, body: JSON) -> tuple[httpx.URL, JSON]:
    """Where the call goes and what it sends: a routed responses.create natively to ``/responses``
    where the deployment speaks it, else the chat call it was translated to
    (providers._responses_wire); a flex deployment's tier, and never a caller's flex elsewhere."""
    if NATIVE_RESPONSES in body:
        if deployment.responses:
            native = body[NATIVE_RESPONSES]
            payload = responses_wire.request_payload(native, deployment, stream=bool(body.get("stream")))
            url = (
                responses_wire.azure_responses_url(deployment.api_base)
                if deployment.adapter == "azure"
                else responses_wire.responses_url(url)
            )
        else:
            payload = {k: v for k, v in body.items() if k != NATIVE_RESPONSES}
            payload["model"] = deployment.model
    else:
        payload = {**body, "model": deployment.model}
    if deployment.service_tier is not None or "service_tier" in payload:
        set_tier(payload, deployment.service_tier)
    return url, payload


class _Prepared:
    """A deployment's URL and headers, parsed once (httpx's objects), and as the aiohttp fast path sends
    them (a string and a list of pairs, which httpx would rebuild on every call)."""

    __slots__ = ("deployment", "head", "headers", "url", "wire_headers", "wire_url")

    def __init__(self, deployment: Deployment, url: httpx.URL, headers: httpx.Headers) -> None:
        self.deployment = deployment  # kept alive, so that its id is not reused while it is a key
        self.url = url
        self.headers = headers
        self.wire_url = str(url)
        self.wire_headers = tuple(headers.multi_items())
        self.head = _head(url, headers)


def _head(url: httpx.URL, headers: httpx.Headers) -> list[tuple[bytes, bytes, bytes]] | None:
    """The header entries an ``httpx.Request`` POSTing to ``url`` with ``headers`` starts with (its
    ``Host``, then ``headers``), before the ``Content-Length`` its body adds: what ``_post`` copies.
    None where ``_post`` must not be used: no shortcut, or headers that set what httpx would add."""
    if not _PLAIN_REQUEST or any(key in headers for key in ("host", "content-length", "transfer-encoding")):
        return None
    entries: list[tuple[bytes, bytes, bytes]] = httpx.Request(
        "POST", url, headers=headers, content=b"{}"
    ).headers._list
    return entries[:-1] if entries[-1] == (b"Content-Length", b"content-length", b"2") else None


def _post(
    url: httpx.URL, head: list[tuple[bytes, bytes, bytes]], content: bytes, timeout: Any
) -> httpx.Request:
    """``httpx.Request("POST", url, headers=..., content=content, extensions={"timeout": timeout})``
    made by setting what its constructor sets, from the deployment's header entries made once (``_head``).

    The constructor parses the headers twice and walks them four times for the two it adds: about
    10 us of every sync call. ``_PLAIN_REQUEST`` checks at import that this makes the same object."""
    headers: httpx.Headers = _new_object(httpx.Headers)
    headers._list = [*head, (b"Content-Length", b"content-length", b"%d" % len(content))]
    headers._encoding = None
    request: httpx.Request = _new_object(httpx.Request)
    request.method = "POST"
    request.url = url
    request.headers = headers
    request.extensions = {"timeout": timeout}
    request.stream = httpx.ByteStream(content)
    request._content = content
    return request


def _same_request(a: httpx.Request, b: httpx.Request) -> bool:
    """Whether two requests hold the same state, attribute by attribute (``_PLAIN_REQUEST``)."""

    def state(request: httpx.Request) -> dict[str, Any]:
        fields = dict(vars(request))
        fields["headers"] = vars(request.headers)
        fields["stream"] = (type(request.stream), vars(request.stream))
        return fields

    return state(a) == state(b)


_new_object = object.__new__
_SAMPLE_URL: Final = httpx.URL("https://example.test:8443/v1/chat/completions?api-version=1")
_SAMPLE_HEADERS: Final = httpx.Headers(
    {"content-type": "application/json", "authorization": "Bearer k", "x-a": "1"}
)
_PLAIN_REQUEST = True  # until checked, so that _head answers for the check below
# Whether _post makes what httpx.Request's constructor makes, with this httpx (checked once, here).
_PLAIN_REQUEST = _same_request(
    _post(_SAMPLE_URL, _head(_SAMPLE_URL, _SAMPLE_HEADERS) or [], b'{"a":"\xc3\xa9"}', {"read": 1.0}),
    httpx.Request(
        "POST",
        _SAMPLE_URL,
        headers=_SAMPLE_HEADERS,
        content=b'{"a":"\xc3\xa9"}',
        extensions={"timeout": {"read": 1.0}},
    ),
)


# json.dumps with options builds a JSONEncoder on every call; these are built once (same output).
_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_COMPACT_ASCII: Final = json.JSONEncoder(separators=(",", ":"))


# The C encoder JSONEncoder.encode ends up calling for _COMPACT (None without the C accelerator).
_C_MAKE_ENCODER: Final[Any] = getattr(json.encoder, "c_make_encoder", None)


def _compact(payload: JSON) -> str:
    """``_COMPACT.encode(payload)`` without its Python-level set-up per call: the same C encoder with
    the same arguments, a fresh cycle check (a caller's messages may refer to themselves)."""
    if _C_MAKE_ENCODER is None:
        return _COMPACT.encode(payload)
    encode = _C_MAKE_ENCODER({}, _COMPACT.default, _ENCODE_STR, None, ":", ",", False, False, True)
    return "".join(encode(payload, 0))


_ENCODE_STR: Final = json.encoder.encode_basestring


def _encode(payload: JSON) -> bytes:
    try:
        return _compact(payload).encode()
    except UnicodeEncodeError:
        # A lone surrogate (text cut between the halves of a pair) has no UTF-8 form: send the
        # body \u-escaped instead, which JSON allows and every server decodes to the same string.
        return _COMPACT_ASCII.encode(payload).encode()


# json.loads' own scanner (its default decoder's settings), called directly by _loads.
_SCAN: Final[Callable[[str, int], tuple[Any, int]]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(body: bytes) -> Any:
    """``json.loads(body)`` for the usual answer, UTF-8 with nothing around the value, without what
    json.loads does in Python first (encoding detection, two whitespace matches): a third of its
    cost for an answer's size. Anything else (a BOM, UTF-16, whitespace, an error) is json.loads' own,
    result and exception alike."""
    try:
        text = body.decode()
        data, end = _SCAN(text, 0)
    except (ValueError, StopIteration):
        return json.loads(body)
    if end != len(text):
        return json.loads(body)
    return data


def _timeout_dict(options: CallOptions) -> dict[str, float | None]:
    timeout = options.timeout
    if timeout is None:
        return dict(_DEFAULT_TIMEOUT_DICT)
    # A Timeout is read as is (as_dict makes a new dict); a number or tuple goes through httpx's parsing.
    return timeout.as_dict() if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout).as_dict()


_DEFAULT_TIMEOUT_DICT = httpx.Timeout(DEFAULT_TIMEOUT).as_dict()


class _Ending:
    """How far a stream got towards its end.

    ``[DONE]`` is a courtesy, not the proof: a stream whose choice ended (``finish_reason``) and
    whose usage arrived (when it was asked for) is complete even if the connection closes before
    ``[DONE]``. Without them, the end of the connection is a cut.
    """

    __slots__ = ("finished", "usage", "usage_expected")

    def __init__(self, body: JSON) -> None:
        options = body.get("stream_options")
        self.usage_expected = isinstance(options, dict) and bool(options.get("include_usage"))
        self.finished = False
        self.usage = False

    def see(self, chunk: JSON) -> None:
        if chunk.get("usage"):
            self.usage = True
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("finish_reason"):
                self.finished = True

    @property
    def complete(self) -> bool:
        return self.finished and (self.usage or not self.usage_expected)


class _StreamDone(Exception):
    """Internal signal: the provider sent its terminal ``[DONE]`` event."""


def _stream_error(chunk: JSON, request: httpx.Request) -> openai.APIError:
    error = chunk.get("error")
    message = error.get("message") if isinstance(error, dict) else str(error)
    return openai.APIError(f"The provider reported an error mid-stream: {message}", request, body=error)


def _interrupted(request: httpx.Request) -> openai.APIConnectionError:
    return openai.APIConnectionError(
        message="The provider's stream ended before its terminal event.", request=request
    )


def _with_limits(data: JSON, deployment: Deployment, headers: Any) -> JSON:
    """An answer with the provider's x-ratelimit-* headers, for a deployment whose tpm/rpm the router
    counts (``Deployment.rate_limits``); as is otherwise."""
    if deployment.rate_limits:
        data[RATE_LIMITS] = rate_limit_headers(headers)
    return data


def _limits_chunk(deployment: Deployment, headers: Any) -> JSON | None:
    """A stream's first chunk: the provider's x-ratelimit-* headers (``_with_limits``), or None."""
    return {RATE_LIMITS: rate_limit_headers(headers)} if deployment.rate_limits else None


def _native(deployment: Deployment, body: JSON) -> bool:
    """Whether this call goes to the deployment's ``/responses`` (see ``_build``)."""
    return deployment.responses and NATIVE_RESPONSES in body


def _url_and_headers(deployment: Deployment) -> tuple[str, dict[str, str]]:
    base = (deployment.api_base or "").rstrip("/")
    headers = {"content-type": "application/json", "accept": "application/json"}
    if deployment.adapter == "azure":
        version = deployment.api_version or "2024-10-21"
        url = f"{base}/openai/deployments/{deployment.model}/chat/completions?api-version={version}"
        if deployment.api_key:
            headers["api-key"] = deployment.api_key
    else:
        url = f"{base}/chat/completions"
        if deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
    headers.update(deployment.headers)
    return url, headers


def default_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's CAs, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``),
    built once per process and value of those variables, for every client the router builds itself.

    Loading the CA bundle is most of building an ``httpx.Client`` (about 45 ms here), and every
    ``router.OpenAI`` built one. An ``SSLContext`` may serve any number of connections and clients;
    this one is never handed out, so nothing changes it after it is built.
    """
    return _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _ssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    # The variables are the cache's key; httpx reads them itself, as it does for a client.
    return httpx.create_ssl_context()


def default_http_client(**kwargs: Any) -> httpx.Client:
    kwargs.setdefault("verify", default_ssl_context())
    client = httpx.Client(
        timeout=DEFAULT_TIMEOUT,
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        **kwargs,
    )
    if type(getattr(client, "_cookies", None)) is httpx.Cookies and not client.cookies:
        client._cookies = _Cookies()  # what the ``cookies`` property returns; see _Cookies
    return client


class _Cookies(httpx.Cookies):
    """A client's cookie jar that reads a response's cookies only when it sets some.

    ``httpx.Client`` hands every response to its jar, and the stdlib's ``CookieJar`` builds a urllib
    request and message for it before finding no ``Set-Cookie`` header: about 14 us of a sync call.
    Without the header it would add nothing, so skipping it changes no cookie.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class OpenAICompatible(_OpenAICompatibleBase):
    """Sync driver."""

    def __init__(self, http_client: httpx.Client | None = None) -> None:
        super().__init__()
        self._owns_client = http_client is None
        self._client = http_client or default_http_client()

    def complete(self, deployment: Deployment, body: JSON, options: CallOptions) -> JSON:
        request = self._build(deployment, body, options)
        try:
            response = self._client.send(request)
        except httpx.HTTPError as exc:
            raise connection_error(exc, request) from exc
        return _with_limits(self._read(response, _native(deployment, body)), deployment, response.headers)

    def stream(self, deployment: Deployment, body: JSON, options: CallOptions) -> Iterator[JSON]:
        request = self._build(deployment, body, options)
        try:
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise connection_error(exc, request) from exc
        head = _limits_chunk(deployment, response.headers)
        if _native(deployment, body):
            return self._iterate_native(response, head)
        return self._iterate(response, _Ending(body), head)

    def _iterate_native(self, response: httpx.Response, head: JSON | None) -> Iterator[JSON]:
        reader = responses_wire.EventReader(response.request)
        try:
            if response.status_code >= 400:
                response.read()
                raise status_error_from_response(response)
            if head is not None:
                yield head
            for line in response.iter_lines():
                chunk = reader.chunk(line)
                if chunk is not None:
                    yield chunk
            if not reader.ended:
                raise responses_wire.interrupted(response.request)
        except httpx.HTTPError as exc:
            if reader.ended:
                return
            raise connection_error(exc, response.request) from exc
        finally:
            response.close()

    def _iterate(self, response: httpx.Response, ending: _Ending, head: JSON | None) -> Iterator[JSON]:
        request = response.request
        try:
            if response.status_code >= 400:
                response.read()
                raise status_error_from_response(response)
            if head is not None:
                yield head
            for line in response.iter_lines():
                chunk = self._event(line, lambda: request)
                if chunk is not None:
                    ending.see(chunk)
                    yield chunk
            if not ending.complete:
                raise _interrupted(request)
        except _StreamDone:
            return
        except httpx.HTTPError as exc:
            if ending.complete:
                return  # the answer was whole; only the connection's goodbye was lost
            raise connection_error(exc, response.request) from exc
        finally:
            response.close()

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


class AsyncOpenAICompatible(_OpenAICompatibleBase):
    """Async driver."""

    def __init__(
        self, http_client: httpx.AsyncClient | None = None, *, limits: TransportLimits | None = None
    ) -> None:
        super().__init__()
        self._owns_client = http_client is None
        # Default: aiohttp (providers/_aiohttp.py), which survives cancellation; a given httpx client as is.
        self._client: httpx.AsyncClient | AiohttpTransport = http_client or AiohttpTransport(limits)

    async def complete(self, deployment: Deployment, body: JSON, options: CallOptions) -> JSON:
        client = self._client
        if isinstance(client, AiohttpTransport) and not options.extra_query and not _native(deployment, body):
            return await self._post(client, deployment, body, options)
        request = self._build(deployment, body, options)
        try:
            response = await send(client, request, stream=False)
        except httpx.HTTPError as exc:
            raise connection_error(exc, request) from exc
        return _with_limits(self._read(response, _native(deployment, body)), deployment, response.headers)

    def _wire(
        self, deployment: Deployment, body: JSON, options: CallOptions
    ) -> tuple[str, Sequence[tuple[str, str]], bytes, Callable[[], httpx.Request]]:
        """What the aiohttp fast path sends (URL, headers, encoded body), and how to build the
        equivalent httpx.Request, only when an error or a non-plain answer needs one."""
        prepared = self._prepared.get(id(deployment)) or self._prepare_new(deployment)
        url, payload = _target(prepared.url, deployment, body)
        content = self._encode(payload)
        headers: Sequence[tuple[str, str]] = prepared.wire_headers
        if options.extra_headers:
            headers = self._headers(deployment, options).multi_items()

        # A partial, not a closure: it lives as long as the call, and a closure's five cells were five
        # more objects per request in flight for the garbage collector to promote and traverse.
        request = partial(self._build, deployment, body, options, content)
        return prepared.wire_url if url is prepared.url else str(url), headers, content, request

    async def _post(
        self, client: AiohttpTransport, deployment: Deployment, body: JSON, options: CallOptions
    ) -> JSON:
        """``complete`` over aiohttp without httpx objects, unless an error or a compressed body needs
        them: same bytes on the wire, same answers and errors."""
        url, headers, content, request = self._wire(deployment, body, options)
        try:
            timeout = client.client_timeout(_timeout_dict(options))
            reply: Reply = await client.post(url, headers, content, timeout, request)
        except httpx.HTTPError as exc:
            raise connection_error(exc, exc.request) from exc
        if reply.plain:
            try:
                data = _loads(reply.body)
            except ValueError:
                data = None
            if isinstance(data, dict) and "choices" in data:
                return _with_limits(data, deployment, reply.headers) if deployment.rate_limits else data
        # An error, a compressed body, or a body that is not an answer: read the httpx way, which
        # raises the right error with the response attached.
        response = reply.to_httpx(request())
        await response.aread()
        return _with_limits(self._read(response), deployment, response.headers)

    async def stream(self, deployment: Deployment, body: JSON, options: CallOptions) -> AsyncIterator[JSON]:
        client = self._client
        if isinstance(client, AiohttpTransport) and not options.extra_query and not _native(deployment, body):
            # A plain 200 event stream is read straight off aiohttp, without httpx objects; anything
            # else (an error status, a compressed or non-SSE body) becomes the httpx.Response below.
            url, headers, content, make = self._wire(deployment, body, options)
            try:
                timeout = client.client_timeout(_timeout_dict(options))
                raw = await client.open_stream(url, headers, content, timeout, make)
            except httpx.HTTPError as exc:
                raise connection_error(exc, exc.request) from exc
            if plain_event_stream(raw):
                ending = _Ending(body)
                whole = False  # read to its end: the connection may be pooled, else it is dropped
                try:
                    if deployment.rate_limits:
                        yield {RATE_LIMITS: rate_limit_headers(raw.raw_headers)}
                    async for line in event_lines(raw, make):
                        chunk = self._event(line, make)
                        if chunk is not None:
                            ending.see(chunk)
                            yield chunk
                    if not ending.complete:
                        raise _interrupted(make())
                    whole = True
                except _StreamDone:
                    whole = True
                except httpx.HTTPError as exc:
                    if not ending.complete:
                        raise connection_error(exc, exc.request) from exc
                finally:
                    if whole:
                        raw.release()  # pools the connection when its body ended, closes it otherwise
                    else:
                        raw.close()
                return
            request = make()
            response = to_httpx(raw, request)
        else:
            request = self._build(deployment, body, options)
            try:
                response = await send(client, request, stream=True)
            except httpx.HTTPError as exc:
                raise connection_error(exc, request) from exc
        head = _limits_chunk(deployment, response.headers)
        if _native(deployment, body):
            reader = responses_wire.EventReader(response.request)
            try:
                if response.status_code >= 400:
                    await response.aread()
                    raise status_error_from_response(response)
                if head is not None:
                    yield head
                async for line in response.aiter_lines():
                    chunk = reader.chunk(line)
                    if chunk is not None:
                        yield chunk
                if not reader.ended:
                    raise responses_wire.interrupted(response.request)
            except httpx.HTTPError as exc:
                if not reader.ended:
                    raise connection_error(exc, response.request) from exc
            finally:
                await response.aclose()
            return
        ending = _Ending(body)
        try:
            if response.status_code >= 400:
                await response.aread()
                raise status_error_from_response(response)
            if head is not None:
                yield head
            async for line in response.aiter_lines():
                chunk = self._event(line, lambda: request)
                if chunk is not None:
                    ending.see(chunk)
                    yield chunk
            if not ending.complete:
                raise _interrupted(request)
        except _StreamDone:
            return
        except httpx.HTTPError as exc:
            if ending.complete:
                return  # the answer was whole; only the connection's goodbye was lost
            raise connection_error(exc, response.request) from exc
        finally:
            await response.aclose()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()
