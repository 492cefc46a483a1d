"""The one place where provider failures become openai's exception classes.

Callers keep writing ``except openai.RateLimitError``; the router reads ``error_class`` to decide
whether to retry, fall back or raise. Every foreign error (httpx, litellm, a malformed body) is
mapped here, most specific first, and re-raised ``from`` the original, in OpenAI's own error shape
(``status_code``, ``code``, ``type``, ``param``, ``body``) as ``providers.error_kinds`` tabulates it.
Every openai error object the router builds itself comes from ``make_error``/``error_response``.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import httpx
import openai

from providers.error_kinds import KINDS, ErrorClass, Kind

if TYPE_CHECKING:
    # For the annotation only: the record is the router's, and nothing here imports it at run time.
    from router._routing import RoutingRecord

__all__ = [
    "ROUTER_URL",
    "ErrorClass",
    "RouterError",
    "connection_failed",
    "error_class",
    "error_request",
    "error_response",
    "from_litellm",
    "make_error",
    "retry_after_s",
    "status_error",
    "status_error_from_response",
    "timeout_error",
]


class RouterError(openai.OpenAIError):
    """Base of every error the router raises itself (not one a provider sent).

    Defined in the lowest layer so that ``policies.PolicyError`` can subclass it too; ``router``
    re-exports it. ``routing`` is the request's decision record when there was a request.
    """

    routing: RoutingRecord | None = None


# The URL on the requests of errors no provider answered (the router's own, a transport failure).
ROUTER_URL: Final = "https://router.invalid/v1/chat/completions"


def error_request(url: str | None = None) -> httpx.Request:
    """The request an openai error object points at: the provider's URL when known, else the router's."""
    return httpx.Request("POST", url or ROUTER_URL)


def error_response(
    status: int,
    error: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    url: str | None = None,
) -> httpx.Response:
    """The HTTP response an openai status error carries: ``{"error": error}`` (no body when None)."""
    request = error_request(url)
    if error is None:
        return httpx.Response(status, headers=headers, request=request)
    return httpx.Response(status, headers=headers, json={"error": dict(error)}, request=request)


_UNSET: Final[Any] = object()


def error_body(
    kind: Kind,
    message: str,
    *,
    code: str | None = _UNSET,
    type: str | None = _UNSET,
    param: str | None = _UNSET,
) -> dict[str, Any]:
    """OpenAI's error object for ``kind``: its four keys, from the table unless given."""
    row = KINDS[kind]
    return {
        "message": message,
        "type": row.type if type is _UNSET else type,
        "param": row.param if param is _UNSET else param,
        "code": row.code if code is _UNSET else code,
    }


def make_error(
    kind: Kind,
    message: str,
    *,
    status: int | None = None,
    code: str | None = _UNSET,
    type: str | None = _UNSET,
    param: str | None = _UNSET,
    headers: Mapping[str, str] | None = None,
    url: str | None = None,
) -> openai.APIError:
    """The exception a caller of the real OpenAI API would get for ``kind``, built as openai builds it."""
    row = KINDS[kind]
    status = status if status is not None else row.status
    if status is None:
        if issubclass(row.exception, openai.APITimeoutError):
            return timeout_error(message, url=url)
        return connection_failed(message, url=url)
    body = error_body(kind, message, code=code, type=type, param=param)
    return status_error(status, {"error": body}, error_response(status, body, headers=headers, url=url))


def timeout_error(message: str = "", *, url: str | None = None) -> openai.APITimeoutError:
    """openai's timeout (no response, so no body); ``message`` replaces "Request timed out." when given."""
    error = openai.APITimeoutError(request=error_request(url))
    if message:
        error.message = message
        error.args = (message,)
    return error


def connection_failed(message: str, *, url: str | None = None) -> openai.APIConnectionError:
    """openai's connection error: the call failed without a response."""
    return openai.APIConnectionError(message=message, request=error_request(url))


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


def status_error(status: int, body: object, response: httpx.Response) -> openai.APIStatusError:
    """Build openai's exception for an HTTP error status, exactly as the openai client would.

    The message is openai's (``Error code: 429 - {body}``, the body as the provider sent it); the
    error object (``.body``, hence ``.code``, ``.type``, ``.param``) gets OpenAI's keys where the
    provider left them out, from the error table, so ``exc.code == "rate_limit_exceeded"`` holds for
    any OpenAI-compatible provider that answers 429 with a bare message.
    """
    data = body.get("error", body) if isinstance(body, Mapping) else body
    message = f"Error code: {status} - {body}" if body is not None else f"Error code: {status}"
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        cls = openai.InternalServerError if status >= 500 else openai.APIStatusError
    return cls(message, response=response, body=_openai_shaped(status, data))


