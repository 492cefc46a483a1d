"""A ``create`` call made into a Request (route, body, transport options), and usage read from
provider answers. No I/O."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
import openai

from policies.plan import DEFAULT_FEATURE, RouteRequest, describe_request
from providers.base import JSON, CallOptions, Timeout, as_timeout
from providers.tiers import reported_tier
from router._routing import Usage
from router._validation import messages_list, validate_params

# Keyword arguments of ``create`` that steer the router or the transport rather than the model.
_TRANSPORT: Final = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})


# openai's NOT_GIVEN / omit sentinels are falsy singletons of their own classes.
_SENTINELS: Final = (openai.NotGiven, openai.Omit)


@dataclass(frozen=True, slots=True)
class Request:
    """A normalized ``create`` call."""

    request_id: str
    route: RouteRequest
    body: JSON
    options: CallOptions
    stream: bool
    # Whether the caller asked for the usage chunk; we always ask providers for it, to price the call.
    caller_wants_usage: bool


def normalize(kwargs: Mapping[str, Any], default_timeout: Timeout) -> Request:
    """Turn ``create(**kwargs)`` into a Request: feature from metadata, route from model."""
    params = {k: v for k, v in kwargs.items() if v is not None and not isinstance(v, _SENTINELS)}
    if "messages" not in params:
        raise TypeError("create() missing required keyword argument: 'messages'")
    if "model" not in params:
        raise TypeError(
            "create() missing required keyword argument: 'model' (a route such as 'auto', or a model)"
        )
    # Validated before anything is reserved or sent (router._validation), as OpenAI's API would.
    params["messages"] = messages_list(params["messages"])
    validate_params(params)
    model: str = params.pop("model")
    stream: bool = params.pop("stream", False)
    feature = DEFAULT_FEATURE
    metadata = params.pop("metadata", None)
    if metadata:
        metadata = dict(metadata)
        feature = metadata.pop("feature", DEFAULT_FEATURE)
        if metadata:
            params["metadata"] = metadata
    timeout = params.pop("timeout", None)
    options = CallOptions(
        timeout=as_timeout(timeout) if timeout is not None else default_timeout,
        extra_headers=params.pop("extra_headers", None),
        extra_query=params.pop("extra_query", None),
    )
    extra_body = params.pop("extra_body", None)
    if extra_body:
        validate_params(extra_body)  # n, max_tokens... sent this way bound the cost all the same
        params.update(extra_body)
    caller_wants_usage = False
    if stream:
        stream_options = dict(params.get("stream_options") or {})
        caller_wants_usage = bool(stream_options.get("include_usage"))
        params["stream"] = True
        params["stream_options"] = {**stream_options, "include_usage": True}
    return Request(
        request_id=f"req_{os.urandom(12).hex()}",
        route=describe_request(model, feature, params, stream),
        body=params,
        options=options,
        stream=stream,
        caller_wants_usage=caller_wants_usage,
    )


def usage_of(data: object, service_tier: object = None) -> Usage | None:
    """Read OpenAI-format usage, including cached prompt and reasoning tokens. Never raises.

    ``service_tier``: the response's own field, the tier the provider says it served (docs/flex.md).

    The provider's figures are untrusted input: anything but a non-negative whole number is noted
    in ``suspect`` (and counted as 0 here; ``Session.vetted`` then charges the worst case).
    """
    if not data:
        return None
    if not isinstance(data, Mapping):
        return Usage(suspect=f"usage is {type(data).__name__}, not an object")
    problems: list[str] = []
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    if not isinstance(prompt_details, Mapping):
        problems.append("prompt_tokens_details is not an object")
        prompt_details = {}
    if not isinstance(completion_details, Mapping):
        problems.append("completion_tokens_details is not an object")
        completion_details = {}
    usage = Usage(
        prompt_tokens=_tokens(data, "prompt_tokens", problems),
        completion_tokens=_tokens(data, "completion_tokens", problems),
        cached_tokens=_tokens(prompt_details, "cached_tokens", problems),
        reasoning_tokens=_tokens(completion_details, "reasoning_tokens", problems),
        service_tier=reported_tier(service_tier),
    )
    if problems:
        return Usage(suspect="; ".join(problems))
    return usage


def _tokens(data: Mapping[str, Any], key: str, problems: list[str]) -> int:
    value = data.get(key)
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    problems.append(f"{key}={str(value)[:40]!r} is not a non-negative whole number")
    return 0


def capped_timeout(timeout: Timeout, remaining: float, idle: float | None) -> Timeout:
    """``timeout`` with no phase longer than the time left, and reads bounded by ``idle``.

    Returns ``timeout`` itself when nothing needs capping (no allocation). Every call under a deadline
    shorter than the client's timeout caps it, so this runs once per attempt: no closure, no
    generator, and the result made without ``httpx.Timeout``'s argument parsing (``_timeout_of``).
    """
    if isinstance(timeout, httpx.Timeout):
        connect, read, write, pool = timeout.connect, timeout.read, timeout.write, timeout.pool
    else:
        connect = read = write = pool = timeout
    read_cap = remaining if idle is None else min(idle, remaining)
    if (
        connect is not None
        and connect <= remaining
        and read is not None
        and read <= remaining
        and write is not None
        and write <= remaining
        and pool is not None
        and pool <= remaining
        and read <= read_cap
    ):
        return timeout
    return _timeout_of(
        remaining if connect is None else min(connect, remaining),
        read_cap if read is None else min(read, read_cap),
        remaining if write is None else min(write, remaining),
        remaining if pool is None else min(pool, remaining),
    )


def _timeout_of(connect: float, read: float, write: float, pool: float) -> httpx.Timeout:
    """``httpx.Timeout(connect=..., read=..., write=..., pool=...)``: its four attributes set directly,
    when that makes the same object (checked once, at import, against this httpx); else the real call."""
    if not _PLAIN_TIMEOUT:
        return httpx.Timeout(connect=connect, read=read, write=write, pool=pool)
    timeout: httpx.Timeout = _new_object(httpx.Timeout)
    timeout.connect, timeout.read, timeout.write, timeout.pool = connect, read, write, pool
    return timeout


_new_object = object.__new__
# Whether an httpx.Timeout is its four phases and nothing else (httpx 0.2x), so that _timeout_of's
# shortcut makes what the constructor would.
_PLAIN_TIMEOUT: Final = vars(httpx.Timeout(connect=1.0, read=2.0, write=3.0, pool=4.0)) == {
    "connect": 1.0,
    "read": 2.0,
    "write": 3.0,
    "pool": 4.0,
}
