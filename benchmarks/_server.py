"""The fake providers in their own process, so the client's CPU is measured alone."""

from __future__ import annotations

import contextlib
import ctypes
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Final

from router._cli_fake import fakes_process_env

READY_PREFIX: Final = "fake providers listening on "
START_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Server:
    url: str

    @property
    def openai_base(self) -> str:
        return f"{self.url}/openai/v1"

    @property
    def gemini_base(self) -> str:
        return f"{self.url}/gemini"


def parse_ready_line(line: str) -> str | None:
    """The server's URL from its "listening" line, or None for any other line."""
    line = line.strip()
    return line.removeprefix(READY_PREFIX) if line.startswith(READY_PREFIX) else None


def _die_with_parent() -> None:
    # Linux: the server gets SIGTERM if the harness dies without cleaning up (kill -9, say).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _drain(stream: IO[str], lines: queue.Queue[str]) -> None:
    # Read everything the server prints, so a chatty server never blocks on a full pipe.
    for line in stream:
        lines.put(line)
    lines.put("")


@contextlib.contextmanager
def fake_providers(log_limit: int = 100) -> Iterator[Server]:
    """Start ``python -m router_fakes --port 0``, wait for its "listening" line, stop it on exit.

    The server's stderr goes to a temporary file, shown only if it fails to start: under the fault soak it
    logs every client that hangs up mid-answer, which is routine there."""
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "router_fakes", "--port", "0", "--log-limit", str(log_limit)],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=fakes_process_env(),
            text=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        try:
            assert process.stdout is not None
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(target=_drain, args=(process.stdout, lines), daemon=True).start()
            try:
                line = lines.get(timeout=START_TIMEOUT_S)
            except queue.Empty:
                line = ""
            url = parse_ready_line(line)
            if url is None:
                errors.seek(0)
                tail = "".join(errors.readlines()[-15:])
                raise RuntimeError(
                    f"the fake providers did not start (exit {process.poll()}): {line!r}\n{tail}"
                )
            yield Server(url)
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
