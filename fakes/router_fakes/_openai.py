"""OpenAI Chat Completions on the wire: ``POST /openai/v1/chat/completions``, JSON and SSE."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._answer import Answer, Conversation, Tool
from ._wire import CONTENT, HEAD, TAIL, BadRequest, ErrorReply, Frame, Ids, ProtocolName, as_text, sse
from .tokens import count_openai_prompt_tokens

# status -> (type, code, message): the bodies OpenAI sends for these codes.
_ERRORS: Mapping[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


class OpenAIWire:
    name: ProtocolName = "openai"

    def parse(self, body: Mapping[str, Any], model: str, stream: bool) -> Conversation:
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, Mapping) for m in messages)
        ):
            raise BadRequest("'messages' must be a non-empty array of message objects.", "messages")
        if not model:
            raise BadRequest("you must provide a model parameter", "model")
        question = ""
        for message in reversed(messages):
            if message.get("role") == "user":
                question = as_text(message.get("content"))
                break
        tools = tuple(
            Tool(str(t["function"].get("name", "")), t["function"].get("parameters"))
            for t in body.get("tools") or ()
            if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
        )
        choice = body.get("tool_choice", "auto")
        if isinstance(choice, Mapping):
            function = choice.get("function")
            choice = function.get("name", "auto") if isinstance(function, Mapping) else "auto"
        response_format = body.get("response_format")
        schema = None
        json_object = False
        if isinstance(response_format, Mapping):
            if response_format.get("type") == "json_schema":
                spec = response_format.get("json_schema")
                schema = spec.get("schema", {}) if isinstance(spec, Mapping) else {}
            json_object = response_format.get("type") == "json_object"
        options = body.get("stream_options")
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        return Conversation(
            model=model,
            stream=stream,
            prompt_tokens=count_openai_prompt_tokens(messages),
            question=question,
            after_tool_result=messages[-1].get("role") in ("tool", "function"),
            tools=tools,
            tool_choice=str(choice),
            json_schema=schema,
            json_object=json_object,
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            include_usage=isinstance(options, Mapping) and bool(options.get("include_usage")),
            choices=n if isinstance(n := body.get("n", 1), int) and n > 0 else 1,
        )

    @staticmethod
    def _usage(answer: Answer) -> Any:
        if answer.reported_usage is not None:
            return answer.reported_usage
        return {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.total_tokens,
            "prompt_tokens_details": {"cached_tokens": answer.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def render(self, answer: Answer, conv: Conversation, ids: Ids) -> Mapping[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text,
            "refusal": None,
            "annotations": [],
        }
        if answer.tool_call is not None:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_fake{ids.number}",
                    "type": "function",
                    "function": {"name": answer.tool_call.name, "arguments": answer.tool_call.arguments},
                }
            ]
        return {
            "id": f"chatcmpl-fake{ids.number}",
            "object": "chat.completion",
            "created": ids.created,
            "model": conv.model,
            "choices": [
                {"index": i, "message": message, "logprobs": None, "finish_reason": answer.finish}
                for i in range(conv.choices)
            ],
            "usage": self._usage(answer),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    def render_stream(self, answer: Answer, conv: Conversation, ids: Ids) -> list[Frame]:
        base = {
            "id": f"chatcmpl-fake{ids.number}",
            "object": "chat.completion.chunk",
            "created": ids.created,
            "model": conv.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        # With include_usage, every chunk carries "usage": null and one extra chunk carries the usage.
        tail = {"usage": None} if conv.include_usage else {}

        def chunk(delta: Mapping[str, Any], finish: str | None = None) -> bytes:
            # With n > 1 every choice says the same, in one chunk (OpenAI sends one chunk per choice).
            choices = [
                {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
                for i in range(conv.choices)
            ]
            return sse({**base, "choices": choices, **tail})

        frames = [Frame(chunk({"role": "assistant", "content": "", "refusal": None}), HEAD)]
        call = answer.tool_call
        if call is not None:
            head = {"index": 0, "id": f"call_fake{ids.number}", "type": "function"}
            head["function"] = {"name": call.name, "arguments": ""}
            frames.append(Frame(chunk({"tool_calls": [head]}), CONTENT))
            for piece in call.argument_pieces():
                delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                frames.append(Frame(chunk(delta), CONTENT))
        else:
            frames.extend(Frame(chunk({"content": piece}), CONTENT) for piece in answer.text_pieces())
        frames.append(Frame(chunk({}, answer.finish), TAIL))
        if conv.include_usage:
            frames.append(Frame(sse({**base, "choices": [], "usage": self._usage(answer)}), TAIL))
        frames.append(Frame(b"data: [DONE]\n\n", TAIL))
        return frames

    def error(self, status: int, message: str | None = None, retry_after: float | None = None) -> ErrorReply:
        default = (
            ("invalid_request_error", None, "Request failed.") if status < 500 else ("server_error", None, "")
        )
        kind, code, text = _ERRORS.get(status, default)
        text = message or text or "The server had an error while processing your request."
        return ErrorReply(status, {"error": {"message": text, "type": kind, "param": None, "code": code}})

    def bad_request(self, message: str, param: str | None = None) -> ErrorReply:
        body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
        return ErrorReply(400, body)

    def context_error(self, limit: int, tokens: int) -> ErrorReply:
        message = (
            f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
            f"{tokens} tokens. Please reduce the length of the messages."
        )
        error = {"message": message, "type": "invalid_request_error", "param": "messages"}
        return ErrorReply(400, {"error": {**error, "code": "context_length_exceeded"}})

    def not_found(self, model: str) -> ErrorReply:
        message = f"The model `{model}` does not exist or you do not have access to it."
        error = {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
        return ErrorReply(404, {"error": error})

    def auth_error(self, key: str | None) -> ErrorReply:
        if key is None:
            message = (
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
        else:
            masked = key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "*" * len(key)
            message = f"Incorrect API key provided: {masked}."
            error = {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        return ErrorReply(401, {"error": error})

    @staticmethod
    def models(names: list[str], created: int) -> Mapping[str, Any]:
        data = [{"id": n, "object": "model", "created": created, "owned_by": "fake"} for n in names]
        return {"object": "list", "data": data}
