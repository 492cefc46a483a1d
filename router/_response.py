"""openai's own response types, with the decision record attached.

``RoutedChatCompletion`` is a ``ChatCompletion`` (isinstance holds, ``model_dump()`` is
unchanged) whose ``routing`` is a private attribute, so serializing a response never leaks the
router's internals into an API payload.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import pydantic
from openai._models import construct_type
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import PrivateAttr

from providers.tiers import model_of
from router._routing import RoutingRecord

_T = TypeVar("_T", bound=pydantic.BaseModel)


class RoutedChatCompletion(ChatCompletion):
    """A ChatCompletion with ``.routing``: which model answered, why, what it cost."""

    _routing: RoutingRecord | None = PrivateAttr(default=None)

    @property
    def routing(self) -> RoutingRecord:
        assert self._routing is not None
        return self._routing


def build(cls: type[_T], data: dict[str, Any]) -> _T:
    """Validate strictly (fast, in pydantic-core); accept what openai's client accepts when that fails."""
    try:
        return cls.model_validate(data)
    except pydantic.ValidationError:
        return cast(_T, construct_type(type_=cls, value=data))


def completion(data: dict[str, Any], model_name: str, routing: RoutingRecord) -> RoutedChatCompletion:
    # The policy's model: a flex deployment ("m@flex") answers as "m", its tier in service_tier.
    data["model"] = model_of(model_name)
    response = build(RoutedChatCompletion, data)
    # What pydantic's __setattr__ does for these two names, without its per-call handler lookup (about
    # 2 us a response; for ``_request_id``, not a private attribute, the lookup is never memoized).
    private = response.__pydantic_private__
    if private is not None:
        private["_routing"] = routing
    else:
        response._routing = routing
    # As openai's client sets it from the x-request-id header: the id in the router's logs.
    _object_setattr(response, "_request_id", routing.request_id)
    return response


_object_setattr = object.__setattr__


def chunk(data: dict[str, Any], model_name: str) -> ChatCompletionChunk:
    data["model"] = model_of(model_name)
    return build(ChatCompletionChunk, data)
