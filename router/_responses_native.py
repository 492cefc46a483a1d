"""How a ``responses.create`` call is carried to both kinds of model: pure decisions, no I/O.

Every call is prepared twice, once per way it can reach a model, and the chat pipeline picks per
candidate (``providers.openai_compat``):

- **natively** (``NativeResponses``) for a model whose provider speaks OpenAI's Responses API (the
  capability ``responses``: every ``provider: openai`` model, and OpenAI-compatible servers that
  declare it). The request goes as the caller wrote it, so hosted tools, reasoning items,
  ``include``, ``store`` and ``previous_response_id`` keep OpenAI's meaning;
- **translated** (``router._responses.chat_request``) to the chat protocol of every other model.

A request only a Responses server can serve (a hosted tool, an input item chat cannot carry, a
``previous_response_id`` the router does not hold, ...) is marked ``required``: the planner then
rejects the other models with the reason "no native Responses API support", and when none is
left the caller gets a 400 saying what needed it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import openai

from providers.base import NATIVE_RESPONSES, NativeResponses
from router._responses import JSON, ChatCall, ResponsesRequestError, chat_request

# Arguments the router consumes or sends with the chat call's transport (not in the JSON body).
_TRANSPORT: Final = frozenset({"model", "stream", "timeout", "extra_headers", "extra_query", "extra_body"})
# Suffix of the turn-store key that says which server made a native response (its API base).
_ORIGIN: Final = "#origin"


def origin_key(response_id: str) -> str:
    """Where the turn store keeps the API base of the server that created ``response_id`` natively."""
    return response_id + _ORIGIN


def _given(value: Any) -> bool:
    return value is not None and not isinstance(value, openai.NotGiven | openai.Omit)


def _plain(value: Any) -> Any:
    """A request value as JSON data (openai's typed items, pydantic models, tuples)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True, mode="json")
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if _given(v)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def input_items(value: Any) -> list[JSON]:
    """Responses ``input`` as a list of input items."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [_plain(item) for item in value]


def expanded_input(messages: Sequence[Mapping[str, Any]]) -> list[JSON]:
    """A conversation the router holds (chat messages) as Responses input items."""
    items: list[JSON] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role == "tool":
            output = content if isinstance(content, str) else json.dumps(content)
            items.append(
                {"type": "function_call_output", "call_id": message.get("tool_call_id"), "output": output}
            )
            continue
        if content:
            if isinstance(content, str):
                items.append({"role": role, "content": content})
            else:
                items.append({"role": role, "content": [_input_part(part) for part in content]})
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments") or "",
                }
            )
    return items


def _input_part(part: Mapping[str, Any]) -> JSON:
    if part.get("type") == "image_url":
        image = part.get("image_url") or {}
        # ``detail`` is required by the Responses API; chat's default is "auto".
        return {"type": "input_image", "image_url": image.get("url"), "detail": image.get("detail") or "auto"}
    return {"type": "input_text", "text": part.get("text") or ""}


def _native_params(params: Mapping[str, Any]) -> JSON:
    """The JSON body the Responses API gets (without ``model``/``stream``, set per deployment)."""
    native = {k: _plain(v) for k, v in params.items() if k not in _TRANSPORT and _given(v)}
    metadata = native.get("metadata")
    if isinstance(metadata, dict) and "feature" in metadata:
        # The router's routing key, not the caller's data: kept from the provider as in chat calls.
        metadata = {k: v for k, v in metadata.items() if k != "feature"}
        if metadata:
            native["metadata"] = metadata
        else:
            del native["metadata"]
    extra = params.get("extra_body")
    if isinstance(extra, Mapping):
        native.update(_plain(extra))
    return native


def _planning_call(params: Mapping[str, Any]) -> ChatCall:
    """For a request chat cannot carry: a chat call that is never sent, only planned with (its size
    bounds context and budget checks; its function tools ask for tool support)."""
    text = json.dumps(_plain(params.get("input")), ensure_ascii=False, default=str)
    instructions = params.get("instructions")
    if isinstance(instructions, str):
        text = instructions + "\n" + text
    kwargs: JSON = {
        k: params[k]
        for k in ("model", "metadata", "timeout", "extra_headers", "extra_query")
        if _given(params.get(k))
    }
    kwargs["messages"] = [{"role": "user", "content": text}]
    if _given(params.get("max_output_tokens")):
        kwargs["max_completion_tokens"] = params["max_output_tokens"]
    functions = [
        {"type": "function", "function": {"name": _field(t, "name") or "tool"}}
        for t in params.get("tools") or ()
        if _field(t, "type") == "function"
    ]
    if functions:
        kwargs["tools"] = functions
    return ChatCall(kwargs=kwargs, conversation=[], echo={}, store=params.get("store") is not False)


def _field(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A ``responses.create`` call, ready for the chat pipeline: ``call.kwargs`` carries both forms."""

    call: ChatCall
    native: NativeResponses
    # Why only a native server can serve it, as the error to raise when no such model is left.
    refusal: ResponsesRequestError | None = None


def prepare(
    params: Mapping[str, Any],
    history: Sequence[JSON] | None,
    origin: str | None,
    not_held: ResponsesRequestError | None = None,
    origin_keys: frozenset[str] | None = None,
) -> Prepared:
    """Both forms of a call. ``history``: the held turn ``previous_response_id`` names (None: not
    held, ``not_held`` says why); ``origin``: the API base of the server that created it natively,
    ``origin_keys`` the deployments that can see it (``NativeResponses.previous_keys``)."""
    previous = params.get("previous_response_id")
    native_params = _native_params(params)
    new_items = input_items(params["input"]) if "input" in params else []
    expanded: tuple[JSON, ...] | None = None
    refusal: ResponsesRequestError | None = None
    translatable = dict(params)
    if isinstance(previous, str) and previous:
        if history is None:
            # Perhaps made by a Responses server the router did not hear from (another client, or
            # before this process): only such a server may know it.
            refusal = not_held
            translatable.pop("previous_response_id", None)
        else:
            expanded = (*expanded_input(history), *new_items)
            if origin is None:
                # The router made it through chat: no server knows the id, every one gets the turns.
                del native_params["previous_response_id"]
                native_params["input"] = list(expanded)
    try:
        call = chat_request(translatable, history or ())
    except ResponsesRequestError as exc:
        refusal = refusal or exc
        call = _planning_call(translatable)
    native = NativeResponses(
        params=native_params,
        required=refusal is not None,
        reason=refusal.message if refusal is not None else None,
        previous_base=origin,
        previous_keys=origin_keys if origin is not None else None,
        expanded_input=expanded,
    )
    call = replace(call, kwargs={**call.kwargs, NATIVE_RESPONSES: native})
    return Prepared(call=call, native=native, refusal=refusal)


def none_native(error: BaseException, prepared: Prepared) -> ResponsesRequestError | None:
    """The error for a request only a Responses server could serve when the plan had none; None when
    ``error`` (a ``NoCandidateError``) has other causes too."""
    refusal = prepared.refusal
    rejected: Mapping[str, str] = getattr(error, "rejected", {}) or {}
    if refusal is None or not any("native Responses API" in reason for reason in rejected.values()):
        return None
    lines = "; ".join(f"{model}: {reason}" for model, reason in rejected.items())
    message = (
        f"{refusal.message} Only a model whose provider speaks OpenAI's Responses API natively can serve "
        f"this request, and none of the candidates can ({lines}). Route it to an OpenAI model, or declare "
        "`supports: [..., responses]` for an OpenAI-compatible server that speaks the Responses API."
    )
    body = refusal.body if isinstance(refusal.body, Mapping) else {}
    replacement = ResponsesRequestError(
        message, param=body.get("param"), code=body.get("code") or "unsupported_parameter"
    )
    replacement.routing = getattr(error, "routing", None)  # type: ignore[attr-defined]
    return replacement
