"""The async fast path's transport under cancellation: a request cancelled or timed out at any stage
(connecting, waiting for headers, reading the body, opening or reading a stream) leaves no busy
connection, no socket beyond the pool's idle ones, and no task behind.

Every case goes through ``router.AsyncOpenAI``. The fake providers run in their own process (so every
socket counted here is the client's), except two servers that must misbehave below HTTP: a listener
whose accept queue is full (a connect that never completes) and one that sends half a body and stops.
After each case the test counts the pool's connections, this process's sockets to the server and the
loop's tasks, then checks that the pool still serves a request; after ``close()`` no socket is left.
Nothing here measures time: the deadlines only have to fire.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from router_fakes.client import FakeProvidersClient
from router_fakes.script import ModelScript, hang, reset, status, stream_cut, stream_stall

from benchmarks._server import Server, fake_providers
from policies.schema import Policy
from providers._aiohttp import AiohttpTransport, TransportLimits
from router import AsyncOpenAI

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Say hello."}]
NEVER = 3600.0  # a hang no case waits out
DEADLINE_S = 0.3
KEY_ENV = "TRANSPORT_TEST_KEY"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with fake_providers() as running:
        yield running


class Control:
    """The fake's controls over a connection of their own, closed at once: the only sockets to the
    server that stay open are the router's."""

    def __init__(self, url: str) -> None:
        self.url = url

    def script(self, *scripts: ModelScript) -> None:
        with FakeProvidersClient(self.url) as client:
            client.script(*scripts)

    def requests(self, model: str) -> list[Any]:
        with FakeProvidersClient(self.url) as client:
            return client.requests(model)


@pytest.fixture
def fake(server: Server) -> Control:
    with FakeProvidersClient(server.url) as client:
        client.reset()
    return Control(server.url)


def _port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1].split("/")[0])


