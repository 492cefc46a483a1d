"""Batch and flex prices in the catalog: litellm's figures, else half price where the provider sells
batch, and the policy's overrides over both."""

import pytest

from policies.schema import ModelSpec
from providers.catalog import resolve_model


def test_batch_prices_come_from_litellms_map_where_it_has_them() -> None:
    mini = resolve_model("gpt-4o-mini", provider="openai")
    assert (mini.batch_input_cost_per_mtok, mini.batch_output_cost_per_mtok) == (0.075, 0.3)
    assert mini.batch_protocol == "openai" and mini.supports_batch
    haiku = resolve_model("claude-haiku-4-5", provider="anthropic")
    assert (haiku.batch_input_cost_per_mtok, haiku.batch_output_cost_per_mtok) == (0.5, 2.5)
    assert haiku.batch_protocol == "anthropic"


def test_flex_prices_come_from_litellms_map_and_their_absence_means_no_flex_tier() -> None:
    lite = resolve_model("flash-lite", provider="gemini", model="gemini-2.5-flash-lite")
    assert (lite.flex_input_cost_per_mtok, lite.flex_output_cost_per_mtok) == (0.05, 0.2)
    assert lite.supports_flex and lite.batch_protocol == "gemini"
    assert not resolve_model("gpt-4o-mini", provider="openai").supports_flex


def test_a_batch_provider_model_without_litellm_batch_prices_is_offered_at_half_price() -> None:
    info = resolve_model(
        "private", provider="openai", model="ft:private-model", overrides={"input_cost_per_mtok": 3.0}
    )
    assert info.batch_input_cost_per_mtok == 1.5
    assert info.batch_output_cost_per_mtok is None and not info.supports_batch


def test_a_standard_price_set_in_the_policy_halves_into_the_batch_price() -> None:
    info = resolve_model(
        "gpt-4o-mini", provider="openai", overrides={"input_cost_per_mtok": 0.2, "output_cost_per_mtok": 0.8}
    )
    assert (info.batch_input_cost_per_mtok, info.batch_output_cost_per_mtok) == (0.1, 0.4)


def test_batch_and_flex_overrides_in_the_policy_win_over_everything() -> None:
    spec = ModelSpec.model_validate(
        {
            "provider": "gemini",
            "model": "gemini-2.5-flash-lite",
            "batch_input_cost_per_mtok": 0.04,
            "batch_output_cost_per_mtok": 0.16,
            "flex_input_cost_per_mtok": 0.06,
            "flex_output_cost_per_mtok": 0.24,
        }
    )
    info = resolve_model("lite", provider="gemini", model=spec.model, overrides=spec.catalog_overrides())
    assert (info.batch_input_cost_per_mtok, info.batch_output_cost_per_mtok) == (0.04, 0.16)
    assert (info.flex_input_cost_per_mtok, info.flex_output_cost_per_mtok) == (0.06, 0.24)


def test_a_self_hosted_model_has_no_batch_api_unless_the_policy_names_one() -> None:
    plain = resolve_model(
        "phi", provider="openai_compatible", overrides={"input_cost_per_mtok": 0, "output_cost_per_mtok": 0}
    )
    assert plain.batch_protocol is None and not plain.supports_batch
    declared = resolve_model(
        "phi",
        provider="openai_compatible",
        overrides={
            "batch_protocol": "openai",
            "batch_input_cost_per_mtok": 0,
            "batch_output_cost_per_mtok": 0,
        },
    )
    assert declared.supports_batch


def test_at_tier_prices_a_call_at_that_tiers_prices_to_the_nano_dollar() -> None:
    mini = resolve_model("gpt-4o-mini", provider="openai")
    batch = mini.at_tier("batch")
    assert batch.cost_usd(1_000, 500, cached_tokens=200) == pytest.approx(
        (1_000 * 0.075 + 500 * 0.3) / 1e6, abs=1e-12
    )
    assert mini.at_tier("standard") is mini
    assert not mini.at_tier("flex").priced
    with pytest.raises(ValueError, match="unknown service tier"):
        mini.at_tier("priority")
