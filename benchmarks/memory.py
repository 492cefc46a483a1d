"""Memory over many requests: RSS of a process that only runs router.OpenAI (everything on).

RSS is read from /proc/self/status (VmRSS, and VmHWM for the peak), sampled after the warm-up and then
every tenth of the run. Growth is the end minus the post-warm-up sample. Python's live allocated blocks
after a full collection, at the same two points, tell a leak (blocks grow) from garbage that waits for
the cyclic collector or from allocator fragmentation (blocks flat, RSS creeping).
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

from benchmarks._options import Options
from benchmarks._results import MemoryResult, Results
from benchmarks._server import Server
from benchmarks._worker import run_worker


def status_mb(field: str, status: str | None = None) -> float:
    """A kB field of /proc/self/status (VmRSS, VmHWM) in MB."""
    if status is None:
        status = Path("/proc/self/status").read_text()
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0]) / 1024
    raise LookupError(f"{field} is not in /proc/self/status")


def _live_blocks() -> int:
    gc.collect()
    return sys.getallocatedblocks()


def run(server: Server, options: Options, workdir: Path, results: Results) -> None:
    args = {
        "url": server.url,
        "requests": options.rss_requests,
        "warmup": options.rss_warmup,
        "workdir": str(workdir),
    }
    out = run_worker("benchmarks.memory:measure", args)
    features = out.pop("features")
    if features:
        results.note_features(features)
    results.memory = MemoryResult(**{**out, "samples": tuple(tuple(s) for s in out["samples"])})


def measure(args: dict[str, Any]) -> dict[str, Any]:
    """Worker: warm up, then sample RSS every tenth of the remaining requests."""
    from benchmarks._clients import sync_line

    requests, warmup = args["requests"], args["warmup"]
    line = sync_line("router_full", Server(args["url"]), Path(args["workdir"]))
    every = max((requests - warmup) // 10, 1)
    try:
        for _ in range(warmup):
            line.call()
        if line.full:  # litellm's background import is part of the warm-up, not growth
            line.full.wait_ready()
        blocks_warm = _live_blocks()
        samples = [(warmup, status_mb("VmRSS"))]
        for done in range(warmup + 1, requests + 1):
            line.call()
            if (done - warmup) % every == 0 or done == requests:
                samples.append((done, status_mb("VmRSS")))
        blocks_end = _live_blocks()
        features = line.full.verify(requests) if line.full else None
    finally:
        line.close()
    after_warmup = [mb for _, mb in samples]
    return {
        "requests": requests,
        "warmup": warmup,
        "rss_warm_mb": samples[0][1],
        "rss_end_mb": samples[-1][1],
        "rss_max_mb": max(after_warmup),
        "hwm_mb": status_mb("VmHWM"),
        "blocks_warm": blocks_warm,
        "blocks_end": blocks_end,
        "samples": samples,
        "features": features,
    }