def _openai_shaped(status: int, data: object) -> dict[str, Any]:
    """The provider's error object with OpenAI's four keys (its own values kept where they fit)."""
    error = dict(data) if isinstance(data, Mapping) else {}
    text = error.get("message")
    if not isinstance(text, str):
        detail = error.get("detail", data if not isinstance(data, Mapping) else None)
        text = detail if isinstance(detail, str) else json.dumps(detail) if detail else ""
        text = text or f"Error code: {status}"
    code = error.get("code")
    kind = _kind_for(status, code if isinstance(code, str) else None, text)
    row = KINDS[kind]
    error["message"] = text
    if not isinstance(error.get("type"), str):
        error["type"] = row.type
    # A code the provider sent (OpenAI's null on a 401 without a key, say) is kept; a missing one, or
    # a null where OpenAI always sends one (the kinds a code identifies), comes from the table.
    if not isinstance(code, str) and ("code" not in error or code is not None or kind in _CODED):
        error["code"] = row.code if status == (row.status or status) else None
    if not (error.get("param") is None or isinstance(error.get("param"), str)):
        error["param"] = None
    error.setdefault("param", None)
    return error


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
        code = getattr(exc, "code", None)
        return _kind_for(exc.status_code, code if isinstance(code, str) else None, exc.message)
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return "content_filter"
    if isinstance(exc, openai.APIResponseValidationError):
        return "server"
    return "unknown"


# The kinds OpenAI always names with a code: its absence is the provider's dialect, not a meaning.
_CODED: Final = frozenset({"rate_limited", "context_window", "content_filter", "content_policy"})

# A request refused for its content: OpenAI's content_policy_violation, Azure's content_filter 400
# ("...content management policy..."), safety-system wording.
_CONTENT_PHRASES: Final = (
    "content_policy_violation",
    "content_filter",
    "content management policy",
    "safety",
)


def _kind_for(status: int, code: str | None, message: str) -> ErrorClass:
    """The error kind of an HTTP error: its status, then (for a 400) its code or wording."""
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status in (400, 413, 422):
        text = f"{code or ''} {message}".lower()
        if any(phrase in text for phrase in _CONTEXT_PHRASES):
            return "context_window"
        if any(phrase in text for phrase in _CONTENT_PHRASES):
            # The request itself was refused for its content (the answer was never written).
            return "content_policy"
        return "bad_request"
    return "unknown"


def from_litellm(exc: BaseException) -> BaseException:
    """Translate a litellm exception into the plain openai class, in OpenAI's shape, with the
    provider's headers and the provider's own message.

    litellm's own classes already subclass openai's, but carry a synthetic status: a Gemini 503
    arrives as 500, an Anthropic 529 as 500, a Gemini 403 as a BadRequestError, a connection reset
    as an InternalServerError, an unreadable body as a 422. The truth is further down the chain of
    causes litellm keeps (``__cause__``/``__context__``), so it is read there, most specific first:
    the provider's own HTTP response (its status and ``retry-after`` headers), then a transport
    timeout, a transport failure, a body that was not JSON; only then litellm's own status.

    Their messages read ``litellm.RateLimitError: litellm.RateLimitError: GeminiException - {raw
    JSON}``, with ``code`` None and ``type`` litellm's class name; the raw JSON is the provider's
    error, so its message (and Gemini's ``retryDelay``, as a ``retry-after`` header) is taken from
    there, and ``code``/``type``/``param`` come from the error table, as OpenAI would send them.
    """
    url = str(getattr(exc, "api_base", None) or "") or None
    causes = _causes(exc)
    provider = next((c.response for c in causes if isinstance(c, httpx.HTTPStatusError)), None)
    status = provider.status_code if provider is not None else getattr(exc, "status_code", None)
    message = _litellm_message(exc)
    if provider is None:
        if any(isinstance(c, httpx.TimeoutException) for c in causes):
            return make_error("timeout", "", url=url)
        if any(isinstance(c, httpx.TransportError | ConnectionError) for c in causes):
            return make_error("connection", message, url=url)
        if any(isinstance(c, json.JSONDecodeError) for c in causes):
            return malformed_response(error_response(200, url=url), message)
        if isinstance(exc, openai.APITimeoutError) or type(exc).__name__ == "Timeout":
            return make_error("timeout", "", url=url)
        if isinstance(exc, openai.APIConnectionError) and not isinstance(status, int):
            return make_error("connection", message, url=url)
    if not isinstance(status, int) or status < 400:
        if isinstance(exc, openai.OpenAIError):
            return exc
        return make_error("connection", message, url=url)
    headers = _litellm_headers(exc)
    if provider is not None:
        headers.update(_kept_headers(provider.headers))
    raw = _provider_error(provider, message)
    text = _raw_message(raw) or _strip_litellm(message)
    names = {type(c).__name__ for c in causes}
    kind = _kind_for(status, _raw_code(raw), text)
    if "ContextWindowExceededError" in names:
        kind = "context_window"
    elif "ContentPolicyViolationError" in names:
        kind = "content_filter"
    elif kind == "bad_request" and _invalid_key(raw):
        # Gemini answers a wrong API key with 400 API_KEY_INVALID; OpenAI (and the router) call it 401.
        kind, status = "auth", 401
    if "retry-after" not in headers and "retry-after-ms" not in headers:
        delay = _retry_delay(raw)
        if delay is not None:
            headers["retry-after"] = str(math.ceil(delay))
            headers["retry-after-ms"] = str(round(delay * 1000))
    row = KINDS[kind]
    code = raw.get("code") if raw is not None else None
    openai_like = isinstance(code, str) and isinstance(raw, Mapping) and isinstance(raw.get("type"), str)
    param = raw.get("param") if raw is not None else None
    return make_error(
        kind,
        text,
        status=status,
        code=code if openai_like else (row.code if status == row.status else None),
        type=str(raw["type"]) if openai_like and raw is not None else row.type,
        param=param if isinstance(param, str) else row.param,
        headers=headers,
        url=url,
    )


