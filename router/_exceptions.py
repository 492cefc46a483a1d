"""The router's own errors, each a subclass of the openai class that existing code already catches.

``except openai.BadRequestError`` keeps catching "no model can serve this request", ``except
openai.RateLimitError`` keeps catching "every model is cooling down after rate limits", and
``except openai.APIConnectionError`` keeps catching a stream that was cut. Status, ``type`` and
``code`` of each come from the error table (``providers.error_kinds``); every one is a
``RouterError`` and carries the request's ``routing`` record.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
import openai

from providers.error_kinds import KINDS, Kind
from providers.errors import RouterError, error_body, error_request, error_response
from router._routing import RoutingRecord

if TYPE_CHECKING:
    from router.ledger import Refusal

__all__ = [
    "BudgetExceededError",
    "CoolingDownError",
    "DeadlineExceededError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "NoCandidateError",
    "RateLimitCooldownError",
    "RouterError",
    "ServerCooldownError",
    "StreamInterruptedError",
    "UnknownRequestError",
    "routing_of",
]


def routing_of(exc: BaseException) -> RoutingRecord | None:
    """The routing record an error carries (every attempt, every rejected model), or None.

    Works for any exception: the router's own, a provider's error it raised after trying every
    model, or one that never went through the router.
    """
    record = getattr(exc, "routing", None)
    return record if isinstance(record, RoutingRecord) else None


def _response(
    kind: Kind,
    message: str,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[httpx.Response, dict[str, Any]]:
    # The openai classes want a response; ours are decided before (or instead of) a provider call.
    body = {**error_body(kind, message), **(extra or {})}
    response = error_response(_status(kind), body, headers=headers)
    return response, body


def _status(kind: Kind) -> int:
    status = KINDS[kind].status
    assert status is not None, kind
    return status


def _advice(rejected: Mapping[str, str]) -> str:
    """What to do next, for the reasons at hand: a missing key is not fixed by relaxing requirements."""
    keys = sorted({m.group(1) for r in rejected.values() if (m := re.match(r"no API key: set (\S+)", r))})
    other = [r for r in rejected.values() if not r.startswith("no API key")]
    advice = []
    if keys:
        advice.append(
            f"Set {' and '.join(keys)} or remove the {'model' if len(keys) == 1 else 'models'}"
            " from the policy"
            ' (no keys at hand? try it against the fake providers: eval "$(router fake --env)").'
        )
    if other or not keys:
        advice.append("Relax the route's requirements, add a model that fits, or shorten the request.")
    return " ".join(advice)


class NoCandidateError(openai.BadRequestError, RouterError):
    """No model of the policy can serve this request; nothing was sent to any provider."""

    def __init__(self, request_model: str, rejected: Mapping[str, str], route: str | None = None) -> None:
        self.rejected = dict(rejected)
        self.route = route
        lines = "\n".join(f"  - {model}: {reason}" for model, reason in rejected.items())
        target = f"route {route!r}" if route else f"model {request_model!r}"
        message = (
            f"No model can serve this request for {target}; nothing was sent to any provider.\n"
            f"{lines or '  (the route has no candidates)'}\n"
            f"{_advice(self.rejected)}"
        )
        response, body = _response("no_candidate", message, {"rejected": self.rejected})
        super().__init__(message, response=response, body=body)


class ModelNotFoundError(openai.NotFoundError, RouterError):
    """``model=`` names neither a route nor a model of the policy (OpenAI answers 404 here too)."""

    def __init__(self, message: str) -> None:
        response, body = _response("model_not_found", message)
        super().__init__(message, response=response, body=body)


class StreamInterruptedError(openai.APIConnectionError, RouterError):
    """A stream failed after content had reached the caller, so it could not be moved to another model."""

    def __init__(self, *, model: str, chunks: int, characters: int, reason: str) -> None:
        self.model = model
        self.chunks = chunks
        self.characters = characters
        message = (
            f"The stream from {model} was interrupted after {chunks} chunks ({characters} characters): "
            f"{reason}. The answer is incomplete; retry the request."
        )
        super().__init__(message=message, request=error_request())


class DeadlineExceededError(openai.APITimeoutError, RouterError):
    """The request's ``timeout_s`` deadline passed before any model answered."""

    def __init__(self, *, timeout_s: float, attempts: int, last_error: BaseException | None) -> None:
        self.timeout_s = timeout_s
        self.attempts = attempts
        last = f" The last failure: {type(last_error).__name__}." if last_error is not None else ""
        self.message_text = (
            f"No model answered within the request deadline of {timeout_s:g}s ({attempts} attempts).{last} "
            "Raise timeout_s in the policy (top level or the route), or add faster fallbacks."
        )
        super().__init__(request=error_request())
        self.message = self.message_text
        self.args = (self.message_text,)


