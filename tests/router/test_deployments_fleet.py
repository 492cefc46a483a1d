"""A fleet of replicas under one quota: `balance: usage` with 60 rpm per Azure deployment, the rate
counters shared through SQLite (4 processes) or Redis (2 processes).

Every replica and the fake read one scaled clock (tests/router/deployment_workers.py). Two checks:
the claims the replicas made (the counters' own record, on the injected clock) never put more than 60
requests in any 60-s window of a deployment; and the fake, which enforces 60 rpm itself, never had to
answer 429. The fake counts arrivals, which land a little after their claim (process scheduling, at
10x speed); its clock runs 60/55 as fast, so its 60-s window is 55 s of the replicas' clock: a 5-s
(0.5-s real) allowance for that delay, and still far under the 120 requests a window would see if each
replica counted only its own.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from router_fakes import FakeProviders, ModelScript

from router.ledger._rates import WINDOW_S
from tests.processes import run_released_together
from tests.router.deployment_workers import START, ScaledClock, replica

from .deployment_helpers import AZURE_KEY_ENV, KEY_ENV
from .ledger.test_rates import max_in_any_window

RPM = 60
DEPLOYMENTS = {"azure-eastus": ("east", "mini-east"), "azure-westeurope": ("west", "mini-west")}


def fleet_policy(fake: FakeProviders) -> dict[str, Any]:
    return {
        "retry": {"attempts": 1},
        "models": {
            "gpt-4o-mini": {
                "provider": "azure",
                "api_key_env": AZURE_KEY_ENV,
                "balance": "usage",
                "when_all_limited": "wait",
                "deployments": [
                    {
                        "name": name,
                        "region": name.partition("-")[2],
                        "model": deployment,
                        "api_base": fake.azure_base(resource),
                        "api_version": "2024-10-21",
                        "rpm": RPM,
                    }
                    for name, (resource, deployment) in DEPLOYMENTS.items()
                ],
            },
            "backup": {
                "provider": "openai_compatible",
                "model": "backup-model",
                "api_base": fake.openai_base,
                "api_key_env": KEY_ENV,
            },
        },
        "routes": {"auto": {"candidates": ["gpt-4o-mini"], "fallbacks": ["backup"]}},
    }


def run_fleet(
    ledger: str, processes: int, requests_each: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    monkeypatch.setenv(KEY_ENV, "openai-key")
    monkeypatch.setenv(AZURE_KEY_ENV, "azure-key")
    origin = time.time() + 3600  # set again below, once every replica is ready; far ahead until then
    clients_clock = ScaledClock(origin)
    fake_clock = ScaledClock(origin, speed=clients_clock.speed * WINDOW_S / 55.0)
    with FakeProviders(api_keys={"azure": "azure-key"}, clock=fake_clock) as fake:
        for _, deployment in DEPLOYMENTS.values():
            fake.script(ModelScript(deployment, rpm=RPM))
        policy = fleet_policy(fake)
        origin = time.time()
        clients_clock.origin = fake_clock.origin = origin
        outcomes = run_released_together(replica, [(policy, ledger, origin, requests_each)] * processes)
        return outcomes, fake.rate_limited


def check(outcomes: list[dict[str, Any]], rate_limited: list[Any], total: int) -> None:
    assert [e for o in outcomes for e in o["errors"]] == []
    claims: dict[str, list[float]] = {}
    for outcome in outcomes:
        for key, at in outcome["claims"]:
            claims.setdefault(key, []).append(at)
    assert set(claims) == {f"gpt-4o-mini/{name}" for name in DEPLOYMENTS}
    served: Counter[str] = Counter()
    for outcome in outcomes:
        served.update(outcome["served"])
    assert sum(served.values()) == total
    assert served["backup"] == 0  # wait: every request waited for a slot instead of leaving the model
    assert rate_limited == []  # the fake's own 60 rpm never had to refuse
    for key, times in claims.items():
        assert max_in_any_window(times)[0] <= RPM, key
    # More than one window's worth went through: the windows really slid.
    assert sum(len(times) for times in claims.values()) == total > 2 * RPM
    assert max(max(times) for times in claims.values()) - START > WINDOW_S


@pytest.mark.slow
def test_four_processes_sharing_sqlite_send_no_deployment_over_60_rpm(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    outcomes, rate_limited = run_fleet(ledger, processes=4, requests_each=40, monkeypatch=monkeypatch)
    check(outcomes, rate_limited, total=160)


@pytest.mark.slow
def test_two_processes_sharing_redis_send_no_deployment_over_60_rpm(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes, rate_limited = run_fleet(redis_url, processes=2, requests_each=80, monkeypatch=monkeypatch)
    check(outcomes, rate_limited, total=160)
