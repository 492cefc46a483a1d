"""respx for openai 3.x: its clients send through httpx2, which respx does not intercept.

Loaded as a pytest plugin: respx's default (httpcore) mocker also patches httpx2's transports,
translating each httpx2 request to httpx for respx's routes and each mocked response back to httpx2.
Without httpx2 (openai 2.x) it does nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
from respx.mocks import HTTPCoreMocker

try:
    import httpx2
except ImportError:  # openai 2.x: httpx only
    httpx2 = None

_core: dict[str, Any] = {
    name: getattr(HTTPCoreMocker, name).__func__
    for name in (
        "to_httpx_request",
        "prepare_sync_request",
        "prepare_async_request",
        "from_sync_httpx_response",
        "from_async_httpx_response",
    )
}


def _ours(kwargs: dict[str, Any]) -> bool:
    return httpx2 is not None and isinstance(kwargs.get("request"), httpx2.Request)


def _to_httpx_request(cls: Any, **kwargs: Any) -> Any:
    if not _ours(kwargs):
        return _core["to_httpx_request"](cls, **kwargs)
    request = kwargs["request"]
    return httpx.Request(
        request.method,
        str(request.url),
        headers=request.headers.raw,
        content=request.read(),
        extensions=dict(request.extensions),
    )


def _prepare_sync(cls: Any, httpx_request: Any, **kwargs: Any) -> Any:
    if not _ours(kwargs):
        return _core["prepare_sync_request"](cls, httpx_request, **kwargs)
    httpx_request.read()
    return httpx_request, kwargs


async def _prepare_async(cls: Any, httpx_request: Any, **kwargs: Any) -> Any:
    if not _ours(kwargs):
        return await _core["prepare_async_request"](cls, httpx_request, **kwargs)
    await httpx_request.aread()
    return httpx_request, kwargs


def _from_sync(cls: Any, httpx_response: Any, target: Any, **kwargs: Any) -> Any:
    if not _ours(kwargs):
        return _core["from_sync_httpx_response"](cls, httpx_response, target, **kwargs)
    httpx_response.read()
    return httpx2.Response(
        httpx_response.status_code, headers=httpx_response.headers.raw, content=httpx_response.content
    )


async def _from_async(cls: Any, httpx_response: Any, target: Any, **kwargs: Any) -> Any:
    if not _ours(kwargs):
        return await _core["from_async_httpx_response"](cls, httpx_response, target, **kwargs)
    await httpx_response.aread()
    return httpx2.Response(
        httpx_response.status_code, headers=httpx_response.headers.raw, content=httpx_response.content
    )


if httpx2 is not None:
    HTTPCoreMocker.to_httpx_request = classmethod(_to_httpx_request)  # type: ignore[method-assign,assignment]
    HTTPCoreMocker.prepare_sync_request = classmethod(_prepare_sync)  # type: ignore[method-assign,assignment]
    HTTPCoreMocker.prepare_async_request = classmethod(_prepare_async)  # type: ignore[method-assign,assignment]
    HTTPCoreMocker.from_sync_httpx_response = classmethod(_from_sync)  # type: ignore[method-assign,assignment]
    HTTPCoreMocker.from_async_httpx_response = classmethod(_from_async)  # type: ignore[method-assign,assignment]
    HTTPCoreMocker.add_targets(
        "httpx2._transports.default.HTTPTransport", "httpx2._transports.default.AsyncHTTPTransport"
    )
