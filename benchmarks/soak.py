"""Fault soak: rounds of concurrent requests through ``router.AsyncOpenAI`` while the providers fail.

One client in one fresh worker process runs ``soak_rounds`` rounds of ``soak_requests`` concurrent
requests (a third of them streamed and read to the end) against two fake models that answer 500, reset
the connection, hang past the deadline or cut their streams at random (a seeded sequence per model).
The route falls back from one model to the other, with one same-model retry, under a per-request
deadline; circuit breakers are set never to open (they would turn the faults into instant refusals).
After each round (every request has ended) the worker records the success rate, p50/p99
latency, requests still running past their deadline + 1 s, the pool's connections in use and idle,
open file descriptors and sockets, leftover tasks and RSS. The fake providers run in another process,
so every socket counted is the client's.

Flat means: no connection in use after any round, file descriptors back to the baseline plus the pool's
idle connections after every round, no request alive past its deadline + 1 s, the last round's success
rate within 2 points of the first's, and RSS growth after the first rounds within a few MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from pathlib import Path
from typing import Any, Final

from benchmarks._configs import MESSAGES, OPENAI_KEY_ENV
from benchmarks._options import Options
from benchmarks._results import Results, SoakResult, SoakRound
from benchmarks._server import Server
from benchmarks._stats import percentile
from benchmarks._worker import run_worker

DEADLINE_S: Final = 2.0  # well above a healthy round trip even on a loaded two-core machine
LATE_S: Final = 1.0  # "alive past its deadline + 1 s"
STREAM_SHARE: Final = 3  # every third request streams
MODELS: Final = {"gpt-4o-mini": "soak-mini", "gpt-4o": "soak-4o"}  # policy name -> the fake's model id
RSS_WARM_ROUND: Final = 3  # RSS growth is counted from this round on (pools and caches warm)


def fault_scripts(seed: int = 14, count: int = 1009) -> list[dict[str, Any]]:
    """Per model, a seeded random fault sequence replayed forever: 8% answer 500, 5% reset, 5% hang
    past any deadline, 5% cut their stream after one chunk (a plain request answers normally)."""
    from router_fakes.script import Fault, ModelScript, hang, reset, status, stream_cut

    scripts = []
    for n, model in enumerate(MODELS.values()):
        rng = random.Random(seed + n)
        faults: list[Fault] = []
        for _ in range(count):
            x = rng.random()
            if x < 0.08:
                faults.append(status(500))
            elif x < 0.13:
                faults.append(reset())
            elif x < 0.18:
                faults.append(hang(DEADLINE_S * 5))
            elif x < 0.23:
                faults.append(stream_cut(1))
            else:
                faults.append(hang(0.0))  # no fault
        scripts.append(ModelScript(model, faults=tuple(faults), repeat_faults=True).to_json())
    return scripts


def soak_policy(openai_base: str) -> dict[str, Any]:
    models = {
        name: {"provider": "openai", "model": served, "api_base": openai_base, "api_key_env": OPENAI_KEY_ENV}
        for name, served in MODELS.items()
    }
    return {
        "timeout_s": DEADLINE_S,
        "retry": {"attempts": 2},
        # Breakers would open within a round and turn the rest into instant refusals: this soak is about
        # the transport and the pipeline under sustained faults, so they stay closed.
        "cooldown": {"failures": 1_000_000_000},
        "models": models,
        "routes": {"auto": {"candidates": ["gpt-4o-mini"], "fallbacks": ["gpt-4o"]}},
    }


def run(server: Server, options: Options, workdir: Path, results: Results) -> None:
    from router_fakes.client import FakeProvidersClient
    from router_fakes.script import ModelScript

    with FakeProvidersClient(server.url) as fake:
        fake.script(*(ModelScript.from_json(s) for s in fault_scripts()))
    args = {"url": server.url, "rounds": options.soak_rounds, "requests": options.soak_requests}
    out = run_worker("benchmarks.soak:measure", args)
    results.soak = SoakResult(
        requests=options.soak_requests,
        deadline_s=DEADLINE_S,
        fds_baseline=out["fds_baseline"],
        rounds=tuple(SoakRound(**r) for r in out["rounds"]),
    )


def _fds() -> tuple[int, int]:
    """(open file descriptors, of which sockets) of this process."""
    fds = sockets = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fds += 1
            sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return fds, sockets


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _one(client: Any, stream: bool) -> tuple[bool, float]:
    import openai

    start = time.perf_counter()
    try:
        if stream:
            chunks = await client.chat.completions.create(model="auto", messages=list(MESSAGES), stream=True)
            async for _ in chunks:
                pass
        else:
            await client.chat.completions.create(model="auto", messages=list(MESSAGES))
    except openai.APIError:
        return False, time.perf_counter() - start
    return True, time.perf_counter() - start


async def _measure(args: dict[str, Any]) -> dict[str, Any]:
    import router
    from policies.loader import policy_from_dict

    client = router.AsyncOpenAI(policy=policy_from_dict(soak_policy(Server(args["url"]).openai_base)))
    pool = client._adapters["openai"]._client  # the default transport: providers/_aiohttp.py
    rounds = []
    try:
        me = asyncio.current_task()
        baseline = _fds()[0] - pool.connections()[1]
        for n in range(args["rounds"]):
            start = time.perf_counter()
            done = await asyncio.gather(
                *(_one(client, i % STREAM_SHARE == 0) for i in range(args["requests"]))
            )
            seconds = time.perf_counter() - start
            # Closed transports release their sockets on the loop's next turns, and async generators
            # dropped mid-way are closed by finalizer tasks: give both a bounded number of turns.
            for _ in range(200):
                if not asyncio.all_tasks() - {me} and pool.connections()[0] == 0:
                    break
                await asyncio.sleep(0)
            in_use, idle = pool.connections()
            fds, sockets = _fds()
            latencies = [t * 1000 for _, t in done]
            rounds.append(
                {
                    "round": n + 1,
                    "success": sum(ok for ok, _ in done) / len(done),
                    "p50_ms": percentile(latencies, 50),
                    "p99_ms": percentile(latencies, 99),
                    "late": sum(t > DEADLINE_S + LATE_S for _, t in done),
                    "seconds": seconds,
                    "in_use": in_use,
                    "idle": idle,
                    "fds": fds,
                    "sockets": sockets,
                    "tasks": len(asyncio.all_tasks() - {me}),
                    "rss_mb": _rss_mb(),
                }
            )
    finally:
        await client.close()
    return {"fds_baseline": baseline, "rounds": rounds}


def measure(args: dict[str, Any]) -> dict[str, Any]:
    """Worker: the rounds, each one's figures after all its requests ended."""
    return asyncio.run(_measure(args))


