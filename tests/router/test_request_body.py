"""The body the fast path sends is what openai's SDK would send, value for value, through
``router.OpenAI`` and ``router.AsyncOpenAI`` against the fake OpenAI server: orjson writes plain
bodies, the stdlib everything else (providers/_json.py)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from router_fakes import FakeProviders

from .fault_helpers import MakeCaller, build_policy

MODEL = "first-gpt-4o-mini"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Cherche une ville — 城市",
            "parameters": {
                "type": "object",
                "properties": {
                    "radius_km": {"type": "number", "minimum": 1e-05, "maximum": 12.5, "default": None},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                },
                "required": ["radius_km"],
                "additionalProperties": False,
            },
        },
    }
]


def _sent(fake: FakeProviders) -> dict[str, Any]:
    (request,) = fake.requests
    return dict(request.body)


def test_non_ascii_text_floats_and_a_tools_schema_arrive_as_given(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    caller = make_caller(build_policy(fake))
    messages = [{"role": "user", "content": 'Où est 北京? 😀 \u2028 "quoted" \\ </script>'}]
    caller.create(model=MODEL, messages=messages, temperature=0.7, top_p=9.6e-06, tools=TOOLS, seed=42)
    body = _sent(fake)
    assert body["messages"] == messages
    assert body["temperature"] == 0.7 and body["top_p"] == 9.6e-06 and body["seed"] == 42
    assert body["tools"] == TOOLS


def test_an_int_beyond_64_bits_is_sent_whole(make_caller: MakeCaller, fake: FakeProviders) -> None:
    # orjson refuses it; the stdlib encodes it, as before.
    caller = make_caller(build_policy(fake))
    caller.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body={"user_tag": 2**70})
    assert _sent(fake)["user_tag"] == 2**70


@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
def test_a_non_finite_float_is_sent_as_the_stdlib_writes_it_not_as_null(
    make_caller: MakeCaller, fake: FakeProviders, value: float
) -> None:
    # orjson would write null, a different value; the stdlib writes NaN / Infinity as it always did.
    tools = json.loads(json.dumps(TOOLS))
    tools[0]["function"]["parameters"]["properties"]["radius_km"]["maximum"] = value
    caller = make_caller(build_policy(fake))
    caller.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=tools)
    sent = _sent(fake)["tools"][0]["function"]["parameters"]["properties"]["radius_km"]["maximum"]
    assert sent == value or (math.isnan(sent) and math.isnan(value))