# litellm's prefixes: "litellm.RateLimitError: ", "GeminiException - ", "AnthropicError - ",
# "GeminiException BadRequestError - ", "ContextWindowExceededError: "; and its closing advice.
_LITELLM_PREFIX: Final = re.compile(
    r"^(?:litellm\.\w+:\s*|\w*(?:Exception|Error)(?:\s+\w+Error)?\s*[-:]\s*)+"
)
_LITELLM_SUFFIX: Final = re.compile(r"\.?\s*Handle with `litellm\.\w+`\.?\s*$")


def _strip_litellm(message: str) -> str:
    """A litellm message without litellm's prefixes and advice: the provider's words."""
    return _LITELLM_SUFFIX.sub("", _LITELLM_PREFIX.sub("", message.strip())).strip() or message


def _provider_error(provider: httpx.Response | None, message: str) -> Mapping[str, Any] | None:
    """The provider's own error object: from its response when litellm kept it, else the JSON that
    litellm quoted in its message (Gemini's ``{"error": {...}}``, Anthropic's ``{"type": "error",
    "error": {...}}``)."""
    documents: list[object] = []
    if provider is not None:
        with contextlib.suppress(ValueError, httpx.HTTPError):
            documents.append(provider.json())
    decoder = json.JSONDecoder()
    start = message.find("{")
    while start != -1 and not documents:
        with contextlib.suppress(ValueError):
            documents.append(decoder.raw_decode(message, start)[0])
        start = message.find("{", start + 1)
    for document in documents:
        if isinstance(document, Mapping):
            inner = document.get("error", document)
            if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
                return inner
    return None


def _raw_message(raw: Mapping[str, Any] | None) -> str | None:
    text = raw.get("message") if raw is not None else None
    return text.strip() if isinstance(text, str) and text.strip() else None


def _raw_code(raw: Mapping[str, Any] | None) -> str | None:
    """What says the kind in a provider's error object: OpenAI's ``code``, Gemini's ``status``,
    Anthropic's ``type`` (only the context-window and content-policy wordings are read from it)."""
    if raw is None:
        return None
    words = [raw.get(key) for key in ("code", "status", "type")]
    return " ".join(word for word in words if isinstance(word, str)) or None


def _details(raw: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    details = raw.get("details") if raw is not None else None
    return [d for d in details if isinstance(d, Mapping)] if isinstance(details, list) else []


def _invalid_key(raw: Mapping[str, Any] | None) -> bool:
    return any(detail.get("reason") == "API_KEY_INVALID" for detail in _details(raw))


def _retry_delay(raw: Mapping[str, Any] | None) -> float | None:
    """Gemini's ``RetryInfo.retryDelay`` ("2s", "0.5s") in seconds."""
    for detail in _details(raw):
        delay = detail.get("retryDelay")
        if isinstance(delay, str):
            seconds = parse_duration(delay)
            if seconds is not None and math.isfinite(seconds):
                return max(seconds, 0.0)
    return None


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
