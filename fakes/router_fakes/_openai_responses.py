"""OpenAI's Responses API on the wire: ``POST /openai/v1/responses`` (JSON and typed SSE events), and
the stored responses behind ``previous_response_id``, ``GET``/``DELETE /responses/{id}`` and
``/responses/{id}/input_items``.

The answer is decided as for every protocol (``_answer.decide``); what only a Responses server does
is shown in a small, recognisable way: a hosted ``web_search`` tool adds a ``web_search_call`` item
before the message, ``reasoning`` adds a ``reasoning`` item (and reasoning tokens), and responses are
stored (unless ``store: false``) so that ``previous_response_id`` continues them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._answer import Answer, Conversation, Tool
from ._openai import OpenAIWire
from ._wire import CONTENT, HEAD, TAIL, BadRequest, ErrorReply, Frame, FrameKind, Ids, as_text
from .tokens import count_openai_prompt_tokens

REASONING_TOKENS = 16
"""Reasoning tokens the fake reports when the request asks for ``reasoning``."""

_HOSTED_SEARCH = ("web_search", "web_search_preview")
# Request fields a Response repeats.
_ECHOED = (
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "reasoning",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
    "user",
)


@dataclass(frozen=True, slots=True)
class Stored:
    response: Mapping[str, Any]
    input_items: tuple[Mapping[str, Any], ...]
    messages: tuple[Mapping[str, Any], ...]  # the conversation as chat messages, for the next turn


class ResponsesStore:
    """The responses this fake server stored (``store`` defaults to true, as on OpenAI)."""

    def __init__(self) -> None:
        self._items: dict[str, Stored] = {}
        self._lock = threading.Lock()

    def get(self, response_id: str) -> Stored | None:
        with self._lock:
            return self._items.get(response_id)

    def put(self, response_id: str, stored: Stored) -> None:
        with self._lock:
            self._items[response_id] = stored

    def delete(self, response_id: str) -> bool:
        with self._lock:
            return self._items.pop(response_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _messages(value: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Responses ``input`` → (chat-like messages for counting and answering, the input items)."""
    if isinstance(value, str):
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}
        return [{"role": "user", "content": value}], [item]
    if not isinstance(value, list):
        raise BadRequest("Invalid type for 'input': expected a string or an array of input items.", "input")
    messages: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for position, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise BadRequest(
                f"Invalid type for 'input[{position}]': expected an object.", f"input[{position}]"
            )
        kind = item.get("type", "message")
        items.append(dict(item))
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise BadRequest(f"Invalid value for 'input[{position}].role'.", f"input[{position}].role")
            messages.append({"role": role, "content": as_text(item.get("content"))})
        elif kind == "function_call":
            function = {"name": item.get("name"), "arguments": item.get("arguments") or ""}
            call = {"id": item.get("call_id"), "function": function}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append(
                {"role": "tool", "content": output if isinstance(output, str) else as_text(output)}
            )
        elif kind in ("reasoning", "web_search_call", "item_reference"):
            continue  # items of earlier turns handed back; nothing a fake answer depends on
        else:
            raise BadRequest(
                f"Invalid value for 'input[{position}].type': {kind!r}.", f"input[{position}].type"
            )
    return messages, items


