"""A chat-completions body in Anthropic's and Gemini's shapes, and their answers as ChatCompletions."""

from __future__ import annotations

import json
from typing import Any

from openai.types.chat import ChatCompletion

from router.batch._translate import from_anthropic, from_gemini, to_anthropic, to_gemini

from .helpers import TOOL

BODY: dict[str, Any] = {
    "model": "auto",
    "messages": [
        {"role": "system", "content": "You label tickets."},
        {"role": "user", "content": [{"type": "text", "text": "Ticket 7: broken parcel."}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "label", "arguments": '{"label": "x"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "recorded"},
    ],
    "tools": [TOOL],
    "tool_choice": "required",
    "max_completion_tokens": 40,
    "temperature": 0.2,
    "stop": "END",
}


def test_anthropic_params_carry_system_tools_tool_results_and_limits() -> None:
    params = to_anthropic(BODY, "claude-haiku-4-5", 64_000)
    assert params["system"] == "You label tickets." and params["max_tokens"] == 40
    assert [m["role"] for m in params["messages"]] == ["user", "assistant", "user"]
    assert params["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "label",
        "input": {"label": "x"},
    }
    assert params["messages"][2]["content"][0]["tool_use_id"] == "call_1"
    assert params["tools"][0]["input_schema"] == TOOL["function"]["parameters"]
    assert params["tool_choice"] == {"type": "any"} and params["stop_sequences"] == ["END"]


def test_anthropic_needs_max_tokens_so_the_models_limit_is_sent_when_the_line_has_none() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert to_anthropic(body, "m", 8192)["max_tokens"] == 8192
    assert to_anthropic(body, "m", None)["max_tokens"] == 4096


def test_gemini_request_names_the_function_of_each_tool_result() -> None:
    request = to_gemini(BODY)
    assert request["systemInstruction"] == {"parts": [{"text": "You label tickets."}]}
    assert [c["role"] for c in request["contents"]] == ["user", "model", "user"]
    assert request["contents"][2]["parts"][0]["functionResponse"]["name"] == "label"
    assert request["generationConfig"] == {
        "maxOutputTokens": 40,
        "temperature": 0.2,
        "stopSequences": ["END"],
    }
    assert request["tools"][0]["functionDeclarations"][0]["name"] == "label"


def test_answers_come_back_as_valid_chat_completions_with_the_policys_model_name() -> None:
    anthropic = from_anthropic(
        {
            "id": "msg_1",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "label", "input": {"label": "damage"}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 30, "output_tokens": 7, "cache_read_input_tokens": 10},
        },
        "claude-haiku-4-5",
        1,
    )
    gemini = from_gemini(
        {
            "candidates": [{"content": {"parts": [{"text": "shipping"}]}, "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 3, "thoughtsTokenCount": 2},
        },
        "gemini-2.5-flash-lite",
        1,
        "g1",
    )
    first = ChatCompletion.model_validate(anthropic)
    assert first.model == "claude-haiku-4-5" and first.choices[0].finish_reason == "tool_calls"
    calls = first.choices[0].message.tool_calls or []
    assert json.loads(calls[0].function.arguments) == {"label": "damage"}  # type: ignore[union-attr]
    assert first.usage is not None and (first.usage.prompt_tokens, first.usage.completion_tokens) == (40, 7)
    second = ChatCompletion.model_validate(gemini)
    assert second.choices[0].message.content == "shipping" and second.choices[0].finish_reason == "length"
    assert second.usage is not None and second.usage.completion_tokens == 5  # thinking is billed as output


def test_a_json_schema_reaches_both_providers_in_their_own_keys() -> None:
    schema = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}
    body = {
        "messages": [{"role": "user", "content": "Label it."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "l", "schema": schema}},
    }
    assert to_anthropic(body, "m", None)["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }
    config = to_gemini(body)["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}
