"""Anthropic Messages on the wire: ``POST /anthropic/v1/messages``, JSON and the SSE event sequence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._answer import Answer, Conversation, Tool
from ._wire import CONTENT, HEAD, TAIL, BadRequest, ErrorReply, Frame, Ids, ProtocolName, as_text, sse
from .tokens import PER_MESSAGE_TOKENS, image_tokens, text_tokens, tool_call_tokens

# status -> (error type, message): the bodies Anthropic sends for these codes.
_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "This request would exceed the rate limit for your organization."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
_STOP_REASONS: Mapping[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return text_tokens(block)
    if not isinstance(block, Mapping):
        return 0
    kind = block.get("type")
    if kind == "text":
        return text_tokens(str(block.get("text", "")))
    if kind in ("image", "document"):
        return image_tokens()
    if kind == "tool_use":
        return tool_call_tokens(str(block.get("name", "")), block.get("input", {}))
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, list):
            return sum(_block_tokens(part) for part in content)
        return text_tokens(as_text(content))
    return 0


def _content_tokens(content: Any) -> int:
    if isinstance(content, list):
        return sum(_block_tokens(block) for block in content)
    return _block_tokens(content)


def _user_text(content: Any) -> str | None:
    """The user's own words in a message, or None when it only carries tool results."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = [b for b in content if isinstance(b, Mapping) and b.get("type") == "text"]
    return as_text(texts) if texts else None


def _json_schema(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Structured outputs: ``output_format`` (what litellm sends) or the newer ``output_config.format``."""
    for holder in (body, body.get("output_config")):
        if isinstance(holder, Mapping):
            fmt = holder.get("output_format") if holder is body else holder.get("format")
            if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
                schema = fmt.get("schema")
                return schema if isinstance(schema, Mapping) else {}
    return None


class AnthropicWire:
    name: ProtocolName = "anthropic"

    def parse(self, body: Mapping[str, Any], model: str, stream: bool) -> Conversation:
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, Mapping) for m in messages)
        ):
            raise BadRequest("messages: at least one message is required")
        if not model:
            raise BadRequest("model: Field required")
        if not isinstance(body.get("max_tokens"), int):
            raise BadRequest("max_tokens: Field required")
        prompt = sum(PER_MESSAGE_TOKENS + _content_tokens(m.get("content")) for m in messages)
        if body.get("system"):
            prompt += PER_MESSAGE_TOKENS + _content_tokens(body["system"])
        question = ""
        for message in reversed(messages):
            text = _user_text(message.get("content")) if message.get("role") == "user" else None
            if text is not None:
                question = text
                break
        last = messages[-1].get("content")
        after_tool = isinstance(last, list) and any(
            isinstance(b, Mapping) and b.get("type") == "tool_result" for b in last
        )
        tools = tuple(
            Tool(str(t.get("name", "")), t.get("input_schema"))
            for t in body.get("tools") or ()
            if isinstance(t, Mapping) and "name" in t
        )
        choice = body.get("tool_choice")
        tool_choice = "auto"
        if isinstance(choice, Mapping):
            kind = choice.get("type")
            tool_choice = (
                str(choice.get("name", ""))
                if kind == "tool"
                else {"any": "required"}.get(str(kind), str(kind))
            )
        return Conversation(
            model=model,
            stream=stream,
            prompt_tokens=prompt,
            question=question,
            after_tool_result=after_tool,
            tools=tools,
            tool_choice=tool_choice,
            json_schema=_json_schema(body),
            max_tokens=body["max_tokens"],
        )

    @staticmethod
    def _usage(answer: Answer) -> dict[str, Any]:
        # Anthropic's input_tokens excludes cache reads; they are reported separately.
        return {
            "input_tokens": answer.prompt_tokens - answer.cached_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": answer.cached_tokens,
            "output_tokens": answer.completion_tokens,
            "service_tier": "standard",
        }

    def _message(self, answer: Answer, conv: Conversation, ids: Ids, content: list[Any]) -> dict[str, Any]:
        return {
            "id": f"msg_fake{ids.number:020d}",
            "type": "message",
            "role": "assistant",
            "model": conv.model,
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(answer),
        }

    def render(self, answer: Answer, conv: Conversation, ids: Ids) -> Mapping[str, Any]:
        content: list[Any] = []
        if answer.tool_call is not None:
            call = answer.tool_call
            tool_id = f"toolu_fake{ids.number:020d}"
            content.append(
                {"type": "tool_use", "id": tool_id, "name": call.name, "input": call.arguments_object()}
            )
        elif answer.text:
            content.append({"type": "text", "text": answer.text})
        message = self._message(answer, conv, ids, content)
        message["stop_reason"] = _STOP_REASONS[answer.finish]
        return message

    def render_stream(self, answer: Answer, conv: Conversation, ids: Ids) -> list[Frame]:
        start = self._message(answer, conv, ids, [])
        start["usage"] = {**start["usage"], "output_tokens": 1}
        frames = [Frame(sse({"type": "message_start", "message": start}, "message_start"), HEAD)]
        call = answer.tool_call
        block: Mapping[str, Any] | None = None
        deltas: list[Mapping[str, Any]] = []
        if call is not None:
            block = {"type": "tool_use", "id": f"toolu_fake{ids.number:020d}", "name": call.name, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in call.argument_pieces()]
        elif answer.text:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in answer.text_pieces()]
        if block is not None:
            event = {"type": "content_block_start", "index": 0, "content_block": block}
            frames.append(Frame(sse(event, "content_block_start"), HEAD))
        frames.append(Frame(sse({"type": "ping"}, "ping"), HEAD))
        for delta in deltas:
            event = {"type": "content_block_delta", "index": 0, "delta": delta}
            frames.append(Frame(sse(event, "content_block_delta"), CONTENT))
        if block is not None:
            frames.append(Frame(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"), TAIL))
        delta = {"stop_reason": _STOP_REASONS[answer.finish], "stop_sequence": None}
        usage = {"output_tokens": answer.completion_tokens}
        frames.append(
            Frame(sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta"), TAIL)
        )
        frames.append(Frame(sse({"type": "message_stop"}, "message_stop"), TAIL))
        return frames

    def error(self, status: int, message: str | None = None, retry_after: float | None = None) -> ErrorReply:
        default = (
            ("invalid_request_error", "Request failed.")
            if status < 500
            else ("api_error", "Internal server error")
        )
        kind, text = _ERRORS.get(status, default)
        return self._error(status, kind, message or text)

    @staticmethod
    def _error(status: int, kind: str, message: str) -> ErrorReply:
        return ErrorReply(status, {"type": "error", "error": {"type": kind, "message": message}})

    def bad_request(self, message: str, param: str | None = None) -> ErrorReply:
        return self._error(400, "invalid_request_error", message)

    def context_error(self, limit: int, tokens: int) -> ErrorReply:
        return self._error(
            400, "invalid_request_error", f"prompt is too long: {tokens} tokens > {limit} maximum"
        )

    def not_found(self, model: str) -> ErrorReply:
        return self._error(404, "not_found_error", f"model: {model}")

    def auth_error(self, key: str | None) -> ErrorReply:
        message = "x-api-key header is required" if key is None else "invalid x-api-key"
        return self._error(401, "authentication_error", message)
