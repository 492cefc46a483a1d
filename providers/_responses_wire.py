"""OpenAI's Responses API on the wire (``POST {base}/responses``): the request, and the chat view of
its answer and stream events. Pure: no I/O (``providers.openai_compat`` sends and reads).

A routed ``responses.create`` rides through the chat pipeline (plan, fallbacks, budgets, breakers,
events) as a chat body that carries a ``NativeResponses`` (``providers.base``). For a deployment
that speaks the Responses API the fast path sends that instead of the chat body, and gives the
pipeline what it reads from any answer: a chat-shaped dict (content, tool calls, finish reason,
usage for the cost). The provider's own Response rides along under ``NATIVE_RESPONSE`` (each stream
event under ``NATIVE_EVENT``), so the router's responses layer hands it back untranslated: hosted
tool items, reasoning items, annotations and the provider's ids stay as the provider sent them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import httpx
import openai

from providers.base import JSON, MALFORMED_EVENT, Deployment, NativeResponses

# Keys of the chat-shaped dicts under which the provider's Response / stream event rides along.
NATIVE_RESPONSE: Final = "router_native_response"
NATIVE_EVENT: Final = "router_native_event"

_TERMINAL: Final = frozenset({"response.completed", "response.incomplete"})
_FAILED: Final = frozenset({"error", "response.failed"})


def _same_base(a: str | None, b: str | None) -> bool:
    return (a or "").rstrip("/") == (b or "").rstrip("/")


def _made_elsewhere(call: NativeResponses, deployment: Deployment) -> bool:
    if call.previous_keys is not None:
        return deployment.key not in call.previous_keys
    return not _same_base(call.previous_base, deployment.api_base)


def request_payload(call: NativeResponses, deployment: Deployment, *, stream: bool) -> JSON:
    """The JSON body of ``POST /responses`` for this deployment.

    A ``previous_response_id`` made by another server or account (``previous_keys``, else
    ``previous_base``) means nothing here: this server gets the conversation the router holds for it
    as input items instead.
    """
    params = dict(call.params)
    if (
        params.get("previous_response_id")
        and call.previous_base is not None
        and call.expanded_input is not None
        and _made_elsewhere(call, deployment)
    ):
        del params["previous_response_id"]
        params["input"] = [dict(item) for item in call.expanded_input]
    params["model"] = deployment.model
    if stream:
        params["stream"] = True
    else:
        params.pop("stream", None)
    return params


def responses_url(chat_url: httpx.URL) -> httpx.URL:
    """``{base}/chat/completions`` → ``{base}/responses``."""
    path = chat_url.path
    base = path[: -len("/chat/completions")] if path.endswith("/chat/completions") else path.rstrip("/")
    return chat_url.copy_with(path=base + "/responses")


def azure_v1_base(api_base: str | None) -> str:
    """An Azure OpenAI resource's v1 API, ``{resource}/openai/v1``: OpenAI's paths below it, no
    api-version (what openai's own client takes as ``base_url`` for Azure)."""
    return (api_base or "").rstrip("/") + "/openai/v1"


def azure_responses_url(api_base: str | None) -> httpx.URL:
    """Azure OpenAI's Responses endpoint: ``{resource}/openai/v1/responses`` (the v1 API: no
    deployment in the path and no api-version; the deployment's name goes in the body's ``model``)."""
    return httpx.URL(azure_v1_base(api_base) + "/responses")


def chat_usage(usage: object) -> JSON | None:
    """Responses usage in chat's names, for the router's cost (figures unchecked: the router vets them)."""
    if not isinstance(usage, Mapping):
        return None
    inputs = usage.get("input_tokens_details")
    outputs = usage.get("output_tokens_details")
    return {
        "prompt_tokens": usage.get("input_tokens"),
        "completion_tokens": usage.get("output_tokens"),
        "total_tokens": usage.get("total_tokens"),
        "prompt_tokens_details": {
            "cached_tokens": inputs.get("cached_tokens", 0) if isinstance(inputs, Mapping) else 0
        },
        "completion_tokens_details": {
            "reasoning_tokens": outputs.get("reasoning_tokens", 0) if isinstance(outputs, Mapping) else 0
        },
    }


def _finish_reason(response: Mapping[str, Any], tool_calls: bool) -> str:
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if tool_calls else "stop"


def chat_view(response: Mapping[str, Any]) -> JSON:
    """A Response as the chat completion the pipeline reads; the Response under ``NATIVE_RESPONSE``."""
    text: list[str] = []
    refusal: list[str] = []
    calls: list[JSON] = []
    for item in response.get("output") or ():
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or ():
                if isinstance(part, Mapping):
                    if part.get("type") == "output_text":
                        text.append(str(part.get("text") or ""))
                    elif part.get("type") == "refusal":
                        refusal.append(str(part.get("refusal") or ""))
        elif item.get("type") == "function_call":
            calls.append(
                {
                    "id": item.get("call_id"),
                    "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""},
                }
            )
    message: JSON = {
        "role": "assistant",
        "content": "".join(text) or None,
        "refusal": "".join(refusal) or None,
    }
    if calls:
        message["tool_calls"] = calls
    view: JSON = {
        "id": str(response.get("id") or ""),
        "object": "chat.completion",
        "created": int(response.get("created_at") or 0),
        "model": str(response.get("model") or ""),
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(response, bool(calls))}],
        NATIVE_RESPONSE: dict(response),
    }
    usage = chat_usage(response.get("usage"))
    if usage is not None:
        view["usage"] = usage
    return view


