"""A real redis-server for the tests (Debian's ``redis-server``), on a free loopback port.

Loaded as a pytest plugin by tests/conftest.py. Without the server the Redis tests skip, except
under CI (the ``CI`` variable set), where a missing server is a failure: the gate must not pass
by skipping what it exists to check.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

_START_TRIES = 3
_PING_WAIT_S = 10.0


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _start(exe: str, log: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    port = _free_port()
    url = f"redis://127.0.0.1:{port}"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
        )
    deadline = time.monotonic() + _PING_WAIT_S
    while time.monotonic() < deadline and process.poll() is None:
        if _ping(url):
            return process, url
        time.sleep(0.05)
    process.kill()
    process.wait()
    return None  # the port was taken in between, or the server would not start


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (``redis://127.0.0.1:PORT``) of a server started for this test session."""
    exe = shutil.which("redis-server")
    if exe is None:
        _unavailable("redis-server is not installed (Debian: apt-get install redis-server)")
    try:
        import redis  # noqa: F401
    except ImportError:
        _unavailable("the redis package is not installed (pip install 'router-sdk[redis]')")
    log = tmp_path_factory.mktemp("redis") / "redis-server.log"
    for _ in range(_START_TRIES):
        started = _start(exe, log)
        if started is not None:
            break
    else:
        _unavailable(f"redis-server would not start; its output is in {log}")
    process, url = started
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """A ``redis://…/0`` URL on the session's server, emptied for this test."""
    import redis

    url = f"{redis_server}/0"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url