def sockets_to(port: int) -> int:
    """This process's TCP sockets whose peer is ``port`` on loopback, in any state (SYN_SENT too)."""
    peers: set[str] = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port:
                    peers.add(fields[9])
    mine: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:["):
                mine.add(link[8:-1])
    return len(peers & mine)


def policy(api_base: str, **settings: Any) -> Policy:
    model = {"provider": "openai", "api_base": api_base, "api_key_env": KEY_ENV}
    return Policy.model_validate(
        {
            "retry": {"attempts": 1},
            "models": {MODEL: model},
            "routes": {"auto": {"candidates": [MODEL]}},
            **settings,
        }
    )


def _deadline(how: str) -> dict[str, float]:
    """The policy's deadline for a "deadline" case; none for a "cancelled" one (only the cancel ends it)."""
    return {"timeout_s": DEADLINE_S} if how == "deadline" else {}


def transport(client: AsyncOpenAI) -> AiohttpTransport:
    pool = client._router._adapters["openai"]._client  # type: ignore[attr-defined]
    assert isinstance(pool, AiohttpTransport)
    return pool


async def _turns(predicate: Any, turns: int = 200) -> bool:
    """Let the loop run (no real time is measured) until ``predicate()`` holds, at most ``turns`` times."""
    for _ in range(turns):
        if predicate():
            return True
        await asyncio.sleep(0)
    return bool(predicate())


async def _until_sockets(port: int, at_least: int) -> None:
    for _ in range(500):  # bounded: a request that never connects fails the case instead of hanging it
        if sockets_to(port) >= at_least:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no connection to port {port} was opened")


async def assert_clean(client: AsyncOpenAI, port: int, baseline: int = 0) -> None:
    """No connection in use, every open socket to the server an idle pooled one, no task left over."""
    pool = transport(client)
    # Closed sockets are released on the loop's next turns (asyncio closes transports with call_soon).
    # So are abandoned async generators (a task per finalizer): a task gone after a few turns is no orphan.
    me = asyncio.current_task()
    await _turns(
        lambda: (
            pool.connections()[0] == 0
            and sockets_to(port) - baseline == pool.connections()[1]
            and asyncio.all_tasks() == {me}
        )
    )
    in_use, idle = pool.connections()
    assert in_use == 0
    assert sockets_to(port) - baseline == idle
    assert asyncio.all_tasks() == {me}


async def assert_still_serves(client: AsyncOpenAI, fake: Control, port: int) -> None:
    fake.script(ModelScript(MODEL))
    response = await client.chat.completions.create(model="auto", messages=MESSAGES)  # type: ignore[arg-type]
    assert response.choices[0].message.content
    await assert_clean(client, port)


async def _create(client: AsyncOpenAI, **kwargs: Any) -> Any:
    return await client.chat.completions.create(model="auto", messages=MESSAGES, **kwargs)


async def _cancel_when(task: asyncio.Task[Any], ready: Any) -> None:
    await ready()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# ---------------------------------------------------------------------------------------------- connect


@contextlib.contextmanager
def unaccepting_listener() -> Iterator[tuple[int, list[socket.socket]]]:
    """A port whose accept queue is full: a new connection's SYN is dropped, so connecting never ends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        yield port, [filler]
    finally:
        filler.close()
        listener.close()


@pytest.mark.parametrize("how", ["deadline", "cancelled"])
async def test_a_request_ended_while_connecting_leaves_no_socket(how: str) -> None:
    with unaccepting_listener() as (port, fillers):
        base = sockets_to(port)
        assert base == len(fillers)
        client = AsyncOpenAI(policy=policy(f"http://127.0.0.1:{port}/v1", **_deadline(how)))
        try:
            if how == "deadline":
                with pytest.raises(openai.APITimeoutError):
                    await _create(client)
            else:
                task = asyncio.create_task(_create(client))
                await _cancel_when(task, lambda: _until_sockets(port, base + 1))
            await assert_clean(client, port, baseline=base)
        finally:
            await client.close()
        assert sockets_to(port) == base


# ---------------------------------------------------------------------------------------------- headers


@pytest.mark.parametrize("how", ["deadline", "cancelled"])
async def test_a_request_ended_while_waiting_for_headers_leaves_no_busy_connection(
    how: str, server: Server, fake: Control
) -> None:
    port = _port(server.url)
    fake.script(ModelScript(MODEL, faults=(hang(NEVER),)))
    client = AsyncOpenAI(policy=policy(server.openai_base, **_deadline(how)))
    try:
        if how == "deadline":
            with pytest.raises(openai.APITimeoutError):
                await _create(client)
        else:
            task = asyncio.create_task(_create(client))

            async def sent() -> None:
                await _until_sockets(port, 1)
                for _ in range(500):
                    if fake.requests(MODEL):
                        return
                    await asyncio.sleep(0.01)

            await _cancel_when(task, sent)
        await assert_clean(client, port)
        await assert_still_serves(client, fake, port)
    finally:
        await client.close()
    assert sockets_to(port) == 0


# ---------------------------------------------------------------------------------------------- body


@contextlib.contextmanager
def half_body_server() -> Iterator[tuple[int, threading.Event]]:
    """Answers 200 with a Content-Length of 1,000 bytes, sends 11 of them and goes silent."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    sent, stop = threading.Event(), threading.Event()
    accepted: list[socket.socket] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            accepted.append(conn)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
                b'{"choices":'
            )
            sent.set()
            stop.wait()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port, sent
    finally:
        stop.set()
        listener.close()
        for conn in accepted:
            conn.close()
        thread.join(timeout=10)


