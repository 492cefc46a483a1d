"""The flex tier through router.OpenAI / router.AsyncOpenAI against the fake OpenAI: ranked at flex
prices, asked for on the wire, a flex 429 or timeout falls back to the same model at standard, and the
cost is settled at the tier the provider says it served (docs/flex.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk
from router_fakes import FakeProviders, ModelScript, flex_unavailable

from policies.loader import policy_from_dict
from policies.schema import Policy
from router.ledger import open_ledger
from router.testing import capture_events

from .fault_helpers import KEY_ENV, QUESTION, FakeClock, MakeCaller, attempts

# Standard and flex prices per M tokens, stated in the policy so the figures below are exact.
MINI = {"input_cost_per_mtok": 1.0, "output_cost_per_mtok": 4.0}
MINI_FLEX = {"flex_input_cost_per_mtok": 0.25, "flex_output_cost_per_mtok": 1.0}
CHEAP = {"input_cost_per_mtok": 0.5, "output_cost_per_mtok": 2.0}  # no flex tier (gpt-4o-mini has none)
PROMPT, OUTPUT = 1_000, 500
NANOS = 1_000_000_000


def nanos(usd: float | None) -> int:
    assert usd is not None
    return round(usd * NANOS)


def price(prices: dict[str, float], side: str = "") -> int:
    """This test's usage (PROMPT in, OUTPUT out) at ``prices``, in nano-dollars."""
    usd = (
        PROMPT * prices[f"{side}input_cost_per_mtok"] + OUTPUT * prices[f"{side}output_cost_per_mtok"]
    ) / 1e6
    return nanos(usd)


FLEX_COST = price(MINI_FLEX, "flex_")
STANDARD_COST = price(MINI)


def flex_policy(
    fake: FakeProviders,
    *,
    models: dict[str, Any] | None = None,
    routes: dict[str, Any] | None = None,
    **top: Any,
) -> Policy:
    """``mini`` (gpt-5-mini: standard $1/$4, flex $0.25/$1) and ``cheap`` (gpt-4o-mini at $0.5/$2, no
    flex); route ``auto`` ranks them cheapest at standard, route ``later`` at flex."""
    model = {"provider": "openai", "api_base": fake.openai_base, "api_key_env": KEY_ENV}
    candidates = ["cheap", "mini"]
    return policy_from_dict(
        {
            "retry": {"attempts": 2, "backoff_initial_s": 1.0},
            **top,
            "models": {
                "mini": {**model, "model": "gpt-5-mini", **MINI, **MINI_FLEX},
                "cheap": {**model, "model": "gpt-4o-mini", **CHEAP},
                **(models or {}),
            },
            "routes": {
                "auto": {"strategy": "cheapest", "candidates": candidates},
                "later": {"strategy": "cheapest", "candidates": candidates, "service_tier": "flex"},
                **(routes or {}),
            },
        }
    )


def script(fake: FakeProviders, **flex: Any) -> None:
    fake.script(
        ModelScript("gpt-5-mini", prompt_tokens=PROMPT, completion_tokens=OUTPUT, **flex),
        ModelScript("gpt-4o-mini", prompt_tokens=PROMPT, completion_tokens=OUTPUT),
    )


def tiers_sent(fake: FakeProviders, model: str = "gpt-5-mini") -> list[object]:
    return [r.body.get("service_tier") for r in fake.requests_for(model)]


def test_a_flex_route_ranks_at_flex_prices_so_a_model_that_loses_at_standard_wins(
    fake: FakeProviders, make_caller: MakeCaller
) -> None:
    script(fake)
    caller = make_caller(flex_policy(fake))
    standard = caller.create(model="auto", messages=QUESTION)
    assert standard.model == "cheap" and standard.routing.service_tier == "standard"

    flex = caller.create(model="later", messages=QUESTION)
    assert flex.model == "mini"  # the policy's model, as openai's model field names it
    assert flex.service_tier == "flex"  # what the provider reported
    record = flex.routing
    assert record.model == "mini@flex" and record.service_tier == "flex"
    assert [c.model for c in record.candidates] == ["mini@flex", "mini", "cheap"]
    assert nanos(record.cost_usd) == FLEX_COST
    assert tiers_sent(fake) == ["flex"]
    assert tiers_sent(fake, "gpt-4o-mini") == [None]
    assert any("service tier flex" in rule for rule in record.rules)


