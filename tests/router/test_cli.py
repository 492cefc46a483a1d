"""The ``router`` command: validate, explain, models, schema and demo, as a user runs them."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from router.cli import app

runner = CliRunner()

GOOD = """\
version: 1
models:
  gpt-4o-mini:
    provider: openai
  local:
    provider: openai_compatible
    api_base: http://localhost:8000/v1
    input_cost_per_mtok: 0
    output_cost_per_mtok: 0
routes:
  auto:
    candidates: [local]
    fallbacks: [gpt-4o-mini]
"""

BAD = """\
version: 1
models:
  gpt-4o-mini:
    provider: openai
    input_cost_per_mtok: -1
routes:
  auto:
    stratgy: ordered
    candidates: [gpt-5-mini]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_validate_accepts_a_good_policy(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(_write(tmp_path, GOOD))])
    assert result.exit_code == 0, result.output
    assert "ok (2 models, 1 route, 0 features)" in result.output


def test_validate_reports_every_problem_with_its_line_and_exits_1(tmp_path: Path) -> None:
    path = _write(tmp_path, BAD)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any(line.startswith(f"{path}:5:") and "input_cost_per_mtok" in line for line in lines), lines
    assert any(line.startswith(f"{path}:8:") and "stratgy" in line for line in lines), lines
    assert any(line.startswith(f"{path}:9:") and "gpt-5-mini" in line for line in lines), lines