class BudgetExceededError(openai.RateLimitError, RouterError):
    """A budget cap refused the request; nothing was sent to any provider for it.

    OpenAI answers an exhausted quota with 429 ``insufficient_quota``, so this is that: existing
    ``except openai.RateLimitError`` handlers catch it, and ``.code`` reads the same.
    """

    def __init__(self, feature: str, refusal: Refusal) -> None:
        from router._budgets import exceeded_message

        line = refusal.line
        self.feature = feature
        self.scope = line.scope  # the feature, or "*" when the policy-wide budget refused
        self.window = line.window
        self.limit_usd = line.limit_usd
        self.spent_usd = refusal.spent_usd
        self.reserved_usd = refusal.reserved_usd
        self.amount_usd = refusal.amount_usd
        self.resets_at = line.resets_at  # Unix seconds; None for a total budget
        message = exceeded_message(
            feature=feature,
            line=line,
            spent_usd=refusal.spent_usd,
            reserved_usd=refusal.reserved_usd,
            amount_usd=refusal.amount_usd,
        )
        response, body = _response("budget_exceeded", message)
        # The inner object, as openai's own _make_status_error passes it: .code and .type come from it.
        super().__init__(message, response=response, body=body)


class CoolingDownError(RouterError):
    """Every model that could serve the request is cooling down (its breaker is open); nothing was sent.

    Not the request's fault: it can be served once a model's cooldown ends, in ``retry_after_s``
    (also the ``Retry-After`` header, in whole seconds, which openai's own retries and most client
    libraries honour). ``cooling`` maps each held-back model to the kind of failure that opened its
    breaker. The concrete classes are openai's: a ``RateLimitCooldownError`` (429) when any of the
    models is cooling down after rate limits, else a ``ServerCooldownError`` (503).
    """

    retry_after_s: float
    cooling: Mapping[str, str]


def _cooldown_message(reasons: Mapping[str, str], retry_after_s: float, route: str | None) -> str:
    target = f"route {route!r}" if route else "this request"
    lines = "\n".join(f"  - {model}: {reason}" for model, reason in reasons.items())
    return (
        f"Every model that can serve {target} is cooling down after failures; nothing was sent to any "
        f"provider.\n{lines}\nRetry in {_whole_seconds(retry_after_s)}s (Retry-After), or add fallbacks to "
        "the route."
    )


def _whole_seconds(seconds: float) -> int:
    # Rounded up, at least 1 (a half-open model's trial is due any moment): earlier meets the cooldown.
    return max(math.ceil(seconds), 1)


def _retry_headers(retry_after_s: float) -> dict[str, str]:
    return {
        "retry-after": str(_whole_seconds(retry_after_s)),
        # openai's client reads this one first; the same floor, or a 0 would mean "use your own backoff".
        "retry-after-ms": str(max(round(retry_after_s * 1000), 1000)),
    }


class RateLimitCooldownError(openai.RateLimitError, CoolingDownError):
    """429: every candidate is cooling down, at least one after rate limits. A rate limit stays one."""

    def __init__(
        self,
        cooling: Mapping[str, str],
        retry_after_s: float,
        route: str | None = None,
        reasons: Mapping[str, str] | None = None,
    ) -> None:
        self.cooling = dict(cooling)
        self.retry_after_s = retry_after_s
        message = _cooldown_message(reasons or cooling, retry_after_s, route)
        response, body = _response(
            "cooling_down_rate_limited", message, headers=_retry_headers(retry_after_s)
        )
        super().__init__(message, response=response, body=body)


class ServerCooldownError(openai.InternalServerError, CoolingDownError):
    """503: every candidate is cooling down after server errors, timeouts or connection failures."""

    def __init__(
        self,
        cooling: Mapping[str, str],
        retry_after_s: float,
        route: str | None = None,
        reasons: Mapping[str, str] | None = None,
    ) -> None:
        self.cooling = dict(cooling)
        self.retry_after_s = retry_after_s
        message = _cooldown_message(reasons or cooling, retry_after_s, route)
        response, body = _response("cooling_down_server", message, headers=_retry_headers(retry_after_s))
        super().__init__(message, response=response, body=body)


class InvalidRequestError(openai.BadRequestError, RouterError):
    """The request is malformed, as OpenAI's API would say (400, ``param`` names the field).

    Raised before anything is reserved, planned or sent.
    """

    def __init__(self, message: str, *, param: str, code: str = "invalid_value", detail: str = "") -> None:
        response, body = _response("bad_request", message, {"param": param, "code": code})
        super().__init__(message, response=response, body=body)
        # For people rather than for openai-compatible handlers: "max_tokens: expected an integer,
        # got 'lots'" (the field and the value at fault), as the CLI prints it.
        self.detail = detail or f"{param}: {message}"


class UnknownRequestError(RouterError, LookupError):
    """``client.feedback()`` for a request id the ledger's feedback store does not keep."""
