"""Where ``previous_response_id`` finds the conversation: the turns the router answered.

A turn is the whole conversation a response ended (the messages the model saw, without
``instructions``, plus its answer), keyed by the response id, kept ``TURN_TTL_S`` (30 days, as
OpenAI keeps stored responses).

- With no ledger named, turns are kept in this client's memory (the newest ``MEMORY_TURNS``).
- With ``ledger="sqlite:///…"`` (client or policy), in a ``router_turns`` table of that SQLite
  file: every process on the machine can continue a conversation.
- With ``ledger="redis://…"``, as Redis keys ``router:turn:<id>`` that expire by themselves: the
  whole fleet can.

The async client reads and writes SQLite in a worker thread and Redis with redis' asyncio client,
so a turn never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from router.ledger import parse_ledger_url

if TYPE_CHECKING:
    import sqlite3

TURN_TTL_S: Final = 30 * 24 * 3600.0
MEMORY_TURNS: Final = 1000
_REDIS_PREFIX: Final = "router:turn:"

Messages = list[dict[str, Any]]


class TurnStore(Protocol):
    def get(self, response_id: str) -> Messages | None: ...
    def put(self, response_id: str, messages: Messages) -> None: ...
    async def aget(self, response_id: str) -> Messages | None: ...
    async def aput(self, response_id: str, messages: Messages) -> None: ...
    def describe(self) -> str: ...
    def close(self) -> None: ...
    async def aclose(self) -> None: ...


class MemoryTurns:
    """The newest turns of this client, in a bounded map (an application that never continues a
    conversation must not grow without end)."""

    def __init__(self, capacity: int = MEMORY_TURNS, clock: Callable[[], float] = time.time) -> None:
        self._turns: OrderedDict[str, tuple[float, Messages]] = OrderedDict()
        self._capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, response_id: str) -> Messages | None:
        with self._lock:
            found = self._turns.get(response_id)
        if found is None or found[0] < self._clock():
            return None
        return json.loads(json.dumps(found[1]))  # type: ignore[no-any-return]  # a copy the caller may change

    def put(self, response_id: str, messages: Messages) -> None:
        with self._lock:
            self._turns[response_id] = (self._clock() + TURN_TTL_S, messages)
            while len(self._turns) > self._capacity:
                self._turns.popitem(last=False)

    async def aget(self, response_id: str) -> Messages | None:
        return self.get(response_id)

    async def aput(self, response_id: str, messages: Messages) -> None:
        self.put(response_id, messages)

    def describe(self) -> str:
        return f"this client's memory (the newest {self._capacity} turns)"

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class SqliteTurns:
    """Turns in a table of the ledger's SQLite file; a connection per call, as processes come and go."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        import sqlite3  # not at ``import router``

        connection = sqlite3.connect(self._path, timeout=30.0)
        if not self._ready:
            with connection:
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS router_turns "
                    "(id TEXT PRIMARY KEY, expires REAL NOT NULL, messages TEXT NOT NULL)"
                )
            self._ready = True
        return connection

    def get(self, response_id: str) -> Messages | None:
        connection = self._connect()
        try:
            row = connection.execute(
                "SELECT messages FROM router_turns WHERE id = ? AND expires > ?", (response_id, self._clock())
            ).fetchone()
        finally:
            connection.close()
        return None if row is None else json.loads(row[0])  # type: ignore[no-any-return]

    def put(self, response_id: str, messages: Messages) -> None:
        now = self._clock()
        connection = self._connect()
        try:
            with connection:
                connection.execute(
                    "INSERT OR REPLACE INTO router_turns (id, expires, messages) VALUES (?, ?, ?)",
                    (response_id, now + TURN_TTL_S, json.dumps(messages)),
                )
                connection.execute("DELETE FROM router_turns WHERE expires <= ?", (now,))
        finally:
            connection.close()

    async def aget(self, response_id: str) -> Messages | None:
        return await asyncio.to_thread(self.get, response_id)

    async def aput(self, response_id: str, messages: Messages) -> None:
        await asyncio.to_thread(self.put, response_id, messages)

    def describe(self) -> str:
        return f"the ledger's SQLite file {self._path}"

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class RedisTurns:
    """Turns as expiring Redis keys, shared by every process that names the same Redis."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._sync: Any = None
        self._async: Any = None

    def _client(self) -> Any:
        if self._sync is None:
            import redis

            self._sync = redis.Redis.from_url(self._url)
        return self._sync

    def _async_client(self) -> Any:
        if self._async is None:
            import redis.asyncio

            self._async = redis.asyncio.Redis.from_url(self._url)
        return self._async

    def get(self, response_id: str) -> Messages | None:
        raw = self._client().get(_REDIS_PREFIX + response_id)
        return None if raw is None else json.loads(raw)  # type: ignore[no-any-return]

    def put(self, response_id: str, messages: Messages) -> None:
        self._client().set(_REDIS_PREFIX + response_id, json.dumps(messages), ex=int(TURN_TTL_S))

    async def aget(self, response_id: str) -> Messages | None:
        raw = await self._async_client().get(_REDIS_PREFIX + response_id)
        return None if raw is None else json.loads(raw)  # type: ignore[no-any-return]

    async def aput(self, response_id: str, messages: Messages) -> None:
        await self._async_client().set(_REDIS_PREFIX + response_id, json.dumps(messages), ex=int(TURN_TTL_S))

    def describe(self) -> str:
        return "the ledger's Redis"

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        self.close()
        if self._async is not None:
            await self._async.aclose()
            self._async = None


def open_turns(ledger_url: str | None) -> TurnStore:
    """The store for a client whose ledger is ``ledger_url`` (None: no ledger named, memory)."""
    if ledger_url is None:
        return MemoryTurns()
    target = parse_ledger_url(ledger_url)
    if target.kind == "sqlite":
        return SqliteTurns(target.location)
    if target.kind == "redis":
        return RedisTurns(target.location)
    return MemoryTurns()