def test_a_flex_429_falls_back_to_the_same_model_at_standard_at_once_and_is_billed_at_standard(
    fake: FakeProviders, make_caller: MakeCaller
) -> None:
    script(fake, flex_faults=(flex_unavailable(retry_after=2),))
    clock = FakeClock()
    caller = make_caller(flex_policy(fake), clock=clock)
    with capture_events() as events:
        response = caller.create(model="later", messages=QUESTION)
    record = response.routing
    # The events say which tier each call asked for, and the tier the cost was settled at.
    tried = [(e["model"], e.get("service_tier")) for e in events if e["event"] == "route.attempt"]
    assert tried == [("mini@flex", "flex"), ("mini", None)]
    (completed,) = [e for e in events if e["event"] == "route.completed"]
    assert completed["service_tier"] == "standard" and nanos(completed["cost_usd"]) == STANDARD_COST
    # Not retried on flex (capacity is short), no Retry-After wait: the standard tier is the next step.
    assert attempts(record) == [("mini@flex", "rate_limited", 429), ("mini", None, None)]
    assert clock.sleeps == []
    assert [a.service_tier for a in record.attempts] == ["flex", "standard"]
    assert response.model == "mini" and response.service_tier == "default"
    assert record.service_tier == "standard"
    assert nanos(record.cost_usd) == STANDARD_COST
    assert tiers_sent(fake) == ["flex", None]


def test_a_flex_429_opens_only_the_flex_tiers_breaker(fake: FakeProviders, make_caller: MakeCaller) -> None:
    script(fake, flex_faults=(flex_unavailable(),))
    caller = make_caller(flex_policy(fake, cooldown={"failures": 1, "cooldown_s": 60}))
    caller.create(model="later", messages=QUESTION)
    second = caller.create(model="later", messages=QUESTION).routing
    # The flex tier cools down; the same model at standard is still a candidate, ranked at its
    # standard price (where it loses to cheap).
    assert "mini@flex" in second.rejected and "mini" not in second.rejected
    assert [c.model for c in second.candidates] == ["cheap", "mini"]
    assert attempts(second) == [("cheap", None, None)]
    assert tiers_sent(fake) == ["flex", None]


def test_a_flex_answer_that_does_not_come_in_time_falls_back_to_standard(
    fake: FakeProviders, make_caller: MakeCaller
) -> None:
    script(fake, flex_latency_s=30)
    caller = make_caller(flex_policy(fake))
    response = caller.create(model="later", messages=QUESTION, timeout=0.5)
    assert attempts(response.routing) == [("mini@flex", "timeout", None), ("mini", None, None)]
    assert nanos(response.routing.cost_usd) == STANDARD_COST


def test_a_flex_request_the_provider_served_at_standard_is_billed_at_standard(
    fake: FakeProviders, make_caller: MakeCaller
) -> None:
    script(fake, flex_answers_as="default")
    caller = make_caller(flex_policy(fake))
    response = caller.create(model="later", messages=QUESTION)
    assert response.routing.model == "mini@flex" and response.service_tier == "default"
    assert response.routing.service_tier == "standard"
    assert nanos(response.routing.cost_usd) == STANDARD_COST


def test_the_callers_service_tier_asks_for_flex_or_for_none(
    fake: FakeProviders, make_caller: MakeCaller
) -> None:
    script(fake)
    caller = make_caller(flex_policy(fake))
    asked = caller.create(model="auto", messages=QUESTION, service_tier="flex")
    assert asked.routing.model == "mini@flex" and nanos(asked.routing.cost_usd) == FLEX_COST
    declined = caller.create(model="later", messages=QUESTION, service_tier="default")
    assert declined.routing.model == "cheap"
    assert tiers_sent(fake) == ["flex"] and tiers_sent(fake, "gpt-4o-mini") == ["default"]


