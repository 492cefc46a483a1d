"""Each filter alone, as a pure function, with the reason it gives."""

from types import MappingProxyType

from policies.filters import (
    CATALOG_FREE,
    NO_PRICE,
    bounded_for_budget,
    fits_context,
    has_required_capabilities,
    healthy,
    meets_quality,
    priced_for_budget,
    serves_request,
    within_budget,
    worst_case_cost,
    worst_case_tokens,
)
from policies.tokens import count_prompt_tokens
from tests.policies.helpers import make_context, make_model, make_request

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def test_a_tools_request_is_refused_by_a_model_without_tool_support() -> None:
    context = make_context(make_request(tools=[TOOL]))
    assert serves_request(make_model(supports=frozenset({"streaming"})), context) == "no tool support"
    assert serves_request(make_model(), context) is None


def test_several_choices_are_refused_by_an_api_that_answers_one_per_call() -> None:
    several = make_context(make_request(n=3))
    assert (
        serves_request(make_model(provider="anthropic"), several) == "answers one choice per call, n=3 asked"
    )
    for provider in ("openai", "azure", "gemini", "openai_compatible"):
        assert serves_request(make_model(provider=provider), several) is None
    assert serves_request(make_model(provider="anthropic"), make_context(make_request(n=1))) is None
    # beside another missing capability, both are said
    both = make_context(make_request(n=2, tools=[TOOL]))
    reason = serves_request(make_model(provider="anthropic", supports=frozenset({"streaming"})), both)
    assert reason == "no tool support, answers one choice per call, n=2 asked"


def test_logprobs_are_refused_by_an_api_that_returns_none() -> None:
    asked = make_context(make_request(logprobs=True, top_logprobs=2))
    assert serves_request(make_model(provider="anthropic"), asked) == "returns no logprobs"
    assert serves_request(make_model(provider="gemini"), asked) is None
    assert (
        serves_request(make_model(provider="anthropic"), make_context(make_request(logprobs=False))) is None
    )
    both = make_context(make_request(logprobs=True, n=2))
    assert serves_request(make_model(provider="anthropic"), both) == (
        "answers one choice per call, n=2 asked, returns no logprobs"
    )


def test_parallel_tool_calls_with_several_tools_need_parallel_tool_support() -> None:
    context = make_context(make_request(tools=[TOOL, TOOL], parallel_tool_calls=True))
    assert serves_request(make_model(), context) == "no parallel tool call support"
    single = make_context(make_request(tools=[TOOL], parallel_tool_calls=True))
    assert serves_request(make_model(), single) is None


def test_image_parts_need_vision_json_schema_needs_json_schema_streams_need_streaming() -> None:
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]
    bare = make_model(supports=frozenset())
    assert serves_request(bare, make_context(make_request(messages=image))) == "no vision support"
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    assert (
        serves_request(bare, make_context(make_request(response_format=schema))) == "no json_schema support"
    )
    assert serves_request(bare, make_context(make_request(stream=True))) == "no streaming support"
    assert serves_request(bare, make_context(make_request())) is None


def test_capabilities_required_by_the_policy_are_checked_and_say_so() -> None:
    context = make_context(requires=frozenset({"vision"}))
    reason = has_required_capabilities(make_model(supports=frozenset({"tools"})), context)
    assert reason == "no vision support (required by the policy)"


def test_quality_floor_rejects_lower_scores_and_missing_scores() -> None:
    context = make_context(floors=MappingProxyType({"mmlu": 82.0}))
    assert meets_quality(make_model(quality={"mmlu": 81.1}), context) == "mmlu 81.1 < 82"
    assert meets_quality(make_model(quality={"mmlu": 82.0}), context) is None
    assert meets_quality(make_model(quality={}), context) == "no mmlu score (floor 82)"


def test_context_fit_rejects_a_prompt_larger_than_the_window_with_both_numbers() -> None:
    context = make_context(make_request("x" * 4 * 30_000))
    reason = fits_context(make_model(context_window=10_000), context)
    assert reason is not None and reason.startswith("context 10,000 < ")
    assert fits_context(make_model(context_window=1_000_000), context) is None


def test_context_fit_adds_the_requested_output_and_counts_exactly_at_the_edge() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 500
    exact = count_prompt_tokens([{"role": "user", "content": text}])
    request = make_request(text, max_tokens=6_000)
    just_short = make_model(context_window=exact + 6_000 - 1, max_output_tokens=8_000)
    assert (
        fits_context(just_short, make_context(request))
        == f"context {exact + 5_999:,} < {exact + 6_000:,} needed"
    )
    assert (
        fits_context(make_model(context_window=exact + 6_000, max_output_tokens=8_000), make_context(request))
        is None
    )
    too_long = make_context(make_request(max_completion_tokens=20_000))
    assert (
        fits_context(make_model(max_output_tokens=16_384), too_long) == "max output 16,384 < 20,000 requested"
    )


