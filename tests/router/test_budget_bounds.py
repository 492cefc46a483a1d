"""The worst case bounds what a provider can bill, and what cannot be bounded is not budgeted.

Attacks from issue 12, each through ``router.OpenAI`` and ``router.AsyncOpenAI`` against the fake
providers, with a real SQLite ledger: an unpriced model under a budget, ``n`` choices, both token
limits, no limit at all, a provider bill above the reservation, and usage a provider made up.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import openai
import pytest
from router_fakes import FakeProviders, ModelScript

from policies.filters import CATALOG_FREE, NO_PRICE
from policies.schema import Policy
from router import BudgetExceededError, NoCandidateError
from router.ledger import Totals, open_ledger
from router.testing import capture_events

from .fault_helpers import KEY_ENV, QUESTION, Caller, MakeCaller

NOW = 1_750_000_000.0
# gpt-4o-mini as the catalog prices it: $0.15 / $0.60 per million tokens, 16,384 tokens of output.
IN, OUT, MAX_OUTPUT = 0.15, 0.60, 16_384


def make_policy(
    fake: FakeProviders,
    *,
    features: Mapping[str, Any] | None = None,
    budget: Mapping[str, Any] | None = None,
    local: Mapping[str, Any] | None = None,
) -> Policy:
    """``mini`` (gpt-4o-mini, priced by the catalog) and ``local`` (a self-hosted model the catalog
    does not know: no price unless given), each with a route of its own; ``local-then-mini`` falls back."""
    models = {
        "mini": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "api_base": fake.openai_base,
            "api_key_env": KEY_ENV,
        },
        "local": {
            "provider": "openai_compatible",
            "model": "phi-4",
            "api_base": fake.openai_base,
            "context_window": 16_384,
            **(local or {}),
        },
    }
    data: dict[str, Any] = {
        "retry": {"attempts": 1},
        "models": models,
        "routes": {
            "mini": {"candidates": ["mini"]},
            "local": {"candidates": ["local"]},
            "local-then-mini": {"candidates": ["local"], "fallbacks": ["mini"]},
        },
        "features": dict(features or {}),
    }
    if budget is not None:
        data["budget"] = dict(budget)
    return Policy.model_validate(data)


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def figures(ledger: str) -> dict[str, Totals]:
    """Totals per budget scope, read by a separate ledger handle (what ``router spend`` would see)."""
    reader = open_ledger(ledger)
    try:
        return {scope: totals for scope, _, _, totals in reader.report(now=NOW)}
    finally:
        reader.close()


def client(make_caller: MakeCaller, policy: Policy, ledger: str) -> Caller:
    return make_caller(policy, ledger=ledger, wall_clock=lambda: NOW)


def ask(caller: Caller, route: str, feature: str = "capped", **kwargs: Any) -> Any:
    return caller.create(model=route, messages=QUESTION, metadata={"feature": feature}, **kwargs)


def refused_amount(caller: Caller, **kwargs: Any) -> float:
    """The worst case the router tried to reserve, read from the BudgetExceededError of a tiny cap."""
    with pytest.raises(BudgetExceededError) as info:
        ask(caller, "mini", **kwargs)
    return info.value.amount_usd


# ----------------------------------------------------------------------------- 1. never $0 by accident


@pytest.mark.parametrize(
    "budgets",
    [
        {"features": {"capped": {"budget": {"limit_usd": 0.000001}}}},
        {"budget": {"limit_usd": 0.000001}},
        {"features": {"capped": {"budget": {"limit_usd": 0.000001, "on_exceed": "downgrade"}}}},
    ],
    ids=["feature", "policy-wide", "downgrade"],
)
def test_an_unpriced_model_under_a_budget_is_never_called_and_never_free(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str, budgets: dict[str, Any]
) -> None:
    caller = client(make_caller, make_policy(fake, **budgets), ledger)
    for _ in range(50):
        with pytest.raises(NoCandidateError) as info:
            ask(caller, "local")
        assert info.value.rejected == {"local": NO_PRICE}
    assert fake.requests == []
    assert figures(ledger) == {}


def test_unpriced_models_still_serve_requests_no_budget_covers(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str
) -> None:
    policy = make_policy(fake, features={"capped": {"budget": {"limit_usd": 1.0}}})
    caller = client(make_caller, policy, ledger)
    response = ask(caller, "local", feature="free-for-all")
    assert response.routing.model == "local" and response.routing.cost_usd is None
    assert figures(ledger) == {}


def test_an_unpriced_candidate_falls_back_to_a_priced_model_under_a_budget(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str
) -> None:
    caller = client(make_caller, make_policy(fake, budget={"limit_usd": 1.0}), ledger)
    response = ask(caller, "local-then-mini")
    assert response.routing.model == "mini"
    assert response.routing.rejected == {"local": NO_PRICE}
    assert figures(ledger)["*"].spent_usd == pytest.approx(response.routing.cost_usd, abs=1e-9)
    assert [r.model for r in fake.requests] == ["gpt-4o-mini"]


def test_a_model_declared_free_in_the_policy_serves_under_a_budget_at_zero(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str
) -> None:
    policy = make_policy(
        fake,
        features={"capped": {"budget": {"limit_usd": 0.000001}}},
        local={"input_cost_per_mtok": 0, "output_cost_per_mtok": 0},
    )
    caller = client(make_caller, policy, ledger)
    for _ in range(3):
        assert ask(caller, "local").routing.cost_usd == 0.0
    assert figures(ledger) == {}  # settled at $0: nothing spent, nothing left reserved
    assert len(fake.requests) == 3


@pytest.mark.parametrize("declared", [False, True], ids=["catalog-says-0", "policy-says-0"])
def test_a_zero_price_only_the_catalog_claims_is_not_taken_as_free(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str, declared: bool
) -> None:
    # litellm's map prices gemma-3-27b-it at $0 (as it does some paid models): under a budget only
    # the policy's own "0" makes a model free.
    gemma: dict[str, Any] = {"provider": "gemini", "model": "gemma-3-27b-it", "api_base": fake.gemini_base}
    if declared:
        gemma.update(input_cost_per_mtok=0, output_cost_per_mtok=0)
    base = make_policy(fake, budget={"limit_usd": 1.0}).model_dump(exclude={"source"}, exclude_none=True)
    base["models"]["gemma"] = {**gemma, "api_key_env": KEY_ENV}
    base["routes"]["gemma"] = {"candidates": ["gemma"]}
    caller = client(make_caller, Policy.model_validate(base), ledger)
    if not declared:
        with pytest.raises(NoCandidateError) as info:
            ask(caller, "gemma")
        assert info.value.rejected == {"gemma": CATALOG_FREE}
        assert fake.requests == [] and figures(ledger) == {}
    else:
        assert ask(caller, "gemma").routing.cost_usd == 0.0
        assert figures(ledger) == {}


# ----------------------------------------------------------------------------- 2. the worst case is a bound


def test_n_choices_are_reserved_n_times_and_never_pass_the_cap(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str
) -> None:
    fake.script(ModelScript("gpt-4o-mini", completion_tokens=1000))  # every choice writes all it may
    small = client(
        make_caller, make_policy(fake, features={"capped": {"budget": {"limit_usd": 1e-6}}}), ledger
    )
    one = refused_amount(small, max_tokens=1000)
    eight = refused_amount(small, max_tokens=1000, n=8)
    assert eight - one == pytest.approx(7 * 1000 * OUT / 1e6)

    cap = 0.012
    caller = client(
        make_caller, make_policy(fake, features={"capped": {"budget": {"limit_usd": cap}}}), ledger
    )
    served = []
    for _ in range(5):
        try:
            served.append(ask(caller, "mini", max_tokens=1000, n=8))
        except BudgetExceededError:
            break
    assert len(served) == 2 and len(fake.requests) == 2
    for response in served:
        assert len(response.choices) == 8
        assert response.routing.usage.completion_tokens == 8000
        assert response.routing.cost_usd == pytest.approx(
            (response.routing.usage.prompt_tokens * IN + 8000 * OUT) / 1e6, abs=1e-12
        )
    spent = figures(ledger)["capped"].spent_usd
    assert spent == pytest.approx(sum(r.routing.cost_usd for r in served), abs=1e-9)
    assert spent <= cap


def test_the_larger_of_max_tokens_and_max_completion_tokens_bounds_the_output(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str
) -> None:
    caller = client(
        make_caller, make_policy(fake, features={"capped": {"budget": {"limit_usd": 1e-6}}}), ledger
    )
    both = refused_amount(caller, max_tokens=2000, max_completion_tokens=100)
    assert both == refused_amount(caller, max_tokens=2000)
    assert both == refused_amount(caller, max_completion_tokens=2000)
    assert both - refused_amount(caller, max_completion_tokens=100) == pytest.approx(1900 * OUT / 1e6)


def test_without_a_limit_the_models_max_output_bounds_the_output(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str
) -> None:
    caller = client(
        make_caller, make_policy(fake, features={"capped": {"budget": {"limit_usd": 1e-6}}}), ledger
    )
    assert refused_amount(caller) == refused_amount(caller, max_tokens=MAX_OUTPUT)


def test_a_model_with_no_known_output_limit_needs_max_tokens_under_a_budget(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str
) -> None:
    # Priced, but neither its window nor its max output is known: only max_tokens bounds its bill.
    policy = make_policy(
        fake,
        features={"capped": {"budget": {"limit_usd": 1.0}}},
        local={"input_cost_per_mtok": 1, "output_cost_per_mtok": 2, "context_window": None},
    )
    caller = client(make_caller, policy, ledger)
    with pytest.raises(NoCandidateError) as info:
        ask(caller, "local")
    assert info.value.rejected["local"].startswith("no output limit: can't be budgeted")
    assert fake.requests == []
    response = ask(caller, "local", max_tokens=50)
    assert response.routing.model == "local"
    assert figures(ledger)["capped"].spent_usd == pytest.approx(response.routing.cost_usd, abs=1e-9)


def test_a_bill_above_the_reservation_is_settled_in_full_recorded_and_counted(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str
) -> None:
    # The provider counts 50,000 prompt tokens for a one-line question (a tokenizer far from our
    # estimate): possible, so believed, and more than the reservation could foresee.
    fake.script(ModelScript("gpt-4o-mini", prompt_tokens=50_000, completion_tokens=10))
    cap = 0.01
    caller = client(
        make_caller, make_policy(fake, features={"capped": {"budget": {"limit_usd": cap}}}), ledger
    )
    with capture_events() as events:
        response = ask(caller, "mini", max_tokens=10)
    bill = (50_000 * IN + 10 * OUT) / 1e6
    assert response.routing.cost_usd == pytest.approx(bill)
    (overrun,) = [e for e in response.routing.budget_events if e.kind == "overrun"]
    reserved = bill - overrun.overrun_usd
    assert 0 < reserved < bill / 10  # the prompt's bound was about a hundred tokens
    assert overrun.scope == "capped" and overrun.model == "mini"
    assert overrun.spent_usd == pytest.approx(bill)
    assert [e["overrun_usd"] for e in events if e["event"] == "budget.overrun"] == [overrun.overrun_usd]
    assert figures(ledger)["capped"].spent_usd == pytest.approx(bill, abs=1e-9)
    # Counted against the cap: once spent, the next requests see it.
    served = 1
    while True:
        try:
            ask(caller, "mini", max_tokens=10)
            served += 1
        except BudgetExceededError as exc:
            assert exc.spent_usd == pytest.approx(served * bill, abs=1e-9)
            break
    assert served == len(fake.requests)
    assert figures(ledger)["capped"].spent_usd == pytest.approx(served * bill, abs=1e-9)
    # An overrun can pass the cap by at most one call's excess over its reservation.
    assert figures(ledger)["capped"].spent_usd <= cap + overrun.overrun_usd


# ----------------------------------------------------------------------------- 7. usage is untrusted input

BAD_USAGE: list[Any] = [
    {"prompt_tokens": -5, "completion_tokens": 10, "total_tokens": 5},
    {"prompt_tokens": 10, "completion_tokens": 10**15, "total_tokens": 10**15 + 10},
    {"prompt_tokens": 10**15, "completion_tokens": 1},
    {"prompt_tokens": 12.5, "completion_tokens": 3},
    {"prompt_tokens": "lots", "completion_tokens": 3},
    {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 11}},
    {"prompt_tokens": 10, "completion_tokens": 3, "completion_tokens_details": {"reasoning_tokens": 400}},
    {"prompt_tokens": True, "completion_tokens": 3},
    {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": 5},
    [1, 2, 3],
    "usage",
]


def _worst_case(response: Any, max_tokens: int) -> None:
    usage = response.routing.usage
    assert usage.suspect
    assert usage.completion_tokens == max_tokens
    assert 0 < usage.prompt_tokens < 200  # the prompt's bound: twice the estimate of a one-line question
    assert response.routing.cost_usd == pytest.approx((usage.prompt_tokens * IN + max_tokens * OUT) / 1e6)


@pytest.mark.parametrize("usage", BAD_USAGE, ids=[str(i) for i in range(len(BAD_USAGE))])
def test_impossible_usage_is_charged_as_the_worst_case_and_flagged(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str, usage: Any
) -> None:
    fake.script(ModelScript("gpt-4o-mini", usage=usage))
    caller = client(
        make_caller, make_policy(fake, features={"capped": {"budget": {"limit_usd": 1.0}}}), ledger
    )
    with capture_events() as events:
        response = ask(caller, "mini", max_tokens=100)
    assert response.choices[0].message.content  # the answer the provider served is returned
    _worst_case(response, 100)
    assert figures(ledger) == {"capped": Totals(pytest.approx(response.routing.cost_usd, abs=1e-9), 0.0)}  # type: ignore[arg-type]
    (completed,) = [e for e in events if e["event"] == "route.completed"]
    assert completed["usage_suspect"] == response.routing.usage.suspect


@pytest.mark.parametrize("usage", BAD_USAGE[:3], ids=["negative", "huge-output", "huge-prompt"])
def test_impossible_usage_in_a_stream_is_charged_as_the_worst_case(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str, usage: Any
) -> None:
    fake.script(ModelScript("gpt-4o-mini", usage=usage))
    caller = client(
        make_caller, make_policy(fake, features={"capped": {"budget": {"limit_usd": 1.0}}}), ledger
    )
    chunks: list[Any] = []
    record = caller.stream(
        chunks, model="mini", messages=QUESTION, metadata={"feature": "capped"}, max_tokens=100
    )
    assert chunks and record.usage is not None and record.usage.suspect
    assert record.usage.completion_tokens == 100
    assert figures(ledger)["capped"].spent_usd == pytest.approx(record.cost_usd, abs=1e-9)
    assert figures(ledger)["capped"].reserved_usd == 0.0


def test_plausible_usage_is_believed(make_caller: MakeCaller, fake: FakeProviders, ledger: str) -> None:
    fake.script(
        ModelScript(
            "gpt-4o-mini",
            usage={
                "prompt_tokens": 20,
                "completion_tokens": 30.0,
                "prompt_tokens_details": {"cached_tokens": 20},
                "completion_tokens_details": {"reasoning_tokens": 30},
            },
        )
    )
    caller = client(
        make_caller, make_policy(fake, features={"capped": {"budget": {"limit_usd": 1.0}}}), ledger
    )
    usage = ask(caller, "mini", max_tokens=100).routing.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.reasoning_tokens) == (
        20,
        30,
        20,
        30,
    )
    assert usage.suspect is None


def test_bad_usage_without_a_budget_still_returns_the_answer(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", usage={"prompt_tokens": -1, "completion_tokens": "x"}))
    caller = make_caller(make_policy(fake))
    response = caller.create(model="mini", messages=QUESTION, max_tokens=100)
    _worst_case(response, 100)


def test_n_is_rejected_by_openai_rules_before_any_reservation(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str
) -> None:
    caller = client(
        make_caller, make_policy(fake, features={"capped": {"budget": {"limit_usd": 1.0}}}), ledger
    )
    with pytest.raises(openai.BadRequestError):
        ask(caller, "mini", n=0)
    assert figures(ledger) == {} and fake.requests == []


def test_a_stream_of_n_choices_is_reserved_and_settled_for_every_choice(
    make_caller: MakeCaller, fake: FakeProviders, ledger: str
) -> None:
    fake.script(ModelScript("gpt-4o-mini", completion_tokens=40))
    caller = client(
        make_caller, make_policy(fake, features={"capped": {"budget": {"limit_usd": 1.0}}}), ledger
    )
    chunks: list[Any] = []
    record = caller.stream(
        chunks, model="mini", messages=QUESTION, metadata={"feature": "capped"}, max_tokens=50, n=3
    )
    assert {choice.index for c in chunks for choice in c.choices} == {0, 1, 2}
    assert record.usage is not None and record.usage.completion_tokens == 120 and record.usage.suspect is None
    assert record.cost_usd == pytest.approx((record.usage.prompt_tokens * IN + 120 * OUT) / 1e6)
    assert figures(ledger) == {"capped": Totals(pytest.approx(record.cost_usd, abs=1e-9), 0.0)}  # type: ignore[arg-type]
