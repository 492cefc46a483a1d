"""The Responses API ↔ chat translation as pure functions (router/_responses.py)."""

from __future__ import annotations

import itertools
from typing import Any

import openai
import pytest
from openai._models import construct_type
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from router._responses import (
    EventTranslator,
    ResponsesRequestError,
    assistant_message,
    chat_request,
    input_messages,
    output_items,
    response_body,
    responses_usage,
    token_logprobs,
)

FUNCTION_TOOL = {
    "type": "function",
    "name": "lookup_order",
    "description": "Find an order.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
    "strict": True,
}


def _ids() -> Any:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter)}"


def test_text_input_and_instructions_become_a_system_and_a_user_message() -> None:
    call = chat_request({"model": "auto", "input": "Hi", "instructions": "Be brief"})
    assert call.kwargs["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hi"},
    ]
    # What a later turn continues: instructions are not carried over, as in OpenAI's API.
    assert call.conversation == [{"role": "user", "content": "Hi"}]
    assert call.store is True


def test_message_items_with_parts_become_chat_messages_and_developer_becomes_system() -> None:
    messages = input_messages(
        [
            {"role": "developer", "content": [{"type": "input_text", "text": "Rules."}]},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                ],
            },
            {"role": "assistant", "content": [{"type": "output_text", "text": "A cat.", "annotations": []}]},
        ]
    )
    assert messages == [
        {"role": "system", "content": "Rules."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            ],
        },
        {"role": "assistant", "content": "A cat."},
    ]


def test_function_calls_and_their_outputs_become_one_assistant_message_and_tool_messages() -> None:
    messages = input_messages(
        [
            {"role": "user", "content": "Two orders?"},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "lookup_order",
                "arguments": '{"order_id":"1"}',
            },
            {
                "type": "function_call",
                "call_id": "c2",
                "name": "lookup_order",
                "arguments": '{"order_id":"2"}',
            },
            {"type": "function_call_output", "call_id": "c1", "output": "shipped"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "late"}],
            },
        ]
    )
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": '{"order_id":"1"}'},
            },
            {
                "id": "c2",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": '{"order_id":"2"}'},
            },
        ],
    }
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
        {"role": "tool", "tool_call_id": "c2", "content": "late"},
    ]


def test_tools_tool_choice_schema_and_limits_map_to_their_chat_names() -> None:
    call = chat_request(
        {
            "model": "auto",
            "input": "Hi",
            "tools": [FUNCTION_TOOL],
            "tool_choice": {"type": "function", "name": "lookup_order"},
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "city",
                    "schema": {"type": "object"},
                    "strict": True,
                }
            },
            "max_output_tokens": 50,
            "temperature": 0.2,
            "reasoning": {"effort": "low"},
            "metadata": {"feature": "faq"},
            "store": False,
            "include": ["reasoning.encrypted_content"],
        }
    )
    assert call.kwargs["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Find an order.",
                "parameters": FUNCTION_TOOL["parameters"],
                "strict": True,
            },
        }
    ]
    assert call.kwargs["tool_choice"] == {"type": "function", "function": {"name": "lookup_order"}}
    assert call.kwargs["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": {"type": "object"}, "strict": True},
    }
    assert call.kwargs["max_completion_tokens"] == 50
    assert call.kwargs["reasoning_effort"] == "low"
    assert call.kwargs["metadata"] == {"feature": "faq"}  # the router reads the feature from it
    assert "include" not in call.kwargs and "store" not in call.kwargs
    assert call.store is False
    assert call.echo["tools"] == [FUNCTION_TOOL] and call.echo["max_output_tokens"] == 50


def test_previous_turns_come_before_the_new_input() -> None:
    earlier = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    call = chat_request({"model": "auto", "input": "Again", "instructions": "Brief."}, earlier)
    assert call.kwargs["messages"] == [
        {"role": "system", "content": "Brief."},
        *earlier,
        {"role": "user", "content": "Again"},
    ]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools"),
        ({"tool_choice": {"type": "file_search"}}, "tool_choice"),
        ({"background": True}, "background"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"truncation": "auto"}, "truncation"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content",
        ),
    ],
)
def test_what_a_chat_protocol_cannot_carry_is_a_bad_request_naming_the_parameter(
    params: dict[str, Any], param: str
) -> None:
    with pytest.raises(ResponsesRequestError) as caught:
        chat_request({"model": "auto", "input": "Hi", **params})
    assert isinstance(caught.value, openai.BadRequestError)
    assert caught.value.status_code == 400 and caught.value.param == param


def test_omitted_arguments_are_ignored_like_openai_does() -> None:
    call = chat_request({"model": "auto", "input": "Hi", "temperature": openai.omit, "top_p": None})
    assert set(call.kwargs) == {"model", "messages"}