def test_a_model_with_an_unknown_window_passes_the_context_filter() -> None:
    assert fits_context(make_model(context_window=None), make_context(make_request("x" * 10**6))) is None


def test_health_rejects_models_in_cooldown_with_the_given_reason() -> None:
    context = make_context(health=MappingProxyType({"m": "in cooldown for 12 s after 5 failures"}))
    assert healthy(make_model("m"), context) == "in cooldown for 12 s after 5 failures"
    assert healthy(make_model("other"), context) is None


def test_budget_hook_sees_the_worst_case_cost_and_its_verdict_is_the_reason() -> None:
    seen: list[float] = []

    def budget(model: object, worst: float) -> str | None:
        seen.append(worst)
        return "budget: $0.01 left of $50 for support-bot today" if worst > 0.01 else None

    request = make_request("x" * 4000, max_tokens=1000)
    model = make_model(input_cost_per_mtok=1.0, output_cost_per_mtok=2.0)
    worst = worst_case_cost(model, make_context(request))
    # The prompt at its upper bound (the estimate may be low), the output at max_tokens.
    bound = request.prompt.upper_bound  # type: ignore[union-attr]
    assert bound >= 2 * request.prompt.best  # type: ignore[union-attr]
    assert worst is not None and abs(worst - (bound * 1.0 + 1000 * 2.0) / 1e6) < 1e-12
    assert within_budget(model, make_context(request, budget=budget)) is None
    assert seen == [worst]
    pricey = make_model(output_cost_per_mtok=100.0)
    assert (
        within_budget(pricey, make_context(request, budget=budget))
        == "budget: $0.01 left of $50 for support-bot today"
    )


def test_without_a_budget_there_is_no_budget_opinion_but_an_unpriced_model_cannot_be_checked() -> None:
    assert within_budget(make_model(), make_context()) is None
    unpriced = make_model(input_cost_per_mtok=None, output_cost_per_mtok=None)
    assert within_budget(unpriced, make_context(budget=lambda m, w: None)) is not None


def test_under_a_budget_a_model_needs_a_price_and_only_the_policy_can_make_it_free() -> None:
    budgeted = make_context(budgeted=True)
    assert priced_for_budget(make_model(input_cost_per_mtok=None), budgeted) == NO_PRICE
    assert priced_for_budget(make_model(output_cost_per_mtok=None), budgeted) == NO_PRICE
    free = make_model(input_cost_per_mtok=0.0, output_cost_per_mtok=0.0)
    assert priced_for_budget(free, budgeted) == CATALOG_FREE
    assert priced_for_budget(free, make_context(budgeted=True, declared_prices=frozenset({"m"}))) is None
    assert priced_for_budget(make_model(input_cost_per_mtok=None), make_context()) is None  # no budget


def test_worst_case_counts_every_choice_and_the_larger_token_limit() -> None:
    model = make_model()
    prompt, one = worst_case_tokens(model, make_context(make_request(max_tokens=100)))
    assert one == 100
    assert worst_case_tokens(model, make_context(make_request(max_tokens=100, n=8))) == (prompt, 800)
    both = make_request(max_tokens=100, max_completion_tokens=300)
    assert worst_case_tokens(model, make_context(both))[1] == 300
    assert worst_case_tokens(model, make_context(make_request()))[1] == 2_000  # the model's max output
    # No max output known: the whole window, since the prompt may be smaller than estimated.
    assert worst_case_tokens(make_model(max_output_tokens=None), make_context(make_request()))[1] == 10_000
    eight = worst_case_cost(model, make_context(make_request(max_tokens=100, n=8)))
    single = worst_case_cost(model, make_context(make_request(max_tokens=100)))
    assert eight is not None and single is not None
    assert eight - single == 700 * 2.0 / 1_000_000


def test_under_a_budget_a_model_without_output_limits_needs_max_tokens() -> None:
    unbounded = make_model(max_output_tokens=None, context_window=None)
    reason = bounded_for_budget(unbounded, make_context(budgeted=True))
    assert reason is not None and reason.startswith("no output limit: can't be budgeted")
    assert bounded_for_budget(unbounded, make_context(make_request(max_tokens=10), budgeted=True)) is None
    assert bounded_for_budget(unbounded, make_context()) is None
    assert bounded_for_budget(make_model(max_output_tokens=None), make_context(budgeted=True)) is None
