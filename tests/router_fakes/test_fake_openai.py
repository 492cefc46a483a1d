"""The fake OpenAI endpoint, driven by the real openai SDK."""

from __future__ import annotations

import asyncio
import json
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
    reset,
    status,
    text_tokens,
)

MODEL = "gpt-4o-mini"
QUESTION: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 3},
            },
            "required": ["city", "unit", "days"],
        },
    },
}
TINY_PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def client(fake: FakeProviders) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base, api_key="sk-test", max_retries=0)


def test_plain_completion_answers_deterministic_text_with_exact_usage(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model=MODEL, messages=QUESTION)
    text = reply_text(MODEL, "What is the weather in Paris?")
    assert response.choices[0].message.content == text == "[gpt-4o-mini] Answer to a 6-word question."
    assert response.choices[0].finish_reason == "stop"
    assert response.model == MODEL
    assert response.usage is not None
    assert response.usage.prompt_tokens == count_openai_prompt_tokens(QUESTION) == 4 + 8
    assert response.usage.completion_tokens == text_tokens(text)
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_stream_splits_reply_per_word_and_ends_with_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == ["[gpt-4o-mini] ", "Answer ", "to ", "a ", "6-word ", "question."]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 12


def test_tools_answer_a_call_with_arguments_valid_for_the_schema(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL])
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "example", "unit": "celsius", "days": 3}


def test_tool_result_as_last_message_answers_text(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL])
    assert first.choices[0].message.tool_calls is not None
    call = first.choices[0].message.tool_calls[0]
    messages: Any = [
        *QUESTION,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert (
        second.choices[0].message.content
        == "[gpt-4o-mini] Answer to a 6-word question, using the tool result."
    )
    assert second.usage is not None and second.usage.prompt_tokens == count_openai_prompt_tokens(messages)


def test_tool_choice_none_answers_text_and_named_choice_picks_that_tool(client: openai.OpenAI) -> None:
    other = {
        "type": "function",
        "function": {"name": "noop", "parameters": {"type": "object", "properties": {}}},
    }
    tools = [WEATHER_TOOL, other]
    none = client.chat.completions.create(model=MODEL, messages=QUESTION, tools=tools, tool_choice="none")
    assert none.choices[0].message.tool_calls is None
    forced = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "noop"}},
    )
    forced_calls: Any = forced.choices[0].message.tool_calls
    assert forced_calls[0].function.name == "noop"


def test_streamed_tool_call_arguments_arrive_in_pieces_that_join_to_json(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL], stream=True)
    deltas: list[Any] = [
        c.choices[0].delta.tool_calls for c in stream if c.choices and c.choices[0].delta.tool_calls
    ]
    pieces = [delta[0].function.arguments for delta in deltas]
    assert len([p for p in pieces if p]) >= 2
    assert json.loads("".join(p or "" for p in pieces))["city"] == "example"


def test_json_schema_response_format_returns_a_minimal_valid_instance(client: openai.OpenAI) -> None:
    schema: Any = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["name", "tags"],
        "additionalProperties": False,
    }
    response = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "card", "schema": schema, "strict": True},
        },
    )
    assert json.loads(response.choices[0].message.content or "") == {"name": "example", "tags": ["example"]}


def test_json_object_response_format_returns_a_json_object(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model=MODEL, messages=QUESTION, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(response.choices[0].message.content or ""), dict)


def test_image_parts_count_765_tokens_and_low_detail_85(client: openai.OpenAI) -> None:
    def prompt_tokens(detail: str) -> int:
        image: Any = {"type": "image_url", "image_url": {"url": TINY_PNG, "detail": detail}}
        messages: Any = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}]
        response = client.chat.completions.create(model=MODEL, messages=messages)
        assert response.usage is not None
        return response.usage.prompt_tokens

    assert prompt_tokens("high") == 4 + text_tokens("What is this?") + 765
    assert prompt_tokens("low") == 4 + text_tokens("What is this?") + 85


def test_max_tokens_truncates_the_reply_with_finish_length(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=2)
    assert response.choices[0].finish_reason == "length"
    assert response.choices[0].message.content == "[gpt-4o-"
    assert response.usage is not None and response.usage.completion_tokens == 2


def test_scripted_reply_usage_and_cached_tokens_are_reported(
    fake: FakeProviders, client: openai.OpenAI
) -> None:
    fake.script(ModelScript(MODEL, reply="hi", prompt_tokens=1000, completion_tokens=7, cached_tokens=600))
    response = client.chat.completions.create(model=MODEL, messages=QUESTION)
    assert response.choices[0].message.content == "hi"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (1000, 7)
    assert response.usage.prompt_tokens_details is not None
    assert response.usage.prompt_tokens_details.cached_tokens == 600


