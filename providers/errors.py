"""The one place where provider failures become openai's exception classes.

Callers keep writing ``except openai.RateLimitError``; the router reads ``error_class`` to decide
whether to retry, fall back or raise. Every foreign error (httpx, litellm, a malformed body) is
mapped here, most specific first, and re-raised ``from`` the original.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

import httpx
import openai

ErrorClass = Literal[
    "rate_limited",
    "server",
    "timeout",
    "connection",
    "context_window",
    "content_filter",
    "content_policy",
    "auth",
    "not_found",
    "bad_request",
    "unknown",
]

_STATUS_CLASSES: Final[Mapping[int, type[openai.APIStatusError]]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}

# Phrases providers use for "the prompt is longer than the context window".
_CONTEXT_PHRASES: Final = (
    "context_length_exceeded",
    "maximum context length",
    "prompt is too long",
    "exceeds the maximum number of tokens",
    "context window",
    "too many tokens",
)

# Phrases of a request refused for its content: OpenAI's content_policy_violation, Azure's
# content_filter 400 ("...content management policy..."), safety-system wording.
_CONTENT_POLICY_PHRASES: Final = (
    "content_policy_violation",
    "content_filter",
    "content management policy",
    "safety system",
    "safety",
)


def status_error(status: int, body: object, response: httpx.Response) -> openai.APIStatusError:
    """Build openai's exception for an HTTP error status, exactly as the openai client would."""
    data = body.get("error", body) if isinstance(body, Mapping) else body
    message = f"Error code: {status} - {body}" if body is not None else f"Error code: {status}"
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        cls = openai.InternalServerError if status >= 500 else openai.APIStatusError
    return cls(message, response=response, body=data)


def status_error_from_response(response: httpx.Response) -> openai.APIStatusError:
    """Read an error response's body (JSON when it is) and map its status code."""
    text = response.text.strip()
    body: object = text or None
    with contextlib.suppress(ValueError):
        body = json.loads(text)
    return status_error(response.status_code, body, response)


def connection_error(exc: httpx.HTTPError, request: httpx.Request) -> openai.APIConnectionError:
    """Map an httpx transport failure: timeouts first, then everything else as a connection error."""
    if isinstance(exc, httpx.TimeoutException):
        return openai.APITimeoutError(request=request)
    return openai.APIConnectionError(message=f"Connection error: {type(exc).__name__}", request=request)


def malformed_response(response: httpx.Response, detail: str) -> openai.APIResponseValidationError:
    return openai.APIResponseValidationError(
        response=response, body=None, message=f"The provider sent a response that could not be read: {detail}"
    )


