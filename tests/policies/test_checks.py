"""Loader cross-checks for aliases, top-level fallbacks and routes: each mistake on its line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from policies.loader import (
    PolicyError,
    Positions,
    Problem,
    load_policy_with_positions,
    parse_policy,
    parse_policy_with_positions,
    policy_from_dict,
)

MODELS = """\
models:
  gpt-4o-mini: {provider: openai}
  flash: {provider: gemini}
routes:
  auto: {candidates: [flash, gpt-4o-mini]}
"""


def problems_in(text: str) -> list[Problem]:
    with pytest.raises(PolicyError) as info:
        parse_policy(textwrap.dedent(text), source="policy.yaml", env={})
    return list(info.value.problems)


def only_problem(text: str) -> Problem:
    problems = problems_in(text)
    assert len(problems) == 1, problems
    return problems[0]


# --- aliases --------------------------------------------------------------------------------------


def test_alias_to_a_route_and_alias_with_a_models_name_load() -> None:
    policy = parse_policy(MODELS + "aliases:\n  gpt-4o-mini: auto\n  gpt-4: flash\n", env={})
    assert policy.aliases == {"gpt-4o-mini": "auto", "gpt-4": "flash"}


def test_alias_to_an_unknown_target_is_reported_on_its_line_with_a_suggestion() -> None:
    problem = only_problem(MODELS + "aliases:\n  gpt-4: auto\n  gpt-4-turbo: autp\n")
    assert (problem.line, problem.key) == (8, "aliases.gpt-4-turbo")
    assert problem.message.startswith(
        "alias 'gpt-4-turbo' points to 'autp', which is neither a route nor a model of the policy"
    )
    assert "did you mean 'auto'?" in problem.message


def test_alias_with_the_name_of_a_route_is_ambiguous() -> None:
    problem = only_problem(MODELS + "aliases:\n  auto: flash\n")
    assert (problem.line, problem.key) == (7, "aliases.auto")
    assert "same name as a route" in problem.message


def test_alias_to_another_alias_names_the_final_target() -> None:
    problem = only_problem(MODELS + "aliases:\n  a: auto\n  b: a\n")
    assert (problem.line, problem.key) == (8, "aliases.b")
    assert "another alias — point it to that alias's target ('auto') directly" in problem.message


def test_alias_to_itself_is_reported() -> None:
    problem = only_problem(MODELS + "aliases:\n  flash: flash\n")
    assert (problem.line, problem.key) == (7, "aliases.flash")
    assert "points to itself" in problem.message


def test_alias_target_that_is_not_text_is_a_schema_error_only() -> None:
    problem = only_problem(MODELS + "aliases:\n  gpt-4: [auto]\n")
    assert (problem.line, problem.key) == (7, "aliases.gpt-4")
    assert "must be text" in problem.message


# --- top-level fallbacks --------------------------------------------------------------------------


def test_top_level_fallbacks_load() -> None:
    assert parse_policy(MODELS + "fallbacks: [flash]\n", env={}).fallbacks == ("flash",)


def test_top_level_fallback_naming_an_unknown_model_is_reported_on_its_item() -> None:
    problem = only_problem(MODELS + "fallbacks:\n  - flash\n  - gpt-4o-mimi\n")
    assert (problem.line, problem.key) == (8, "fallbacks[1]")
    assert "fallbacks names model 'gpt-4o-mimi', which is not under models:" in problem.message
    assert "did you mean 'gpt-4o-mini'?" in problem.message


def test_top_level_fallback_naming_a_route_says_it_must_be_a_model() -> None:
    problem = only_problem(MODELS + "fallbacks: [auto]\n")
    assert (problem.line, problem.key) == (6, "fallbacks[0]")
    assert "'auto', which is a route, not a model" in problem.message


def test_top_level_fallback_listed_twice_is_reported() -> None:
    problem = only_problem(MODELS + "fallbacks: [flash, flash]\n")
    assert problem.key == "fallbacks[1]"
    assert "listed twice" in problem.message


def test_route_candidate_naming_a_route_says_it_must_be_a_model() -> None:
    problem = only_problem(MODELS + "  other:\n    fallbacks: [auto]\n")
    assert (problem.line, problem.key) == (7, "routes.other.fallbacks[0]")
    assert "route 'other' names 'auto', which is a route, not a model" in problem.message


# --- the new route and feature keys ---------------------------------------------------------------


def test_new_route_and_feature_keys_load() -> None:
    text = """\
    expected_output_tokens: 300
    models:
      a: {provider: openai}
    routes:
      auto:
        strategy: cheapest
        require: [tools, vision]
        min_quality: {mmlu: 80}
        expected_output_tokens: 500
    features:
      bot: {require: [json_schema], min_quality: {gpqa: 40}}
    """
    policy = parse_policy(textwrap.dedent(text), env={})
    route = policy.routes["auto"]
    assert (route.strategy, route.require, route.expected_output_tokens) == (
        "cheapest",
        ("tools", "vision"),
        500,
    )
    assert route.min_quality == {"mmlu": 80}
    assert policy.features["bot"].require == ("json_schema",)
    assert policy.expected_output_tokens == 300


def test_unknown_capability_in_require_is_reported_on_its_item() -> None:
    problem = only_problem("models: {a: {provider: openai}}\nroutes:\n  auto:\n    require: [tools, vison]\n")
    assert (problem.line, problem.key) == (4, "routes.auto.require[1]")
    assert "did you mean 'vision'?" in problem.message


# --- positions ------------------------------------------------------------------------------------


def test_positions_give_the_lines_of_keys_and_values() -> None:
    text = "models:\n  a:\n    provider: openai\nroutes:\n  auto:\n    candidates:\n      - a\n"
    loaded = parse_policy_with_positions(text, source="p.yaml", env={})
    assert loaded.policy == parse_policy(text, source="p.yaml", env={})
    positions = loaded.positions
    assert positions.line(("routes", "auto", "candidates", 0)) == 7
    assert positions.line(("routes", "auto"), key=True) == 5
    assert positions.line(("models", "a", "provider")) == 3


def test_positions_of_an_unwritten_default_fall_back_to_the_nearest_written_parent() -> None:
    loaded = parse_policy_with_positions("models: {a: {provider: openai}}\nroutes:\n  auto: {}\n", env={})
    assert loaded.positions.line(("routes", "auto", "strategy")) == 3
    problem = loaded.positions.problem(("routes", "auto", "strategy"), "needs  work")
    assert str(problem) == "<string>:3: routes.auto.strategy: needs work"


def test_positions_of_a_file_name_it(tmp_path: Path) -> None:
    path = f"{tmp_path}/policy.yaml"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("models: {a: {provider: openai}}\n")
    loaded = load_policy_with_positions(path, env={})
    assert loaded.positions.file == path
    assert loaded.policy.source == path


def test_positions_without_a_file_have_no_lines() -> None:
    assert Positions("<dict>").line(("models", "a")) is None
    policy = policy_from_dict({"models": {"a": {"provider": "openai"}}})
    assert str(Positions(policy.source or "").problem(("models", "a"), "x")) == "<dict>: models.a: x"
