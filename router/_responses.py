"""The Responses API over chat protocols: pure translation, no I/O.

A ``responses.create`` call is turned into the chat-completions call the router already routes
(``chat_request``), and the routed ``ChatCompletion`` back into an openai ``Response``
(``response_body``); ``EventTranslator`` turns a stream of chat chunks into the Responses stream
events, as the OpenAI API would send them. This is how models whose provider does not speak the
Responses API (Gemini, Anthropic, chat-only OpenAI-compatible servers) answer a Responses call;
the others get it natively (``router._responses_native``). Routing, budgets, fallbacks and events
are the chat pipeline's either way.

Why not litellm's bridge (``litellm.responses`` over ``LiteLLMCompletionTransformationHandler``):
it calls ``litellm.completion`` itself (it would bypass our pipeline), builds litellm's own
types rather than openai's, and importing litellm costs seconds that our OpenAI fast path never
pays. What a chat protocol can carry is small and documented; translating it here is a few
pure functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import openai

from router._exceptions import RouterError

JSON = dict[str, Any]

_ROUTER_URL: Final = "router://responses"

# Arguments that go to the chat call unchanged (they mean the same in both APIs).
_SAME: Final = (
    "model",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "metadata",
    "extra_headers",
    "extra_query",
    "extra_body",
    "timeout",
)
# Accepted, and without effect on a chat call: what they ask for has no chat equivalent and
# changes nothing in the answer (``include`` asks for extra output data; ``store`` is ours to keep;
# ``stream_options`` of the Responses API only toggles obfuscation padding;
# ``prompt_cache_retention``/``prompt_cache_options`` tune OpenAI's prompt cache, not the answer.)
_IGNORED: Final = frozenset(
    {
        "include",
        "store",
        "stream_options",
        "stream",
        "previous_response_id",
        "prompt_cache_retention",
        "prompt_cache_options",
    }
)
# The response echoes these request fields, as OpenAI's does.
_ECHOED: Final = (
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "safety_identifier",
    "service_tier",
    "temperature",
    "top_logprobs",
    "top_p",
    "user",
)


class ResponsesRequestError(openai.BadRequestError, RouterError):
    """A Responses API request the router cannot carry to a chat protocol (nothing was sent)."""

    def __init__(
        self, message: str, *, param: str | None = None, code: str = "unsupported_parameter"
    ) -> None:
        error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
        response = httpx.Response(400, json={"error": error}, request=httpx.Request("POST", _ROUTER_URL))
        super().__init__(message, response=response, body=error)


def new_id(prefix: str) -> str:
    """An id shaped like OpenAI's (``resp_…``, ``msg_…``, ``fc_…``)."""
    return f"{prefix}_{os.urandom(12).hex()}"


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """A field of a dict (request params) or of a pydantic object (openai's typed items)."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _given(value: Any) -> bool:
    return value is not None and not isinstance(value, openai.NotGiven | openai.Omit)


# --------------------------------------------------------------------------- request


@dataclass(frozen=True, slots=True)
class ChatCall:
    """A Responses request as the router's chat call, plus what the response must echo."""

    kwargs: JSON  # for the routed ``chat.completions.create``
    conversation: list[JSON]  # the messages without ``instructions``: what a later turn continues
    echo: JSON  # request fields the Response repeats
    store: bool


