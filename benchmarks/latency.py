"""Per-call latency of sequential sync calls: p50 and p99 per client.

Two workers: the openai-family lines (raw httpx, openai SDK, router one-model, router everything-on) in
one process, litellm's two lines in another, so litellm's import never weighs on the others. Within a
worker the lines are interleaved in rounds, so drift on the machine hits every line alike.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Final

from benchmarks._options import Options
from benchmarks._results import LatencyLine, Results
from benchmarks._server import Server
from benchmarks._worker import run_worker

OPENAI_FAMILY: Final = ("httpx", "openai", "router_one", "router_full")
LITELLM_FAMILY: Final = ("litellm", "litellm_router")


def run(server: Server, options: Options, workdir: Path, results: Results) -> None:
    for keys, calls, warmup in (
        (OPENAI_FAMILY, options.calls, options.warmup),
        (LITELLM_FAMILY, options.litellm_calls, options.litellm_warmup),
    ):
        args = {
            "url": server.url,
            "keys": list(keys),
            "calls": calls,
            "warmup": warmup,
            "rounds": options.rounds,
            "workdir": str(workdir),
        }
        out = run_worker("benchmarks.latency:measure", args)
        results.latency += [LatencyLine(**line) for line in out["lines"]]
        if out.get("features"):
            results.note_features(out["features"])
    order = list(OPENAI_FAMILY + LITELLM_FAMILY)
    results.latency.sort(key=lambda line: order.index(line.key))


def measure(args: dict[str, Any]) -> dict[str, Any]:
    """Worker: warm every line up, then time each call of interleaved rounds."""
    from benchmarks._clients import sync_line
    from benchmarks._stats import summarize_ns

    keys: list[str] = args["keys"]
    server = Server(args["url"])
    lines = {key: sync_line(key, server, Path(args["workdir"])) for key in keys}
    per_round = math.ceil(args["calls"] / args["rounds"])
    samples: dict[str, list[int]] = {key: [] for key in keys}
    clock = time.perf_counter_ns
    try:
        for key in keys:
            for _ in range(args["warmup"]):
                lines[key].call()
            full_config = lines[key].full
            if full_config:  # the router's one-time background work (litellm's import) ends in the warm-up
                full_config.wait_ready()
        for r in range(args["rounds"]):
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                call, times = lines[key].call, samples[key]
                for _ in range(per_round):
                    start = clock()
                    call()
                    times.append(clock() - start)
        full = lines["router_full"].full if "router_full" in lines else None
        features = full.verify(args["warmup"] + per_round * args["rounds"]) if full else None
    finally:
        for line in lines.values():
            line.close()
    out = []
    for key in keys:
        s = summarize_ns(samples[key])
        out.append({"key": key, "calls": s.n, "p50_us": s.p50_us, "p99_us": s.p99_us, "mean_us": s.mean_us})
    return {"lines": out, "features": features}