def read_response(data: object) -> JSON | str:
    """The chat view of a ``/responses`` body, or what is wrong with it."""
    if not isinstance(data, dict) or not isinstance(data.get("output"), list):
        return "no 'output' in the body"
    if data.get("status") == "failed":
        return f"the response failed: {data.get('error')}"
    return chat_view(data)


def event_error(event: Mapping[str, Any], request: httpx.Request) -> openai.APIError:
    """An ``error`` or ``response.failed`` event as the error the router classifies."""
    error: Any = event
    if event.get("type") == "response.failed":
        response = event.get("response")
        error = response.get("error") if isinstance(response, Mapping) else None
    body = dict(error) if isinstance(error, Mapping) else {"message": str(error)}
    if body.get("type") == "error":  # the event's own type, not the error's
        del body["type"]
    return openai.APIError(
        f"The provider reported an error mid-stream: {body.get('message')}", request, body=body
    )


class EventReader:
    """Responses SSE lines in, chat-shaped chunks out (each with its event under ``NATIVE_EVENT``).

    A stream is complete at ``response.completed`` or ``response.incomplete``; without one, the end
    of the connection is a cut. ``error`` and ``response.failed`` raise.
    """

    __slots__ = ("ended", "request")

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        self.ended = False

    def chunk(self, line: str) -> JSON | None:
        """One SSE line → a chunk, or None (``event:`` lines, comments, blank lines, ``[DONE]``)."""
        if not line.startswith("data:"):
            return None
        data = line[5:].strip()
        if data == "[DONE]":
            return None
        try:
            event = json.loads(data)
        except ValueError:
            return {MALFORMED_EVENT: True}
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return {MALFORMED_EVENT: True}
        kind = event["type"]
        if kind in _FAILED:
            raise event_error(event, self.request)
        delta: JSON = {}
        finish: str | None = None
        usage: JSON | None = None
        if kind == "response.output_text.delta":
            delta = {"content": str(event.get("delta") or "")}
        elif kind == "response.refusal.delta":
            delta = {"refusal": str(event.get("delta") or "")}
        elif kind == "response.output_item.added":
            item = event.get("item")
            if isinstance(item, Mapping) and item.get("type") == "function_call":
                function = {"name": item.get("name"), "arguments": ""}
                call = {"index": event.get("output_index", 0), "id": item.get("call_id"), "type": "function"}
                delta = {"tool_calls": [{**call, "function": function}]}
        elif kind == "response.function_call_arguments.delta":
            arguments = {"arguments": str(event.get("delta") or "")}
            delta = {"tool_calls": [{"index": event.get("output_index", 0), "function": arguments}]}
        elif kind in _TERMINAL:
            response = event.get("response")
            if isinstance(response, Mapping):
                view = chat_view(response)
                finish = view["choices"][0]["finish_reason"]
                usage = view.get("usage")
            else:
                finish = "stop"
            self.ended = True
        chunk: JSON = {
            "id": "",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            NATIVE_EVENT: event,
        }
        if usage is not None:
            chunk["usage"] = usage
        return chunk


def interrupted(request: httpx.Request) -> openai.APIConnectionError:
    return openai.APIConnectionError(
        message="The provider's Responses stream ended before response.completed.", request=request
    )
