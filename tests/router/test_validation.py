"""Bad input fails like OpenAI's API: a BadRequestError naming the parameter, before anything is
reserved or sent. Every case runs through ``router.OpenAI`` and ``router.AsyncOpenAI`` against the
fake providers, with a budget on a real SQLite ledger so that "nothing reserved" is checked too."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from router_fakes import FakeProviders

from router import InvalidRequestError
from router._validation import MAX_SCHEMA_DEPTH
from router.ledger import open_ledger

from .fault_helpers import QUESTION, MakeCaller, build_policy

NOW = 1_750_000_000.0


def _deep_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def _tool(parameters: Any) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": "lookup", "parameters": parameters}}]


def _messages_generator() -> Iterator[dict[str, str]]:
    yield from QUESTION


# (what the caller passes, the param OpenAI's error would name)
BAD_INPUTS: list[tuple[dict[str, Any], str]] = [
    ({"messages": "hello"}, "messages"),
    ({"messages": [None]}, "messages[0]"),
    ({"messages": []}, "messages"),
    ({"messages": {"role": "user", "content": "hi"}}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    (
        {"messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]},
        "messages[0].content[0].type",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
        "messages[0].content[0].text",
    ),
    ({"messages": [*QUESTION, {"role": "tool", "content": "42"}]}, "messages[1].tool_call_id"),
    ({"metadata": "str"}, "metadata"),
    ({"metadata": {"feature": 7}}, "metadata.feature"),
    ({"metadata": {"feature": "capped", "team": None}}, "metadata.team"),
    ({"max_tokens": "abc"}, "max_tokens"),
    ({"max_tokens": math.nan}, "max_tokens"),
    ({"max_tokens": -1}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"max_completion_tokens": 2.5}, "max_completion_tokens"),
    ({"temperature": math.nan}, "temperature"),
    ({"temperature": math.inf}, "temperature"),
    ({"temperature": 2.5}, "temperature"),
    ({"temperature": "hot"}, "temperature"),
    ({"top_p": -0.1}, "top_p"),
    ({"n": 0}, "n"),
    ({"n": 1.5}, "n"),
    ({"n": 1000}, "n"),
    ({"timeout": -1}, "timeout"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": math.nan}, "timeout"),
    ({"timeout": "soon"}, "timeout"),
    ({"timeout": httpx.Timeout(5.0, read=-1.0)}, "timeout"),
    ({"tools": "x"}, "tools"),
    ({"tools": ["x"]}, "tools[0]"),
    ({"tools": [{"type": "function"}]}, "tools[0].function"),
    ({"tools": [{"type": "function", "function": {"name": ""}}]}, "tools[0].function.name"),
    ({"tools": _tool("not a schema")}, "tools[0].function.parameters"),
    ({"tools": _tool(_deep_schema(5_000))}, "tools[0].function.parameters"),
    (
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": _deep_schema(5_000)},
            }
        },
        "response_format.json_schema.schema",
    ),
    ({"response_format": "json"}, "response_format"),
    ({"stop": 3}, "stop"),
    ({"seed": "x"}, "seed"),
    ({"stream_options": "usage"}, "stream_options"),
    ({"model": 5}, "model"),
    ({"extra_body": {"n": 0}}, "n"),
    ({"extra_body": {"max_tokens": "lots"}}, "max_tokens"),
]


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.mark.parametrize(
    ("bad", "param"), BAD_INPUTS, ids=[f"{i}-{p}" for i, (_, p) in enumerate(BAD_INPUTS)]
)
def test_bad_input_is_a_bad_request_naming_the_param_with_nothing_reserved_or_sent(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str, bad: dict[str, Any], param: str
) -> None:
    policy = build_policy(
        fake, features={"capped": {"budget": {"limit_usd": 1.0}}}, budget={"limit_usd": 5.0}
    )
    caller = make_caller(policy, ledger=ledger, wall_clock=lambda: NOW)
    kwargs = {"model": "first-gpt-4o-mini", "messages": QUESTION, "metadata": {"feature": "capped"}, **bad}
    with pytest.raises(openai.BadRequestError) as info:
        caller.create(**kwargs)
    error = info.value
    assert isinstance(error, InvalidRequestError)
    assert error.status_code == 400 and error.param == param
    assert error.body["param"] == param  # type: ignore[index]
    assert fake.requests == []
    reader = open_ledger(ledger)
    try:
        assert reader.report(now=NOW) == []
    finally:
        reader.close()


def test_bad_input_errors_read_like_openais(make_caller: MakeCaller, fake: FakeProviders) -> None:
    caller = make_caller(build_policy(fake))
    with pytest.raises(openai.BadRequestError) as info:
        caller.create(model="first-gpt-4o-mini", messages="hello")
    assert info.value.message == (
        "Invalid type for 'messages': expected an array of message objects, but got a string instead."
    )
    assert info.value.code == "invalid_type"
    with pytest.raises(openai.BadRequestError) as info:
        caller.create(model="first-gpt-4o-mini", messages=QUESTION, temperature=math.nan)
    assert (
        info.value.message
        == "Invalid value for 'temperature': expected a number from 0 to 2, but got nan instead."
    )
    assert info.value.code == "invalid_value"


def test_a_schema_at_the_depth_limit_is_sent(make_caller: MakeCaller, fake: FakeProviders) -> None:
    caller = make_caller(build_policy(fake))
    response = caller.create(
        model="first-gpt-4o-mini", messages=QUESTION, tools=_tool(_deep_schema(MAX_SCHEMA_DEPTH // 2 - 1))
    )
    assert response.choices[0].finish_reason == "tool_calls"
    assert len(fake.requests) == 1


def test_messages_may_be_any_iterable_of_messages_as_with_openai(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    caller = make_caller(build_policy(fake))
    for messages in (_messages_generator(), tuple(QUESTION)):
        response = caller.create(model="first-gpt-4o-mini", messages=messages)
        assert response.choices[0].message.content
    assert [r.body["messages"] for r in fake.requests] == [QUESTION, QUESTION]


def test_valid_edge_values_pass(make_caller: MakeCaller, fake: FakeProviders) -> None:
    caller = make_caller(build_policy(fake))
    response = caller.create(
        model="first-gpt-4o-mini",
        messages=[
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "user", "content": "again"},
        ],
        temperature=0,
        top_p=1,
        max_tokens=1,
        n=1,
        timeout=httpx.Timeout(30.0),
        stop=["\n"],
        metadata={"team": "x"},
    )
    assert response.choices[0].finish_reason == "length"


def test_a_lone_surrogate_is_sent_escaped_not_a_unicode_error(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    caller = make_caller(build_policy(fake))
    text = "half a pair: \ud83d, then more"
    response = caller.create(model="first-gpt-4o-mini", messages=[{"role": "user", "content": text}])
    assert response.choices[0].message.content
    (request,) = fake.requests
    # The server decoded exactly what was sent: the lone surrogate, \\u-escaped in JSON.
    assert request.body["messages"][0]["content"] == text
    assert json.dumps(request.body["messages"][0]["content"]).count("\\ud83d") == 1


@pytest.mark.parametrize("model", ["gemini-2.5-flash-lite", "claude-haiku-4-5"])
def test_through_litellm_a_lone_surrogate_becomes_a_replacement_character_not_a_failure(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    caller = make_caller(build_policy(fake))
    response = caller.create(
        model=f"first-{model}", messages=[{"role": "user", "content": "half a pair: \ud83d, then more"}]
    )
    assert [(a.model, a.error) for a in response.routing.attempts] == [(model, None)]
    (request,) = fake.requests
    assert "half a pair: \ufffd, then more" in json.dumps(request.body, ensure_ascii=False)
