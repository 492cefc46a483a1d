"""The fake's pure parts: schema instances, token arithmetic, reply text and script values."""

from __future__ import annotations

from typing import Any

import pytest
from router_fakes import (
    Fault,
    ModelScript,
    RecordedRequest,
    count_openai_prompt_tokens,
    hang,
    image_tokens,
    minimal_instance,
    reply_text,
    status,
    stream_stall,
    text_tokens,
    tool_call_tokens,
)
from router_fakes.tokens import split_chunks


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "example"),
        ({"type": "integer"}, 1),
        ({"type": "number", "minimum": 5}, 5),
        ({"type": "integer", "maximum": 0}, 0),
        ({"type": "boolean"}, True),
        ({"type": "null"}, None),
        ({"enum": ["b", "a"]}, "b"),
        ({"const": 42}, 42),
        ({"type": ["null", "string"]}, "example"),
        ({"anyOf": [{"type": "null"}, {"type": "integer"}]}, 1),
        ({"type": "STRING"}, "example"),
        ({"type": "string", "format": "date"}, "2024-01-01"),
        ({"type": "string", "minLength": 10}, "examplexxx"),
        ({"type": "array", "items": {"type": "integer"}}, [1]),
        ({"type": "array", "items": {"type": "string"}, "minItems": 2}, ["example", "example"]),
        (
            {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}},
            {"a": "example", "b": 1},
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                "required": ["b"],
            },
            {"b": 1},
        ),
        ({"properties": {"x": {"type": "boolean"}}}, {"x": True}),
        ({"type": "object"}, {}),
        (None, {}),
    ],
)
def test_minimal_instance_is_the_smallest_predictable_valid_value(schema: Any, expected: Any) -> None:
    assert minimal_instance(schema) == expected


def test_minimal_instance_follows_local_refs_and_stops_on_recursion() -> None:
    schema = {
        "$defs": {"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}},
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/node"}, "all": {"allOf": [{"$ref": "#/$defs/leaf"}]}},
        "definitions": {},
    }
    schema["$defs"]["leaf"] = {"type": "integer"}  # type: ignore[index]
    value = minimal_instance(schema)
    assert value["all"] == 1
    depth, node = 0, value["root"]
    while node:
        node, depth = node["child"], depth + 1
    assert 0 < depth < 10


def test_text_tokens_are_a_quarter_of_the_characters_rounded_up() -> None:
    assert [text_tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]


def test_image_tokens_follow_openais_tile_rule() -> None:
    assert image_tokens() == 765
    assert image_tokens(1024, 1024) == 765
    assert image_tokens(512, 512) == 255
    assert image_tokens(2048, 4096) == 1105
    assert image_tokens(4000, 4000, detail="low") == 85


def test_prompt_tokens_count_messages_parts_and_tool_calls() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"b": 1, "a": "x"}'}}
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "abcd"},
        {"role": "user", "content": [{"type": "text", "text": "abcdefgh"}]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
    ]
    assert tool_call_tokens("f", '{"b": 1, "a": "x"}') == tool_call_tokens("f", {"a": "x", "b": 1}) == 4
    assert count_openai_prompt_tokens(messages) == 4 * 4 + 1 + 2 + 4 + 1


def test_reply_names_the_model_and_counts_the_question_words() -> None:
    assert reply_text("m", "  how are   you ") == "[m] Answer to a 3-word question."
    assert (
        reply_text("m", "", after_tool_result=True)
        == "[m] Answer to a 0-word question, using the tool result."
    )


def test_split_chunks_keeps_every_character() -> None:
    text = "[m] Answer to a 3-word question."
    assert split_chunks(text) == ("[m] ", "Answer ", "to ", "a ", "3-word ", "question.")
    assert "".join(split_chunks(" a  b ")) == " a  b "


def test_script_round_trips_through_json() -> None:
    script = ModelScript(
        "m",
        latency_s=0.5,
        cached_tokens=3,
        faults=(status(429, retry_after=1.5), hang(2), stream_stall(1, 0.1)),
        fail_rate=0.25,
        seed=4,
        replies=("wrong", '{"ok": true}'),
    )
    assert ModelScript.from_json(script.to_json()) == script
    assert script.to_json()["replies"] == ["wrong", '{"ok": true}']
    assert script.to_json()["faults"][0] == {"kind": "status", "status": 429, "retry_after": 1.5}


def test_script_accepts_a_list_of_faults_and_stores_a_tuple() -> None:
    script = ModelScript("m", faults=[status(500)])  # type: ignore[arg-type]
    assert script.faults == (status(500),)
    assert hash(script)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Fault("explode"),  # type: ignore[arg-type]
        lambda: Fault("status", status=200),
        lambda: stream_stall(-1, 1),
        lambda: ModelScript(""),
        lambda: ModelScript("m", fail_rate=2),
        lambda: ModelScript.from_json({"model": "m", "colour": "red"}),
    ],
)
def test_invalid_scripts_and_faults_are_refused(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_recorded_request_round_trips_through_json() -> None:
    request = RecordedRequest(
        "gemini", "g", "/gemini/v1beta/models/g:generateContent", False, {"a": 1}, {"h": "v"}
    )
    assert RecordedRequest.from_json(request.to_json()) == request
