"""Gemini generateContent on the wire: ``POST /gemini/v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``.

The real API accepts both the proto field names (``system_instruction``, ``max_output_tokens``) and their
camelCase JSON names; litellm sends the former, Google's own SDK the latter, so both are read here.
Responses use camelCase, as the real API answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._answer import Answer, Conversation, Tool
from ._wire import CONTENT, TAIL, BadRequest, ErrorReply, Frame, Ids, ProtocolName, as_text, sse
from .tokens import PER_MESSAGE_TOKENS, image_tokens, text_tokens, tool_call_tokens

# status -> (status name, message): the bodies the Gemini API sends for these codes.
_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report the problem."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
_FINISH: Mapping[str, str] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
}


def _get(mapping: Any, snake: str, camel: str) -> Any:
    if not isinstance(mapping, Mapping):
        return None
    return mapping[snake] if snake in mapping else mapping.get(camel)


def _part_tokens(part: Mapping[str, Any]) -> int:
    if isinstance(part.get("text"), str):
        return text_tokens(part["text"])
    if _get(part, "inline_data", "inlineData") is not None or _get(part, "file_data", "fileData") is not None:
        return image_tokens()
    call = _get(part, "function_call", "functionCall")
    if isinstance(call, Mapping):
        return tool_call_tokens(str(call.get("name", "")), call.get("args", {}))
    result = _get(part, "function_response", "functionResponse")
    if isinstance(result, Mapping):
        response = result.get("response")
        # litellm wraps a tool's text as {"content": text}; count the text, as OpenAI and Anthropic do.
        if (
            isinstance(response, Mapping)
            and set(response) == {"content"}
            and isinstance(response["content"], str)
        ):
            return text_tokens(response["content"])
        return tool_call_tokens("", response)
    return 0


def _parts(content: Any) -> list[Mapping[str, Any]]:
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return [p for p in parts if isinstance(p, Mapping)] if isinstance(parts, list) else []


class GeminiWire:
    name: ProtocolName = "gemini"

    def parse(self, body: Mapping[str, Any], model: str, stream: bool) -> Conversation:
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
        prompt = sum(PER_MESSAGE_TOKENS + sum(_part_tokens(p) for p in _parts(c)) for c in contents)
        system = _get(body, "system_instruction", "systemInstruction")
        if system:
            prompt += PER_MESSAGE_TOKENS + sum(_part_tokens(p) for p in _parts(system))
        question = ""
        for content in reversed(contents):
            texts = [p for p in _parts(content) if isinstance(p.get("text"), str)]
            if _get(content, "role", "role") in ("user", None) and texts:
                question = as_text(texts)
                break
        after_tool = any(
            _get(p, "function_response", "functionResponse") is not None for p in _parts(contents[-1])
        )
        tools: list[Tool] = []
        for group in body.get("tools") or ():
            for decl in _get(group, "function_declarations", "functionDeclarations") or ():
                schema = _get(decl, "parameters_json_schema", "parametersJsonSchema") or decl.get(
                    "parameters"
                )
                tools.append(Tool(str(decl.get("name", "")), schema))
        calling = _get(
            _get(body, "tool_config", "toolConfig"), "function_calling_config", "functionCallingConfig"
        )
        mode = str(_get(calling, "mode", "mode") or "AUTO").upper()
        allowed = _get(calling, "allowed_function_names", "allowedFunctionNames")
        tool_choice = {"NONE": "none", "ANY": "required"}.get(mode, "auto")
        if mode == "ANY" and isinstance(allowed, list) and allowed:
            tool_choice = str(allowed[0])
        config = _get(body, "generation_config", "generationConfig") or {}
        json_mode = _get(config, "response_mime_type", "responseMimeType") == "application/json"
        schema = _get(config, "response_json_schema", "responseJsonSchema") or _get(
            config, "response_schema", "responseSchema"
        )
        max_tokens = _get(config, "max_output_tokens", "maxOutputTokens")
        count = _get(config, "candidate_count", "candidateCount")
        return Conversation(
            model=model,
            stream=stream,
            prompt_tokens=prompt,
            question=question,
            after_tool_result=after_tool,
            tools=tuple(tools),
            tool_choice=tool_choice,
            json_schema=schema if json_mode and isinstance(schema, Mapping) else None,
            json_object=json_mode,
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            choices=count if isinstance(count, int) and count > 0 else 1,  # OpenAI's n, as candidates
        )

    @staticmethod
    def _usage(answer: Answer) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "promptTokenCount": answer.prompt_tokens,
            "candidatesTokenCount": answer.completion_tokens,
            "totalTokenCount": answer.total_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.prompt_tokens}],
        }
        if answer.cached_tokens:
            usage["cachedContentTokenCount"] = answer.cached_tokens
        return usage

    @staticmethod
    def _candidate(parts: list[Mapping[str, Any]], finish: str | None, index: int = 0) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
        if finish == "SAFETY":
            # A blocked answer has no content, only the rating that blocked it.
            rating = {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
            candidate = {"index": index, "safetyRatings": [rating]}
        if finish is not None:
            candidate["finishReason"] = finish
        return candidate

    def render(self, answer: Answer, conv: Conversation, ids: Ids) -> Mapping[str, Any]:
        parts: list[Mapping[str, Any]] = []
        if answer.tool_call is not None:
            call = answer.tool_call
            parts.append({"functionCall": {"name": call.name, "args": call.arguments_object()}})
        else:
            parts.append({"text": answer.text})
        return {
            "candidates": [self._candidate(parts, _FINISH[answer.finish], i) for i in range(conv.choices)],
            "usageMetadata": self._usage(answer),
            "modelVersion": conv.model,
            "responseId": f"fake{ids.number}",
        }

    def render_stream(self, answer: Answer, conv: Conversation, ids: Ids) -> list[Frame]:
        base = {"modelVersion": conv.model, "responseId": f"fake{ids.number}"}

        def chunk(parts: list[Mapping[str, Any]], finish: str | None = None) -> bytes:
            payload: dict[str, Any] = {
                "candidates": [self._candidate(parts, finish, i) for i in range(conv.choices)]
            }
            if finish is not None:
                payload["usageMetadata"] = self._usage(answer)
            return sse({**payload, **base}, newline="\r\n")

        frames: list[Frame] = []
        if answer.tool_call is not None:
            # Gemini sends a function call whole, in one chunk.
            call = {
                "functionCall": {"name": answer.tool_call.name, "args": answer.tool_call.arguments_object()}
            }
            frames.append(Frame(chunk([call]), CONTENT))
        else:
            frames.extend(Frame(chunk([{"text": piece}]), CONTENT) for piece in answer.text_pieces())
        frames.append(Frame(chunk([{"text": ""}], _FINISH[answer.finish]), TAIL))
        return frames

    def error(self, status: int, message: str | None = None, retry_after: float | None = None) -> ErrorReply:
        default = ("INVALID_ARGUMENT", "Request failed.") if status < 500 else ("INTERNAL", "Internal error.")
        name, text = _ERRORS.get(status, default)
        error: dict[str, Any] = {"code": status, "message": message or text, "status": name}
        if status == 429 and retry_after is not None:
            delay = f"{retry_after:g}s"
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]
        return ErrorReply(status, {"error": error})

    def bad_request(self, message: str, param: str | None = None) -> ErrorReply:
        return ErrorReply(400, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})

    def context_error(self, limit: int, tokens: int) -> ErrorReply:
        message = f"The input token count ({tokens}) exceeds the maximum number of tokens allowed ({limit})."
        return self.bad_request(message)

    def not_found(self, model: str) -> ErrorReply:
        message = (
            f"models/{model} is not found for API version v1beta, or is not supported for generateContent. "
            "Call ListModels to see the list of available models and their supported methods."
        )
        return ErrorReply(404, {"error": {"code": 404, "message": message, "status": "NOT_FOUND"}})

    def auth_error(self, key: str | None) -> ErrorReply:
        """The real API answers a bad key with 400 API_KEY_INVALID and a missing one with 403, not 401."""
        if key is None:
            message = (
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API."
            )
            return ErrorReply(
                403, {"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED"}}
            )
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
        error = {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
        }
        return ErrorReply(400, {"error": {**error, "details": [{**info, "domain": "googleapis.com"}]}})