def verdict(result: SoakResult, rss_limit_mb: float = 5.0) -> list[tuple[str, bool, str]]:
    """Each flatness check: (what, held, the figures behind it)."""
    rounds = result.rounds
    first, last = rounds[0], rounds[-1]
    warm = rounds[min(RSS_WARM_ROUND, len(rounds)) - 1]
    leaked_fds = [r.round for r in rounds if r.fds - r.idle != result.fds_baseline]
    busy = [r.round for r in rounds if r.in_use]
    late = sum(r.late for r in rounds)
    tasks = [r.round for r in rounds if r.tasks]
    growth = last.rss_mb - warm.rss_mb
    drop = (first.success - last.success) * 100
    return [
        (
            "no connection in use after any round",
            not busy,
            f"in use after rounds {busy}" if busy else "0 after every round",
        ),
        (
            "file descriptors back to the baseline + idle pooled connections after every round",
            not leaked_fds,
            f"off in rounds {leaked_fds}"
            if leaked_fds
            else f"baseline {result.fds_baseline}, idle connections {min(r.idle for r in rounds)}"
            f"-{max(r.idle for r in rounds)}",
        ),
        ("no request alive past its deadline + 1 s", late == 0, f"{late} late requests in all"),
        ("no task left after any round", not tasks, f"tasks left after rounds {tasks}" if tasks else "none"),
        (
            f"round {last.round} success within 2 points of round 1",
            drop <= 2.0,
            f"{first.success:.1%} → {last.success:.1%}",
        ),
        (
            f"RSS flat from round {warm.round} (growth ≤ {rss_limit_mb:g} MB)",
            growth <= rss_limit_mb,
            f"{warm.rss_mb:.1f} → {last.rss_mb:.1f} MB ({growth:+.1f} MB)",
        ),
    ]
