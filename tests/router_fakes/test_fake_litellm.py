"""The fake Gemini and Anthropic endpoints, driven by litellm's real translation code.

Every test runs once per provider (the ``provider`` fixture), calling ``litellm.completion`` with
``api_base`` pointed at the fake.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import openai
import pytest
from router_fakes import (
    FakeProviders,
    ModelScript,
    content_filter,
    count_openai_prompt_tokens,
    hang,
    reply_text,
    status,
    text_tokens,
)

from .conftest import Complete, api_base, model_name

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
CARD_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "score": {"type": "number"}, "ok": {"type": "boolean"}},
    "required": ["name", "score", "ok"],
    "additionalProperties": False,
}
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the weather in Paris?"},
]
TINY_PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_plain_completion_parses_text_and_usage_like_openai_counts(complete: Complete, provider: str) -> None:
    response = complete(messages=MESSAGES)
    text = reply_text(model_name(provider), "What is the weather in Paris?")
    assert response.choices[0].message.content == text
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.prompt_tokens == count_openai_prompt_tokens(MESSAGES)
    assert response.usage.completion_tokens == text_tokens(text)


def test_request_uses_the_provider_path_key_header_and_model(
    complete: Complete, provider: str, fake: FakeProviders
) -> None:
    complete(api_key="secret-key")
    (request,) = fake.requests
    assert request.protocol == provider and request.model == model_name(provider)
    if provider == "gemini":
        assert request.path == f"/gemini/v1beta/models/{model_name(provider)}:generateContent"
        assert request.headers["x-goog-api-key"] == "<redacted>"
    else:
        assert request.path == "/anthropic/v1/messages"
        assert request.headers["x-api-key"] == "<redacted>"
        assert request.headers["anthropic-version"]
    assert "secret-key" not in json.dumps([r.to_json() for r in fake.requests])


def test_gemini_answers_n_candidates_each_billed(complete: Complete, provider: str) -> None:
    if provider != "gemini":
        pytest.skip("n is OpenAI's and Gemini's (candidateCount): the Messages API has no such field")
    one = complete(messages=MESSAGES)
    response = complete(messages=MESSAGES, n=3)  # litellm sends generationConfig.candidate_count: 3
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert {c.message.content for c in response.choices} == {one.choices[0].message.content}
    assert response.usage.completion_tokens == 3 * one.usage.completion_tokens


def test_stream_yields_per_word_chunks_and_usage(complete: Complete, provider: str) -> None:
    chunks = list(complete(stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == reply_text(model_name(provider), "What is the weather in Paris?")
    assert len(pieces) == 6
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    usage = [c.usage for c in chunks if getattr(c, "usage", None)][-1]
    assert usage.prompt_tokens == 12


def test_tools_answer_a_call_with_schema_valid_arguments(complete: Complete) -> None:
    response = complete(tools=[WEATHER_TOOL])
    assert response.choices[0].finish_reason == "tool_calls"
    call = response.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "example", "unit": "celsius"}


def test_streamed_tool_call_reassembles_to_the_same_arguments(complete: Complete) -> None:
    chunks = list(complete(tools=[WEATHER_TOOL], stream=True))
    calls = [
        tc
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for tc in c.choices[0].delta.tool_calls
    ]
    assert calls[0].function.name == "get_weather"
    assert json.loads("".join(tc.function.arguments or "" for tc in calls)) == {
        "city": "example",
        "unit": "celsius",
    }


def test_tool_result_as_last_message_answers_text_counted_like_openai(
    complete: Complete, provider: str
) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    messages: list[dict[str, Any]] = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    response = complete(messages=messages, tools=[WEATHER_TOOL])
    expected = reply_text(model_name(provider), "What is the weather in Paris?", after_tool_result=True)
    assert response.choices[0].message.content == expected
    assert response.usage.prompt_tokens == count_openai_prompt_tokens(messages)


def test_json_schema_response_format_returns_a_minimal_valid_instance(complete: Complete) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "card", "schema": CARD_SCHEMA, "strict": True},
    }
    response = complete(response_format=response_format)
    assert json.loads(response.choices[0].message.content) == {"name": "example", "score": 1, "ok": True}


def test_image_part_counts_765_tokens(complete: Complete) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": TINY_PNG}},
    ]
    response = complete(messages=[{"role": "user", "content": content}])
    assert response.usage.prompt_tokens == 4 + text_tokens("What is this?") + 765


def test_cached_tokens_are_reported_as_cache_reads(
    complete: Complete, provider: str, fake: FakeProviders
) -> None:
    fake.script(ModelScript(model_name(provider), prompt_tokens=1000, cached_tokens=600))
    response = complete()
    assert response.usage.prompt_tokens == 1000
    assert response.usage.prompt_tokens_details.cached_tokens == 600


def test_429_raises_rate_limit_error(
    litellm: ModuleType, complete: Complete, provider: str, fake: FakeProviders
) -> None:
    fake.script(ModelScript(model_name(provider), faults=(status(429, retry_after=3),)))
    with pytest.raises(litellm.RateLimitError):
        complete()


# What litellm 1.106 raises for each provider's server errors (Anthropic's 529 "overloaded" is its own).
SERVER_ERRORS = {
    "gemini": {500: "InternalServerError", 503: "InternalServerError"},
    "anthropic": {500: "InternalServerError", 503: "ServiceUnavailableError", 529: "InternalServerError"},
}


def test_server_errors_raise_litellm_server_errors(
    litellm: ModuleType, complete: Complete, provider: str, fake: FakeProviders
) -> None:
    for code, name in SERVER_ERRORS[provider].items():
        fake.script(ModelScript(model_name(provider), faults=(status(code),)))
        with pytest.raises(getattr(litellm, name)):
            complete()


def test_error_before_the_first_stream_chunk_keeps_its_status(
    complete: Complete, provider: str, fake: FakeProviders
) -> None:
    """litellm raises RateLimitError for Anthropic but MidStreamFallbackError (status kept) for Gemini."""
    fake.script(ModelScript(model_name(provider), faults=(status(429),)))
    with pytest.raises(openai.APIStatusError) as caught:
        list(complete(stream=True))
    assert caught.value.status_code == 429


def test_context_limit_raises_context_window_exceeded(
    litellm: ModuleType, complete: Complete, provider: str, fake: FakeProviders
) -> None:
    fake.script(ModelScript(model_name(provider), context_limit=5))
    with pytest.raises(litellm.ContextWindowExceededError):
        complete()


def test_unknown_model_raises_not_found(
    litellm: ModuleType, complete: Complete, provider: str, fake: FakeProviders
) -> None:
    fake.script(ModelScript(model_name(provider), unknown=True))
    with pytest.raises(litellm.NotFoundError):
        complete()


def test_content_filter_maps_to_finish_reason_content_filter(
    complete: Complete, provider: str, fake: FakeProviders
) -> None:
    fake.script(ModelScript(model_name(provider), faults=(content_filter(),)))
    assert complete().choices[0].finish_reason == "content_filter"


def test_hang_with_short_timeout_raises_litellm_timeout(
    litellm: ModuleType, complete: Complete, provider: str, fake: FakeProviders
) -> None:
    fake.script(ModelScript(model_name(provider), faults=(hang(30),)))
    with pytest.raises(litellm.Timeout):
        complete(timeout=0.2)


def test_wrong_key_raises_authentication_error(litellm: ModuleType, provider: str) -> None:
    with FakeProviders(api_keys={provider: "right-key"}) as guarded:
        kwargs: dict[str, Any] = {
            "model": {"gemini": "gemini/gemini-2.5-flash-lite", "anthropic": "anthropic/claude-haiku-4-5"}[
                provider
            ],
            "api_base": api_base(guarded, provider),
            "messages": MESSAGES,
            "num_retries": 0,
        }
        with pytest.raises(litellm.AuthenticationError):
            litellm.completion(api_key="wrong-key", **kwargs)
        assert litellm.completion(api_key="right-key", **kwargs).choices[0].message.content