class OpenAIResponsesWire(OpenAIWire):
    """The Responses API; errors are OpenAI's (inherited)."""

    def __init__(self, store: ResponsesStore) -> None:
        self.store = store

    def parse(self, body: Mapping[str, Any], model: str, stream: bool) -> Conversation:
        if not model:
            raise BadRequest("Missing required parameter: 'model'.", "model")
        if "input" not in body:
            raise BadRequest("Missing required parameter: 'input'.", "input")
        messages, items = _messages(body["input"])
        earlier: tuple[Mapping[str, Any], ...] = ()
        previous = body.get("previous_response_id")
        if previous is not None:
            stored = self.store.get(str(previous))
            if stored is None:
                raise BadRequest(f"Previous response with id '{previous}' not found.", "previous_response_id")
            earlier = stored.messages
        conversation = [*earlier, *messages]
        question = ""
        for message in reversed(conversation):
            if message.get("role") == "user":
                question = as_text(message.get("content"))
                break
        tools = body.get("tools") or []
        function_tools = tuple(
            Tool(str(t.get("name", "")), t.get("parameters"))
            for t in tools
            if isinstance(t, Mapping) and t.get("type") == "function"
        )
        choice = body.get("tool_choice", "auto")
        if isinstance(choice, Mapping):
            choice = choice.get("name", "auto") if choice.get("type") == "function" else "auto"
        text = body.get("text") if isinstance(body.get("text"), Mapping) else {}
        fmt = text.get("format") if isinstance(text, Mapping) else None
        schema = (
            fmt.get("schema", {}) if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema" else None
        )
        instructions = body.get("instructions")
        counted = [{"role": "system", "content": instructions}] if isinstance(instructions, str) else []
        max_tokens = body.get("max_output_tokens")
        return Conversation(
            model=model,
            stream=stream,
            prompt_tokens=count_openai_prompt_tokens([*counted, *conversation]),
            question=question,
            after_tool_result=bool(conversation) and conversation[-1].get("role") == "tool",
            tools=function_tools,
            tool_choice=str(choice),
            json_schema=schema,
            json_object=isinstance(fmt, Mapping) and fmt.get("type") == "json_object",
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            include_usage=True,
            extras={
                "body": dict(body),
                "items": tuple(items),
                "messages": tuple(conversation),
                "search": any(isinstance(t, Mapping) and t.get("type") in _HOSTED_SEARCH for t in tools),
                "reasoning": isinstance(body.get("reasoning"), Mapping),
            },
        )

    def bad_request(self, message: str, param: str | None = None) -> ErrorReply:
        reply = super().bad_request(message, param)
        if param == "previous_response_id":
            error = {**reply.body["error"], "code": "previous_response_not_found"}
            return ErrorReply(400, {"error": error})
        return reply

    # --- the answer ------------------------------------------------------------------------------

    @staticmethod
    def _responses_usage(answer: Answer, conv: Conversation) -> Any:
        if answer.reported_usage is not None:
            return answer.reported_usage
        reasoning = REASONING_TOKENS if conv.extras.get("reasoning") else 0
        output = answer.completion_tokens + reasoning
        return {
            "input_tokens": answer.prompt_tokens,
            "input_tokens_details": {"cached_tokens": answer.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": answer.prompt_tokens + output,
        }

    @staticmethod
    def _items(answer: Answer, conv: Conversation, ids: Ids) -> list[dict[str, Any]]:
        n = ids.number
        items: list[dict[str, Any]] = []
        if conv.extras.get("reasoning"):
            reasoning: dict[str, Any] = {"type": "reasoning", "id": f"rs_fake{n}", "summary": []}
            include = conv.extras["body"].get("include") or ()
            if "reasoning.encrypted_content" in include:
                reasoning["encrypted_content"] = f"fake-encrypted-{n}"
            items.append(reasoning)
        if conv.extras.get("search"):
            action = {"type": "search", "query": conv.question}
            items.append(
                {"type": "web_search_call", "id": f"ws_fake{n}", "status": "completed", "action": action}
            )
        if answer.tool_call is not None:
            items.append(
                {
                    "type": "function_call",
                    "id": f"fc_fake{n}",
                    "call_id": f"call_fake{n}",
                    "name": answer.tool_call.name,
                    "arguments": answer.tool_call.arguments,
                    "status": "completed",
                }
            )
        elif answer.finish != "content_filter":
            part = {"type": "output_text", "text": answer.text, "annotations": [], "logprobs": []}
            items.append(
                {
                    "type": "message",
                    "id": f"msg_fake{n}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [part],
                }
            )
        return items

    def _response(
        self, conv: Conversation, ids: Ids, status: str, output: list[dict[str, Any]], usage: Any
    ) -> dict[str, Any]:
        body = conv.extras["body"]
        echo = {k: body[k] for k in _ECHOED if k in body}
        incomplete = None
        if status == "incomplete":
            incomplete = {"reason": conv.extras.get("incomplete", "max_output_tokens")}
        return {
            "tool_choice": "auto",
            "tools": [],
            "parallel_tool_calls": True,
            "text": {"format": {"type": "text"}},
            "truncation": "disabled",
            "store": True,
            **echo,
            "id": f"resp_fake{ids.number}",
            "object": "response",
            "created_at": ids.created,
            "model": conv.model,
            "status": status,
            "error": None,
            "incomplete_details": incomplete,
            "output": output,
            "usage": usage,
        }

    @staticmethod
    def _status(answer: Answer) -> tuple[str, str | None]:
        if answer.finish == "length":
            return "incomplete", "max_output_tokens"
        if answer.finish == "content_filter":
            return "incomplete", "content_filter"
        return "completed", None

    def _keep(self, conv: Conversation, response: Mapping[str, Any], output: list[dict[str, Any]]) -> None:
        if conv.extras["body"].get("store") is False:
            return
        reply: dict[str, Any] = {"role": "assistant", "content": None}
        for item in output:
            if item["type"] == "message":
                reply["content"] = as_text(item["content"])
            elif item["type"] == "function_call":
                call = {
                    "id": item["call_id"],
                    "function": {"name": item["name"], "arguments": item["arguments"]},
                }
                reply.setdefault("tool_calls", []).append(call)
        messages = (*conv.extras["messages"], reply)
        self.store.put(str(response["id"]), Stored(response, conv.extras["items"], messages))

    def render(self, answer: Answer, conv: Conversation, ids: Ids) -> Mapping[str, Any]:
        status, reason = self._status(answer)
        output = self._items(answer, conv, ids)
        response = self._response(conv, ids, status, output, self._responses_usage(answer, conv))
        if reason is not None:
            response["incomplete_details"] = {"reason": reason}
        self._keep(conv, response, output)
        return response

    def render_stream(self, answer: Answer, conv: Conversation, ids: Ids) -> list[Frame]:
        status, reason = self._status(answer)
        output = self._items(answer, conv, ids)
        final = self._response(conv, ids, status, output, self._responses_usage(answer, conv))
        if reason is not None:
            final["incomplete_details"] = {"reason": reason}
        self._keep(conv, final, output)
        sequence = iter(range(1_000_000))

        def event(kind: str, frame: FrameKind = HEAD, **fields: Any) -> Frame:
            payload = {"type": kind, "sequence_number": next(sequence), **fields}
            data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            return Frame(f"event: {kind}\ndata: {data}\n\n".encode(), frame)

        start = self._response(conv, ids, "in_progress", [], None)
        frames = [event("response.created", response=start), event("response.in_progress", response=start)]
        for index, item in enumerate(output):
            kind = item["type"]
            if kind == "message":
                opened = {**item, "status": "in_progress", "content": []}
                common = {"item_id": item["id"], "output_index": index, "content_index": 0}
                empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                frames.append(event("response.output_item.added", output_index=index, item=opened))
                frames.append(event("response.content_part.added", **common, part=empty))
                for piece in answer.text_pieces():
                    frames.append(
                        event("response.output_text.delta", CONTENT, **common, delta=piece, logprobs=[])
                    )
                frames.append(
                    event("response.output_text.done", TAIL, **common, text=answer.text, logprobs=[])
                )
                frames.append(event("response.content_part.done", TAIL, **common, part=item["content"][0]))
            elif kind == "function_call":
                opened = {**item, "status": "in_progress", "arguments": ""}
                common = {"item_id": item["id"], "output_index": index}
                frames.append(event("response.output_item.added", output_index=index, item=opened))
                assert answer.tool_call is not None
                for piece in answer.tool_call.argument_pieces():
                    frames.append(
                        event("response.function_call_arguments.delta", CONTENT, **common, delta=piece)
                    )
                frames.append(
                    event(
                        "response.function_call_arguments.done",
                        TAIL,
                        **common,
                        name=item["name"],
                        arguments=item["arguments"],
                    )
                )
            elif kind == "web_search_call":
                opened = {**item, "status": "in_progress"}
                common = {"item_id": item["id"], "output_index": index}
                frames.append(event("response.output_item.added", output_index=index, item=opened))
                for step in ("in_progress", "searching", "completed"):
                    frames.append(event(f"response.web_search_call.{step}", **common))
            else:
                frames.append(event("response.output_item.added", output_index=index, item=item))
            frames.append(event("response.output_item.done", TAIL, output_index=index, item=item))
        terminal = "response.completed" if status == "completed" else "response.incomplete"
        frames.append(event(terminal, TAIL, response=final))
        return frames

    # --- stored responses ------------------------------------------------------------------------

    def retrieve(self, response_id: str) -> ErrorReply:
        stored = self.store.get(response_id)
        if stored is None:
            return self._missing(response_id)
        return ErrorReply(200, stored.response)

    def delete(self, response_id: str) -> ErrorReply:
        if not self.store.delete(response_id):
            return self._missing(response_id)
        return ErrorReply(200, {"id": response_id, "object": "response.deleted", "deleted": True})

    def input_items(self, response_id: str) -> ErrorReply:
        stored = self.store.get(response_id)
        if stored is None:
            return self._missing(response_id)
        data = [{"id": f"msg_in{i}_{response_id}", **item} for i, item in enumerate(stored.input_items)]
        listing = {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": False,
        }
        return ErrorReply(200, listing)

    @staticmethod
    def _missing(response_id: str) -> ErrorReply:
        message = f"Response with id '{response_id}' not found."
        error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
        return ErrorReply(404, {"error": error})
