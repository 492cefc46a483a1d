"""Code that runs in other processes for the multi-process and crash tests.

``hammer`` is a multiprocessing target; ``python -m tests.router.ledger.workers hold URL NOW`` is
the process that gets SIGKILLed holding a reservation; ``... serve URL TASKS`` the one SIGKILLed
while its batches of settles are being written.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from typing import Any

from router.ledger import AsyncLedger, Hold, Line, open_async_ledger, open_ledger

AMOUNT_NANOS = 10_000_000  # each request's worst case: $0.01
CAP = Line("burst", "total", 0.0, None, 50 * AMOUNT_NANOS / 1e9)  # fits about 50 of them
WARN_AT = 0.5
# A safety net for a broken ledger, not a measurement: a healthy run ends in a few seconds.
GIVE_UP_S = 60.0


async def one_request(
    ledger: AsyncLedger, rng: random.Random, lines: tuple[Line, ...] = (CAP,)
) -> tuple[str, int, bool]:
    """What the pipeline does: reserve the worst case, call, settle the actual cost; while only
    in-flight reservations stand in the way, wait a little and try again.

    Every settled request also asks for the same warning: all of them race for it, one may win.
    """
    give_up = time.monotonic() + GIVE_UP_S
    while True:
        result = await ledger.reserve(lines, AMOUNT_NANOS / 1e9, ttl_s=120, now=time.time())
        if isinstance(result, Hold):
            await asyncio.sleep(rng.uniform(0, 0.004))  # the provider call
            cost = rng.randint(AMOUNT_NANOS // 2, AMOUNT_NANOS)
            await ledger.settle(result, cost / 1e9, now=time.time())
            return "settled", cost, await ledger.first_warning(CAP, WARN_AT)
        if not result.blocked_by_reservations:
            return "refused", 0, False
        if time.monotonic() > give_up:
            return "gave up", 0, False
        await asyncio.sleep(rng.uniform(0.001, 0.003))


async def _run(
    url: str, tasks: int, seed: int, ready: Any, go: Any, lines: tuple[Line, ...] = (CAP,)
) -> dict[str, Any]:
    ledger = open_async_ledger(url)
    rng = random.Random(seed)
    ready.put(seed)
    go.wait()
    try:
        outcomes = await asyncio.gather(*(one_request(ledger, rng, lines) for _ in range(tasks)))
    finally:
        await ledger.close()
    return {
        "settled": [cost for kind, cost, _ in outcomes if kind == "settled"],
        "refused": sum(kind == "refused" for kind, _, _ in outcomes),
        "gave_up": sum(kind == "gave up" for kind, _, _ in outcomes),
        "warned": sum(warned for _, _, warned in outcomes),
    }


def hammer(url: str, tasks: int, seed: int, ready: Any, go: Any, results: Any) -> None:
    """One process: ``tasks`` concurrent requests on one ledger, started together with the others."""
    results.put(asyncio.run(_run(url, tasks, seed, ready, go)))


def hammer_two_lines(url: str, tasks: int, seed: int, ready: Any, go: Any, results: Any) -> None:
    """``hammer`` with every request on a wide line first and the capped one second: a refusal comes
    from the second line, after the first was added (and is taken back)."""
    results.put(asyncio.run(_run(url, tasks, seed, ready, go, (WIDE, CAP))))


WIDE = Line("wide", "total", 0.0, None, 1000.0)
SERVE_TTL_S = 30.0


async def _serve(url: str, tasks: int) -> None:
    """Reserve, "call", settle, print the settled cost once ``settle`` returned; forever, ``tasks``
    at a time. A printed line is an acknowledged charge: the parent kills this process mid-stream."""
    ledger = open_async_ledger(url)
    rng = random.Random(tasks)

    async def loop() -> None:
        while True:
            hold = await ledger.reserve([WIDE], AMOUNT_NANOS / 1e9, ttl_s=SERVE_TTL_S, now=time.time())
            assert isinstance(hold, Hold), hold
            await asyncio.sleep(rng.uniform(0, 0.002))
            cost = rng.randint(AMOUNT_NANOS // 2, AMOUNT_NANOS)
            await ledger.settle(hold, cost / 1e9, now=time.time())
            sys.stdout.write(f"{cost}\n")
            sys.stdout.flush()

    await asyncio.gather(*(loop() for _ in range(tasks)))


def hold(url: str, now: float) -> None:
    """Reserve the whole cap, say so, then hang in the "provider call" until killed."""
    ledger = open_ledger(url)
    result = ledger.reserve([CAP], CAP.limit_usd, ttl_s=30, now=now)
    assert isinstance(result, Hold), result
    print(f"held {result.id}", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2], float(sys.argv[3]))
    if sys.argv[1] == "serve":
        asyncio.run(_serve(sys.argv[2], int(sys.argv[3])))
