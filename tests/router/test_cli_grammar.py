"""One grammar for every ``router`` command: the policy positional, ``--policy`` or ``$ROUTER_POLICY``;
clean help; JSON everywhere; money to the nano-dollar; tables whole when piped."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from router._cli_grammar import usd_json, usd_text
from router.cli import app

runner = CliRunner()

LONG_NAME = "a-self-hosted-model-with-a-name-much-longer-than-any-terminal-column-would-ever-show-whole"
POLICY = f"""\
models:
  {LONG_NAME}:
    provider: openai_compatible
    api_base: http://localhost:8000/v1
    input_cost_per_mtok: 0.15
    output_cost_per_mtok: 0.6
routes:
  auto:
    candidates: [{LONG_NAME}]
"""
REQUEST = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}

# Each command, with what it takes besides the policy, as a user would type it (JSON output).
COMMANDS = {
    "validate": (["--json"], []),
    "models": (["--json"], []),
    "explain": (["--json"], ["request.json"]),
    "spend": (["--json", "--ledger", "memory://", "--at", "1700000000"], []),
}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "request.json").write_text(json.dumps(REQUEST))
    return tmp_path


def _run(files: Path, command: str, how: str) -> tuple[int, str]:
    options, rest = COMMANDS[command]
    policy = str(files / "policy.yaml")
    rest = [str(files / name) for name in rest]
    env = {"ROUTER_POLICY": ""}
    if how == "positional":
        args = [command, policy, *rest, *options]
    elif how == "--policy":
        args = [command, "--policy", policy, *rest, *options]
    else:
        args = [command, *rest, *options]
        env["ROUTER_POLICY"] = policy
    result = runner.invoke(app, args, env=env)
    return result.exit_code, result.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_takes_the_policy_positionally_as_an_option_or_from_the_environment(
    files: Path, command: str
) -> None:
    outputs = {how: _run(files, command, how) for how in ("positional", "--policy", "ROUTER_POLICY")}
    assert outputs["positional"][0] == 0, outputs
    assert outputs["positional"][1].strip().startswith("{")
    assert outputs["--policy"] == outputs["positional"] == outputs["ROUTER_POLICY"]


@pytest.mark.parametrize("command", ["validate", "models", "explain"])
def test_a_command_without_any_policy_says_how_to_give_one(files: Path, command: str) -> None:
    args = [command] + ([str(files / "request.json")] if command == "explain" else [])
    result = runner.invoke(app, args, env={"ROUTER_POLICY": ""})
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "No policy: pass the policy file (router COMMAND POLICY), --policy FILE, or set ROUTER_POLICY."
    ]


@pytest.mark.parametrize("command", ["validate", "models", "explain", "spend", "demo"])
def test_a_missing_policy_file_is_one_line_naming_it(files: Path, command: str) -> None:
    missing = str(files / "nope.yaml")
    args = [command, missing] + ([str(files / "request.json")] if command == "explain" else [])
    result = runner.invoke(app, args, env={"ROUTER_POLICY": ""})
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"{missing}: no such policy file"]


@pytest.mark.parametrize("command", [None, "demo", "validate", "explain", "models", "spend", "schema"])
def test_help_shows_no_braces_or_type_noise(command: str | None) -> None:
    result = runner.invoke(app, [command, "--help"] if command else ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    assert "{policy}" not in result.output and "{request}" not in result.output
    # A docstring's hard-wrapped lines are one paragraph in help, not lines broken mid-sentence.
    assert "with each one's\n" not in result.output
    if command in ("validate", "models", "spend", "demo"):
        assert f"{command} [OPTIONS] [POLICY]" in result.output


def test_a_piped_table_shows_long_names_whole(files: Path) -> None:
    result = runner.invoke(app, ["models", str(files / "policy.yaml")])
    assert result.exit_code == 0
    assert LONG_NAME in result.stdout
    assert "…" not in result.stdout


def test_explain_names_the_request_field_at_fault_and_its_value(files: Path) -> None:
    (files / "request.json").write_text(json.dumps({**REQUEST, "max_tokens": "lots"}))
    result = runner.invoke(app, ["explain", str(files / "policy.yaml"), str(files / "request.json")])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"{files / 'request.json'}: not a valid request: max_tokens: expected an integer, got 'lots'"
    )


def test_explain_prices_without_float_noise(files: Path) -> None:
    result = runner.invoke(
        app, ["explain", str(files / "policy.yaml"), str(files / "request.json"), "--json"]
    )
    cost = json.loads(result.stdout)["candidates"][0]["expected_cost_usd"]
    assert cost == round(cost, 9) and len(repr(cost)) <= 14


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_money_is_exact_to_the_nano_dollar(value: float) -> None:
    nano = Decimal(repr(value)).quantize(Decimal("1e-9"))
    text = usd_text(value)
    assert Decimal(text.replace("$", "").replace(",", "")) == nano
    assert len(text.partition(".")[2]) >= 2
    assert usd_json(value) == float(nano)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0, "$0.00"), (1.5, "$1.50"), (0.00015629999999999998, "$0.0001563"), (1234.5, "$1,234.50")],
)
def test_money_reads_as_a_person_writes_it(value: float, text: str) -> None:
    assert usd_text(value) == text
