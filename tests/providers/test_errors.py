"""Every provider failure becomes openai's class, and is classified for retry and fallback."""

import httpx
import openai
import pytest

from providers.errors import connection_error, error_class, from_litellm, status_error_from_response

REQUEST = httpx.Request("POST", "https://provider.test/v1/chat/completions")


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers, request=REQUEST)


@pytest.mark.parametrize(
    ("status", "cls", "kind"),
    [
        (400, openai.BadRequestError, "bad_request"),
        (401, openai.AuthenticationError, "auth"),
        (403, openai.PermissionDeniedError, "auth"),
        (404, openai.NotFoundError, "not_found"),
        (422, openai.UnprocessableEntityError, "bad_request"),
        (429, openai.RateLimitError, "rate_limited"),
        (500, openai.InternalServerError, "server"),
        (503, openai.InternalServerError, "server"),
        (529, openai.InternalServerError, "server"),
    ],
)
def test_status_codes_map_to_openais_classes(status: int, cls: type, kind: str) -> None:
    exc = status_error_from_response(_response(status, {"error": {"message": "nope", "type": "x"}}))
    assert type(exc) is cls
    assert error_class(exc) == kind


def test_retry_after_header_survives_translation() -> None:
    exc = status_error_from_response(
        _response(429, {"error": {"message": "slow down"}}, {"retry-after": "2"})
    )
    assert exc.response.headers["retry-after"] == "2"


def test_openai_context_length_error_is_classified_as_context_window() -> None:
    body = {"error": {"message": "maximum context length is 128000", "code": "context_length_exceeded"}}
    assert error_class(status_error_from_response(_response(400, body))) == "context_window"


def test_a_non_json_error_body_still_maps_by_status() -> None:
    response = httpx.Response(502, content=b"<html>bad gateway</html>", request=REQUEST)
    exc = status_error_from_response(response)
    assert isinstance(exc, openai.InternalServerError) and "bad gateway" in exc.message


def test_transport_timeouts_and_resets_map_to_openais_connection_classes() -> None:
    assert isinstance(connection_error(httpx.ReadTimeout("slow"), REQUEST), openai.APITimeoutError)
    reset = connection_error(httpx.RemoteProtocolError("reset"), REQUEST)
    assert type(reset) is openai.APIConnectionError
    assert error_class(reset) == "connection"


def test_litellm_errors_become_plain_openai_errors_with_provider_headers() -> None:
    class RateLimitError(openai.RateLimitError):  # shaped like litellm's
        pass

    original = RateLimitError(
        "rate limited", response=_response(429, {}, {"retry-after": "3", "x-junk": "1"}), body=None
    )
    translated = from_litellm(original)
    assert type(translated) is openai.RateLimitError
    assert isinstance(translated, openai.RateLimitError)
    assert translated.response.headers["retry-after"] == "3"
    assert "x-junk" not in translated.response.headers


def test_litellm_context_window_error_is_classified_as_context_window() -> None:
    class ContextWindowExceededError(openai.BadRequestError):
        pass

    original = ContextWindowExceededError("prompt too big", response=_response(400, {}), body=None)
    assert error_class(from_litellm(original)) == "context_window"


@pytest.mark.parametrize(
    "error",
    [
        # OpenAI: the request was refused by its safety system.
        {
            "message": "Your request was rejected as a result of our safety system.",
            "code": "content_policy_violation",
        },
        # Azure OpenAI: the prompt tripped the content filter (a 400, not a filtered answer).
        {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
            "content management policy. Please modify your prompt and retry.",
            "code": "content_filter",
        },
    ],
)
def test_a_request_refused_for_its_content_is_classified_as_content_policy(error: dict[str, str]) -> None:
    exc = status_error_from_response(_response(400, {"error": {**error, "type": "invalid_request_error"}}))
    assert isinstance(exc, openai.BadRequestError)
    assert error_class(exc) == "content_policy"