def error_class(exc: BaseException) -> ErrorClass:
    """Classify an (already translated) error for the retry and fallback decisions."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429:
            return "rate_limited"
        if status >= 500:
            return "server"
        if status in (401, 403):
            return "auth"
        if status == 404:
            return "not_found"
        if status in (400, 413, 422):
            if _mentions_context(exc):
                return "context_window"
            if _mentions(exc, _CONTENT_POLICY_PHRASES):
                # The request itself was refused for its content (the answer was never written).
                return "content_policy"
            return "bad_request"
        return "unknown"
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return "content_filter"
    if isinstance(exc, openai.APIResponseValidationError):
        return "server"
    return "unknown"


def _mentions_context(exc: openai.APIStatusError) -> bool:
    return _mentions(exc, _CONTEXT_PHRASES)


def _mentions(exc: openai.APIStatusError, phrases: tuple[str, ...]) -> bool:
    code = getattr(exc, "code", None)
    text = f"{code or ''} {exc.message}".lower()
    return any(phrase in text for phrase in phrases)


def from_litellm(exc: BaseException) -> BaseException:
    """Translate a litellm exception into the plain openai class with the provider's headers.

    litellm's own classes already subclass openai's, but carry a synthetic status: a Gemini 503
    arrives as 500, an Anthropic 529 as 500, a Gemini 403 as a BadRequestError, a connection reset
    as an InternalServerError, an unreadable body as a 422. The truth is further down the chain of
    causes litellm keeps (``__cause__``/``__context__``), so it is read there, most specific first:
    the provider's own HTTP response (its status and ``retry-after`` headers), then a transport
    timeout, a transport failure, a body that was not JSON; only then litellm's own status.
    """
    request = httpx.Request("POST", str(getattr(exc, "api_base", None) or "https://litellm.invalid"))
    causes = _causes(exc)
    provider = next((c.response for c in causes if isinstance(c, httpx.HTTPStatusError)), None)
    status = provider.status_code if provider is not None else getattr(exc, "status_code", None)
    if provider is None:
        if any(isinstance(c, httpx.TimeoutException) for c in causes):
            return openai.APITimeoutError(request=request)
        if any(isinstance(c, httpx.TransportError | ConnectionError) for c in causes):
            return openai.APIConnectionError(message=_litellm_message(exc), request=request)
        if any(isinstance(c, json.JSONDecodeError) for c in causes):
            return malformed_response(httpx.Response(200, request=request), _litellm_message(exc))
        if isinstance(exc, openai.APITimeoutError) or type(exc).__name__ == "Timeout":
            return openai.APITimeoutError(request=request)
        if isinstance(exc, openai.APIConnectionError) and not isinstance(status, int):
            return openai.APIConnectionError(message=_litellm_message(exc), request=request)
    if not isinstance(status, int) or status < 400:
        if isinstance(exc, openai.OpenAIError):
            return exc
        return openai.APIConnectionError(message=_litellm_message(exc), request=request)
    headers = _litellm_headers(exc)
    if provider is not None:
        headers.update(_kept_headers(provider.headers))
    message = _litellm_message(exc)
    body: dict[str, Any] = {"message": message, "type": type(exc).__name__}
    names = {type(c).__name__ for c in causes}
    if "ContextWindowExceededError" in names:
        body["code"] = "context_length_exceeded"
    elif "ContentPolicyViolationError" in names:
        body["code"] = "content_filter"
    response = httpx.Response(status, headers=headers, json={"error": body}, request=request)
    return status_error(status, {"error": body}, response)


def _causes(exc: BaseException, limit: int = 16) -> list[BaseException]:
    """``exc`` and what it was raised from (or while handling), outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < limit and all(current is not c for c in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _litellm_message(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)


def _litellm_headers(exc: BaseException) -> dict[str, str]:
    headers: dict[str, str] = {}
    response = getattr(exc, "response", None)
    if isinstance(response, httpx.Response):
        headers.update(response.headers)
    extra = getattr(exc, "litellm_response_headers", None)
    if isinstance(extra, Mapping | httpx.Headers):
        headers.update({str(k): str(v) for k, v in extra.items()})
    return _kept_headers(headers)


# Only what the router reads; litellm adds its own diagnostics headers.
_KEPT_HEADERS: Final = (
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-",
    "anthropic-ratelimit-",
    "x-request-id",
    "request-id",
)


def _kept_headers(headers: Mapping[str, str] | httpx.Headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(_KEPT_HEADERS)}


# OpenAI's x-ratelimit-reset-* durations, as Go prints them: "1s", "6m0s", "20ms", "1h2m3.5s", "1.5µs".
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|μs|ns|h|m|s)")
_UNIT_S: Final[Mapping[str, float]] = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 MICRO SIGN, what Go prints
    "μs": 1e-6,  # U+03BC GREEK SMALL LETTER MU
    "ns": 1e-9,
}
# Gemini puts its delay in the body: {"@type": "...RetryInfo", "retryDelay": "2s"} (the quotes may
# arrive JSON-escaped, when the body was quoted inside another error's message).
_RETRY_DELAY: Final = re.compile(r"retryDelay\\?['\"]?\s*[:=]\s*\\?['\"]?(\d+(?:\.\d+)?)s")


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration ("6m0s", "20ms"), or None when it is not one."""
    text = text.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)


def _header_seconds(name: str, value: str, now: float) -> float | None:
    """Seconds from now that one header names, or None when it names none (or nonsense: NaN, inf)."""
    seconds = _header_value(name, value.strip(), now)
    return seconds if seconds is not None and math.isfinite(seconds) else None


def _header_value(name: str, value: str, now: float) -> float | None:
    if name == "retry-after-ms":
        with contextlib.suppress(ValueError):
            return float(value) / 1000.0
        return None
    with contextlib.suppress(ValueError):
        return float(value)
    duration = parse_duration(value)
    if duration is not None:
        return duration
    # An HTTP date (Retry-After) or an RFC 3339 time (anthropic-ratelimit-*-reset).
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return email.utils.parsedate_to_datetime(value).timestamp() - now
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - now
    return None


def _remaining_header(reset: str) -> str | None:
    """The header that counts what is left of the limit a reset header belongs to."""
    if reset.startswith("x-ratelimit-reset-"):
        return "x-ratelimit-remaining-" + reset.removeprefix("x-ratelimit-reset-")
    if reset.startswith("anthropic-ratelimit-") and reset.endswith("-reset"):
        return reset.removesuffix("-reset") + "-remaining"
    return None


def _reset_wait(headers: httpx.Headers, now: float) -> float | None:
    """The wait the rate-limit reset headers imply.

    Providers send a reset for every limit (requests, tokens, ...) on every response, exhausted or
    not; OpenAI's token window can be minutes while the request window is a second. The longest
    reset among the limits whose ``remaining`` is 0 is the wait (every exhausted limit must reset);
    when none says 0 (a request larger than what is left is refused with tokens remaining), the
    soonest reset: after it, a retry has a chance, and waiting longer could not be justified.
    """
    exhausted: list[float] = []
    other: list[float] = []
    for name, value in headers.items():
        remaining_name = _remaining_header(name)
        if remaining_name is None:
            continue
        seconds = _header_seconds(name, value, now)
        if seconds is None:
            continue
        remaining = headers.get(remaining_name)
        if remaining is not None and remaining.strip() in ("0", "0.0"):
            exhausted.append(seconds)
        else:
            other.append(seconds)
    if exhausted:
        return max(exhausted)
    return min(other) if other else None


def retry_after_s(exc: BaseException, now: float) -> float | None:
    """How long the provider asked us to wait before calling again, or None when it did not say.

    Precedence follows the providers' docs: ``retry-after-ms`` (most precise), ``retry-after``
    (seconds or an HTTP date), then the rate-limit reset headers (``x-ratelimit-reset-*``,
    ``anthropic-ratelimit-*-reset``; see ``_reset_wait``), then Gemini's ``retryDelay`` in the
    body. ``now`` is Unix time, for the date forms. Never negative: a date in the past means now.
    """
    response = getattr(exc, "response", None)
    headers = response.headers if isinstance(response, httpx.Response) else httpx.Headers()
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value is not None:
            seconds = _header_seconds(name, value, now)
            if seconds is not None:
                return max(seconds, 0.0)
    reset = _reset_wait(headers, now)
    if reset is not None:
        return max(reset, 0.0)
    body = getattr(exc, "body", None)
    match = _RETRY_DELAY.search(json.dumps(body) if isinstance(body, Mapping | list) else str(body or ""))
    if match is None:
        match = _RETRY_DELAY.search(str(getattr(exc, "message", "")))
    return float(match.group(1)) if match else None
