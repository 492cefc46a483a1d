"""The sync ledgers shared by threads (as a threaded app's one client shares its ledger) hold the cap."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from router.ledger import Hold, Line, open_ledger
from tests.router.ledger.conftest import BACKENDS, backend_url

CAP = Line("threads", "total", 0.0, None, 0.2)  # room for 20 requests of $0.01
AMOUNT = 0.01


@pytest.mark.parametrize("backend", BACKENDS)
def test_threads_sharing_one_ledger_never_overspend(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ledger = open_ledger(backend_url(backend, tmp_path, request))
    settled: list[int] = []
    guard = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(10):
            while True:
                result = ledger.reserve([CAP], AMOUNT, ttl_s=60, now=time.time())
                if isinstance(result, Hold):
                    cost = rng.randint(5_000_000, 10_000_000)
                    ledger.settle(result, cost / 1e9, now=time.time())
                    with guard:
                        settled.append(cost)
                    break
                if not result.blocked_by_reservations:
                    return
                time.sleep(0.0005)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        totals = ledger.totals([CAP], now=time.time())[CAP.key]
    finally:
        ledger.close()
    assert round(totals.spent_usd * 1e9) == sum(settled) <= 200_000_000
    assert sum(settled) > 200_000_000 - 10_000_000  # every refusal left less than one request's room
    assert totals.reserved_usd == 0.0
