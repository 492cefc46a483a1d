"""What the ledger fault tests share: a redis-server they may kill and restart, a process that holds
SQLite's write lock, and the figures a ledger holds.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from router.ledger import Totals, open_ledger

_PING_WAIT_S = 10.0  # safety nets for a server starting or a lock being taken, not measurements


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisProcess:
    """A redis-server of this test's own, on a fixed port, so it can be killed and started again."""

    def __init__(self, tmp: Path, *, password: str | None = None) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is not installed (CI is set)")
            pytest.skip("redis-server is not installed")
        self.exe = exe
        self.port = free_port()
        self.password = password
        self.log = tmp / f"redis-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        deadline = time.monotonic() + _PING_WAIT_S
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise AssertionError(f"redis-server did not start; see {self.log}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        self.kill()


_HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def hold_write_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that takes the SQLite file's write lock and keeps it ``seconds``; returns once held."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "locked"
    return process


def figures(url: str, now: float) -> list[tuple[str, str, float, Totals]]:
    ledger = open_ledger(url)
    try:
        return ledger.report(now=now)
    finally:
        ledger.close()


def spent_nanos(url: str, now: float) -> int:
    return sum(round(row[3].spent_usd * 1e9) for row in figures(url, now))


def budget_kinds(events: Any) -> list[str]:
    return [event.kind for event in events]
