"""Helpers for router tests: small policies built in code."""

from collections.abc import Iterator
from typing import Any

import pytest

from policies.schema import Policy

OK_BODY: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "provider-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
}


def two_model_policy(**route: Any) -> Policy:
    """Models a and b on two OpenAI-compatible hosts, priced $1/$2 per M, in an ordered route.

    No same-model retries: these tests are about falling back (tests/router/test_resilience*.py
    cover retries).
    """
    return Policy.model_validate(
        {
            "retry": {"attempts": 1},
            "models": {
                name: {
                    "provider": "openai_compatible",
                    "model": f"m-{name}",
                    "api_base": f"http://{name}.test/v1",
                    "input_cost_per_mtok": 1,
                    "output_cost_per_mtok": 2,
                    "context_window": window,
                    "supports": ["tools", "json_schema", "vision", "streaming"],
                }
                for name, window in (("a", 8000), ("b", 16000))
            },
            "routes": {"auto": {"candidates": ["a"], "fallbacks": ["b"], **route}},
        }
    )


@pytest.fixture
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    yield