def test_validate_says_when_the_file_cannot_be_read(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert "missing.yaml" in result.output


# Self-hosted names with explicit figures, so nothing depends on litellm's price map.
PRICED = """\
models:
  small:
    provider: openai_compatible
    api_base: http://localhost:8000/v1
    input_cost_per_mtok: 0.1
    output_cost_per_mtok: 0.4
    supports: [tools, streaming]
  big:
    provider: openai_compatible
    api_base: http://localhost:8000/v1
    input_cost_per_mtok: 2.5
    output_cost_per_mtok: 10
    supports: [tools, vision, streaming]
  mid:
    provider: openai_compatible
    api_base: http://localhost:8000/v1
    input_cost_per_mtok: 0.5
    output_cost_per_mtok: 1.5
    quality: {mmlu: 70}
"""  # 19 lines: what follows starts on line 20

BAD_FILES = [
    pytest.param(
        PRICED + "routes:\n  auto:\n    stratgy: cheapest\n",
        22,
        "routes.auto.stratgy",
        "did you mean 'strategy'?",
        id="typo",
    ),
    pytest.param(
        PRICED + "routes:\n  auto:\n    candidates: [small, bgi]\n",
        22,
        "routes.auto.candidates[1]",
        "did you mean 'big'?",
        id="unknown-model",
    ),
    pytest.param(
        PRICED.replace("output_cost_per_mtok: 10", "output_cost_per_mtok: -10"),
        12,
        "models.big.output_cost_per_mtok",
        "must be ≥ 0",
        id="negative-price",
    ),
    pytest.param(
        PRICED + "routes:\n  auto: {candidates: [small]]\n  other: {}\n",
        21,
        "",
        "YAML syntax error",
        id="yaml-syntax",
    ),
    pytest.param(
        PRICED.replace("    input_cost_per_mtok: 0.5\n", "")
        + "routes:\n  auto:\n    strategy: cheapest\n    candidates: [small, mid]\n",
        22,
        "routes.auto.candidates[1]",
        "model 'mid' has no known price, so 'cheapest' cannot rank it"
        " — set input_cost_per_mtok under models.mid",
        id="unpriced-cheapest",
    ),
    pytest.param(
        PRICED + "routes:\n  auto:\n    min_quality:\n      mmlu: 60\n      gqpa: 40\n",
        24,
        "routes.auto.min_quality.gqpa",
        "unknown benchmark 'gqpa'",
        id="unknown-benchmark",
    ),
    pytest.param(
        PRICED + "routes:\n  auto:\n    require: [vision]\n    candidates: [big]\n    fallbacks: [small]\n",
        24,
        "routes.auto.fallbacks[0]",
        "fallback 'small' can never be used by route 'auto': no vision support",
        id="unreachable-fallback",
    ),
    pytest.param(
        PRICED + "routes:\n  auto: {}\naliases:\n  gpt-4o-mini: atuo\n",
        23,
        "aliases.gpt-4o-mini",
        "did you mean 'auto'?",
        id="bad-alias-target",
    ),
    pytest.param(
        PRICED + "ledger: file:///x\n",
        20,
        "ledger",
        "the ledger URL has the scheme 'file', which is not a ledger's — use memory://, sqlite:///",
        id="ledger-scheme",
    ),
    pytest.param(
        PRICED + "ledger: redis://:hunter2@[::1\n",
        20,
        "ledger",
        "the ledger URL is not a valid URL",
        id="ledger-syntax",
    ),
    pytest.param(
        PRICED + "logging:\n  file: /nonexistent-router-dir/router.log\n",
        21,
        "logging.file",
        "the directory /nonexistent-router-dir does not exist",
        id="log-directory",
    ),
    pytest.param(
        PRICED.replace("api_base: http://localhost:8000/v1", "api_base: file:///etc/passwd", 1),
        4,
        "models.small.api_base",
        "api_base has the scheme 'file'; it must be http:// or https://",
        id="api-base-scheme",
    ),
    pytest.param(
        PRICED.replace("api_base: http://localhost:8000/v1", "api_base: http://[::1", 1),
        4,
        "models.small.api_base",
        "api_base is not a valid URL (Invalid IPv6 URL)",
        id="api-base-syntax",
    ),
    pytest.param(
        PRICED + 'features:\n  "*": {}\n',
        21,
        "features.*",
        "the feature name '*' is reserved",
        id="reserved-feature",
    ),
    pytest.param(
        PRICED.replace("    input_cost_per_mtok: 0.5\n", "")
        + "features:\n  bot:\n    budget: {limit_usd: 5}\n",
        14,
        "models.mid",
        "model 'mid' can never serve a request under features.bot.budget: no price: can't be budgeted"
        " — set input_cost_per_mtok/output_cost_per_mtok",
        id="budget-over-unpriced",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "message"), BAD_FILES)
def test_validate_reports_each_kind_of_mistake_on_its_line(
    tmp_path: Path, text: str, line: int, key: str, message: str
) -> None:
    path = _write(tmp_path, text)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""  # problems go to stderr
    *problems, summary = result.stderr.strip().splitlines()
    assert len(problems) == 1, problems
    assert summary == f"{path}: 1 problem"
    prefix = f"{path}:{line}: {key}: " if key else f"{path}:{line}: "
    assert problems[0].startswith(prefix), problems
    assert message in problems[0]
    assert "hunter2" not in result.output  # a URL's password is never quoted


def test_validate_accepts_the_new_keys(tmp_path: Path) -> None:
    text = PRICED + textwrap.dedent(
        """\
        routes:
          auto:
            strategy: cheapest
            require: [tools]
            fallbacks: [mid]
            expected_output_tokens: 400
        features:
          vision-bot: {require: [vision]}
        aliases: {gpt-4o-mini: auto}
        fallbacks: [small]
        expected_output_tokens: 300
        """
    )
    result = runner.invoke(app, ["validate", str(_write(tmp_path, text))])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{tmp_path / 'policy.yaml'}: ok (3 models, 1 route, 1 feature)"


# --- explain --------------------------------------------------------------------------------------

EXPLAIN_POLICY = PRICED + textwrap.dedent(
    """\
    routes:
      auto:
        strategy: ordered
        candidates: [big, small, mid]
      cheap:
        strategy: cheapest
        candidates: [big, mid, small]
    features:
      vision-bot: {require: [vision]}
    """
)
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def _explain(tmp_path: Path, request: object, *args: str, policy: str = EXPLAIN_POLICY) -> Result:
    policy_path = _write(tmp_path, policy)
    request_path = tmp_path / "request.json"
    request_path.write_text(json.dumps(request) if not isinstance(request, str) else request)
    return runner.invoke(app, ["explain", str(policy_path), str(request_path), *args], env={"COLUMNS": "200"})


def _request(model: str = "auto", **more: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "Where is my order?"}], **more}


