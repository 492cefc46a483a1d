"""The catalog: litellm's map, shipped scores, then policy overrides; unknown prices stay unknown."""

import pytest

from providers.catalog import resolve_model, shipped_quality_scores


def test_gpt_4o_mini_prices_and_limits_come_from_litellms_map() -> None:
    info = resolve_model("gpt-4o-mini", provider="openai")
    assert (info.input_cost_per_mtok, info.cached_input_cost_per_mtok, info.output_cost_per_mtok) == (
        0.15,
        0.075,
        0.6,
    )
    assert (info.context_window, info.max_output_tokens) == (128_000, 16_384)
    assert {"tools", "parallel_tools", "vision", "json_schema", "streaming"} <= info.supports


def test_gemini_and_anthropic_models_are_found_under_their_litellm_keys() -> None:
    gemini = resolve_model("flash-lite", provider="gemini", model="gemini-2.5-flash-lite")
    assert (gemini.input_cost_per_mtok, gemini.output_cost_per_mtok, gemini.context_window) == (
        0.1,
        0.4,
        1_048_576,
    )
    haiku = resolve_model("claude-haiku-4-5", provider="anthropic")
    assert (haiku.input_cost_per_mtok, haiku.cached_input_cost_per_mtok, haiku.output_cost_per_mtok) == (
        1.0,
        0.1,
        5.0,
    )
    assert haiku.context_window == 200_000


def test_shipped_quality_scores_carry_a_source_for_every_figure() -> None:
    scores = shipped_quality_scores()
    assert scores["gpt-4o-mini"]["mmlu"].score == 82.0
    assert scores["gemini-2.5-flash-lite"]["mmlu"].score == 81.1
    for model in scores.values():
        for figure in model.values():
            assert figure.source.strip()


def test_a_model_unknown_to_litellm_has_no_price_and_is_not_free() -> None:
    info = resolve_model("qwen", provider="openai_compatible", model="qwen3.5-flash")
    assert info.input_cost_per_mtok is None and not info.priced
    assert info.cost_usd(1000, 1000) is None


def test_policy_overrides_win_and_supports_replaces_the_list() -> None:
    info = resolve_model(
        "qwen",
        provider="openai_compatible",
        model="qwen3.5-flash",
        overrides={
            "input_cost_per_mtok": 0.10,
            "output_cost_per_mtok": 0.40,
            "context_window": 1_000_000,
            "supports": ("streaming",),
            "quality": {"MMLU": 80.5},
        },
    )
    assert info.priced and info.context_window == 1_000_000
    assert info.supports == frozenset({"streaming"})
    assert info.quality["mmlu"] == 80.5 and info.quality_sources["mmlu"] == "policy"


def test_cost_prices_cached_prompt_tokens_at_the_cached_rate() -> None:
    info = resolve_model("gpt-4o-mini", provider="openai")
    # 1M prompt tokens of which 400k cached, 100k completion tokens.
    cost = info.cost_usd(1_000_000, 100_000, cached_tokens=400_000)
    assert cost == pytest.approx(600_000 * 0.15e-6 + 400_000 * 0.075e-6 + 100_000 * 0.6e-6)