def test_defaults_spelled_out_and_cache_hints_are_accepted_and_not_sent() -> None:
    call = chat_request(
        {
            "model": "auto",
            "input": "Hi",
            "background": False,
            "truncation": "disabled",
            "prompt_cache_retention": "24h",
            "stream_options": {"include_obfuscation": False},
        }
    )
    assert set(call.kwargs) == {"model", "messages"}


def test_a_chat_message_with_text_and_tool_calls_becomes_a_message_and_function_call_items() -> None:
    message = {
        "role": "assistant",
        "content": "Looking it up.",
        "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    items = output_items(message, _ids())
    assert items == [
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Looking it up.", "annotations": [], "logprobs": []}],
        },
        {
            "type": "function_call",
            "id": "fc_2",
            "call_id": "call_9",
            "name": "f",
            "arguments": "{}",
            "status": "completed",
        },
    ]
    # And back: what the next turn sends for it.
    assert assistant_message(items) == message


def test_a_response_body_validates_as_openais_response_and_reads_output_text() -> None:
    call = chat_request({"model": "auto", "input": "Hi", "metadata": {"feature": "faq"}})
    body = response_body(
        response_id="resp_1",
        created_at=1.0,
        model="gpt-4o-mini",
        echo=call.echo,
        output=output_items({"content": "Hello."}, _ids()),
        finish_reason="length",
        usage=responses_usage(3, 2),
    )
    response = Response.model_validate(body)
    assert response.output_text == "Hello." and response.model == "gpt-4o-mini"
    assert response.status == "incomplete"
    assert (
        response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    )
    assert response.metadata == {"feature": "faq"}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def test_stream_translation_emits_openais_event_sequence_for_text_then_a_tool_call() -> None:
    translator = EventTranslator(response_id="resp_1", created_at=1.0, model="m", echo={}, new=_ids())
    events = translator.start()
    events += translator.feed(_chunk({"role": "assistant", "content": "Hel"}))
    events += translator.feed(_chunk({"content": "lo"}))
    events += translator.feed(
        _chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}]})
    )
    events += translator.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}))
    events += translator.feed(_chunk({}, "tool_calls"))
    events += translator.finish(None)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    typed = [construct_type(type_=ResponseStreamEvent, value=e) for e in events]
    final = typed[-1].response  # type: ignore[union-attr]
    assert final.output_text == "Hello"
    assert [(item.type, getattr(item, "arguments", None)) for item in final.output] == [
        ("message", None),
        ("function_call", '{"a": 1}'),
    ]


def test_a_stream_cut_by_the_token_limit_ends_with_response_incomplete() -> None:
    translator = EventTranslator(response_id="resp_1", created_at=1.0, model="m", echo={}, new=_ids())
    translator.start()
    translator.feed(_chunk({"content": "Hel"}, "length"))
    last = translator.finish(None)[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


LOGPROBS = {
    "content": [
        {
            "token": "Hel",
            "logprob": -0.1,
            "bytes": [72, 101, 108],
            "top_logprobs": [{"token": "Hel", "logprob": -0.1, "bytes": None}],
        },
        {"token": "lo", "logprob": -0.2, "bytes": None, "top_logprobs": []},
    ]
}


def test_chat_logprobs_come_back_on_the_output_text_part() -> None:
    logprobs = token_logprobs(
        ChatCompletion.model_validate(
            {
                "id": "c",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Hello"},
                        "finish_reason": "stop",
                        "logprobs": LOGPROBS,
                    }
                ],
            }
        )
        .choices[0]
        .logprobs
    )
    (item,) = output_items({"content": "Hello"}, _ids(), logprobs)
    assert item["content"][0]["logprobs"] == [
        {
            "token": "Hel",
            "logprob": -0.1,
            "bytes": [72, 101, 108],
            "top_logprobs": [{"token": "Hel", "logprob": -0.1, "bytes": []}],
        },
        {"token": "lo", "logprob": -0.2, "bytes": [], "top_logprobs": []},
    ]
    Response.model_validate(
        response_body(
            response_id="r",
            created_at=1.0,
            model="m",
            echo={"tools": [], "tool_choice": "auto", "parallel_tool_calls": True},
            output=[item],
            finish_reason="stop",
            usage=None,
        )
    )


def test_streamed_logprobs_arrive_on_each_delta_and_on_the_done_event() -> None:
    translator = EventTranslator(response_id="resp_1", created_at=1.0, model="m", echo={}, new=_ids())
    translator.start()
    chunk = ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [
                {"index": 0, "delta": {"content": "Hello"}, "finish_reason": "stop", "logprobs": LOGPROBS}
            ],
        }
    )
    deltas = [e for e in translator.feed(chunk) if e["type"] == "response.output_text.delta"]
    assert [entry["token"] for entry in deltas[0]["logprobs"]] == ["Hel", "lo"]
    (done,) = [e for e in translator.finish(None) if e["type"] == "response.output_text.done"]
    assert [entry["token"] for entry in done["logprobs"]] == ["Hel", "lo"]
