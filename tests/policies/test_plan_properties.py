"""The planner's shortcuts (skipped filters, shared rejections, prebuilt rows) never change a plan.

The reference below is the planner's definition written plainly: every request filter on every
eligible model in order, the first reason recorded, each survivor's expected cost, then the ranking.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.filters import REQUEST_FILTERS, PlanContext
from policies.plan import Candidate, Planner, RouteRequest
from policies.rankings import RANKINGS
from policies.schema import Policy
from providers.catalog import ModelInfo, resolve_model
from tests.policies.helpers import make_request

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
NAMES = ("a", "b", "c", "d", "e", "f")

models = st.fixed_dictionaries(
    {
        "input_cost_per_mtok": st.sampled_from([0.1, 0.15, 1.0, 2.5]),
        "output_cost_per_mtok": st.sampled_from([0.4, 0.6, 5.0, 10.0]),
        "context_window": st.sampled_from([None, 2_000, 8_000, 128_000]),
        "max_output_tokens": st.sampled_from([None, 500, 4_000]),
        "supports": st.sampled_from(
            [["streaming"], ["tools", "streaming"], ["tools", "vision", "streaming"]]
        ),
    }
)


def _planner(
    specs: list[dict[str, Any]], strategy: str, budget: bool
) -> tuple[Planner, dict[str, ModelInfo]]:
    data: dict[str, Any] = {
        "models": {
            name: {"provider": "openai_compatible", "api_base": "http://x/v1", **spec}
            for name, spec in zip(NAMES, specs, strict=False)
        },
        "routes": {"auto": {"strategy": strategy, "fallbacks": [NAMES[len(specs) - 1]]}},
    }
    if budget:
        data["budget"] = {"limit_usd": 10.0, "window": "day"}
    policy = Policy.model_validate(data)
    catalog = {
        name: resolve_model(
            name, provider=spec.provider, model=spec.model, overrides=spec.catalog_overrides()
        )
        for name, spec in policy.models.items()
    }
    return Planner(policy, catalog), catalog


def _reference(
    planner: Planner,
    request: RouteRequest,
    health: dict[str, str],
    budget: Any,
) -> tuple[list[Candidate], dict[str, str], str]:
    static = planner._static_for(request.model, request.feature)
    context = PlanContext(
        request=request,
        requires=static.context_requires,
        floors=static.context_floors,
        health=health,
        budget=budget,
        expected_output_tokens=static.target.expected_output_tokens,
        budgeted=static.budgeted,
    )
    rejected = dict(static.rejected)
    ranked: list[Candidate] = []
    fallbacks: list[Candidate] = []
    prompt_tokens = request.prompt.best if request.prompt is not None else 0
    for model, is_fallback in static.eligible:
        reason = next((r for check in REQUEST_FILTERS if (r := check(model, context)) is not None), None)
        if reason is not None:
            rejected[model.name] = reason
            continue
        output = request.max_output_tokens or context.expected_output_tokens
        assert model.input_cost_per_mtok is not None and model.output_cost_per_mtok is not None
        cost = (
            prompt_tokens * model.input_cost_per_mtok + output * request.choices * model.output_cost_per_mtok
        ) / 1_000_000
        candidate = Candidate(model.name, model.provider, cost, prompt_tokens, output, is_fallback)
        (fallbacks if is_fallback else ranked).append(candidate)
    assert request.prompt is not None
    sized = "counted" if request.prompt.counted else "estimated"  # counted only when a window was close
    rule = f"prompt {request.prompt.best:,} tokens ({sized})"
    return [*RANKINGS[static.target.strategy](ranked, context), *fallbacks], rejected, rule


@settings(max_examples=150, deadline=None)
@given(
    specs=st.lists(models, min_size=2, max_size=len(NAMES)),
    strategy=st.sampled_from(["cheapest", "ordered"]),
    words=st.sampled_from([1, 200, 900, 1_500, 4_000, 40_000]),
    max_tokens=st.sampled_from([None, 100, 1_000, 3_000, 10_000]),
    tools=st.booleans(),
    stream=st.booleans(),
    n=st.sampled_from([1, 3]),
    cooling=st.sets(st.sampled_from(NAMES), max_size=2),
    budget=st.sampled_from([None, 0.0001, 0.01]),
    budgeted_policy=st.booleans(),
)
def test_a_plan_equals_every_filter_applied_to_every_model(
    specs: list[dict[str, Any]],
    strategy: str,
    words: int,
    max_tokens: int | None,
    tools: bool,
    stream: bool,
    n: int,
    cooling: set[str],
    budget: float | None,
    budgeted_policy: bool,
) -> None:
    planner, _ = _planner(specs, strategy, budgeted_policy)
    body: dict[str, Any] = {"text": "word " * words, "stream": stream, "n": n}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if tools:
        body["tools"] = [TOOL]
    health = {name: "in cooldown for 30 s" for name in cooling}

    def check(model: ModelInfo, worst: float) -> str | None:
        return f"over {budget}" if budget is not None and worst > budget else None

    budget_check = check if budget is not None else None
    plan = planner.plan(make_request(**body), health=health, budget=budget_check)
    # A fresh request for the reference: sizing a prompt may count it exactly, once.
    expected, rejected, rule = _reference(planner, make_request(**body), health, budget_check)
    assert list(plan.candidates) == expected
    assert dict(plan.rejected) == rejected
    assert rule in plan.rules