def _json_plan(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


def test_explain_shows_the_candidates_in_order_and_why_the_others_were_rejected(tmp_path: Path) -> None:
    result = _explain(tmp_path, _request(tools=TOOLS, max_tokens=500))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "route auto" in out and "ordered" in out
    assert out.index("big") < out.index("small") < out.index("Rejected")
    rejected = out[out.index("Rejected") :]
    assert "mid" in rejected and "no tool support" in rejected


def test_explain_json_lists_rank_order_costs_tokens_and_rejections(tmp_path: Path) -> None:
    plan = _json_plan(_explain(tmp_path, _request(tools=TOOLS, max_tokens=500), "--json"))
    assert (plan["model"], plan["route"], plan["strategy"], plan["feature"]) == (
        "auto",
        "auto",
        "ordered",
        "default",
    )
    assert [c["model"] for c in plan["candidates"]] == ["big", "small"]
    assert [c["rank"] for c in plan["candidates"]] == [1, 2]
    assert set(plan["rejected"]) == {"mid"}
    assert "no tool support" in plan["rejected"]["mid"]
    assert all(c["provider"] == "openai_compatible" for c in plan["candidates"])
    assert plan["rules"]


def test_explain_feature_option_adds_the_features_requirements(tmp_path: Path) -> None:
    plan = _json_plan(_explain(tmp_path, _request(), "--feature", "vision-bot", "--json"))
    assert plan["feature"] == "vision-bot"
    assert [c["model"] for c in plan["candidates"]] == ["big"]
    assert {"small", "mid"} == set(plan["rejected"])
    assert all("no vision support" in reason for reason in plan["rejected"].values())


def test_explain_feature_option_overrides_the_requests_metadata(tmp_path: Path) -> None:
    request = _request(metadata={"feature": "other", "user": "u1"})
    plan = _json_plan(_explain(tmp_path, request, "--feature", "vision-bot", "--json"))
    assert plan["feature"] == "vision-bot"


def test_explain_assumes_api_keys_are_set_unless_asked_to_check(tmp_path: Path) -> None:
    policy = PRICED.replace(
        "    quality: {mmlu: 70}\n", "    quality: {mmlu: 70}\n    api_key_env: ROUTER_TEST_UNSET_KEY\n"
    )
    policy += "routes:\n  auto: {candidates: [small, mid]}\n"
    assumed = _json_plan(_explain(tmp_path, _request(), "--json", policy=policy))
    assert [c["model"] for c in assumed["candidates"]] == ["small", "mid"]
    checked = _json_plan(_explain(tmp_path, _request(), "--json", "--check-keys", policy=policy))
    assert [c["model"] for c in checked["candidates"]] == ["small"]
    assert "ROUTER_TEST_UNSET_KEY" in checked["rejected"]["mid"]


def test_explain_cheapest_route_puts_the_cheapest_model_first(tmp_path: Path) -> None:
    # Needs the planner's cost ranking (policies.rankings.cheapest).
    plan = _json_plan(_explain(tmp_path, _request("cheap", max_tokens=1000), "--json"))
    assert plan["strategy"] == "cheapest"
    assert [c["model"] for c in plan["candidates"]] == ["small", "mid", "big"]


def test_explain_prices_a_direct_request_from_the_real_catalog(tmp_path: Path) -> None:
    policy = "models:\n  gpt-4o-mini: {provider: openai}\n"
    plan = _json_plan(_explain(tmp_path, _request("gpt-4o-mini", max_tokens=1000), "--json", policy=policy))
    assert plan["route"] is None
    [candidate] = plan["candidates"]
    assert (candidate["model"], candidate["provider"]) == ("gpt-4o-mini", "openai")
    prompt = candidate.get("prompt_tokens") or 0
    assert candidate["expected_cost_usd"] == pytest.approx((prompt * 0.15 + 1000 * 0.60) / 1e6)


def test_explain_of_an_unknown_model_says_what_the_policy_offers(tmp_path: Path) -> None:
    result = _explain(tmp_path, _request("gpt-5"))
    assert result.exit_code == 1
    assert "'gpt-5' is not in the policy" in result.stderr and "auto" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"model": "auto",\n "messages": [}', "request.json:2: not valid JSON"),
        ("[1, 2]", "request.json: must be a JSON object of create() keyword arguments"),
        ('{"model": "auto"}', 'request.json: needs "messages"'),
        ('{"messages": []}', 'request.json: needs "model"'),
        ('{"model": "auto", "messages": [], "metadata": 3}', 'request.json: "metadata" must be an object'),
    ],
    ids=["syntax", "not-an-object", "no-messages", "no-model", "bad-metadata"],
)
def test_explain_rejects_an_invalid_request_file_naming_it(
    tmp_path: Path, content: str, message: str
) -> None:
    result = _explain(tmp_path, content)
    assert result.exit_code == 1
    assert message in result.stderr


