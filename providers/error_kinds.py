"""The one table of error kinds: how each is raised (openai's class, status, ``type``, ``code``) and handled.

Every failure a caller can see is one row. Provider failures (``rate_limited`` … ``unknown``) are
classified once at the adapter boundary (``providers.errors``) and raised with OpenAI's own error
shape, whatever the provider: a Gemini or Anthropic 429 reads like OpenAI's. The router's own
refusals (``no_candidate`` … ``cooling_down_server``) are raised with the same shape by the router's
exception classes. The retry, fallback and breaker decisions read their sets from here, so the table
is what the router does, not a description of it. ``docs/resilience.md`` prints it for users.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

import openai

# What a provider failure is, for the retry and fallback decisions.
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
# What the router itself refuses a request for (no provider said so).
RouterKind = Literal[
    "no_candidate",
    "model_not_found",
    "budget_exceeded",
    "cooling_down_rate_limited",
    "cooling_down_server",
    "deadline",
    "stream_interrupted",
]
Kind = ErrorClass | RouterKind
Breaker = Literal["counts", "opens", "ignores"]


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """One row: the exception a caller of the real OpenAI API would get, and what the router does.

    ``status`` None means no HTTP response (a timeout, a reset): openai raises those without a body.
    """

    exception: type[openai.OpenAIError]
    status: int | None
    type: str | None
    code: str | None
    param: str | None = None
    retry: bool = False  # call the same model again, after its Retry-After or the backoff
    fall_back: bool = True  # move on to the next model; False raises at once
    breaker: Breaker = "ignores"  # counts toward opening it, opens it at once, or says nothing


KINDS: Final[Mapping[Kind, ErrorKind]] = MappingProxyType(
    {
        # Provider failures, as the adapters raise them.
        "rate_limited": ErrorKind(
            openai.RateLimitError, 429, "requests", "rate_limit_exceeded", retry=True, breaker="counts"
        ),
        "server": ErrorKind(
            openai.InternalServerError, 500, "server_error", None, retry=True, breaker="counts"
        ),
        "timeout": ErrorKind(openai.APITimeoutError, None, None, None, retry=True, breaker="counts"),
        "connection": ErrorKind(openai.APIConnectionError, None, None, None, retry=True, breaker="counts"),
        # Falls back only to models with a larger window (router._pipeline).
        "context_window": ErrorKind(
            openai.BadRequestError, 400, "invalid_request_error", "context_length_exceeded", "messages"
        ),
        # An answer the provider's filter emptied (finish_reason content_filter): the next model may answer.
        "content_filter": ErrorKind(
            openai.BadRequestError, 400, "invalid_request_error", "content_policy_violation"
        ),
        # The request refused for its content: raised at once unless on_content_policy: fallback
        # (router._pipeline decides; the same input is refused anywhere, and routing around a
        # provider's moderation is not what most teams want).
        "content_policy": ErrorKind(
            openai.BadRequestError, 400, "invalid_request_error", "content_policy_violation"
        ),
        # 401; a 403 keeps its status (openai.PermissionDeniedError) and has no code.
        "auth": ErrorKind(
            openai.AuthenticationError, 401, "invalid_request_error", "invalid_api_key", breaker="opens"
        ),
        "not_found": ErrorKind(
            openai.NotFoundError, 404, "invalid_request_error", "model_not_found", breaker="opens"
        ),
        # Another model would refuse it too, and each try costs money.
        "bad_request": ErrorKind(openai.BadRequestError, 400, "invalid_request_error", None, fall_back=False),
        "unknown": ErrorKind(openai.APIStatusError, None, None, None),
        # The router's own refusals; nothing was sent to a provider for them (the last two excepted).
        "no_candidate": ErrorKind(openai.BadRequestError, 400, "invalid_request_error", "no_candidate"),
        "model_not_found": ErrorKind(openai.NotFoundError, 404, "invalid_request_error", "model_not_found"),
        "budget_exceeded": ErrorKind(openai.RateLimitError, 429, "insufficient_quota", "insufficient_quota"),
        "cooling_down_rate_limited": ErrorKind(openai.RateLimitError, 429, "requests", "rate_limit_exceeded"),
        "cooling_down_server": ErrorKind(openai.InternalServerError, 503, "server_error", None),
        "deadline": ErrorKind(openai.APITimeoutError, None, None, None),
        "stream_interrupted": ErrorKind(openai.APIConnectionError, None, None, None),
    }
)

# The sets the router's decisions read (router._resilience, router._health, router._pipeline).
RETRYABLE: Final = frozenset(kind for kind, row in KINDS.items() if row.retry)
COUNTED: Final = frozenset(kind for kind, row in KINDS.items() if row.breaker == "counts")
MARK_DOWN: Final = frozenset(kind for kind, row in KINDS.items() if row.breaker == "opens")
FATAL: Final = frozenset(kind for kind, row in KINDS.items() if not row.fall_back)
