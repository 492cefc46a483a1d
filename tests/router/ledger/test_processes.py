"""Across processes: no overspend under a burst, no starvation, and a killed process leaks nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from router.ledger import Hold, Totals, open_ledger
from tests.processes import run_released_together
from tests.router.ledger.workers import AMOUNT_NANOS, CAP, hammer

REPO = Path(__file__).resolve().parents[3]


def burst(url: str, processes: int, tasks_per_process: int) -> list[dict[str, Any]]:
    """Start every process, let them all open the ledger, then release them at once."""
    return run_released_together(hammer, [(url, tasks_per_process, seed) for seed in range(processes)])


def check_burst(url: str, outcomes: list[dict[str, Any]], requests: int) -> None:
    settled = [cost for outcome in outcomes for cost in outcome["settled"]]
    refused = sum(outcome["refused"] for outcome in outcomes)
    assert len(settled) + refused + sum(outcome["gave_up"] for outcome in outcomes) == requests
    ledger = open_ledger(url)
    try:
        totals = ledger.totals([CAP], now=time.time())[CAP.key]
    finally:
        ledger.close()
    limit_nanos = round(CAP.limit_usd * 1e9)
    assert round(totals.spent_usd * 1e9) == sum(settled)  # every settle landed, exactly
    assert sum(settled) <= limit_nanos  # never overspent
    assert sum(settled) >= 0.9 * limit_nanos  # and not starved by reservations
    assert totals.reserved_usd == 0.0  # nothing leaked
    assert refused > 0  # demand far exceeded the cap: most were refused
    assert sum(outcome["warned"] for outcome in outcomes) == 1  # one warning, across all processes


@pytest.mark.slow
def test_four_processes_on_one_sqlite_file_never_overspend_and_fill_the_cap(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    open_ledger(url).close()  # create the schema once, so the burst measures only reserve/settle
    check_burst(url, burst(url, processes=4, tasks_per_process=125), requests=500)


@pytest.mark.slow
def test_two_processes_on_one_redis_never_overspend_and_fill_the_cap(redis_url: str) -> None:
    check_burst(redis_url, burst(redis_url, processes=2, tasks_per_process=250), requests=500)


def crash_while_holding(url: str, now: float) -> None:
    """Start a process that reserves the whole cap at ``now``, wait until it has, then SIGKILL it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.router.ledger.workers", "hold", url, repr(now)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("held ")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_process_killed_mid_call_leaks_no_reservation_once_it_expires(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        if backend == "sqlite"
        else request.getfixturevalue("redis_url")
    )
    now = 1_800_000_000.0
    crash_while_holding(url, now)
    ledger = open_ledger(url)
    try:
        assert ledger.totals([CAP], now=now + 29)[CAP.key] == Totals(0.0, CAP.limit_usd)  # until its expiry
        refused = ledger.reserve([CAP], AMOUNT_NANOS / 1e9, ttl_s=30, now=now + 29)
        assert not isinstance(refused, Hold) and refused.blocked_by_reservations
        assert ledger.totals([CAP], now=now + 30)[CAP.key] == Totals(0.0, 0.0)  # the ttl passed
        full = ledger.reserve([CAP], CAP.limit_usd, ttl_s=30, now=now + 30)
        assert isinstance(full, Hold)  # the whole cap is available again
        assert ledger.report(now=now + 30) == [("burst", "total", 0.0, Totals(0.0, CAP.limit_usd))]
    finally:
        ledger.close()
