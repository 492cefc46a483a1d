"""The ``router`` command: validate, models, schema and demo, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

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
    assert "ok (2 models, 1 routes" in result.output


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


def test_demo_routes_thirty_requests_over_three_protocols_without_failures() -> None:
    result = runner.invoke(app, ["demo", "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 30
    assert all(r["error"] is None for r in records)
    models = {r["routing"]["model"] for r in records}
    assert models == {"gpt-4o-mini", "gemini-2.5-flash-lite", "claude-haiku-4-5"}
    fallbacks = [r for r in records if len(r["routing"]["attempts"]) > 1]
    assert fallbacks and all(r["routing"]["attempts"][-1]["error"] is None for r in fallbacks)
    assert all(r["routing"]["cost_usd"] > 0 for r in records)
