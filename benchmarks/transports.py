"""``python -m benchmarks.transports``: the async transport options side by side, on this machine.

Each option runs in a fresh worker process against the fake providers (a separate process):

- ``httpx_asyncio_timeout``: httpx/httpcore with ``asyncio.timeout`` around each call (the router before);
- ``httpx_transport_timeout``: httpx with the deadline passed to the transport as its timeouts, no
  ``asyncio.timeout`` (httpcore's own socket timeouts end the call; nothing is cancelled from outside);
- ``aiohttp_asyncio_timeout``: aiohttp with ``asyncio.timeout`` around each call (cancellation from outside);
- ``aiohttp_client_timeout``: aiohttp with its own ``ClientTimeout(total=...)``.

Faults: ``ROUNDS`` rounds of ``CONCURRENT`` requests with a ``DEADLINE_S`` deadline while the model hangs,
resets or answers 500 at random; after each round (every request has ended) the worker counts the pool's
busy connections and the process's open file descriptors. Then, against a healthy model, requests per
second at 64 and 512 in flight. The figures decided the router's transport (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from benchmarks._configs import MESSAGES, MODEL
from benchmarks._worker import run_worker

OPTIONS: Final = (
    "httpx_asyncio_timeout",
    "httpx_transport_timeout",
    "aiohttp_asyncio_timeout",
    "aiohttp_client_timeout",
)
FAULTY: Final = "faulty-mini"
ROUNDS: Final = 4
CONCURRENT: Final = 400
DEADLINE_S: Final = 0.5
THROUGHPUT_REQUESTS: Final = 4_000
IN_FLIGHT: Final = (64, 512)
LIMIT: Final = 1000  # max connections, both libraries


def fault_script(model: str, seed: int, count: int = 997) -> dict[str, Any]:
    """A seeded random sequence: ~20% hang past any deadline, 10% reset, 10% answer 500, the rest OK."""
    from router_fakes.script import Fault, ModelScript, hang, reset, status

    rng = random.Random(seed)
    faults: list[Fault] = []
    for _ in range(count):
        x = rng.random()
        if x < 0.2:
            faults.append(hang(3.0))
        elif x < 0.3:
            faults.append(reset())
        elif x < 0.4:
            faults.append(status(500))
        else:
            faults.append(Fault("hang", seconds=0.0))
    return ModelScript(model, faults=tuple(faults), repeat_faults=True).to_json()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
    return count


class _Option:
    """``call(model, deadline)``: True on a 200; ``busy()``: connections checked out of the pool."""

    call: Callable[[str, float | None], Awaitable[bool]]
    busy: Callable[[], int]
    close: Callable[[], Awaitable[None]]


def _body(model: str) -> bytes:
    return json.dumps({"model": model, "messages": list(MESSAGES), "max_tokens": 64}).encode()


def _httpx_option(name: str, url: str) -> _Option:
    import httpx

    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=LIMIT, max_keepalive_connections=100))
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    outside = name == "httpx_asyncio_timeout"
    option = _Option()

    async def call(model: str, deadline: float | None) -> bool:
        timeout = httpx.Timeout(deadline if deadline and not outside else 60.0)
        try:
            if outside and deadline:
                async with asyncio.timeout(deadline):
                    response = await client.post(url, content=_body(model), headers=headers, timeout=timeout)
            else:
                response = await client.post(url, content=_body(model), headers=headers, timeout=timeout)
        except (httpx.HTTPError, TimeoutError):
            return False
        return response.status_code == 200

    def busy() -> int:
        pool = client._transport._pool  # type: ignore[attr-defined]
        return sum(1 for c in pool.connections if not c.is_idle() and not c.is_closed())

    option.call, option.busy, option.close = call, busy, client.aclose
    return option


def _aiohttp_option(name: str, url: str) -> _Option:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=LIMIT, limit_per_host=0)
    session = aiohttp.ClientSession(connector=connector)
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    outside = name == "aiohttp_asyncio_timeout"
    option = _Option()

    async def post(model: str, timeout: aiohttp.ClientTimeout) -> bool:
        async with session.post(url, data=_body(model), headers=headers, timeout=timeout) as response:
            await response.read()
            return response.status == 200

    async def call(model: str, deadline: float | None) -> bool:
        try:
            if outside and deadline:
                async with asyncio.timeout(deadline):
                    return await post(model, aiohttp.ClientTimeout(total=None))
            return await post(model, aiohttp.ClientTimeout(total=deadline))
        except (aiohttp.ClientError, TimeoutError):
            return False

    def busy() -> int:
        return len(connector._acquired)

    option.call, option.busy, option.close = call, busy, session.close
    return option


def _option(name: str, url: str) -> _Option:
    return _aiohttp_option(name, url) if name.startswith("aiohttp") else _httpx_option(name, url)


async def _drive(call: Callable[[], Awaitable[Any]], requests: int, concurrency: int) -> None:
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _measure(args: dict[str, Any]) -> dict[str, Any]:
    base = args["url"] + "/openai/v1/chat/completions"
    option = _option(args["option"], base)
    fds_before = open_fds()
    rounds = []
    try:
        await option.call(MODEL, None)
        throughput = {}
        for in_flight in IN_FLIGHT:  # on a fresh pool, before any fault
            await _drive(lambda: option.call(MODEL, None), in_flight * 2, in_flight)
            start = time.perf_counter()
            await _drive(lambda: option.call(MODEL, None), args["requests"], in_flight)
            throughput[str(in_flight)] = args["requests"] / (time.perf_counter() - start)
        for _ in range(args["rounds"]):
            start = time.perf_counter()
            done = await asyncio.gather(*(option.call(FAULTY, DEADLINE_S) for _ in range(args["concurrent"])))
            elapsed = time.perf_counter() - start
            await asyncio.sleep(0)  # let the callbacks of the last ended requests run
            tasks = len(asyncio.all_tasks()) - 1
            rounds.append(
                {
                    "ok": sum(done) / len(done),
                    "seconds": elapsed,
                    "busy": option.busy(),
                    "fds": open_fds(),
                    "sockets": open_sockets(),
                    "tasks": tasks,
                }
            )
        # The same healthy load once more, after the faults: does the pool still carry it?
        start = time.perf_counter()
        await _drive(lambda: option.call(MODEL, None), args["requests"], IN_FLIGHT[0])
        throughput["after"] = args["requests"] / (time.perf_counter() - start)
    finally:
        await option.close()
    return {"fds_before": fds_before, "rounds": rounds, "rps": throughput}


def measure(args: dict[str, Any]) -> dict[str, Any]:
    """Worker: the fault rounds, then throughput, for one option."""
    return asyncio.run(_measure(args))


def compare(
    url: str, rounds: int = ROUNDS, concurrent: int = CONCURRENT, requests: int = THROUGHPUT_REQUESTS
) -> dict[str, Any]:
    from router_fakes.client import FakeProvidersClient
    from router_fakes.script import ModelScript

    out: dict[str, Any] = {}
    with FakeProvidersClient(url) as fake:
        for seed, name in enumerate(OPTIONS):
            fake.script(ModelScript.from_json(fault_script(FAULTY, seed)))
            args = {
                "url": url,
                "option": name,
                "rounds": rounds,
                "concurrent": concurrent,
                "requests": requests,
            }
            print(f"[transports] {name} ...", file=sys.stderr, flush=True)
            out[name] = run_worker("benchmarks.transports:measure", args, timeout=600)
    return out


def render(out: dict[str, Any]) -> str:
    lines = [
        f"| option | success per round | busy connections after each round | open fds after each round "
        f"(before: n) | slowest round | req/s at {IN_FLIGHT[0]} | req/s at {IN_FLIGHT[1]} "
        f"| req/s at {IN_FLIGHT[0]} after the faults |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for name, o in out.items():
        ok = ", ".join(f"{r['ok']:.0%}" for r in o["rounds"])
        busy = ", ".join(str(r["busy"]) for r in o["rounds"])
        fds = ", ".join(str(r["fds"]) for r in o["rounds"]) + f" (before: {o['fds_before']})"
        rps = [f"{o['rps'][key]:,.0f}" for key in (*map(str, IN_FLIGHT), "after")]
        slowest = max(r["seconds"] for r in o["rounds"])
        lines.append(f"| {name} | {ok} | {busy} | {fds} | {slowest:.2f} s | {' | '.join(rps)} |")
    return "\n".join(lines)


def main() -> int:
    from benchmarks._server import fake_providers

    with fake_providers() as server:
        out = compare(server.url)
    print(render(out))
    print(json.dumps(out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
