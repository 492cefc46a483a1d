"""``router models`` and ``router explain`` for a model with several deployments."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from router.cli import app
from router.ledger._rates import SqliteRates

runner = CliRunner()

POLICY = """\
ledger: sqlite:///{ledger}
models:
  gpt-4o-mini:
    provider: openai
    balance: usage
    deployments:
      - name: openai
        rpm: 500
      - name: azure-eastus
        provider: azure
        region: eastus
        model: mini-east
        api_base: https://east.openai.azure.com
        rpm: 2
      - name: azure-westeurope
        provider: azure
        region: westeurope
        model: mini-west
        api_base: https://west.openai.azure.com
        api_key_env: ROUTER_CLI_TEST_UNSET_KEY
routes:
  auto: {{candidates: [gpt-4o-mini]}}
"""


def write(tmp_path: Path) -> tuple[Path, Path]:
    ledger = tmp_path / "ledger.sqlite3"
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(ledger=ledger))
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}))
    return policy, request


def fill(tmp_path: Path, key: str, requests: int) -> None:
    """Requests the fleet sent this minute, as the clients' counters hold them."""
    rates = SqliteRates(tmp_path / "ledger.sqlite3.rates")
    for _ in range(requests):
        assert rates.claim(key, rpm=None, tpm=None, tokens=100, now=time.time(), max_wait_s=0).granted
    rates.close()


def test_models_lists_each_deployment_with_its_limits_and_this_minutes_usage(tmp_path: Path) -> None:
    policy, _ = write(tmp_path)
    fill(tmp_path, "gpt-4o-mini/openai", 3)
    result = runner.invoke(app, ["models", str(policy)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "gpt-4o-mini: deployments (balance usage" in result.output
    openai_row = next(line for line in result.output.splitlines() if line.startswith("│ openai "))
    assert "3 req, 300 tok" in openai_row and "500" in openai_row
    assert "eastus" in result.output and "westeurope" in result.output


def test_explain_shows_which_deployment_would_be_picked_and_why(tmp_path: Path) -> None:
    policy, request = write(tmp_path)
    fill(tmp_path, "gpt-4o-mini/azure-eastus", 2)  # at its 2 rpm
    result = runner.invoke(app, ["explain", str(policy), str(request), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["deployments"]["gpt-4o-mini"]
    rows = {row["deployment"]: row for row in shown["deployments"]}
    # By headroom: no limit at all, then 1 of 500 rpm, then the one at its limit.
    assert [row["deployment"] for row in shown["deployments"]] == [
        "azure-westeurope",
        "openai",
        "azure-eastus",
    ]
    assert rows["azure-eastus"]["why"] == "at its limit (2 rpm): skipped"
    assert rows["azure-eastus"]["requests_this_minute"] == 2
    # Every key is assumed set unless --check-keys; with it, the unset one is left out with the reason.
    checked = runner.invoke(
        app,
        ["explain", str(policy), str(request), "--json", "--check-keys"],
        env={"OPENAI_API_KEY": "k", "AZURE_API_KEY": "k"},
    )
    unavailable = json.loads(checked.output)["deployments"]["gpt-4o-mini"]["unavailable"]
    assert unavailable == {
        "azure-westeurope": (
            "no API key: set ROUTER_CLI_TEST_UNSET_KEY or remove the deployment"
            " (or name another variable in api_key_env:)"
        )
    }
    table = runner.invoke(app, ["explain", str(policy), str(request)], env={"COLUMNS": "200"})
    assert "azure-westeurope ← would be picked" in table.output
    assert "at its limit (2 rpm): skipped" in table.output