@pytest.mark.parametrize("how", ["deadline", "cancelled"])
async def test_a_request_ended_while_reading_the_body_closes_its_connection(how: str) -> None:
    with half_body_server() as (port, sent):
        client = AsyncOpenAI(policy=policy(f"http://127.0.0.1:{port}/v1", **_deadline(how)))
        try:
            if how == "deadline":
                with pytest.raises(openai.APITimeoutError):
                    await _create(client)
            else:
                task = asyncio.create_task(_create(client))

                async def body_started() -> None:
                    while not sent.is_set():
                        await asyncio.sleep(0.01)

                await _cancel_when(task, body_started)
            await assert_clean(client, port)
            # A half-read connection is never pooled.
            assert transport(client).connections() == (0, 0)
        finally:
            await client.close()
        assert sockets_to(port) == 0


# ---------------------------------------------------------------------------------------------- streams


async def _first_chunk(client: AsyncOpenAI) -> Any:
    stream = await _create(client, stream=True)
    iterator: AsyncIterator[Any] = stream.__aiter__()
    await iterator.__anext__()
    return stream, iterator


@pytest.mark.parametrize("how", ["deadline", "cancelled"])
async def test_a_stream_ended_before_its_first_content_leaves_no_busy_connection(
    how: str, server: Server, fake: Control
) -> None:
    port = _port(server.url)
    fake.script(ModelScript(MODEL, faults=(stream_stall(0, NEVER),)))
    client = AsyncOpenAI(policy=policy(server.openai_base, **_deadline(how)))
    try:
        if how == "deadline":
            with pytest.raises(openai.APITimeoutError):
                await _create(client, stream=True)
        else:
            task = asyncio.create_task(_create(client, stream=True))

            async def opened() -> None:
                await _until_sockets(port, 1)
                for _ in range(500):
                    if fake.requests(MODEL):
                        return
                    await asyncio.sleep(0.01)

            await _cancel_when(task, opened)
        await assert_clean(client, port)
        await assert_still_serves(client, fake, port)
    finally:
        await client.close()
    assert sockets_to(port) == 0


@pytest.mark.parametrize("how", ["idle_timeout", "cancelled", "closed_early"])
async def test_a_stream_ended_mid_way_leaves_no_busy_connection(
    how: str, server: Server, fake: Control
) -> None:
    port = _port(server.url)
    fake.script(ModelScript(MODEL, reply="one two three four", faults=(stream_stall(2, NEVER),)))
    idle = {"stream_idle_timeout_s": 1.0} if how == "idle_timeout" else {}
    client = AsyncOpenAI(policy=policy(server.openai_base, **idle))
    try:
        stream, iterator = await _first_chunk(client)
        if how == "idle_timeout":
            with pytest.raises(openai.APIError):
                async for _ in iterator:
                    pass
        elif how == "cancelled":

            async def read_all() -> None:
                async for _ in iterator:
                    pass

            task = asyncio.create_task(read_all())
            await _turns(lambda: False, turns=20)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await stream.close()
        else:
            await stream.close()
        await assert_clean(client, port)
        await assert_still_serves(client, fake, port)
    finally:
        await client.close()
    assert sockets_to(port) == 0


# ---------------------------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    "fault",
    [reset(), status(500), stream_cut(1)],
    ids=["reset", "status-500", "stream-cut"],
)
async def test_failed_requests_return_their_connections(fault: Any, server: Server, fake: Control) -> None:
    port = _port(server.url)
    fake.script(ModelScript(MODEL, faults=(fault,)))
    client = AsyncOpenAI(policy=policy(server.openai_base))
    try:
        with pytest.raises(openai.APIError):
            if fault.kind == "stream_cut":
                stream = await _create(client, stream=True)
                async for _ in stream:
                    pass
            else:
                await _create(client)
        await assert_clean(client, port)
        await assert_still_serves(client, fake, port)
    finally:
        await client.close()
    assert sockets_to(port) == 0


