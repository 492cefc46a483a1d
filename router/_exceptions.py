"""The router's own errors, each a subclass of the openai class that existing code already catches.

``except openai.BadRequestError`` keeps catching "no model can serve this request", and
``except openai.APIConnectionError`` keeps catching a stream that was cut.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
import openai

if TYPE_CHECKING:
    from router._routing import RoutingRecord
    from router.ledger import Refusal

__all__ = [
    "BudgetExceededError",
    "DeadlineExceededError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "NoCandidateError",
    "RouterError",
    "StreamInterruptedError",
]

_ROUTER_URL = "router://chat/completions"


class RouterError(openai.OpenAIError):
    """Base of the errors the router raises itself (not ones a provider sent)."""


def _response(status: int, message: str, code: str, extra: Mapping[str, Any] | None = None) -> httpx.Response:
    # The openai classes want a response; ours are decided before any provider is called.
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code, **(extra or {})}}
    return httpx.Response(status, json=body, request=httpx.Request("POST", _ROUTER_URL))


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
            "Relax the route's requirements, add a model that fits, or shorten the request."
        )
        response = _response(400, message, "no_candidate", {"rejected": self.rejected})
        super().__init__(message, response=response, body=response.json()["error"])


class ModelNotFoundError(openai.NotFoundError, RouterError):
    """``model=`` names neither a route nor a model of the policy (OpenAI answers 404 here too)."""

    def __init__(self, message: str) -> None:
        response = _response(404, message, "model_not_found")
        super().__init__(message, response=response, body=response.json()["error"])


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
        super().__init__(message=message, request=httpx.Request("POST", _ROUTER_URL))

    routing: RoutingRecord | None = None


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
        super().__init__(request=httpx.Request("POST", _ROUTER_URL))
        self.message = self.message_text
        self.args = (self.message_text,)

    routing: RoutingRecord | None = None


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
        error = {
            "message": message,
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
        response = httpx.Response(
            429, json={"error": error}, request=httpx.Request("POST", "https://router.invalid/budget")
        )
        # The inner object, as openai's own _make_status_error passes it: .code and .type come from it.
        super().__init__(message, response=response, body=error)

    routing: RoutingRecord | None = None


class InvalidRequestError(openai.BadRequestError, RouterError):
    """The request is malformed, as OpenAI's API would say (400, ``param`` names the field).

    Raised before anything is reserved, planned or sent.
    """

    def __init__(self, message: str, *, param: str, code: str = "invalid_value") -> None:
        response = _response(400, message, code, {"param": param})
        super().__init__(message, response=response, body=response.json()["error"])
