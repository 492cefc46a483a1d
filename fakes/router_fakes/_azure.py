"""Azure OpenAI on the wire: ``POST /azure/{resource}/openai/deployments/{deployment}/chat/completions
?api-version=…`` with an ``api-key`` header, and the Responses API at ``POST /azure/{resource}/openai/v1/
responses`` (the v1 API: no api-version; the deployment's name is the body's ``model``), or the older
``/openai/responses?api-version=…``.

The bodies are OpenAI's with Azure's additions: ``prompt_filter_results`` and per-choice
``content_filter_results`` (in a stream, a first chunk with no choices carries the prompt's), and
Azure's own error bodies: ``{"error": {"code": "429", "message": …}}``, ``DeploymentNotFound``, and
the content filter's 400 (``code: content_filter`` with ``innererror.content_filter_result``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._answer import Answer, Conversation
from ._openai import OpenAIWire
from ._openai_responses import OpenAIResponsesWire
from ._wire import HEAD, ErrorReply, Frame, Ids, ProtocolName, sse

_SAFE: Mapping[str, Any] = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
_PROMPT_FILTER = [
    {
        "prompt_index": 0,
        "content_filter_results": {**_SAFE, "jailbreak": {"filtered": False, "detected": False}},
    }
]

_CONTENT_FILTER = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry. To learn more about our content filtering policies please read "
    "our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)
_ERRORS: Mapping[int, tuple[str, str]] = {
    401: (
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
        "key for an active subscription and use a correct regional API endpoint for your resource.",
    ),
    404: (
        "DeploymentNotFound",
        "The API deployment for this resource does not exist. If you created the deployment within the "
        "last 5 minutes, please wait a moment and try again.",
    ),
    429: (
        "429",
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have "
        "exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second.",
    ),
    500: ("InternalServerError", "The server had an error while processing your request."),
    503: ("ServiceUnavailable", "The service is temporarily unable to process your request."),
}


class AzureWire(OpenAIWire):
    name: ProtocolName = "azure"

    def render(self, answer: Answer, conv: Conversation, ids: Ids) -> Mapping[str, Any]:
        body = dict(super().render(answer, conv, ids))
        filtered = answer.finish == "content_filter"
        body["prompt_filter_results"] = _PROMPT_FILTER
        body["choices"] = [
            {**choice, "content_filter_results": _violence() if filtered else _SAFE}
            for choice in body["choices"]
        ]
        return body

    def render_stream(self, answer: Answer, conv: Conversation, ids: Ids) -> list[Frame]:
        frames = super().render_stream(answer, conv, ids)
        # Azure's first event: no choices, the prompt's filter results (an empty "model").
        first = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": _PROMPT_FILTER,
        }
        return [Frame(sse(first), HEAD), *frames]

    def error(self, status: int, message: str | None = None, retry_after: float | None = None) -> ErrorReply:
        code, text = _ERRORS.get(status, (str(status), "The request failed."))
        return ErrorReply(status, {"error": {"code": code, "message": message or text}})

    def not_found(self, model: str) -> ErrorReply:
        return self.error(404)

    def auth_error(self, key: str | None) -> ErrorReply:
        return self.error(401)

    def content_policy(self, message: str | None) -> ErrorReply:
        """Azure's 400 for a prompt its content filter rejected."""
        error = {
            "message": message or _CONTENT_FILTER,
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {**_violence(), "jailbreak": {"filtered": False, "detected": False}},
            },
        }
        return ErrorReply(400, {"error": error})


def _violence() -> dict[str, Any]:
    return {**_SAFE, "violence": {"filtered": True, "severity": "medium"}}


def resource_not_found() -> ErrorReply:
    """Azure's answer to a request without ``api-version`` (or to a path it does not serve)."""
    return ErrorReply(404, {"error": {"code": "404", "message": "Resource not found"}})


class AzureResponsesWire(OpenAIResponsesWire):
    """Azure's Responses API: OpenAI's Responses bodies and events, Azure's error bodies."""

    name: ProtocolName = "azure"

    def error(self, status: int, message: str | None = None, retry_after: float | None = None) -> ErrorReply:
        return AzureWire.error(AzureWire(), status, message, retry_after)

    def not_found(self, model: str) -> ErrorReply:
        return self.error(404)

    def auth_error(self, key: str | None) -> ErrorReply:
        return self.error(401)

    def content_policy(self, message: str | None) -> ErrorReply:
        return AzureWire().content_policy(message)
