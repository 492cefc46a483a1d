"""``python -m router_fakes --port N``: the fake providers in the foreground, for benchmarks and the demo.

Prints ``fake providers listening on http://HOST:PORT`` once it accepts connections, so a parent process
can wait for that line (and learn the port when ``--port 0`` asked for a free one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from ._state import State
from .script import ModelScript
from .server import build_app, start_site


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m router_fakes", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="PROTOCOL=KEY",
        help="only accept KEY for PROTOCOL (openai, gemini, anthropic); repeatable",
    )
    parser.add_argument("--script", type=Path, help="a JSON file: one model script or a list of them")
    parser.add_argument("--log-limit", type=int, default=10_000, help="requests kept for GET /_fake/requests")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    state = State(args.log_limit)
    if args.script is not None:
        data = json.loads(args.script.read_text())
        for item in data if isinstance(data, list) else [data]:
            state.script(ModelScript.from_json(item))
    keys = dict(item.split("=", 1) for item in args.api_key)
    sock = socket.create_server((args.host, args.port))
    host, port = sock.getsockname()[:2]
    runner = await start_site(build_app(state, keys), sock)
    print(f"fake providers listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    for item in args.api_key:
        if "=" not in item:
            print(f"--api-key expects PROTOCOL=KEY, got {item!r}", file=sys.stderr)
            return 2
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
