"""A three-provider policy whose lines each have one cheapest adequate model, and input files for it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from router_fakes import FakeProviders

from policies.schema import Policy

KEY_ENV = "ROUTER_BATCH_TEST_KEY"
MINI, LITE, HAIKU = "gpt-4o-mini", "gemini-2.5-flash-lite", "claude-haiku-4-5"
# litellm's batch prices ($/M in, out): what every line must be charged at.
BATCH_PRICES: Mapping[str, tuple[float, float]] = {MINI: (0.075, 0.3), LITE: (0.05, 0.2), HAIKU: (0.5, 2.5)}
STANDARD_PRICES: Mapping[str, tuple[float, float]] = {MINI: (0.15, 0.6), LITE: (0.1, 0.4), HAIKU: (1.0, 5.0)}
PROTOCOL = {MINI: "openai", LITE: "gemini", HAIKU: "anthropic"}

TOOL: Any = {
    "type": "function",
    "function": {
        "name": "label",
        "description": "Record the label of a ticket.",
        "parameters": {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]},
    },
}
LONG_TEXT = "The customer describes the whole history of the order in detail. " * 300  # ~3,900 tokens


def batch_policy(fake: FakeProviders, **top: Any) -> Policy:
    """Cheapest-first over three models. Gemini is the cheapest but (here) has no tools; gpt-4o-mini
    holds 2,000 tokens at most; only gpt-4o-mini has MMLU ≥ 82. So: plain lines → Gemini, tool lines
    → gpt-4o-mini, long tool lines → Claude, lines of feature "careful" (MMLU ≥ 82) → gpt-4o-mini."""
    return Policy.model_validate(
        {
            "retry": {"attempts": 1},
            "models": {
                MINI: {
                    "provider": "openai",
                    "api_base": fake.openai_base,
                    "api_key_env": KEY_ENV,
                    "context_window": 2000,
                },
                LITE: {
                    "provider": "gemini",
                    "api_base": fake.gemini_base,
                    "api_key_env": KEY_ENV,
                    "supports": ["streaming", "vision", "json_schema"],
                },
                HAIKU: {"provider": "anthropic", "api_base": fake.anthropic_base, "api_key_env": KEY_ENV},
            },
            "routes": {"auto": {"strategy": "cheapest"}},
            "features": {"careful": {"min_quality": {"mmlu": 82}}},
            **top,
        }
    )


def line(custom_id: str, kind: str, **body: Any) -> dict[str, Any]:
    """One input line of a kind: plain | tools | long_tools | careful."""
    text = f"Classify ticket {custom_id}: the parcel arrived broken."
    if kind == "long_tools":
        text = LONG_TEXT + text
    request: dict[str, Any] = {
        "model": "auto",
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 50,
    }
    if kind in ("tools", "long_tools"):
        request["tools"] = [TOOL]
    if kind == "careful":
        request["metadata"] = {"feature": "careful"}
    request.update(body)
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": request}


EXPECTED_MODEL = {"plain": LITE, "tools": MINI, "long_tools": HAIKU, "careful": MINI}
KINDS = ("plain", "tools", "long_tools", "careful")


def mixed_lines(count: int) -> list[dict[str, Any]]:
    return [line(f"req-{i}", KINDS[i % 4]) for i in range(count)]


def jsonl(lines: Sequence[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def read_jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]