def chat_request(params: Mapping[str, Any], history: Sequence[JSON] = ()) -> ChatCall:
    """Translate ``responses.create(**params)`` into a chat call; ``history``: the earlier turns'
    messages, when ``previous_response_id`` names a turn the router holds."""
    params = {k: v for k, v in params.items() if _given(v)}
    if params.get("background") is False:  # the default, spelled out (as some libraries do)
        del params["background"]
    unsupported = sorted(k for k in params if k not in _SAME and k not in _IGNORED and k not in _TRANSLATED)
    if unsupported:
        name = unsupported[0]
        raise ResponsesRequestError(
            f"The router cannot carry Responses parameter {name!r} to a chat protocol. "
            f"{_UNSUPPORTED_HINT.get(name, 'Remove it, or call openai.OpenAI directly for this request.')}",
            param=name,
        )
    if "input" not in params:
        raise TypeError("responses.create() missing required keyword argument: 'input'")
    if "model" not in params:
        raise TypeError(
            "responses.create() missing required keyword argument: 'model' "
            "(a route such as 'auto', or a model)"
        )
    truncation = params.get("truncation")
    if truncation not in (None, "disabled"):
        raise ResponsesRequestError(
            "truncation='auto' is not supported by the router: it sends the whole conversation. "
            "Shorten the input or start a new conversation.",
            param="truncation",
        )
    new_messages = input_messages(params["input"])
    conversation = [*history, *new_messages]
    messages = list(conversation)
    instructions = params.get("instructions")
    if instructions:
        if not isinstance(instructions, str):
            raise ResponsesRequestError("instructions must be a string.", param="instructions")
        messages.insert(0, {"role": "system", "content": instructions})
    kwargs: JSON = {k: params[k] for k in _SAME if k in params}
    kwargs["messages"] = messages
    if "max_output_tokens" in params:
        kwargs["max_completion_tokens"] = params["max_output_tokens"]
    if "top_logprobs" in params:
        kwargs["logprobs"] = True
        kwargs["top_logprobs"] = params["top_logprobs"]
    reasoning = params.get("reasoning")
    if reasoning and _get(reasoning, "effort"):
        kwargs["reasoning_effort"] = _get(reasoning, "effort")
    tools = params.get("tools")
    if tools:
        kwargs["tools"] = [_chat_tool(tool) for tool in tools]
    if "tool_choice" in params:
        kwargs["tool_choice"] = _chat_tool_choice(params["tool_choice"])
    text = params.get("text")
    if text:
        response_format = _chat_response_format(_get(text, "format"))
        if response_format is not None:
            kwargs["response_format"] = response_format
        verbosity = _get(text, "verbosity")
        if verbosity:
            kwargs["verbosity"] = verbosity
    if params.get("verbosity"):  # parse() also takes it at the top level
        kwargs["verbosity"] = params["verbosity"]
    echo: JSON = {k: params[k] for k in _ECHOED if k in params}
    echo["model"] = params["model"]
    echo["tools"] = [_echo_tool(tool) for tool in tools or ()]
    echo["tool_choice"] = _plain(params.get("tool_choice", "auto"))
    echo["parallel_tool_calls"] = params.get("parallel_tool_calls", True)
    echo["text"] = _plain(text) if text else {"format": {"type": "text"}}
    echo["truncation"] = truncation or "disabled"
    if reasoning:
        echo["reasoning"] = _plain(reasoning)
    return ChatCall(
        kwargs=kwargs, conversation=conversation, echo=echo, store=params.get("store", True) is not False
    )


_TRANSLATED: Final = frozenset(
    {
        "verbosity",
        "input",
        "instructions",
        "max_output_tokens",
        "top_logprobs",
        "reasoning",
        "tools",
        "tool_choice",
        "text",
        "truncation",
    }
)
_UNSUPPORTED_HINT: Final = {
    "background": "Background responses need OpenAI's servers; call openai.OpenAI directly.",
    "conversation": "Use previous_response_id (the router keeps the turns it answered) or send the messages.",
    "prompt": "Stored prompt templates live on OpenAI's servers; send the prompt as input.",
    "max_tool_calls": "Limit tool calls in your own loop.",
    "context_management": "Send the conversation you want the model to see.",
}


def _plain(value: Any) -> Any:
    """A request value as JSON data (pydantic models to dicts, tuples to lists)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def input_messages(value: Any) -> list[JSON]:
    """Responses ``input`` (a string or a list of items) as chat messages."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    messages: list[JSON] = []
    for position, item in enumerate(value):
        kind = _get(item, "type")
        if kind in (None, "message") and _get(item, "role") is not None:
            messages.append(_chat_message(item, position))
        elif kind == "function_call":
            call = {
                "id": _get(item, "call_id"),
                "type": "function",
                "function": {"name": _get(item, "name"), "arguments": _get(item, "arguments") or ""},
            }
            last = messages[-1] if messages else None
            # Parallel calls (and text the model said with them) are one assistant message in chat.
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": _get(item, "call_id"),
                    "content": _tool_output(_get(item, "output")),
                }
            )
        elif kind == "reasoning":
            # Another model's reasoning summary: not something a chat protocol takes back.
            continue
        else:
            raise ResponsesRequestError(
                f"input[{position}] has type {kind!r}, which the router cannot send through a chat "
                "protocol; it carries messages, function_call and function_call_output items.",
                param=f"input[{position}]",
            )
    return messages


