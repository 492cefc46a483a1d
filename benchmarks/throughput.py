"""Async throughput: requests per second at fixed concurrencies (64 and 512 in flight).

Each round runs each client in a fresh process (the order rotates between rounds); the table shows the
median over rounds. The client process's CPU time per request is reported too: with one core for the
fake server and one for the client, the server can become the limit, and CPU per request still shows
what each client costs. A bare aiohttp loop (POST, read the JSON) is the floor no client can beat;
the everything-on client runs a second time with gpt-4o-mini on three deployments balanced by
``usage`` (rate counters in SQLite: a read, a claim and a settle per request);
litellm's Router runs at the first concurrency only (it is the slowest line by far).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from benchmarks._options import Options
from benchmarks._results import Results, ThroughputLine
from benchmarks._server import Server
from benchmarks._worker import run_worker

KEYS: Final = ("openai", "router_full", "router_deployments", "aiohttp", "litellm_router")
FIRST_CONCURRENCY_ONLY: Final = frozenset({"litellm_router"})


def run(server: Server, options: Options, workdir: Path, results: Results) -> None:
    for n, concurrency in enumerate(options.concurrency):
        keys = tuple(k for k in KEYS if n == 0 or k not in FIRST_CONCURRENCY_ONLY)
        rounds: dict[str, list[dict[str, Any]]] = {key: [] for key in keys}
        for r in range(options.async_rounds):
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                args = {
                    "url": server.url,
                    "key": key,
                    "requests": options.async_requests,
                    "concurrency": concurrency,
                    "workdir": str(workdir),
                }
                out = run_worker("benchmarks.throughput:measure", args)
                rounds[key].append(out)
                if out.get("features") and key == "router_full":
                    results.note_features(out["features"])
        for key in keys:
            rps = tuple(o["rps"] for o in rounds[key])
            results.throughput.append(
                ThroughputLine(
                    key=key,
                    requests=options.async_requests,
                    concurrency=concurrency,
                    rps=statistics.median(rps),
                    rps_rounds=rps,
                    cpu_us_per_request=statistics.median(o["cpu_us_per_request"] for o in rounds[key]),
                )
            )


async def drive(call: Callable[[], Awaitable[Any]], requests: int, concurrency: int) -> None:
    """``requests`` calls, ``concurrency`` at a time: that many tasks each call until none are left."""
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _measure(args: dict[str, Any]) -> dict[str, Any]:
    from benchmarks._clients import async_line

    line = async_line(args["key"], Server(args["url"]), Path(args["workdir"]))
    requests, concurrency = args["requests"], args["concurrency"]
    warmup = min(requests, concurrency * 4)
    try:
        await drive(line.call, warmup, concurrency)
        if line.full:  # the router's one-time background work (litellm's import) ends in the warm-up
            await asyncio.to_thread(line.full.wait_ready)
            await drive(line.call, warmup, concurrency)
        cpu, start = time.process_time(), time.perf_counter()
        await drive(line.call, requests, concurrency)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        features = line.full.verify(warmup + requests) if line.full else None
    finally:
        await line.close()
    return {"rps": requests / elapsed, "cpu_us_per_request": cpu / requests * 1e6, "features": features}


def measure(args: dict[str, Any]) -> dict[str, Any]:
    """Worker: one client, warmed up, then the timed requests."""
    return asyncio.run(_measure(args))
