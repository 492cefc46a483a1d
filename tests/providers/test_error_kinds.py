"""The error table, the factory built on it, and OpenAI's shape for every provider's error body."""

from __future__ import annotations

from typing import Any, get_args

import httpx
import openai
import pytest

from providers.error_kinds import KINDS, ErrorClass, RouterKind
from providers.errors import (
    ROUTER_URL,
    error_class,
    from_litellm,
    make_error,
    retry_after_s,
    status_error_from_response,
)

REQUEST = httpx.Request("POST", "https://provider.test/v1/chat/completions")


def _response(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body, request=REQUEST)


def test_the_table_has_one_row_per_kind() -> None:
    assert set(KINDS) == set(get_args(ErrorClass)) | set(get_args(RouterKind))


# An answer emptied by the provider's output filter never arrives as an HTTP error (finish_reason
# content_filter on a 200); a 400 about content is the request refused for it: content_policy.
HTTP_KINDS = tuple(kind for kind in get_args(ErrorClass) if kind != "content_filter")


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_what_the_factory_raises_for_a_kind_is_classified_as_that_kind(kind: ErrorClass) -> None:
    status = 418 if kind == "unknown" else None
    error = make_error(kind, "something went wrong", status=status)
    assert error_class(error) == kind
    row = KINDS[kind]
    assert isinstance(error, row.exception)
    if row.status is not None:
        assert isinstance(error, openai.APIStatusError) and error.status_code == row.status
        assert (error.code, error.type, error.param) == (row.code, row.type, row.param)
        assert error.message == f"Error code: {row.status} - {{'error': {error.body}}}"


def test_a_400_about_content_is_a_content_policy_refusal_and_an_emptied_answer_a_content_filter() -> None:
    assert error_class(make_error("content_filter", "flagged")) == "content_policy"
    assert error_class(openai.ContentFilterFinishReasonError()) == "content_filter"


@pytest.mark.parametrize("kind", get_args(RouterKind))
def test_the_routers_own_kinds_have_openais_classes_and_the_router_url(kind: RouterKind) -> None:
    error = make_error(kind, "refused")
    assert isinstance(error, KINDS[kind].exception)
    assert str(error.request.url) == ROUTER_URL


def test_an_openai_compatible_429_without_a_code_gets_openais_code_and_type() -> None:
    error = status_error_from_response(_response(429, {"error": {"message": "slow down"}}))
    assert (error.code, error.type, error.param) == ("rate_limit_exceeded", "requests", None)
    assert error.message == "Error code: 429 - {'error': {'message': 'slow down'}}"  # as openai prints it


def test_openais_own_error_body_is_kept_as_it_came() -> None:
    body = {"message": "You didn't provide an API key.", "type": "invalid_request_error", "param": None}
    error = status_error_from_response(_response(401, {"error": {**body, "code": None}}))
    assert error.body == {**body, "code": None}


def test_a_non_string_code_and_a_detail_body_are_made_openai_shaped() -> None:
    vllm = {"object": "error", "message": "bad", "type": "BadRequestError", "param": None, "code": 400}
    error = status_error_from_response(_response(400, vllm))
    assert error.code is None and error.type == "BadRequestError" and error.body["message"] == "bad"  # type: ignore[index]
    detail = status_error_from_response(_response(404, {"detail": "Not Found"}))
    assert detail.body["message"] == "Not Found" and detail.code == "model_not_found"  # type: ignore[index]


def test_a_context_error_worded_but_not_coded_gets_the_context_code() -> None:
    body = {"error": {"message": "This model's maximum context length is 8192 tokens", "code": None}}
    error = status_error_from_response(_response(400, body))
    assert error.code == "context_length_exceeded" and error_class(error) == "context_window"


class _LiteLLMError(openai.APIStatusError):
    """Shaped like litellm's exceptions: its own status, a message with its prefixes."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message, response=httpx.Response(status, request=REQUEST), body=None)
        for key, value in extra.items():
            setattr(self, key, value)


def test_a_litellm_message_without_json_loses_litellms_prefixes_and_advice() -> None:
    original = _LiteLLMError(
        500,
        "litellm.InternalServerError: litellm.InternalServerError: VertexAIException - upstream "
        "went away. Handle with `litellm.InternalServerError`.",
    )
    error = from_litellm(original)
    assert isinstance(error, openai.InternalServerError)
    assert error.body == {
        "message": "upstream went away",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def test_geminis_retry_delay_becomes_a_retry_after_header() -> None:
    raw = (
        '{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED", "details": '
        '[{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]}}'
    )
    error = from_litellm(_LiteLLMError(429, f"litellm.RateLimitError: GeminiException - {raw}"))
    assert isinstance(error, openai.RateLimitError)
    assert error.response.headers["retry-after"] == "3" and error.response.headers["retry-after-ms"] == "2500"
    assert retry_after_s(error, 0.0) == 2.5 and error.body["message"] == "Quota exceeded"  # type: ignore[index]


def test_an_anthropic_overload_keeps_its_status_and_message() -> None:
    raw = '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    error = from_litellm(_LiteLLMError(529, f"litellm.InternalServerError: AnthropicException - {raw}"))
    assert isinstance(error, openai.InternalServerError) and error.status_code == 529
    assert error.body == {"message": "Overloaded", "type": "server_error", "param": None, "code": None}


def test_an_openai_shaped_error_through_litellm_keeps_its_code_and_type() -> None:
    raw = (
        '{"error": {"message": "Rate limit reached", "type": "tokens", "param": null, '
        '"code": "rate_limit_exceeded"}}'
    )
    error = from_litellm(_LiteLLMError(429, f"litellm.RateLimitError: OpenAIException - {raw}"))
    assert isinstance(error, openai.RateLimitError) and (error.code, error.type) == (
        "rate_limit_exceeded",
        "tokens",
    )
