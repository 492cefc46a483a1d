"""Catalog-aware validation: what a policy cannot do given its models' prices, capabilities and scores.

The models here are self-hosted names litellm does not know, so every figure comes from the policy
and the tests do not move when litellm's price map does.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from policies.loader import parse_policy
from policies.schema import RouteSpec
from policies.validate import check_policy, policy_catalog, validate_policy, validate_policy_text
from providers.catalog import ModelInfo

MODELS = """\
models:
  small:
    provider: openai_compatible
    api_base: http://localhost:8000/v1
    input_cost_per_mtok: 0.1
    output_cost_per_mtok: 0.4
    supports: [tools, streaming]
    quality: {mmlu: 70}
  big:
    provider: openai_compatible
    api_base: http://localhost:8000/v1
    input_cost_per_mtok: 2.5
    output_cost_per_mtok: 10
    supports: [tools, vision, json_schema, streaming]
    quality: {mmlu: 88, gpqa: 50}
  unpriced:
    provider: openai_compatible
    api_base: http://localhost:8000/v1
    supports: [tools, vision]
    quality: {mmlu: 85}
"""  # 20 lines: what follows starts on line 21


def problems(text: str) -> list[str]:
    return [str(p) for p in validate_policy_text(MODELS + textwrap.dedent(text), source="p.yaml", env={})]


def test_a_sound_policy_has_no_problems() -> None:
    found = problems(
        """\
        routes:
          auto:
            strategy: cheapest
            candidates: [small, big]
            fallbacks: [unpriced]
            require: [tools]
          smart:
            min_quality: {mmlu: 80}
            candidates: [big, unpriced]
        features:
          vision-bot: {require: [vision]}
        aliases: {gpt-4o-mini: auto}
        fallbacks: [big]
        """
    )
    assert found == []


def test_loader_problems_come_first_and_alone() -> None:
    found = problems("routes:\n  auto:\n    stratgy: cheapest\n")
    allowed = ", ".join(RouteSpec.model_fields)
    assert found == [
        "p.yaml:23: routes.auto.stratgy: unknown key 'stratgy' — did you mean 'strategy'? Allowed keys:"
        f" {allowed}"
    ]


def test_cheapest_route_with_an_unpriced_candidate_names_the_keys_to_set() -> None:
    found = problems("routes:\n  auto:\n    strategy: cheapest\n    candidates: [small, unpriced]\n")
    assert found == [
        "p.yaml:24: routes.auto.candidates[1]: model 'unpriced' has no known price, so 'cheapest' cannot"
        " rank it — set input_cost_per_mtok and output_cost_per_mtok under models.unpriced"
    ]


def test_cheapest_route_over_every_model_points_at_its_strategy() -> None:
    found = problems("routes:\n  auto:\n    strategy: cheapest\n")
    assert len(found) == 1
    assert found[0].startswith("p.yaml:23: routes.auto.strategy: model 'unpriced' has no known price")


def test_only_the_missing_price_is_asked_for() -> None:
    text = MODELS.replace(
        "    supports: [tools, vision]\n", "    input_cost_per_mtok: 1\n    supports: [tools, vision]\n"
    )
    found = validate_policy_text(text + "routes:\n  auto: {strategy: cheapest}\n", env={})
    assert [p.message.rsplit("— ", 1)[1] for p in found] == ["set output_cost_per_mtok under models.unpriced"]


def test_unpriced_models_are_fine_outside_cheapest_and_as_fallbacks() -> None:
    assert (
        problems(
            "routes:\n  a: {candidates: [unpriced]}\n"
            "  b: {strategy: cheapest, candidates: [small], fallbacks: [unpriced]}\n"
        )
        == []
    )


def test_unknown_benchmark_suggests_the_known_one() -> None:
    found = problems("routes:\n  auto:\n    min_quality:\n      mmmlu: 80\n")
    assert len(found) == 1, found
    assert found[0].startswith(
        "p.yaml:24: routes.auto.min_quality.mmmlu: unknown benchmark 'mmmlu': no model of the policy has"
        " a score for it, so every model fails this floor"
    )
    assert "did you mean 'mmlu'? known: gpqa, mmlu" in found[0]


def test_a_misspelt_benchmark_hides_no_other_problem_of_the_route_or_feature() -> None:
    found = problems(
        """\
        routes:
          auto:
            require: [vision]
            min_quality: {mmmlu: 80}
            candidates: [small, big]
        features:
          bot:
            require: [json_schema]
            min_quality: {gpqa: 60, humaneval: 80}
        """
    )
    assert [line.split(": ", 2)[1] for line in found] == [
        "routes.auto.min_quality.mmmlu",
        "routes.auto.candidates[0]",
        "features.bot",
        "features.bot.min_quality.humaneval",
    ]
    assert "candidate 'small' can never be used by route 'auto': no vision support" in found[1]
    assert "big: gpqa 50 < 60" in found[2]


def test_unknown_benchmark_in_a_feature_is_reported_too() -> None:
    found = problems("features:\n  bot:\n    min_quality: {humaneval: 80}\n")
    assert len(found) == 1
    assert found[0].startswith("p.yaml:23: features.bot.min_quality.humaneval: unknown benchmark 'humaneval'")


def test_fallback_lacking_a_required_capability_can_never_be_used() -> None:
    found = problems(
        """\
        routes:
          auto:
            require: [vision]
            candidates: [big]
            fallbacks:
              - small
        """
    )
    assert found == [
        "p.yaml:26: routes.auto.fallbacks[0]: fallback 'small' can never be used by route 'auto': no vision"
        " support — remove it, or correct supports:/quality: under models.small if the catalog is wrong"
    ]


def test_fallback_below_a_quality_floor_can_never_be_used() -> None:
    found = problems(
        "routes:\n  auto:\n    min_quality: {mmlu: 80}\n    candidates: [big]\n    fallbacks: [small]\n"
    )
    assert len(found) == 1
    assert found[0].startswith("p.yaml:25: routes.auto.fallbacks[0]: fallback 'small' can never be used")
    assert "mmlu 70 < 80" in found[0]


def test_fallback_without_the_floors_score_can_never_be_used() -> None:
    found = problems(
        "routes:\n  auto:\n    min_quality: {gpqa: 40}\n    candidates: [big]\n    fallbacks: [small]\n"
    )
    assert len(found) == 1 and "no gpqa score (floor 40)" in found[0]


def test_listed_candidate_that_can_never_be_used_is_reported_but_default_candidates_are_not() -> None:
    listed = problems("routes:\n  auto:\n    require: [json_schema]\n    candidates: [big, small]\n")
    assert len(listed) == 1
    assert listed[0].startswith("p.yaml:24: routes.auto.candidates[1]: candidate 'small' can never be used")
    assert problems("routes:\n  auto:\n    require: [json_schema]\n") == []


def test_route_no_model_can_serve_is_one_problem_on_the_route_with_every_reason() -> None:
    found = problems(
        """\
        routes:
          impossible:
            require: [json_schema]
            candidates: [small]
            fallbacks: [unpriced]
        """
    )
    assert found == [
        "p.yaml:22: routes.impossible: no model can ever serve route 'impossible' (small: no json_schema"
        " support; unpriced: no json_schema support) — add a model that meets its require:/min_quality:,"
        " or relax them"
    ]


def test_route_over_every_model_that_none_can_serve_is_reported() -> None:
    found = problems("routes:\n  auto:\n    min_quality: {mmlu: 95}\n")
    assert len(found) == 1
    assert found[0].startswith(
        "p.yaml:22: routes.auto: no model can ever serve route 'auto' (small: mmlu 70 < 95;"
    )


def test_feature_no_model_can_serve_is_reported_on_the_feature() -> None:
    found = problems("features:\n  bot:\n    require: [vision]\n    min_quality: {gpqa: 60}\n")
    assert len(found) == 1
    assert found[0].startswith("p.yaml:22: features.bot: no model of the policy can ever serve feature 'bot'")


def test_problems_are_in_file_order_across_kinds() -> None:
    found = validate_policy_text(
        MODELS
        + "routes:\n  a: {strategy: cheapest, candidates: [unpriced]}\n"
        + "  b: {min_quality: {mmlx: 1}}\nfeatures:\n  f: {require: [parallel_tools]}\n",
        env={},
    )
    assert [(p.line, p.key) for p in found] == [
        (22, "routes.a.candidates[0]"),
        (23, "routes.b.min_quality.mmlx"),
        (25, "features.f"),
    ]


def test_validate_policy_reads_a_file_and_reports_unreadable_ones(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(MODELS + "routes:\n  auto: {strategy: cheapest}\n", encoding="utf-8")
    found = validate_policy(path, env={})
    assert [(p.file, p.line) for p in found] == [(str(path), 22)]
    missing = validate_policy(tmp_path / "nope.yaml")
    assert len(missing) == 1 and "cannot read the policy file" in missing[0].message


def test_check_policy_without_positions_reports_keys_without_lines() -> None:
    policy = parse_policy(MODELS + "routes:\n  auto: {strategy: cheapest}\n", source="x.yaml", env={})
    assert [str(p).split(" has ")[0] for p in check_policy(policy)] == [
        "x.yaml: routes.auto.strategy: model 'unpriced'"
    ]


def test_check_policy_uses_the_catalog_it_is_given() -> None:
    policy = parse_policy(MODELS + "routes:\n  auto: {strategy: cheapest}\n", env={})
    catalog = dict(policy_catalog(policy))
    catalog["unpriced"] = ModelInfo("unpriced", "openai_compatible", "unpriced", 1.0, None, 2.0)
    assert check_policy(policy, catalog=catalog) == []


def test_real_catalog_knows_gpt_35_turbo_has_no_vision() -> None:
    found = validate_policy_text(
        "models:\n  gpt-4o-mini: {provider: openai}\n  gpt-3.5-turbo: {provider: openai}\n"
        "routes:\n  auto:\n    require: [vision]\n"
        "    candidates: [gpt-4o-mini]\n    fallbacks: [gpt-3.5-turbo]\n",
        env={},
    )
    assert [(p.line, p.message.split(" — ")[0]) for p in found] == [
        (8, "fallback 'gpt-3.5-turbo' can never be used by route 'auto': no vision support")
    ]


def test_annotated_example_in_the_docs_passes_the_catalog_checks() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "policy.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in docs.split("<!-- loads -->\n```yaml\n")[1:]]
    env = {"ROUTER_FAKE_URL": "http://127.0.0.1:8000", "AZURE_RESOURCE": "example"}
    for block in blocks:
        assert validate_policy_text(block, source="docs", env=env) == []


def test_an_adequacy_file_that_cant_be_read_or_knows_no_model_of_the_route_is_reported(
    tmp_path: Path,
) -> None:
    import pytest

    pytest.importorskip("numpy")
    from tests.adequacy_helpers import write_hand_artifact

    write_hand_artifact(tmp_path / "other.json", cheap="x", strong="y")
    text = textwrap.dedent(
        """\
        models:
          a: {provider: openai_compatible, api_base: "http://a.test/v1",
              input_cost_per_mtok: 1, output_cost_per_mtok: 1}
        routes:
          missing: {candidates: [a], adequacy: nowhere.json}
          stranger: {candidates: [a], adequacy: other.json}
        """
    )
    path = tmp_path / "p.yaml"
    path.write_text(text)
    found = [f"{p.line}: {p.message}" for p in validate_policy(path)]
    assert found[0].startswith("5: ") and "nowhere.json: can't read the adequacy file" in found[0]
    assert (
        found[1].startswith("6: ") and "knows none of route 'stranger''s models (it knows x, y)" in found[1]
    )


def test_a_budget_over_an_unpriced_model_is_reported_on_the_model() -> None:
    found = problems("budget: {limit_usd: 5}\nfeatures:\n  bot: {budget: {limit_usd: 1}}\n")
    assert found == [
        "p.yaml:16: models.unpriced: model 'unpriced' can never serve a request under budget,"
        " features.bot.budget: no price: can't be budgeted — set input_cost_per_mtok/output_cost_per_mtok"
        " (under models.unpriced)"
    ]
    assert problems("features:\n  bot: {}\n") == []  # no budget: an unpriced model is fine


def test_a_model_declared_free_is_fine_under_a_budget() -> None:
    free = MODELS.replace(
        "    supports: [tools, vision]\n", "    input_cost_per_mtok: 0\n    output_cost_per_mtok: 0\n"
    )
    found = validate_policy_text(free + "budget: {limit_usd: 5}\n", source="p.yaml", env={})
    assert found == []


def test_a_log_file_in_a_missing_directory_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "router.log"
    assert problems(f"logging:\n  file: {missing}\n") == [
        f"p.yaml:22: logging.file: the directory {missing.parent} does not exist, so no client could"
        " open this log file — create the directory or fix the path"
    ]
    assert problems(f"logging:\n  file: {tmp_path / 'router.log'}\n") == []


def test_a_flex_route_where_no_model_has_a_flex_tier_is_reported_on_its_service_tier() -> None:
    found = problems("routes:\n  later:\n    candidates: [small, big]\n    service_tier: flex\n")
    assert len(found) == 1
    assert found[0].startswith("p.yaml:24: routes.later.service_tier: none of small, big has a flex tier")


def test_a_flex_route_with_a_model_whose_flex_prices_the_policy_states_is_sound() -> None:
    text = MODELS.replace(
        "    input_cost_per_mtok: 0.1\n",
        "    input_cost_per_mtok: 0.1\n"
        "    flex_input_cost_per_mtok: 0.05\n"
        "    flex_output_cost_per_mtok: 0.2\n",
    )
    found = validate_policy_text(
        text + "routes:\n  later:\n    candidates: [small, big]\n    urgency: flex\n", source="p.yaml", env={}
    )
    assert found == []
