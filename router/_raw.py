"""``with_raw_response`` / ``with_streaming_response`` for routed calls.

openai's wrappers (``to_raw_response_wrapper``, ``to_streamed_response_wrapper``) call the wrapped
method with a private header, ``X-Stainless-Raw-Response: true`` (raw) or ``stream`` (streamed),
and expect a response object back instead of the parsed value. A routed call has no HTTP response
of its own, so we build one: status 200, ``x-request-id`` (the routing record's id) and
``x-router-model`` (the model that answered), and a body with the answer (JSON, or the stream's
server-sent events). ``.parse()`` returns the routed value itself, with its ``.routing``.

The private parts of openai used here (the header's name, the response classes and their
constructor) are pinned by tests/router/test_raw_response.py.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, Final, Generic, Literal, TypeVar, cast, overload

import httpx
import openai
from openai._constants import RAW_RESPONSE_HEADER
from openai._legacy_response import LegacyAPIResponse
from openai._models import FinalRequestOptions
from openai._response import APIResponse, AsyncAPIResponse

from providers.errors import ROUTER_URL
from router._routing import RoutingRecord

_R = TypeVar("_R")
_T = TypeVar("_T")

Mode = Literal["true", "stream"]

_OPTIONS: Final = FinalRequestOptions.construct(method="post", url="/chat/completions")


def raw_mode(kwargs: MutableMapping[str, Any]) -> Mode | None:
    """Take openai's raw-response marker out of ``extra_headers`` (it must not reach a provider)."""
    headers: Mapping[str, str] | None = kwargs.get("extra_headers")
    if not headers or RAW_RESPONSE_HEADER not in headers:
        return None
    rest = dict(headers)
    mode = rest.pop(RAW_RESPONSE_HEADER)
    kwargs["extra_headers"] = rest or None
    return "stream" if mode == "stream" else "true"


def _http_response(value: Any) -> httpx.Response:
    stream_response = getattr(value, "response", None)
    if isinstance(stream_response, httpx.Response):  # a routed stream carries its own
        return stream_response
    headers = {"content-type": "application/json"}
    routing: RoutingRecord | None = getattr(value, "routing", None)
    if routing is not None:  # a completion (model lists have no record)
        headers["x-request-id"] = routing.request_id
        headers["x-router-model"] = routing.model or ""
    return httpx.Response(
        200,
        headers=headers,
        content=value.model_dump_json(exclude_unset=True, warnings=False).encode(),
        request=httpx.Request("POST", ROUTER_URL),
    )


def _retries(value: Any) -> int:
    routing: RoutingRecord | None = getattr(value, "routing", None)
    return max(len(routing.attempts) - 1, 0) if routing is not None else 0


def _fields(value: Any, client: Any, *, stream: bool) -> dict[str, Any]:
    """openai's response constructor arguments for a routed answer (no HTTP call of its own)."""
    return {
        "raw": _http_response(value),
        "cast_to": type(value),
        "client": client,
        "stream": stream,
        "stream_cls": None,
        "options": _OPTIONS,
        "retries_taken": _retries(value),
    }


class _Parsed(Generic[_R]):
    """``parse()`` of a sync response: the routed value itself (with ``.routing``); ``parse(to=...)``
    is openai's, from the body."""

    _value: _R

    @overload
    def parse(self, *, to: type[_T]) -> _T: ...

    @overload
    def parse(self) -> _R: ...

    def parse(self, *, to: type[_T] | None = None) -> _R | _T:
        # super(): the openai response class this mixes into (see RawResponse's bases).
        return self._value if to is None else cast(Any, super()).parse(to=to)


class RawResponse(_Parsed[_R], LegacyAPIResponse[_R]):
    """openai's raw response (``with_raw_response``) around a routed answer."""

    def __init__(self, value: _R, client: Any) -> None:
        super().__init__(
            **_fields(value, client, stream=isinstance(value, openai.Stream | openai.AsyncStream))
        )
        self._value = value


class StreamedResponse(_Parsed[_R], APIResponse[_R]):
    """openai's streamed response (``with_streaming_response``) around a routed answer."""

    def __init__(self, value: _R, client: Any) -> None:
        super().__init__(**_fields(value, client, stream=isinstance(value, openai.Stream)))
        self._value = value


class AsyncStreamedResponse(AsyncAPIResponse[_R]):
    """openai's async streamed response (``with_streaming_response``) around a routed answer."""

    def __init__(self, value: _R, client: Any) -> None:
        super().__init__(**_fields(value, client, stream=isinstance(value, openai.AsyncStream)))
        self._value = value

    @overload
    async def parse(self, *, to: type[_T]) -> _T: ...

    @overload
    async def parse(self) -> _R: ...

    async def parse(self, *, to: type[_T] | None = None) -> _R | _T:
        return self._value if to is None else await super().parse(to=to)


def wrap(mode: Mode, value: Any, client: Any, *, asynchronous: bool) -> Any:
    if mode == "true":
        return RawResponse(value, client)
    if asynchronous:
        return AsyncStreamedResponse(value, client)
    return StreamedResponse(value, client)
