"""Across processes: no overspend under a burst, no starvation, and a killed process leaks nothing.

The async ledgers' writes go in batches (group commit on SQLite): the bursts below run hundreds of
concurrent requests per process, so most of their reserves and settles share a transaction.
"""

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
from tests.router.ledger.workers import AMOUNT_NANOS, CAP, SERVE_TTL_S, WIDE, hammer, hammer_two_lines

REPO = Path(__file__).resolve().parents[3]


def burst(url: str, processes: int, tasks_per_process: int, target: Any = hammer) -> list[dict[str, Any]]:
    """Start every process, let them all open the ledger, then release them at once."""
    return run_released_together(target, [(url, tasks_per_process, seed) for seed in range(processes)])


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
def test_batches_refused_on_their_second_line_give_the_first_back_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    open_ledger(url).close()
    outcomes = burst(url, processes=3, tasks_per_process=300, target=hammer_two_lines)
    check_burst(url, outcomes, requests=900)
    ledger = open_ledger(url)
    try:
        wide = ledger.totals([WIDE], now=time.time())[WIDE.key]
    finally:
        ledger.close()
    # The wide line holds exactly what was settled: nothing of a refused reservation stayed on it.
    settled = sum(cost for outcome in outcomes for cost in outcome["settled"])
    assert (round(wide.spent_usd * 1e9), wide.reserved_usd) == (settled, 0.0)


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


@pytest.mark.slow
def test_a_process_killed_while_its_batches_are_written_loses_no_acknowledged_charge(tmp_path: Path) -> None:
    """SIGKILL lands while the worker is mid-batch (it always is: 200 requests in flight); every
    settle that returned is in the file, the rest is at most what was in flight, and a second process
    goes on writing the same file."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    open_ledger(url).close()
    tasks = 200
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.router.ledger.workers", "serve", url, str(tasks)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged: list[int] = []
    try:
        assert process.stdout is not None
        while len(acknowledged) < 3000:
            line = process.stdout.readline()
            assert line, "the serving process ended before it was killed"
            acknowledged.append(int(line))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert process.stdout is not None
    acknowledged.extend(int(line) for line in process.stdout.read().split())  # written before the kill
    killed_at = time.time()

    ledger = open_ledger(url)
    try:
        landed = ledger.totals([WIDE], now=killed_at)[WIDE.key]
        spent = round(landed.spent_usd * 1e9)
        assert sum(acknowledged) <= spent  # every acknowledged settle landed
        assert spent <= sum(acknowledged) + tasks * AMOUNT_NANOS  # and at most the ones in flight more
        # What the killed process still held expires with its TTL; the file takes new writes at once.
        hold = ledger.reserve([WIDE], 0.01, ttl_s=60, now=killed_at)
        assert isinstance(hold, Hold)
        ledger.settle(hold, 0.01, now=killed_at)
        after = ledger.totals([WIDE], now=killed_at + SERVE_TTL_S + 1)[WIDE.key]
        assert (round(after.spent_usd * 1e9), after.reserved_usd) == (spent + 10_000_000, 0.0)
    finally:
        ledger.close()
