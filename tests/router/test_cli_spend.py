"""``router spend``: each budget's window with spent, reserved, limit, percent and reset, from the ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policies.loader import load_policy
from router._budgets import BudgetBook
from router.cli import app
from router.ledger import Hold, open_ledger

runner = CliRunner()

POLICY = """\
version: 1
ledger: sqlite:///{ledger}
models:
  gpt-4o-mini: {{provider: openai}}
features:
  support-bot:
    budget: {{limit_usd: 50, window: day, warn_at: [0.5]}}
  summarizer:
    budget: {{limit_usd: 200, window: month, on_exceed: downgrade}}
budget: {{limit_usd: 1000, window: month}}
"""
NOW = datetime(2026, 11, 21, 15, 30, tzinfo=UTC).timestamp()
YESTERDAY = NOW - 86_400


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    """A policy whose ledger holds support-bot $12.50 today and $7 yesterday, summarizer $0.25 in flight."""
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(ledger=tmp_path / "ledger.db"))
    policy = load_policy(path)
    book, ledger = BudgetBook(policy), open_ledger(policy.ledger)
    try:
        for when, cost in ((NOW, 12.5), (YESTERDAY, 7.0)):
            hold = ledger.reserve(book.lines_for("support-bot", when), 1.0, ttl_s=600, now=when)
            assert isinstance(hold, Hold)
            ledger.settle(hold, cost, now=when)
        assert isinstance(ledger.reserve(book.lines_for("summarizer", NOW), 0.25, ttl_s=600, now=NOW), Hold)
    finally:
        ledger.close()
    return path


def test_json_lists_every_budget_in_its_current_window_then_earlier_periods(policy_file: Path) -> None:
    result = runner.invoke(app, ["spend", "--policy", str(policy_file), "--json", "--at", str(NOW)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["at"] == "2026-11-21T15:30:00Z"
    assert report["ledger"] == f"sqlite:///{policy_file.parent / 'ledger.db'}"
    assert report["budgets"] == [
        {
            "feature": "support-bot",
            "window": "day",
            "period_start": "2026-11-21T00:00:00Z",
            "resets_at": "2026-11-22T00:00:00Z",
            "spent_usd": 12.5,
            "reserved_usd": 0.0,
            "estimated_usd": 0.0,
            "limit_usd": 50.0,
            "percent": 25.0,
            "current": True,
        },
        {
            "feature": "summarizer",
            "window": "month",
            "period_start": "2026-11-01T00:00:00Z",
            "resets_at": "2026-12-01T00:00:00Z",
            "spent_usd": 0.0,
            "reserved_usd": 0.25,
            "estimated_usd": 0.0,
            "limit_usd": 200.0,
            "percent": 0.0,
            "current": True,
        },
        {
            "feature": "*",
            "window": "month",
            "period_start": "2026-11-01T00:00:00Z",
            "resets_at": "2026-12-01T00:00:00Z",
            "spent_usd": 19.5,
            "reserved_usd": 0.25,
            "estimated_usd": 0.0,
            "limit_usd": 1000.0,
            "percent": 1.95,
            "current": True,
        },
        {
            "feature": "support-bot",
            "window": "day",
            "period_start": "2026-11-20T00:00:00Z",
            "resets_at": "2026-11-21T00:00:00Z",
            "spent_usd": 7.0,
            "reserved_usd": 0.0,
            "estimated_usd": 0.0,
            "limit_usd": 50.0,
            "percent": 14.0,
            "current": False,
        },
    ]


def test_the_table_shows_the_same_figures(policy_file: Path) -> None:
    result = runner.invoke(app, ["spend", "--policy", str(policy_file), "--at", str(NOW)])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    cells = [[cell.strip() for cell in row.strip("│").split("│")] for row in rows]
    assert cells == [
        ["support-bot", "day", "2026-11-21 00:00", "$12.50", "$0.00", "$50.00", "25.0%", "2026-11-22 00:00"],
        ["summarizer", "month", "2026-11-01 00:00", "$0.00", "$0.25", "$200.00", "0.0%", "2026-12-01 00:00"],
        [
            "* (all features)",
            "month",
            "2026-11-01 00:00",
            "$19.50",
            "$0.25",
            "$1,000.00",
            "1.9%",
            "2026-12-01 00:00",
        ],
        [
            "support-bot",
            "day (past)",
            "2026-11-20 00:00",
            "$7.00",
            "$0.00",
            "$50.00",
            "14.0%",
            "2026-11-21 00:00",
        ],
    ]


def test_the_policy_comes_from_router_policy_and_ledger_overrides_the_policys(
    policy_file: Path, tmp_path: Path
) -> None:
    other = "memory://"  # empty: nothing recorded in this process
    result = runner.invoke(
        app, ["spend", "--ledger", other, "--json", "--at", str(NOW)], env={"ROUTER_POLICY": str(policy_file)}
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ledger"] == other
    assert [row["spent_usd"] for row in report["budgets"]] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("how", ["positional", "--policy", "ROUTER_POLICY"])
def test_a_missing_sqlite_ledger_is_reported_and_never_created(
    policy_file: Path, tmp_path: Path, how: str
) -> None:
    missing = tmp_path / "nothing-here.db"
    args = ["spend", "--ledger", f"sqlite:///{missing}"]
    env = {"ROUTER_POLICY": str(policy_file) if how == "ROUTER_POLICY" else ""}
    args += {"positional": [str(policy_file)], "--policy": ["--policy", str(policy_file)]}.get(how, [])
    before = sorted(tmp_path.iterdir())
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2
    assert f"{missing} does not exist" in result.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_without_a_policy_it_shows_what_the_ledger_holds_without_limits(policy_file: Path) -> None:
    ledger = f"sqlite:///{policy_file.parent / 'ledger.db'}"
    result = runner.invoke(
        app, ["spend", "--ledger", ledger, "--json", "--at", str(NOW)], env={"ROUTER_POLICY": ""}
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["budgets"]
    assert {(row["feature"], row["period_start"], row["limit_usd"]) for row in rows} == {
        ("support-bot", "2026-11-21T00:00:00Z", None),
        ("support-bot", "2026-11-20T00:00:00Z", None),
        ("summarizer", "2026-11-01T00:00:00Z", None),
        ("*", "2026-11-01T00:00:00Z", None),
    }


@pytest.mark.parametrize(
    ("ledger", "says"),
    [
        ("postgres://db/ledger", "accepted: memory://"),
        ("sqlite:///no/such/dir/ledger.db", "does not exist"),
        ("redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0"),
    ],
)
def test_a_ledger_that_cannot_be_opened_exits_2_with_the_reason(
    ledger: str, says: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["spend", "--ledger", ledger], env={"ROUTER_POLICY": ""})
    assert result.exit_code == 2
    assert "cannot read the ledger" in result.output and says in result.output