def _chat_message(item: Any, position: int) -> JSON:
    role = _get(item, "role")
    content = _get(item, "content")
    if role == "developer":
        role = "system"
    if role not in ("user", "system", "assistant"):
        raise ResponsesRequestError(f"input[{position}] has role {role!r}.", param=f"input[{position}].role")
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = [_chat_part(part, position) for part in content or ()]
    if role != "user":
        # System and assistant messages carry text only in every chat protocol.
        return {"role": role, "content": "".join(str(part.get("text", "")) for part in parts)}
    return {"role": role, "content": parts}


def _chat_part(part: Any, position: int) -> JSON:
    kind = _get(part, "type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _get(part, "text") or ""}
    if kind == "refusal":
        return {"type": "text", "text": _get(part, "refusal") or ""}
    if kind == "input_image" and _get(part, "image_url"):
        image: JSON = {"url": _get(part, "image_url")}
        detail = _get(part, "detail")
        if detail:
            image["detail"] = detail
        return {"type": "image_url", "image_url": image}
    raise ResponsesRequestError(
        f"input[{position}] has a {kind!r} content part the router cannot send through a chat protocol "
        "(it carries text and images given by URL or data URL).",
        param=f"input[{position}].content",
    )


def _tool_output(output: Any) -> str:
    if isinstance(output, str):
        return output
    # A list of output parts: the text parts, in order.
    return "".join(str(_get(part, "text") or "") for part in output or ())


def _chat_tool(tool: Any) -> JSON:
    kind = _get(tool, "type")
    if kind != "function":
        raise ResponsesRequestError(
            f"Tool type {kind!r} is hosted by the Responses API server: a model reached through a chat "
            "protocol runs function tools only.",
            param="tools",
        )
    function = _get(tool, "function")
    if function is not None:
        # The chat shape (e.g. openai.pydantic_function_tool(Model)): already what chat wants.
        return {"type": "function", "function": dict(function)}
    spec: JSON = {"name": _get(tool, "name")}
    for key in ("description", "parameters", "strict"):
        value = _get(tool, key)
        if value is not None:
            spec[key] = value
    return {"type": "function", "function": spec}


def _echo_tool(tool: Any) -> JSON:
    function = _get(tool, "function")
    if function is None:
        return dict(_plain(tool))
    return {
        "type": "function",
        "name": function["name"],
        "description": function.get("description"),
        "parameters": function.get("parameters"),
        "strict": function.get("strict"),
    }


def _chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    if _get(choice, "type") == "function":
        return {"type": "function", "function": {"name": _get(choice, "name")}}
    raise ResponsesRequestError(
        f"tool_choice {_plain(choice)!r} names a hosted tool; a chat protocol runs function tools only.",
        param="tool_choice",
    )


def _chat_response_format(fmt: Any) -> JSON | None:
    if not fmt:
        return None
    kind = _get(fmt, "type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema: JSON = {"name": _get(fmt, "name"), "schema": _get(fmt, "schema")}
        for key in ("description", "strict"):
            value = _get(fmt, key)
            if value is not None:
                schema[key] = value
        return {"type": "json_schema", "json_schema": schema}
    raise ResponsesRequestError(f"text.format type {kind!r} is not supported.", param="text.format")


# --------------------------------------------------------------------------- response


def responses_usage(
    prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, reasoning_tokens: int = 0
) -> JSON:
    return {
        "input_tokens": prompt_tokens,
        # cache_write_tokens: openai 2.x's type requires the key; chat usage reports no writes.
        "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
        "output_tokens": completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": prompt_tokens + completion_tokens,
    }


_INCOMPLETE: Final = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _status(finish_reason: str | None) -> tuple[str, JSON | None]:
    reason = _INCOMPLETE.get(finish_reason or "")
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def response_body(
    *,
    response_id: str,
    created_at: float,
    model: str,
    echo: Mapping[str, Any],
    output: list[JSON],
    finish_reason: str | None,
    usage: JSON | None,
    status: str | None = None,
) -> JSON:
    """A Response as the OpenAI API sends it."""
    state, details = _status(finish_reason)
    return {
        **echo,
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "model": model,
        "status": status or state,
        "incomplete_details": details if status is None else None,
        "error": None,
        "output": output,
        "usage": usage,
    }


def token_logprobs(choice_logprobs: Any) -> list[JSON]:
    """A chat choice's ``logprobs.content`` as Responses ``logprobs`` (the same fields)."""
    content = _get(choice_logprobs, "content") if choice_logprobs is not None else None
    return [
        {
            "token": _get(entry, "token"),
            "logprob": _get(entry, "logprob"),
            "bytes": _get(entry, "bytes") or [],
            "top_logprobs": [
                {
                    "token": _get(top, "token"),
                    "logprob": _get(top, "logprob"),
                    "bytes": _get(top, "bytes") or [],
                }
                for top in _get(entry, "top_logprobs") or ()
            ],
        }
        for entry in content or ()
    ]


def output_items(
    message: Any, new: Callable[[str], str] = new_id, logprobs: list[JSON] | None = None
) -> list[JSON]:
    """A chat ``message`` (dict or openai object) as Responses output items; ``logprobs`` from
    ``token_logprobs`` of its choice."""
    items: list[JSON] = []
    content = _get(message, "content")
    refusal = _get(message, "refusal")
    if content or refusal:
        part = (
            {"type": "output_text", "text": content, "annotations": [], "logprobs": logprobs or []}
            if content
            else {"type": "refusal", "refusal": refusal}
        )
        items.append(_message_item(new("msg"), [part], "completed"))
    for call in _get(message, "tool_calls") or ():
        function = _get(call, "function")
        items.append(
            _call_item(
                new("fc"),
                _get(call, "id"),
                _get(function, "name"),
                _get(function, "arguments") or "",
                "completed",
            )
        )
    return items


def _message_item(item_id: str, content: list[JSON], status: str) -> JSON:
    return {"type": "message", "id": item_id, "role": "assistant", "status": status, "content": content}


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> JSON:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def assistant_message(output: Iterable[JSON]) -> JSON:
    """The output items as the chat assistant message a later turn sends back."""
    message: JSON = {"role": "assistant", "content": None}
    for item in output:
        if item["type"] == "message":
            message["content"] = "".join(
                part.get("text") or part.get("refusal") or "" for part in item["content"]
            )
        elif item["type"] == "function_call":
            message.setdefault("tool_calls", []).append(
                {
                    "id": item["call_id"],
                    "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]},
                }
            )
    return message


# --------------------------------------------------------------------------- streaming


@dataclass
class _Text:
    output_index: int
    item_id: str
    kind: str  # "output_text" or "refusal"
    text: str = ""
    logprobs: list[JSON] = field(default_factory=list)


@dataclass
class _Call:
    output_index: int
    item_id: str
    call_id: str
    name: str
    arguments: str = ""


class EventTranslator:
    """Chat chunks in, Responses stream events out (as the wire's JSON, numbered in order).

    ``start()`` once, ``feed(chunk)`` per chunk, ``finish(usage)`` when the chat stream ended
    complete. Items are opened when their first delta arrives and closed at the end, in order.
    """

    def __init__(
        self,
        *,
        response_id: str,
        created_at: float,
        model: str,
        echo: Mapping[str, Any],
        new: Callable[[str], str] = new_id,
    ) -> None:
        self.response_id = response_id
        self._created_at = created_at
        self._model = model
        self._echo = echo
        self._new = new
        self._sequence = 0
        self._text: _Text | None = None
        self._calls: dict[int, _Call] = {}
        self._items = 0
        self._finish_reason: str | None = None
        self.output: list[JSON] = []  # the finished items, once ``finish`` ran

    def _event(self, kind: str, **fields: Any) -> JSON:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _snapshot(self, status: str, output: list[JSON], usage: JSON | None = None) -> JSON:
        return response_body(
            response_id=self.response_id,
            created_at=self._created_at,
            model=self._model,
            echo=self._echo,
            output=output,
            finish_reason=self._finish_reason,
            usage=usage,
            status=status if status == "in_progress" else None,
        )

    def start(self) -> list[JSON]:
        snapshot = self._snapshot("in_progress", [])
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def feed(self, chunk: Any) -> list[JSON]:
        events: list[JSON] = []
        for choice in _get(chunk, "choices") or ():
            if _get(choice, "index", 0) != 0:
                continue
            delta = _get(choice, "delta")
            if delta is not None:
                content = _get(delta, "content")
                if content:
                    events += self._text_delta(
                        "output_text", content, token_logprobs(_get(choice, "logprobs"))
                    )
                refusal = _get(delta, "refusal")
                if refusal:
                    events += self._text_delta("refusal", refusal)
                for call in _get(delta, "tool_calls") or ():
                    events += self._call_delta(call)
            reason = _get(choice, "finish_reason")
            if reason:
                self._finish_reason = reason
        return events

    def _text_delta(self, kind: str, delta: str, logprobs: list[JSON] | None = None) -> list[JSON]:
        events: list[JSON] = []
        text = self._text
        if text is None:
            text = self._text = _Text(self._items, self._new("msg"), kind)
            self._items += 1
            events.append(
                self._event(
                    "response.output_item.added",
                    output_index=text.output_index,
                    item=_message_item(text.item_id, [], "in_progress"),
                )
            )
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=text.item_id,
                    output_index=text.output_index,
                    content_index=0,
                    part=self._part(text, ""),
                )
            )
        text.text += delta
        text.logprobs += logprobs or []
        common = {
            "item_id": text.item_id,
            "output_index": text.output_index,
            "content_index": 0,
            "delta": delta,
        }
        if text.kind == "refusal":
            events.append(self._event("response.refusal.delta", **common))
        else:
            events.append(self._event("response.output_text.delta", **common, logprobs=logprobs or []))
        return events

    @staticmethod
    def _part(text: _Text, value: str, logprobs: list[JSON] | None = None) -> JSON:
        if text.kind == "refusal":
            return {"type": "refusal", "refusal": value}
        return {"type": "output_text", "text": value, "annotations": [], "logprobs": logprobs or []}

    def _call_delta(self, delta: Any) -> list[JSON]:
        events: list[JSON] = []
        index = _get(delta, "index", 0)
        function = _get(delta, "function")
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _Call(
                self._items,
                self._new("fc"),
                _get(delta, "id") or self._new("call"),
                _get(function, "name") or "",
            )
            self._items += 1
            events.append(
                self._event(
                    "response.output_item.added",
                    output_index=call.output_index,
                    item=_call_item(call.item_id, call.call_id, call.name, "", "in_progress"),
                )
            )
        arguments = _get(function, "arguments") if function is not None else None
        if arguments:
            call.arguments += arguments
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=call.item_id,
                    output_index=call.output_index,
                    delta=arguments,
                )
            )
        return events

    def finish(self, usage: JSON | None) -> list[JSON]:
        """Close every open item and complete the response (``response.incomplete`` when cut by a limit)."""
        events: list[JSON] = []
        done: dict[int, JSON] = {}
        text = self._text
        if text is not None:
            part = self._part(text, text.text, text.logprobs)
            common = {"item_id": text.item_id, "output_index": text.output_index, "content_index": 0}
            if text.kind == "refusal":
                events.append(self._event("response.refusal.done", **common, refusal=text.text))
            else:
                events.append(
                    self._event("response.output_text.done", **common, text=text.text, logprobs=text.logprobs)
                )
            events.append(self._event("response.content_part.done", **common, part=part))
            item = _message_item(text.item_id, [part], "completed")
            events.append(self._event("response.output_item.done", output_index=text.output_index, item=item))
            done[text.output_index] = item
        for call in self._calls.values():
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=call.item_id,
                    output_index=call.output_index,
                    name=call.name,
                    arguments=call.arguments,
                )
            )
            item = _call_item(call.item_id, call.call_id, call.name, call.arguments, "completed")
            events.append(self._event("response.output_item.done", output_index=call.output_index, item=item))
            done[call.output_index] = item
        self.output = [done[index] for index in sorted(done)]
        final = self._snapshot("", self.output, usage)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        events.append(self._event(kind, response=final))
        return events
