"""The planner: routes, aliases, features, fallbacks, cheapest ranking, and the record it returns."""

from __future__ import annotations

from typing import Any

import pytest

from policies.plan import Planner, UnknownModelError
from policies.schema import Policy
from providers.catalog import resolve_model
from tests.policies.helpers import make_request

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
ALL = ["tools", "vision", "json_schema", "streaming"]


def _planner(**policy: Any) -> Planner:
    models = {
        "cheap": {
            "input_cost_per_mtok": 0.1,
            "output_cost_per_mtok": 0.4,
            "quality": {"mmlu": 81.1},
            "supports": ALL,
        },
        "mid": {
            "input_cost_per_mtok": 0.15,
            "output_cost_per_mtok": 0.6,
            "quality": {"mmlu": 82.0},
            "supports": ALL,
        },
        "dear": {"input_cost_per_mtok": 1.0, "output_cost_per_mtok": 5.0, "supports": ALL},
        "plain": {"input_cost_per_mtok": 0.0, "output_cost_per_mtok": 0.0, "supports": ["streaming"]},
        "unpriced": {"supports": ALL},
    }
    data = {
        "models": {
            name: {
                "provider": "openai_compatible",
                "api_base": "http://x/v1",
                "context_window": 100_000,
                **spec,
            }
            for name, spec in models.items()
        },
        **policy,
    }
    parsed = Policy.model_validate(data)
    catalog = {
        name: resolve_model(
            name, provider=spec.provider, model=spec.model, overrides=spec.catalog_overrides()
        )
        for name, spec in parsed.models.items()
    }
    return Planner(parsed, catalog)


def _request(model: str = "auto", feature: str = "default", **body: Any) -> Any:
    request = make_request(**body)
    return type(request)(
        model=model,
        feature=feature,
        stream=request.stream,
        needs=request.needs,
        prompt=request.prompt,
        max_output_tokens=request.max_output_tokens,
    )


def test_cheapest_ranks_by_this_requests_expected_cost_and_rejects_unpriced_models() -> None:
    planner = _planner(
        routes={"auto": {"strategy": "cheapest", "candidates": ["dear", "mid", "cheap", "unpriced"]}}
    )
    plan = planner.plan(_request(max_tokens=100))
    assert [c.model for c in plan.candidates] == ["cheap", "mid", "dear"]
    assert "no known price" in plan.rejected["unpriced"]
    first = plan.candidates[0]
    assert first.output_tokens == 100
    assert first.expected_cost_usd == pytest.approx((first.prompt_tokens * 0.1 + 100 * 0.4) / 1e6)


def test_cheapest_depends_on_the_request_shape_not_on_summed_per_token_prices() -> None:
    # Input-heavy requests favour cheap input; output-heavy ones cheap output.
    models = {
        "cheap-in": {"input_cost_per_mtok": 0.1, "output_cost_per_mtok": 10.0},
        "cheap-out": {"input_cost_per_mtok": 5.0, "output_cost_per_mtok": 0.2},
    }
    policy = Policy.model_validate(
        {
            "models": {
                n: {"provider": "openai_compatible", "api_base": "http://x/v1", **s}
                for n, s in models.items()
            },
            "routes": {"auto": {"strategy": "cheapest"}},
        }
    )
    catalog = {
        n: resolve_model(n, provider="openai_compatible", overrides=s.catalog_overrides())
        for n, s in policy.models.items()
    }
    planner = Planner(policy, catalog)
    long_prompt = planner.plan(_request(text="word " * 20_000, max_tokens=10))
    long_answer = planner.plan(_request(text="hi", max_tokens=4_000))
    assert long_prompt.candidates[0].model == "cheap-in"
    assert long_answer.candidates[0].model == "cheap-out"


def test_expected_output_comes_from_observations_before_the_route_default() -> None:
    class Seen:
        def expected_output_tokens(self, feature: str, model: str) -> float | None:
            return 900.0 if model == "cheap" else None

        def latency_ms(self, model: str) -> float | None:
            return None

    planner = _planner(
        routes={
            "auto": {"strategy": "cheapest", "candidates": ["cheap", "mid"], "expected_output_tokens": 50}
        }
    )
    plan = planner.plan(_request(), observed=Seen())
    outputs = {c.model: c.output_tokens for c in plan.candidates}
    assert outputs == {"cheap": 900, "mid": 50}


