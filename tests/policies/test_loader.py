"""Loading a policy file: each mistake is reported on its exact line with a next step."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import openai
import pytest

from policies.loader import (
    DEFAULT_POLICY_ENV,
    PolicyError,
    Problem,
    load_default_policy,
    load_policy,
    parse_policy,
    policy_from_dict,
    policy_json_schema,
)
from policies.schema import Policy

GOOD = """\
version: 1
ledger: memory://
models:
  gpt-4o-mini:
    provider: openai
    input_cost_per_mtok: 0.15
    output_cost_per_mtok: 0.60
    supports: [tools, parallel_tools, vision]
  flash-lite:
    provider: gemini
    model: gemini-2.5-flash-lite
    api_base: ${FAKE_URL}/gemini
    context_window: 1048576
    quality: {mmlu: 81.1}
  azure-4o:
    provider: azure
    model: gpt-4o
    api_version: 2024-10-21
    api_key_env: MY_AZURE_KEY
    headers:
      X-Team: search
routes:
  auto:
    strategy: ordered
    candidates: [flash-lite, gpt-4o-mini]
    fallbacks: [azure-4o]
  everything:
features:
  support-bot: {}
  summarizer:
"""

GOOD_AS_DICT = {
    "version": 1,
    "ledger": "memory://",
    "models": {
        "gpt-4o-mini": {
            "provider": "openai",
            "input_cost_per_mtok": 0.15,
            "output_cost_per_mtok": 0.6,
            "supports": ["tools", "parallel_tools", "vision"],
        },
        "flash-lite": {
            "provider": "gemini",
            "model": "gemini-2.5-flash-lite",
            "api_base": "http://127.0.0.1:9999/gemini",
            "context_window": 1048576,
            "quality": {"mmlu": 81.1},
        },
        "azure-4o": {
            "provider": "azure",
            "model": "gpt-4o",
            "api_version": "2024-10-21",
            "api_key_env": "MY_AZURE_KEY",
            "headers": {"X-Team": "search"},
        },
    },
    "routes": {
        "auto": {
            "strategy": "ordered",
            "candidates": ["flash-lite", "gpt-4o-mini"],
            "fallbacks": ["azure-4o"],
        },
        "everything": {},
    },
    "features": {"support-bot": {}, "summarizer": {}},
}

ENV = {"FAKE_URL": "http://127.0.0.1:9999"}


def problems_in(text: str, env: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(PolicyError) as info:
        parse_policy(textwrap.dedent(text), source="policy.yaml", env=ENV if env is None else env)
    return list(info.value.problems)


def only_problem(text: str, env: dict[str, str] | None = None) -> Problem:
    problems = problems_in(text, env)
    assert len(problems) == 1, problems
    return problems[0]


# --- the good path ---------------------------------------------------------------------------------


def test_good_file_loads_and_equals_the_same_policy_built_from_a_dict(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD, encoding="utf-8")
    policy = load_policy(path, env=ENV)
    assert policy == policy_from_dict(GOOD_AS_DICT, source=str(path))
    assert policy.source == str(path)
    assert policy.models["flash-lite"].api_base == "http://127.0.0.1:9999/gemini"
    assert policy.models["gpt-4o-mini"].supports == ("tools", "parallel_tools", "vision")
    assert policy.routes["auto"].fallbacks == ("azure-4o",)


def test_good_file_survives_model_dump_and_policy_from_dict() -> None:
    policy = parse_policy(GOOD, env=ENV)
    again = policy_from_dict(policy.model_dump(), source=policy.source or "")
    assert again == policy


def test_plain_python_types_reach_the_schema_not_ruamel_scalars() -> None:
    policy = parse_policy(GOOD, env=ENV)
    price = policy.models["gpt-4o-mini"].input_cost_per_mtok
    assert type(price) is float
    assert type(policy.models["flash-lite"].context_window) is int
    assert type(policy.models["azure-4o"].model) is str


def test_date_like_values_stay_text() -> None:
    policy = parse_policy("models: {a: {provider: azure, api_version: 2024-02-01}}", env={})
    assert policy.models["a"].api_version == "2024-02-01"


def test_empty_route_and_feature_entries_mean_all_defaults() -> None:
    policy = parse_policy("models: {a: {provider: openai}}\nroutes:\n  auto:\nfeatures:\n  bot:\n", env={})
    assert policy.routes["auto"].strategy == "ordered"
    assert policy.routes["auto"].candidates is None
    assert "bot" in policy.features


def test_empty_routes_and_features_sections_are_allowed() -> None:
    policy = parse_policy("models: {a: {provider: openai}}\nroutes:\nfeatures:\n", env={})
    assert policy.routes == {}
    assert policy.features == {}


def test_yaml_merge_keys_work_and_merged_values_still_get_lines() -> None:
    text = """\
    x-defaults: &openai {provider: openai, context_window: 0}
    models:
      a:
        <<: *openai
        model: gpt-4o-mini
    """
    problems = problems_in(text)
    assert [(p.line, p.key) for p in problems] == [
        (1, "x-defaults"),
        (3, "models.a.context_window"),  # merged in: reported on the line of the model that uses it
    ]
    text = "models:\n  base: &b {provider: openai}\n  a:\n    <<: *b\n    model: gpt-4o\n"
    assert parse_policy(text, env={}).models["a"].provider == "openai"


# --- each kind of mistake, on its line ------------------------------------------------------------


def test_typo_in_a_route_key_is_reported_on_its_line_with_a_suggestion() -> None:
    problem = only_problem(
        """\
        models:
          a: {provider: openai}
        routes:
          auto:
            stratgy: ordered
        """
    )
    assert (problem.line, problem.key) == (5, "routes.auto.stratgy")
    assert "unknown key 'stratgy' — did you mean 'strategy'?" in problem.message
    assert "Allowed keys: strategy, candidates, fallbacks" in problem.message
    assert str(problem).startswith("policy.yaml:5: routes.auto.stratgy: unknown key 'stratgy'")


def test_typo_in_a_model_key_lists_the_allowed_keys() -> None:
    problem = only_problem("models:\n  a:\n    provider: openai\n    input_cost_per_mtk: 1\n")
    assert (problem.line, problem.key) == (4, "models.a.input_cost_per_mtk")
    assert "did you mean 'input_cost_per_mtok'?" in problem.message


def test_route_naming_an_unknown_model_is_reported_on_the_item_line() -> None:
    problem = only_problem(
        """\
        models:
          gpt-4o-mini: {provider: openai}
          flash: {provider: gemini}
        routes:
          auto:
            candidates:
              - flash
              - gpt-5-mini
        """
    )
    assert (problem.line, problem.key) == (8, "routes.auto.candidates[1]")
    assert problem.message.startswith(
        "route 'auto' names model 'gpt-5-mini', which is not under models: — add it there or fix the name"
    )
    assert "known: flash, gpt-4o-mini" in problem.message


def test_unknown_fallback_model_is_reported_too() -> None:
    problem = only_problem("models: {a: {provider: openai}}\nroutes:\n  r: {fallbacks: [b]}\n")
    assert (problem.line, problem.key) == (3, "routes.r.fallbacks[0]")


def test_negative_price_is_reported_on_its_line() -> None:
    problem = only_problem(
        """\
        models:
          a:
            provider: openai
            input_cost_per_mtok: -0.15
        """
    )
    assert (problem.line, problem.key) == (4, "models.a.input_cost_per_mtok")
    assert problem.message.startswith("must be ≥ 0")


def test_infinite_price_is_not_a_price() -> None:
    problem = only_problem("models:\n  a:\n    provider: openai\n    output_cost_per_mtok: .inf\n")
    assert (problem.line, problem.key) == (4, "models.a.output_cost_per_mtok")
    assert "finite" in problem.message


def test_yaml_syntax_error_is_reported_with_the_parsers_line() -> None:
    problem = only_problem("models:\n  a: {provider: openai\nroutes: {}\n")
    assert problem.line == 3
    assert problem.key == ""
    assert problem.message.startswith("YAML syntax error:")
    assert str(problem).startswith("policy.yaml:3: YAML syntax error:")


def test_tab_indentation_gets_a_hint() -> None:
    problem = only_problem("models:\n\ta: {provider: openai}\n")
    assert problem.line == 2
    assert "indent with spaces, not tabs" in problem.message


def test_duplicate_key_is_reported_on_the_second_occurrence() -> None:
    problem = only_problem(
        """\
        models:
          a:
            provider: openai
            context_window: 1000
            context_window: 2000
        """
    )
    assert problem.line == 5
    assert "duplicate key 'context_window'" in problem.message


def test_missing_models_section_is_reported_at_the_top() -> None:
    problem = only_problem("# my policy\nversion: 1\nroutes: {}\n")
    assert (problem.line, problem.key) == (2, "models")
    assert "missing required key 'models'" in problem.message


def test_empty_models_section_asks_for_a_model() -> None:
    problem = only_problem("models:\nroutes: {}\n")
    assert (problem.line, problem.key) == (1, "models")
    assert "name at least one model" in problem.message


def test_missing_provider_is_reported_on_the_models_line() -> None:
    problem = only_problem("models:\n  a:\n    model: gpt-4o\n")
    assert (problem.line, problem.key) == (2, "models.a.provider")
    assert "missing required key 'provider'" in problem.message
    assert "openai_compatible" in problem.message


def test_text_for_context_window_is_a_type_error_on_its_line() -> None:
    problem = only_problem("models:\n  a:\n    provider: openai\n    context_window: lots\n")
    assert (problem.line, problem.key) == (4, "models.a.context_window")
    assert problem.message == "must be a whole number (got text 'lots')"


def test_number_where_text_is_expected_suggests_quoting() -> None:
    problem = only_problem("models:\n  a:\n    provider: openai\n    model: 3.5\n")
    assert (problem.line, problem.key) == (4, "models.a.model")
    assert "quote it: '3.5'" in problem.message


def test_unknown_capability_in_supports_is_reported_on_the_item_line() -> None:
    problem = only_problem(
        """\
        models:
          a:
            provider: openai
            supports:
              - tools
              - vison
        """
    )
    assert (problem.line, problem.key) == (6, "models.a.supports[1]")
    assert problem.message.startswith("unknown capability 'vison' — did you mean 'vision'?")
    assert "json_schema" in problem.message


def test_a_single_capability_instead_of_a_list_shows_how_to_write_it() -> None:
    problem = only_problem("models:\n  a:\n    provider: openai\n    supports: tools\n")
    assert problem.line == 4
    assert "must be a list" in problem.message and "[tools]" in problem.message


def test_upper_case_benchmark_name_is_reported_on_its_key() -> None:
    problem = only_problem("models:\n  a:\n    provider: openai\n    quality:\n      MMLU: 80\n")
    assert (problem.line, problem.key) == (5, "models.a.quality.MMLU")
    assert "write 'mmlu'" in problem.message


def test_unknown_strategy_lists_the_allowed_ones() -> None:
    problem = only_problem("models: {a: {provider: openai}}\nroutes:\n  auto:\n    strategy: cheapset\n")
    assert (problem.line, problem.key) == (4, "routes.auto.strategy")
    assert "unknown strategy 'cheapset' — did you mean 'cheapest'?" in problem.message
    assert "Allowed: ordered, cheapest, fastest" in problem.message


def test_version_other_than_1_is_rejected() -> None:
    problem = only_problem("version: 2\nmodels: {a: {provider: openai}}\n")
    assert (problem.line, problem.key) == (1, "version")
    assert "this release reads version: 1" in problem.message


def test_unknown_feature_key_lists_the_feature_settings() -> None:
    problem = only_problem("models: {a: {provider: openai}}\nfeatures:\n  bot:\n    budgte: {}\n")
    assert (problem.line, problem.key) == (4, "features.bot.budgte")
    assert "unknown key 'budgte' — did you mean 'budget'? Allowed keys: require, min_quality, budget" in (
        problem.message
    )


def test_a_budget_that_is_a_number_says_it_must_be_a_mapping() -> None:
    problem = only_problem("models: {a: {provider: openai}}\nfeatures:\n  bot:\n    budget: 5\n")
    assert (problem.line, problem.key) == (4, "features.bot.budget")
    assert "must be a mapping" in problem.message


def test_source_cannot_be_set_from_the_file() -> None:
    problem = only_problem("models: {a: {provider: openai}}\nsource: elsewhere\n")
    assert (problem.line, problem.key) == (2, "source")
    assert "unknown key 'source'" in problem.message


def test_route_with_the_name_of_a_model_is_ambiguous() -> None:
    problem = only_problem("models:\n  fast: {provider: openai}\nroutes:\n  fast: {}\n")
    assert (problem.line, problem.key) == (4, "routes.fast")
    assert "ambiguous" in problem.message


def test_fallback_that_is_also_a_candidate_is_listed_twice() -> None:
    problem = only_problem(
        """\
        models: {a: {provider: openai}, b: {provider: openai}}
        routes:
          auto:
            candidates: [a, b]
            fallbacks:
              - b
        """
    )
    assert (problem.line, problem.key) == (6, "routes.auto.fallbacks[0]")
    assert "'b' is listed twice (as a candidate and a fallback)" in problem.message


def test_route_with_an_empty_candidate_list_is_reported() -> None:
    problem = only_problem("models: {a: {provider: openai}}\nroutes:\n  auto:\n    candidates: []\n")
    assert (problem.line, problem.key) == (4, "routes.auto.candidates")


def test_key_that_is_not_text_is_reported_with_a_quoting_hint() -> None:
    problem = only_problem("models:\n  a: {provider: openai}\n  2024: {provider: openai}\n")
    assert (problem.line, problem.key) == (3, "models.2024")
    assert "quote it ('2024')" in problem.message


def test_unsupported_yaml_tag_is_reported() -> None:
    problem = only_problem("models:\n  a: {provider: !secret openai}\n")
    assert (problem.line, problem.key) == (2, "models.a.provider")
    assert "!secret" in problem.message


def test_empty_file_says_what_it_needs() -> None:
    problem = only_problem("# nothing yet\n")
    assert "the policy is empty" in problem.message
    assert str(problem).startswith("policy.yaml: the policy is empty")


def test_top_level_list_is_reported() -> None:
    problem = only_problem("- models\n")
    assert problem.line == 1
    assert "the top level must be a mapping" in problem.message


def test_more_than_one_document_is_reported() -> None:
    problem = only_problem("models: {a: {provider: openai}}\n---\nmodels: {}\n")
    assert problem.line == 2
    assert "one YAML document" in problem.message


def test_all_problems_are_reported_together_in_file_order() -> None:
    problems = problems_in(
        """\
        models:
          a:
            provider: openai
            input_cost_per_mtok: -1
            context_window: lots
            api_base: ${FAKE_URL}/v1
        routes:
          auto:
            stratgy: ordered
            candidates: [a, b]
        """,
        env={},
    )
    assert [(p.line, p.key) for p in problems] == [
        (4, "models.a.input_cost_per_mtok"),
        (5, "models.a.context_window"),
        (6, "models.a.api_base"),
        (9, "routes.auto.stratgy"),
        (10, "routes.auto.candidates[1]"),
    ]


# --- environment interpolation ---------------------------------------------------------------------


def test_unset_env_var_is_reported_with_file_line_and_key() -> None:
    problem = only_problem(
        "models:\n  a:\n    provider: openai_compatible\n    api_base: ${FAKE_URL}/openai/v1\n", env={}
    )
    assert (problem.file, problem.line, problem.key) == ("policy.yaml", 4, "models.a.api_base")
    assert problem.message.startswith("environment variable FAKE_URL is not set")


def test_env_default_and_dollar_escape() -> None:
    text = "models:\n  a:\n    provider: openai\n    api_base: ${HOST:-http://localhost:8080}/v1\n"
    text += "    model: a$$b\n"
    policy = parse_policy(text, env={})
    assert policy.models["a"].api_base == "http://localhost:8080/v1"
    assert policy.models["a"].model == "a$b"


def test_env_values_feed_numeric_fields() -> None:
    policy = parse_policy(
        "models:\n  a:\n    provider: openai\n    context_window: ${CW}\n", env={"CW": "4096"}
    )
    assert policy.models["a"].context_window == 4096


def test_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICY_TEST_BASE", "http://x")
    assert parse_policy("models: {a: {provider: openai, api_base: '${POLICY_TEST_BASE}'}}").models[
        "a"
    ].api_base == ("http://x")


def test_values_of_secret_variables_never_appear_in_messages() -> None:
    secret = "sk-live-0123456789"
    problems = problems_in(
        """\
        models:
          a:
            provider: openai
            context_window: ${OPENAI_API_KEY}
            supports: ${MY_TOKEN}
        routes:
          r:
            candidates: ["${CLIENT_SECRET}"]
        """,
        env={"OPENAI_API_KEY": secret, "MY_TOKEN": secret, "CLIENT_SECRET": secret},
    )
    assert len(problems) == 3
    text = "\n".join(map(str, problems))
    assert secret not in text
    assert "hidden" in text


# --- files, defaults, the error type ---------------------------------------------------------------


def test_missing_file_is_a_policy_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}: cannot read the policy file")


def test_file_that_is_not_utf8_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(b"models: {a: {provider: \xff}}\n")
    with pytest.raises(PolicyError, match="UTF-8"):
        load_policy(path)


def test_default_policy_without_the_env_var_says_how_to_give_one() -> None:
    with pytest.raises(PolicyError) as info:
        load_default_policy(env={})
    assert str(info.value) == (
        "no policy given — pass policy=... to OpenAI() or set ROUTER_POLICY to a policy file path"
    )


def test_default_policy_reads_the_file_named_by_the_env_var(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD, encoding="utf-8")
    policy = load_default_policy(env={DEFAULT_POLICY_ENV: str(path), **ENV})
    assert policy.source == str(path)
    assert "gpt-4o-mini" in policy.models


def test_default_policy_naming_a_missing_file_mentions_the_env_var(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="named by ROUTER_POLICY"):
        load_default_policy(env={DEFAULT_POLICY_ENV: str(tmp_path / "gone.yaml")})


def test_policy_error_is_an_openai_error_and_a_value_error_and_pickles() -> None:
    with pytest.raises(openai.OpenAIError) as info:
        parse_policy("models: {}", source="p.yaml")
    err = info.value
    assert isinstance(err, PolicyError) and isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert again.problems == err.problems
    assert str(again) == str(err)


def test_problem_formats_as_file_line_key_message_omitting_what_is_unknown() -> None:
    assert str(Problem("p.yaml", 3, "models.a", "bad")) == "p.yaml:3: models.a: bad"
    assert str(Problem("p.yaml", None, "models.a", "bad")) == "p.yaml: models.a: bad"
    assert str(Problem("p.yaml", 3, "", "bad")) == "p.yaml:3: bad"


def test_policy_error_is_one_line_per_problem() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy("models:\n  a: {provider: ''}\n  b: {provider: openai, context_window: 0}\n")
    assert str(info.value).splitlines() == [str(p) for p in info.value.problems]
    assert len(info.value.problems) == 2


def test_policy_from_dict_runs_the_same_checks_without_lines() -> None:
    with pytest.raises(PolicyError) as info:
        policy_from_dict(
            {"models": {"a": {"provider": "openai", "stratgy": 1}}, "routes": {"r": {"fallbacks": ["x"]}}}
        )
    assert [(p.file, p.line, p.key) for p in info.value.problems] == [
        ("<dict>", None, "models.a.stratgy"),
        ("<dict>", None, "routes.r.fallbacks[0]"),
    ]


def test_policy_from_dict_does_not_expand_environment_references() -> None:
    policy = policy_from_dict({"models": {"a": {"provider": "openai", "headers": {"x-team": "${X}"}}}})
    assert policy.models["a"].headers == {"x-team": "${X}"}


def test_policy_from_dict_rejects_sets_and_self_references() -> None:
    looped: dict[str, object] = {"provider": "openai"}
    looped["headers"] = looped
    with pytest.raises(PolicyError) as info:
        policy_from_dict({"models": {"a": {"provider": "openai", "supports": {"tools"}}, "b": looped}})
    keys = [p.key for p in info.value.problems]
    assert keys == ["models.a.supports", "models.b.headers"]


def test_json_schema_describes_the_file_without_loader_fields() -> None:
    schema = policy_json_schema()
    assert "source" not in schema["properties"]
    assert {"version", "ledger", "models", "routes", "features"} <= set(schema["properties"])
    assert Policy.model_json_schema()["properties"].keys() >= schema["properties"].keys()


def test_importing_the_loader_does_not_import_ruamel() -> None:
    code = "import sys, policies.loader; sys.exit(any(m.startswith('ruamel') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_annotated_example_in_the_docs_loads() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "policy.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in docs.split("<!-- loads -->\n```yaml\n")[1:]]
    assert blocks, "docs/policy.md marks no example with <!-- loads -->"
    env = {"ROUTER_FAKE_URL": "http://127.0.0.1:8000", "AZURE_RESOURCE": "example"}
    for block in blocks:
        assert parse_policy(block, source="docs", env=env).models


@pytest.mark.parametrize(
    "ledger", ["sqlite:///ledger.db?busy_timeout_s=0.5", "sqlite:////var/l.db?busy_timeout_s=0"]
)
def test_a_sqlite_ledger_url_may_set_its_busy_timeout_as_the_client_accepts(ledger: str) -> None:
    policy = parse_policy(f"ledger: {ledger}\nmodels:\n  a: {{provider: openai}}\n", source="p.yaml", env={})
    assert policy.ledger == ledger


@pytest.mark.parametrize(
    ("ledger", "message"),
    [
        ("file:///x", "the ledger URL has the scheme 'file', which is not a ledger's"),
        ("ledger.db", "the ledger URL is not a URL"),
        ("sqlite://ledger.db", "needs a path after sqlite:///"),
        ("sqlite:///ledger.db?mode=ro", "takes one query parameter, busy_timeout_s=N"),
        ("sqlite:///ledger.db?busy_timeout_s=9999", "takes one query parameter, busy_timeout_s=N"),
        ("memory://x", "takes nothing after memory://"),
        ("redis://:pw@[::1", "the ledger URL is not a valid URL"),
        ("redis://", "the ledger URL names no host"),
    ],
)
def test_a_ledger_url_no_backend_opens_is_rejected_at_load_time(ledger: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(f"ledger: {ledger}\nmodels:\n  a: {{provider: openai}}\n", source="p.yaml", env={})
    (problem,) = info.value.problems
    assert (problem.line, problem.key) == (1, "ledger")
    assert message in problem.message and "use memory://, sqlite:///" in problem.message
    assert "pw" not in str(info.value)


@pytest.mark.parametrize(
    "ledger",
    ["memory://", "sqlite:///ledger.db", "sqlite:////tmp/l.db", "redis://h:6379/0", "rediss://:p@h/1"],
)
def test_every_ledger_form_the_backends_open_loads(ledger: str) -> None:
    assert parse_policy(f"ledger: {ledger}\nmodels:\n  a: {{provider: openai}}\n", env={}).ledger == ledger


@pytest.mark.parametrize(
    ("api_base", "message"),
    [
        ("file:///etc/passwd", "api_base has the scheme 'file'; it must be http:// or https://"),
        ("http://[::1", "api_base is not a valid URL (Invalid IPv6 URL)"),
        ("localhost:8000/v1", "api_base has the scheme 'localhost'"),
        ("http://host:port/v1", "api_base is not a valid URL"),
        ("https:///v1", "api_base names no host"),
    ],
)
def test_an_api_base_that_is_not_an_http_url_is_rejected_on_its_line(api_base: str, message: str) -> None:
    text = f"models:\n  a:\n    provider: openai_compatible\n    api_base: '{api_base}'\n"
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="p.yaml", env={})
    (problem,) = info.value.problems
    assert (problem.line, problem.key) == (4, "models.a.api_base")
    assert message in problem.message


def test_a_feature_named_star_is_reserved_for_the_policy_wide_budget() -> None:
    text = "models:\n  a: {provider: openai}\nbudget: {limit_usd: 5}\n"
    text += 'features:\n  "*":\n    budget: {limit_usd: 1}\n'
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="p.yaml", env={})
    (problem,) = info.value.problems
    assert (problem.line, problem.key) == (5, "features.*")
    assert "reserved" in problem.message and "rename the feature" in problem.message
    with pytest.raises(PolicyError):
        policy_from_dict({"models": {"a": {"provider": "openai"}}, "features": {"*": {}}})


def test_a_negative_or_infinite_cost_weight_is_reported_on_its_line() -> None:
    text = """\
        models:
          a: {provider: openai}
        routes:
          auto:
            adequacy: adequacy.json
            cost_weight: %s
        """
    problem = only_problem(text % "-0.1")
    assert (problem.line, problem.key) == (6, "routes.auto.cost_weight")
    assert problem.message.startswith("must be ≥ 0")
    assert only_problem(text % ".inf").key == "routes.auto.cost_weight"


def test_cost_weight_auto_is_read_and_any_other_word_is_reported_on_its_line() -> None:
    text = """\
        models:
          a: {provider: openai}
        routes:
          auto:
            adequacy: adequacy.json
            cost_weight: %s
        """
    assert (
        parse_policy(textwrap.dedent(text % "auto"), source="p.yaml", env={}).routes["auto"].cost_weight
        == "auto"
    )
    problem = only_problem(text % "automatic")
    assert (problem.line, problem.key) == (6, "routes.auto.cost_weight")
    assert problem.message.startswith("must be ≥ 0, or auto")
