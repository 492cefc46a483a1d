"""A model's ``deployments:`` in a policy file: what loads, and what is refused with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.loader import PolicyError, load_policy
from policies.schema import deployment_names

GOOD = """\
models:
  gpt-4o-mini:
    provider: openai
    balance: usage
    when_all_limited: wait
    deployments:
      - rpm: 500
      - provider: azure
        region: eastus
        model: mini-east
        api_base: https://east.openai.azure.com
        api_key_env: AZURE_EAST_KEY
        api_version: "2024-10-21"
        weight: 2
        tpm: 100000
        rpm: 60
        input_cost_per_mtok: 0.165
      - provider: azure
        model: mini-west
        api_base: https://west.openai.azure.com
routes:
  auto: {candidates: [gpt-4o-mini], balance: least_busy, when_all_limited: fallback}
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return load_policy(path)


def test_deployments_load_with_their_limits_and_names_default_to_provider_region_or_position(
    tmp_path: Path,
) -> None:
    policy = load(tmp_path, GOOD)
    spec = policy.models["gpt-4o-mini"]  # type: ignore[attr-defined]
    assert deployment_names(spec) == ("openai-1", "azure-eastus", "azure-3")
    east = spec.deployments[1]
    assert (east.weight, east.tpm, east.rpm, east.input_cost_per_mtok) == (2.0, 100_000, 60, 0.165)
    assert spec.balance == "usage" and spec.when_all_limited == "wait"
    assert policy.routes["auto"].balance == "least_busy"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        ("      - rpm: 500\n", "      - rpm: 0\n", "7: models.gpt-4o-mini.deployments[0].rpm"),
        ("        weight: 2\n", "        wieght: 2\n", "did you mean 'weight'?"),
        ("    balance: usage\n", "    balance: round_robin\n", "4: models.gpt-4o-mini.balance"),
        (
            "        api_base: https://west.openai.azure.com\n",
            "        api_base: west.openai.azure.com\n",
            "api_base has the scheme",
        ),
        (
            "        model: mini-west\n",
            "        model: mini-west\n        region: eastus\n",
            "both called 'azure-eastus'",
        ),
    ],
)
def test_a_bad_deployment_is_refused_with_its_file_line_and_what_to_do(
    tmp_path: Path, change: str, line: str, message: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        load(tmp_path, GOOD.replace(change, line, 1))
    assert message in str(caught.value)
    assert "policy.yaml:" in str(caught.value)


def test_balance_usage_without_any_limit_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace("      - rpm: 500\n", "      - name: plain\n").replace(
        "        tpm: 100000\n        rpm: 60\n", ""
    )
    with pytest.raises(PolicyError, match="no deployment of 'gpt-4o-mini' sets one"):
        load(tmp_path, text)


def test_balancing_keys_on_a_model_without_deployments_are_refused(tmp_path: Path) -> None:
    text = "models:\n  solo:\n    provider: openai\n    balance: latency\n"
    with pytest.raises(PolicyError, match="model 'solo' lists none"):
        load(tmp_path, text)