def test_fallbacks_come_after_ranked_candidates_and_are_filtered_too() -> None:
    planner = _planner(
        routes={"auto": {"strategy": "cheapest", "candidates": ["mid"], "fallbacks": ["plain", "dear"]}}
    )
    plain = planner.plan(_request())
    assert [(c.model, c.fallback) for c in plain.candidates] == [
        ("mid", False),
        ("plain", True),
        ("dear", True),
    ]
    tools = planner.plan(_request(tools=[TOOL]))
    assert [c.model for c in tools.candidates] == ["mid", "dear"]
    assert tools.rejected["plain"] == "no tool support"


def test_feature_requirements_add_to_the_routes_and_the_stricter_floor_wins() -> None:
    planner = _planner(
        routes={
            "auto": {
                "strategy": "cheapest",
                "candidates": ["cheap", "mid", "dear"],
                "min_quality": {"mmlu": 80},
            }
        },
        features={"precise": {"min_quality": {"mmlu": 82}}, "loose": {"min_quality": {"mmlu": 70}}},
    )
    assert planner.plan(_request(feature="precise")).candidates[0].model == "mid"
    assert planner.plan(_request(feature="precise")).rejected == {
        "cheap": "mmlu 81.1 < 82",
        "dear": "no mmlu score (floor 82)",
    }
    assert planner.plan(_request(feature="loose")).candidates[0].model == "cheap"
    assert planner.plan(_request()).candidates[0].model == "cheap"


def test_feature_require_rejects_models_lacking_the_capability_even_for_plain_requests() -> None:
    planner = _planner(
        routes={"auto": {"candidates": ["plain", "cheap"]}}, features={"bot": {"require": ["tools"]}}
    )
    plan = planner.plan(_request(feature="bot"))
    assert [c.model for c in plan.candidates] == ["cheap"]
    assert plan.rejected["plain"] == "no tool support (required by the policy)"
    assert "feature bot requires tools" in plan.rules


def test_an_alias_hands_a_legacy_model_name_to_a_route() -> None:
    planner = _planner(
        routes={"auto": {"strategy": "cheapest", "candidates": ["mid", "cheap"]}}, aliases={"mid": "auto"}
    )
    plan = planner.plan(_request(model="mid"))
    assert plan.route == "auto" and plan.candidates[0].model == "cheap"
    assert plan.rules[0] == "alias mid → route auto"


def test_a_model_named_directly_is_tried_first_then_the_policys_fallbacks() -> None:
    planner = _planner(fallbacks=["cheap", "dear"])
    plan = planner.plan(_request(model="dear"))
    assert plan.route is None and [c.model for c in plan.candidates] == ["dear", "cheap"]


def test_an_unknown_name_lists_the_routes_and_models() -> None:
    with pytest.raises(UnknownModelError, match="auto"):
        _planner(routes={"auto": {}}).plan(_request(model="gpt-9"))


def test_health_and_budget_hooks_reject_with_their_reasons() -> None:
    planner = _planner(routes={"auto": {"strategy": "cheapest", "candidates": ["cheap", "mid"]}})
    plan = planner.plan(
        _request(),
        health={"cheap": "in cooldown for 30 s"},
        budget=lambda model, worst: "over budget" if model.name == "mid" else None,
    )
    assert plan.candidates == () and plan.rejected == {"cheap": "in cooldown for 30 s", "mid": "over budget"}


def test_the_rules_say_what_applied_and_how_the_prompt_was_sized() -> None:
    planner = _planner(
        routes={"auto": {"strategy": "cheapest", "candidates": ["cheap", "mid"], "require": ["tools"]}}
    )
    rules = planner.plan(_request(tools=[TOOL])).rules
    assert rules[0] == "route auto: cheapest over cheap, mid"
    assert "route auto requires tools" in rules
    assert any(r.startswith("prompt ") and r.endswith("(estimated)") for r in rules)
    assert "request needs tools" in rules
