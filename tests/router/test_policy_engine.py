"""The cheapest adequate model, end to end through router.OpenAI against the fake providers.

GPT-4o mini ($0.15/$0.60, 128k), Gemini 2.5 Flash-Lite ($0.10/$0.40, 1M) and Claude Haiku 4.5
($1/$5, 200k) in a ``cheapest`` route, priced from the catalog; quality from the shipped scores.
"""

from __future__ import annotations

import pytest
from router_fakes import FakeProviders

from policies.schema import Policy
from router import NoCandidateError, OpenAI

KEY_ENV = "ROUTER_ENGINE_FAKE_KEY"
THREE = ["gpt-4o-mini", "gemini-2.5-flash-lite", "claude-haiku-4-5"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        },
    }
]
QUESTION = [{"role": "user", "content": "What are your opening hours?"}]


@pytest.fixture
def client(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> OpenAI:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    policy = Policy.model_validate(
        {
            "models": {
                "gpt-4o-mini": {"provider": "openai", "api_base": fake.openai_base, "api_key_env": KEY_ENV},
                "gemini-2.5-flash-lite": {
                    "provider": "gemini",
                    "api_base": fake.gemini_base,
                    "api_key_env": KEY_ENV,
                },
                "claude-haiku-4-5": {
                    "provider": "anthropic",
                    "api_base": fake.anthropic_base,
                    "api_key_env": KEY_ENV,
                },
                "phi-4-local": {
                    "provider": "openai_compatible",
                    "api_base": fake.openai_base,
                    "input_cost_per_mtok": 0,
                    "output_cost_per_mtok": 0,
                    "context_window": 16_384,
                },
            },
            "routes": {
                "auto": {"strategy": "cheapest", "candidates": THREE},
                "local-first": {"strategy": "cheapest", "candidates": ["phi-4-local", *THREE]},
            },
            "aliases": {"gpt-4o": "auto"},
            "features": {"precise": {"min_quality": {"mmlu": 82}}},
        }
    )
    return OpenAI(policy=policy)


def test_a_short_plain_request_goes_to_flash_lite(client: OpenAI) -> None:
    response = client.chat.completions.create(model="auto", messages=QUESTION)
    assert response.model == "gemini-2.5-flash-lite"
    ranked = response.routing.candidates
    assert [c.model for c in ranked] == ["gemini-2.5-flash-lite", "gpt-4o-mini", "claude-haiku-4-5"]
    costs = [c.expected_cost_usd for c in ranked]
    assert costs == sorted(costs) and all(c is not None and c > 0 for c in costs)


def test_a_quality_floor_of_mmlu_82_moves_it_to_gpt_4o_mini(client: OpenAI) -> None:
    response = client.chat.completions.create(
        model="auto", messages=QUESTION, metadata={"feature": "precise"}
    )
    assert response.model == "gpt-4o-mini"
    assert response.routing.rejected["gemini-2.5-flash-lite"] == "mmlu 81.1 < 82"
    assert response.routing.rejected["claude-haiku-4-5"] == "no mmlu score (floor 82)"


def test_a_300k_token_prompt_goes_to_flash_lite_and_never_to_a_smaller_window(
    client: OpenAI, fake: FakeProviders
) -> None:
    document = (
        "Quarterly revenue grew in every region while churn fell. " * 30_000
    )  # ~300k tokens (10 per sentence)
    response = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": document}], max_tokens=500
    )
    assert response.model == "gemini-2.5-flash-lite"
    rejected = response.routing.rejected
    assert rejected["gpt-4o-mini"].startswith("context 128,000 < ")
    assert rejected["claude-haiku-4-5"].startswith("context 200,000 < ")
    assert {r.model for r in fake.requests} == {"gemini-2.5-flash-lite"}


def test_a_free_local_model_gets_plain_requests_but_never_a_tools_request(
    client: OpenAI, fake: FakeProviders
) -> None:
    plain = client.chat.completions.create(model="local-first", messages=QUESTION)
    assert plain.model == "phi-4-local" and plain.routing.cost_usd == 0
    tools = client.chat.completions.create(model="local-first", messages=QUESTION, tools=TOOLS)
    assert tools.model == "gemini-2.5-flash-lite"
    assert tools.routing.rejected["phi-4-local"] == "no tool support"
    assert [r.model for r in fake.requests] == ["phi-4-local", "gemini-2.5-flash-lite"]


def test_a_prompt_no_model_can_hold_raises_no_candidate_listing_each_reason_and_sends_nothing(
    client: OpenAI, fake: FakeProviders
) -> None:
    document = "Quarterly revenue grew in every region while churn fell. " * 200_000  # ~2M tokens
    with pytest.raises(NoCandidateError) as caught:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": document}])
    message = str(caught.value)
    for model, window in (
        ("gpt-4o-mini", "128,000"),
        ("gemini-2.5-flash-lite", "1,048,576"),
        ("claude-haiku-4-5", "200,000"),
    ):
        assert f"{model}: context {window} < " in message
    assert fake.requests == []


def test_an_alias_takes_over_legacy_code_that_names_a_model(client: OpenAI) -> None:
    response = client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert response.model == "gemini-2.5-flash-lite" and response.routing.route == "auto"
