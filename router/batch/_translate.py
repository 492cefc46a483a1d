"""One chat-completions request body in Anthropic's and Gemini's shapes, and their answers back as an
openai ChatCompletion. Pure functions, no I/O.

Covered: system/user/assistant text, text parts, tools and tool results, tool_choice, max_tokens,
temperature, top_p, stop, JSON output (with its schema). A line with any other content part (images,
audio, files) is not translated: ``translatable`` says so, and such lines go to OpenAI-protocol models
only (docs/batch.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Anthropic requires max_tokens; without one in the line (nor a catalog limit) this is sent.
DEFAULT_ANTHROPIC_MAX_TOKENS = 4096

_ANTHROPIC_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}
_GEMINI_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
}


def translatable(body: Mapping[str, Any]) -> bool:
    """Whether every message's content is text (a string or text parts): all this module carries."""
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list) and any(
            not isinstance(part, Mapping) or part.get("type") != "text" for part in content
        ):
            return False
    return True


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text"
        )
    return ""


def _schema(response_format: Any) -> Mapping[str, Any] | None:
    """The JSON Schema of ``response_format: {type: json_schema, json_schema: {schema}}``, if any."""
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return schema if isinstance(schema, Mapping) else None


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    limits = [int(v) for v in (body.get("max_completion_tokens"), body.get("max_tokens")) if v]
    return max(limits) if limits else None


def _stops(body: Mapping[str, Any]) -> list[str] | None:
    stop = body.get("stop")
    if stop is None:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def to_anthropic(body: Mapping[str, Any], model: str, max_output_tokens: int | None) -> dict[str, Any]:
    """A Messages API ``params`` object for this chat-completions body."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in body.get("messages") or ():
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text(message.get("content")))
        elif role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": _text(message.get("content")),
            }
            messages.append({"role": "user", "content": [block]})
        elif role == "assistant" and message.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            if _text(message.get("content")):
                blocks.append({"type": "text", "text": _text(message.get("content"))})
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": function.get("name"),
                        "input": json.loads(function.get("arguments") or "{}"),
                    }
                )
            messages.append({"role": "assistant", "content": blocks})
        else:
            messages.append(
                {
                    "role": "assistant" if role == "assistant" else "user",
                    "content": _text(message.get("content")),
                }
            )
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": _max_tokens(body) or max_output_tokens or DEFAULT_ANTHROPIC_MAX_TOKENS,
        "messages": messages,
    }
    if system:
        params["system"] = "\n\n".join(system)
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p")):
        if body.get(ours) is not None:
            params[theirs] = body[ours]
    if _stops(body):
        params["stop_sequences"] = _stops(body)
    schema = _schema(body.get("response_format"))
    if schema is not None:
        params["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    tools = body.get("tools")
    if tools:
        params["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters") or {"type": "object", "properties": {}},
            }
            for t in tools
            if t.get("type") == "function"
        ]
        choice = body.get("tool_choice")
        if choice == "required":
            params["tool_choice"] = {"type": "any"}
        elif choice == "none":
            params["tool_choice"] = {"type": "none"}
        elif isinstance(choice, Mapping):
            params["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    return params


def to_gemini(body: Mapping[str, Any]) -> dict[str, Any]:
    """A ``GenerateContentRequest`` for this chat-completions body."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for message in body.get("messages") or ():
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text(message.get("content")))
        elif role == "tool":
            name = names.get(str(message.get("tool_call_id")), "tool")
            response = {"name": name, "response": {"content": _text(message.get("content"))}}
            contents.append({"role": "user", "parts": [{"functionResponse": response}]})
        elif role == "assistant":
            parts: list[dict[str, Any]] = []
            if _text(message.get("content")):
                parts.append({"text": _text(message.get("content"))})
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                names[str(call.get("id"))] = function.get("name", "")
                parts.append(
                    {
                        "functionCall": {
                            "name": function.get("name"),
                            "args": json.loads(function.get("arguments") or "{}"),
                        }
                    }
                )
            contents.append({"role": "model", "parts": parts})
        else:
            contents.append({"role": "user", "parts": [{"text": _text(message.get("content"))}]})
    request: dict[str, Any] = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    config: dict[str, Any] = {}
    if _max_tokens(body):
        config["maxOutputTokens"] = _max_tokens(body)
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP")):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    if _stops(body):
        config["stopSequences"] = _stops(body)
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = _schema(response_format)
        if schema is not None:
            config["responseJsonSchema"] = schema
    if config:
        request["generationConfig"] = config
    tools = body.get("tools")
    if tools:
        request["tools"] = [
            {
                "functionDeclarations": [
                    {
                        "name": t["function"]["name"],
                        "description": t["function"].get("description", ""),
                        "parameters": t["function"].get("parameters") or {"type": "object", "properties": {}},
                    }
                    for t in tools
                    if t.get("type") == "function"
                ]
            }
        ]
    return request


def _completion(
    *,
    id_: str,
    model: str,
    created: int,
    content: str | None,
    tool_calls: list[dict[str, Any]],
    finish: str,
    prompt: int,
    completion: int,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": id_,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def from_anthropic(message: Mapping[str, Any], model: str, created: int) -> dict[str, Any]:
    """An Anthropic ``message`` as an openai ChatCompletion; ``model`` is the policy's name for it."""
    text = "".join(b.get("text", "") for b in message.get("content") or () if b.get("type") == "text")
    calls = [
        {
            "id": b.get("id"),
            "type": "function",
            "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input") or {})},
        }
        for b in message.get("content") or ()
        if b.get("type") == "tool_use"
    ]
    usage = message.get("usage") or {}
    prompt = (
        int(usage.get("input_tokens") or 0)
        + int(usage.get("cache_read_input_tokens") or 0)
        + int(usage.get("cache_creation_input_tokens") or 0)
    )
    return _completion(
        id_=str(message.get("id", "")),
        model=model,
        created=created,
        content=text or None,
        tool_calls=calls,
        finish=_ANTHROPIC_FINISH.get(str(message.get("stop_reason")), "stop"),
        prompt=prompt,
        completion=int(usage.get("output_tokens") or 0),
    )


def from_gemini(response: Mapping[str, Any], model: str, created: int, id_: str) -> dict[str, Any]:
    """A Gemini ``GenerateContentResponse`` as an openai ChatCompletion."""
    candidates = response.get("candidates") or [{}]
    first = candidates[0]
    parts = (first.get("content") or {}).get("parts") or ()
    text = "".join(p.get("text", "") for p in parts if "text" in p)
    calls = [
        {
            "id": f"call_{id_}_{n}",
            "type": "function",
            "function": {
                "name": p["functionCall"].get("name"),
                "arguments": json.dumps(p["functionCall"].get("args") or {}),
            },
        }
        for n, p in enumerate(parts)
        if "functionCall" in p
    ]
    usage = response.get("usageMetadata") or {}
    completion = int(usage.get("candidatesTokenCount") or 0) + int(usage.get("thoughtsTokenCount") or 0)
    finish = "tool_calls" if calls else _GEMINI_FINISH.get(str(first.get("finishReason")), "stop")
    return _completion(
        id_=id_,
        model=model,
        created=created,
        content=text or None,
        tool_calls=calls,
        finish=finish,
        prompt=int(usage.get("promptTokenCount") or 0),
        completion=completion,
    )