def test_a_caller_flex_is_never_sent_to_the_standard_fallback(
    fake: FakeProviders, make_caller: MakeCaller
) -> None:
    script(fake, flex_faults=(flex_unavailable(),))
    caller = make_caller(flex_policy(fake))
    response = caller.create(model="mini", messages=QUESTION, service_tier="flex")
    assert attempts(response.routing) == [("mini@flex", "rate_limited", 429), ("mini", None, None)]
    assert tiers_sent(fake) == ["flex", None]


def test_models_without_a_flex_tier_are_unchanged_on_a_flex_route(
    fake: FakeProviders, make_caller: MakeCaller
) -> None:
    script(fake)
    # Gemini has flex prices in litellm's map, but no flex tier through router's adapters.
    lite = {"provider": "gemini", "model": "gemini-2.5-flash-lite", "api_base": fake.gemini_base}
    policy = flex_policy(
        fake,
        models={"lite": {**lite, "api_key_env": KEY_ENV}},
        routes={"only-cheap": {"candidates": ["cheap"], "service_tier": "flex"}},
    )
    caller = make_caller(policy)
    engine = caller.client._router._engine  # type: ignore[attr-defined]
    assert "mini@flex" in engine.deployments and "lite@flex" not in engine.deployments
    assert "cheap@flex" not in engine.deployments
    response = caller.create(model="only-cheap", messages=QUESTION)
    assert response.routing.model == "cheap" and response.service_tier == "default"
    assert nanos(response.routing.cost_usd) == price(CHEAP)
    assert tiers_sent(fake, "gpt-4o-mini") == [None]
    assert any("no candidate offers it" in rule for rule in response.routing.rules)


def test_a_flex_stream_falls_back_to_standard_and_is_billed_at_the_tier_that_answered(
    fake: FakeProviders, make_caller: MakeCaller
) -> None:
    script(fake, flex_faults=(flex_unavailable(),))
    caller = make_caller(flex_policy(fake))
    chunks: list[ChatCompletionChunk] = []
    record = caller.stream(chunks, model="later", messages=QUESTION)
    assert attempts(record) == [("mini@flex", "rate_limited", 429), ("mini", None, None)]
    assert {c.model for c in chunks} == {"mini"}
    assert nanos(record.cost_usd) == STANDARD_COST and record.service_tier == "standard"

    chunks = []
    record = caller.stream(chunks, model="later", messages=QUESTION)
    assert attempts(record) == [("mini@flex", None, None)]
    assert {c.service_tier for c in chunks} == {"flex"}
    assert nanos(record.cost_usd) == FLEX_COST and record.service_tier == "flex"


@pytest.mark.parametrize("flex_faults", [(), (flex_unavailable(),)], ids=["flex", "fallback"])
def test_the_ledger_is_charged_the_cost_at_the_tier_used_to_the_nano_dollar(
    fake: FakeProviders, make_caller: MakeCaller, tmp_path: Path, flex_faults: tuple[Any, ...]
) -> None:
    script(fake, flex_faults=flex_faults)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    policy = flex_policy(fake, budget={"limit_usd": 1.0, "window": "day"})
    caller = make_caller(policy, ledger=ledger)
    response = caller.create(model="later", messages=QUESTION)
    expected = STANDARD_COST if flex_faults else FLEX_COST
    assert nanos(response.routing.cost_usd) == expected
    opened = open_ledger(ledger)
    try:
        ((_, _, _, totals),) = opened.report(now=time.time())
    finally:
        opened.close()
    assert nanos(totals.spent_usd) == expected and totals.reserved_usd == 0


def test_urgency_is_an_alias_of_service_tier_in_the_policy(fake: FakeProviders) -> None:
    policy = policy_from_dict(
        {
            "models": {"mini": {"provider": "openai", "model": "gpt-5-mini"}},
            "routes": {"later": {"urgency": "flex"}},
            "features": {"now": {"service_tier": "standard"}},
        }
    )
    assert policy.routes["later"].service_tier == "flex"
    assert policy.features["now"].service_tier == "standard"