def test_explain_says_when_the_request_file_is_missing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", str(_write(tmp_path, GOOD)), str(tmp_path / "nope.json")])
    assert result.exit_code == 1
    assert "nope.json: cannot read the request file" in result.stderr


def test_explain_reports_an_invalid_policy_like_validate(tmp_path: Path) -> None:
    result = _explain(tmp_path, _request(), policy=BAD)
    assert result.exit_code == 1
    assert ":8: routes.auto.stratgy" in result.stderr


def test_models_shows_prices_and_marks_unknown_prices(tmp_path: Path) -> None:
    policy = GOOD + "  unpriced:\n    provider: openai_compatible\n    api_base: http://x/v1\n"
    policy = policy.replace("routes:\n  auto:\n    candidates: [local]\n    fallbacks: [gpt-4o-mini]\n", "")
    policy += "routes: {}\n"
    result = runner.invoke(app, ["models", str(_write(tmp_path, policy))], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "gpt-4o-mini" in result.output and "0.15" in result.output and "128,000" in result.output
    assert "unknown" in result.output


def test_schema_prints_the_policy_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert "models" in schema["properties"]


def test_demo_routes_thirty_requests_over_three_protocols_without_failures(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--json", "--picture", str(tmp_path)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 30
    assert all(r["error"] is None for r in records)
    models = {r["routing"]["model"] for r in records}
    assert models == {"gpt-4o-mini", "gemini-2.5-flash-lite", "claude-haiku-4-5"}
    fallbacks = [r for r in records if len(r["routing"]["attempts"]) > 1]
    assert fallbacks and all(r["routing"]["attempts"][-1]["error"] is None for r in fallbacks)
    assert all(r["routing"]["cost_usd"] > 0 for r in records)


def test_demo_table_names_its_policy_labels_injected_faults_and_totals_per_model_and_feature(
    tmp_path: Path,
) -> None:
    result = runner.invoke(app, ["demo", "--picture", str(tmp_path)], env={"ROUTER_POLICY": ""})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Policy: " in out and "demo.yaml (the demo's own)" in out
    assert (
        "fallback after injected 503 x2 from gemini-2.5-flash-lite, injected 500 x2 from gpt-4o-mini" in out
    )
    assert "Per model" in out and "Per feature" in out
    for feature in ("faq", "legal-review", "support-bot", "summarize"):
        assert f"│ {feature} " in out
    assert "(+1)" not in out
    assert "30 requests, 0 failed, 1 fallback." in out
    page = (tmp_path / "router-demo.html").read_text()
    assert "<svg" in page and "Cost per feature" in page and "Where requests went" in page
    assert "claude-haiku-4-5" in (tmp_path / "router-demo.svg").read_text()


def test_demo_compares_cost_at_equal_quality_with_router_evals_figures_on_held_out_prompts(
    tmp_path: Path,
) -> None:
    from router._demo_quality import data_files

    policy, data = data_files()
    evaluated = runner.invoke(
        app, ["eval", str(data), "--policy", str(policy), "--route", "routerbench", "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["training_overlap_rows"] == 0  # out-of-sample: the adequacy file never saw these prompts
    result = runner.invoke(app, ["demo", "--picture", str(tmp_path)], env={"ROUTER_POLICY": ""})
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())  # rich wraps long lines
    assert "% less). That is cost only: these requests have no labeled answers" in out
    route, best = report["route_result"], report["best_single"]
    cheapest = min(report["singles"], key=lambda p: (p["cost_per_1k_usd"], -p["quality"]))
    assert best["name"] == "gpt-4-1106-preview"
    assert (
        f"on {report['rows']} held-out labeled RouterBench prompts" in out
        and f"the learned-adequacy route answered {route['quality']:.1%} correctly,"
        f" {report['quality_vs_best']:.0%} of always-gpt-4-1106-preview's {best['quality']:.1%},"
        f" at ${route['cost_per_1k_usd']:.2f} per 1k prompts, {report['cost_vs_best']:.0%} of"
        f" gpt-4-1106-preview-only's ${best['cost_per_1k_usd']:.2f}."
        in out
    )
    assert (
        f"The cheapest single model, {cheapest['name']}, costs ${cheapest['cost_per_1k_usd']:.2f} per 1k"
        f" but answers {cheapest['quality']:.1%} correctly." in out
    )
    assert f"router eval {data} --policy {policy} --route routerbench" in out
    page = (tmp_path / "router-demo.html").read_text()
    assert f"{report['cost_vs_best']:.0%} of gpt-4-1106-preview-only" in page  # the page carries it too


def test_demo_skips_the_equal_quality_section_with_a_hint_when_numpy_is_absent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)  # import numpy now raises ImportError
    result = runner.invoke(app, ["demo", "--no-picture"], env={"ROUTER_POLICY": ""})
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "Equal-quality comparison skipped: learned adequacy needs numpy" in out
    assert "held-out labeled" not in out
    assert "30 requests, 0 failed" in out and "Batch:" in out  # the rest of the demo still runs


OTHER_ROUTES = """\
models:
  gpt-4o-mini: {provider: openai}
  gemini-2.5-flash-lite: {provider: gemini}
  claude-haiku-4-5: {provider: anthropic}
  gpt-4o: {provider: openai}
routes:
  everything:
    strategy: cheapest
    candidates: [gpt-4o-mini, gemini-2.5-flash-lite]
    fallbacks: [claude-haiku-4-5]
"""


def test_demo_runs_any_policy_on_the_fakes_using_its_own_routes(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(OTHER_ROUTES)
    # No keys at all: the demo points every model at the fake providers, so none is needed.
    env = {"OPENAI_API_KEY": "", "GEMINI_API_KEY": "", "ANTHROPIC_API_KEY": "", "ROUTER_POLICY": ""}
    result = runner.invoke(app, ["demo", str(path), "--json", "--no-picture"], env=env)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 30 and all(r["error"] is None for r in records)
    assert {r["routing"]["route"] for r in records} == {"everything", None}  # None: the model named directly
    assert all(r["routing"]["cost_usd"] > 0 for r in records)
    assert f"Policy: {path}" in result.stderr


def test_demo_with_a_broken_policy_prints_its_problems_as_file_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("models:\n  a: {provider: openai, colour: red}\n")
    result = runner.invoke(app, ["demo", str(path), "--no-picture"], env={"ROUTER_POLICY": ""})
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith(f"{path}:2: ") for line in lines), lines
    assert "Traceback" not in result.output