async def test_many_requests_cancelled_at_once_leave_the_pool_clean(server: Server, fake: Control) -> None:
    """Half hang past the deadline and half answer: the pool ends with idle connections only."""
    port = _port(server.url)
    fake.script(ModelScript(MODEL))
    client = AsyncOpenAI(policy=policy(server.openai_base, timeout_s=DEADLINE_S))
    try:
        # Warmed up first: the first call's one-time work (aiohttp's import, the pool) would count
        # against the burst's deadlines, and on a loaded machine can use one up before its attempt.
        await _create(client)
        fake.script(ModelScript(MODEL, faults=(hang(NEVER), hang(0)), repeat_faults=True))
        outcomes = await asyncio.gather(*(_create(client) for _ in range(60)), return_exceptions=True)
        timeouts = sum(isinstance(o, openai.APITimeoutError) for o in outcomes)
        answered = sum(not isinstance(o, BaseException) for o in outcomes)
        # Every hang times out; on a busy machine an answer may miss the deadline too.
        assert timeouts >= 30 and timeouts + answered == 60
        await assert_clean(client, port)
        assert transport(client).connections()[1] <= 30
    finally:
        await client.close()
    assert sockets_to(port) == 0


async def test_connection_limits_cap_the_pool(server: Server, fake: Control) -> None:
    port = _port(server.url)
    fake.script(ModelScript(MODEL))
    limits = TransportLimits(max_connections=4)
    client = AsyncOpenAI(policy=policy(server.openai_base), connection_limits=limits)
    try:
        await asyncio.gather(*(_create(client) for _ in range(40)))
        assert 1 <= sockets_to(port) <= 4
        await assert_clean(client, port)
    finally:
        await client.close()
    assert sockets_to(port) == 0


async def test_a_given_httpx_client_carries_the_calls_and_stays_open(server: Server, fake: Control) -> None:
    fake.script(ModelScript(MODEL))
    async with httpx.AsyncClient() as http:
        client = AsyncOpenAI(policy=policy(server.openai_base), http_client=http)
        response = await _create(client)
        assert response.choices[0].message.content
        assert not isinstance(client._router._adapters["openai"]._client, AiohttpTransport)  # type: ignore[attr-defined]
        await client.close()
        assert http.is_closed  # as openai.AsyncOpenAI.close() closes the http_client it was given
        assert "aiohttp" not in repr(http._transport)


def test_limits_reject_impossible_values() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        TransportLimits(max_connections=0)


def test_import_router_does_not_import_aiohttp() -> None:
    # openai 3.x itself imports parts of aiohttp (its vendored httpx-aiohttp bridge); what counts
    # is that neither importing router nor building a client adds any aiohttp module to those.
    code = (
        "import sys, openai; before = {m for m in sys.modules if m.split('.')[0] == 'aiohttp'}; "
        "import router; client = router.AsyncOpenAI(policy={'models': {'gpt-4o-mini': "
        "{'provider': 'openai', 'api_base': 'http://127.0.0.1:9/v1'}}}); "
        "print(sorted({m for m in sys.modules if m.split('.')[0] == 'aiohttp'} - before))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"  # neither the import nor building a client loads more of it


def test_a_client_reused_across_event_loops_closes_each_loops_pool(server: Server) -> None:
    """One client, three ``asyncio.run`` calls: each loop gets a pool of its own, closed with the loop."""
    port = _port(server.url)
    with FakeProvidersClient(server.url) as control:
        control.reset()
        control.script(ModelScript(MODEL, repeat_faults=True))
    client = AsyncOpenAI(policy=policy(server.openai_base))
    sessions: list[Any] = []

    async def one_loop() -> int:
        answers = await asyncio.gather(*(_create(client) for _ in range(5)))
        assert all(a.choices[0].message.content for a in answers)
        pool = transport(client)
        sessions.append(pool._session)
        return pool.connections()[1]

    for _ in range(3):
        idle = asyncio.run(one_loop())
        assert idle >= 1  # the loop's pool kept its connections while it ran
        assert sockets_to(port) == 0  # and closed them when the loop ended
    assert len({id(session) for session in sessions}) == 3
    assert all(session.closed for session in sessions)
    asyncio.run(client.close())
    assert sockets_to(port) == 0