def test_scripted_replies_answer_in_order_as_text_or_tool_arguments_then_the_usual_answer(
    fake: FakeProviders, client: openai.OpenAI
) -> None:
    fake.script(ModelScript(MODEL, faults=(status(500),), replies=("first", '{"city": "Oslo"}', "third")))
    with pytest.raises(openai.InternalServerError):  # a faulted request takes no reply
        client.chat.completions.create(model=MODEL, messages=QUESTION)
    first = client.chat.completions.create(model=MODEL, messages=QUESTION)
    call = client.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL])
    third = client.chat.completions.create(model=MODEL, messages=QUESTION)
    usual = client.chat.completions.create(model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL])
    assert first.choices[0].message.content == "first"
    tool_calls = call.choices[0].message.tool_calls
    assert tool_calls is not None and tool_calls[0].function.arguments == '{"city": "Oslo"}'
    assert third.choices[0].message.content == "third"
    assert usual.choices[0].message.tool_calls is not None
    assert json.loads(usual.choices[0].message.tool_calls[0].function.arguments) == {
        "city": "example",
        "unit": "celsius",
        "days": 3,
    }


def test_429_raises_rate_limit_error_with_retry_after_headers(
    fake: FakeProviders, client: openai.OpenAI
) -> None:
    fake.script(ModelScript(MODEL, faults=(status(429, retry_after=2, retry_after_ms=1500),)))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=QUESTION)
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["retry-after-ms"] == "1500"
    assert caught.value.code == "rate_limit_exceeded"
    # The fault is consumed: the next request succeeds.
    assert client.chat.completions.create(model=MODEL, messages=QUESTION).choices


def test_500_raises_internal_server_error_with_openai_body(
    fake: FakeProviders, client: openai.OpenAI
) -> None:
    fake.script(ModelScript(MODEL, faults=(status(500),)))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=MODEL, messages=QUESTION)
    assert caught.value.type == "server_error"


def test_context_limit_raises_bad_request_with_context_length_exceeded(
    fake: FakeProviders, client: openai.OpenAI
) -> None:
    fake.script(ModelScript(MODEL, context_limit=10))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=QUESTION)
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length is 10 tokens" in caught.value.message
    assert "resulted in 12 tokens" in caught.value.message


def test_unknown_model_raises_not_found(fake: FakeProviders, client: openai.OpenAI) -> None:
    fake.script(ModelScript("gpt-gone", unknown=True))
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-gone", messages=QUESTION)
    assert caught.value.code == "model_not_found"


def test_content_filter_fault_finishes_with_content_filter(
    fake: FakeProviders, client: openai.OpenAI
) -> None:
    fake.script(ModelScript(MODEL, faults=(content_filter(),)))
    response = client.chat.completions.create(model=MODEL, messages=QUESTION)
    assert response.choices[0].finish_reason == "content_filter"


def test_reset_fault_raises_connection_error(fake: FakeProviders, client: openai.OpenAI) -> None:
    fake.script(ModelScript(MODEL, faults=(reset(),)))
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model=MODEL, messages=QUESTION)


def test_hang_fault_with_short_client_timeout_raises_timeout(
    fake: FakeProviders, client: openai.OpenAI
) -> None:
    fake.script(ModelScript(MODEL, faults=(hang(30),)))
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=MODEL, messages=QUESTION, timeout=0.2)


async def test_hang_does_not_block_other_requests(fake: FakeProviders) -> None:
    fake.script(ModelScript("slow", faults=(hang(30),)))
    async with openai.AsyncOpenAI(base_url=fake.openai_base, api_key="x", max_retries=0) as client:
        hung = asyncio.ensure_future(client.chat.completions.create(model="slow", messages=QUESTION))
        await asyncio.sleep(0.05)
        response = await client.chat.completions.create(model=MODEL, messages=QUESTION)
        # Answered while the hung request is still waiting: the hang blocks no one else.
        assert response.choices and not hung.done()
        hung.cancel()


def test_api_keys_reject_missing_or_wrong_key_with_401(client: openai.OpenAI) -> None:
    with FakeProviders(api_keys={"openai": "sk-right"}) as guarded:
        wrong = openai.OpenAI(base_url=guarded.openai_base, api_key="sk-wrong-key", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.chat.completions.create(model=MODEL, messages=QUESTION)
        assert caught.value.code == "invalid_api_key"
        right = openai.OpenAI(base_url=guarded.openai_base, api_key="sk-right", max_retries=0)
        assert right.chat.completions.create(model=MODEL, messages=QUESTION).choices


def test_models_lists_defaults_and_scripted_models(fake: FakeProviders, client: openai.OpenAI) -> None:
    fake.script(ModelScript("my-model"), ModelScript("gone", unknown=True))
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-mini" in ids and "my-model" in ids and "gone" not in ids
