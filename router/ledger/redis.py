"""``redis://host:port/db`` (or ``rediss://``): budgets shared by every instance of a fleet.

All state changes run as Lua scripts (see ``_lua``), atomic on the server. This module only
builds their keys and arguments and reads their replies, once for both clients; the sync and
async classes differ by ``await``. Imported only when a redis URL is opened (``redis`` is the
``router-sdk[redis]`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Final, TypeVar

import redis
import redis.asyncio

from router.ledger import _lua, redact_url
from router.ledger._types import (
    SETTLED_KEEP_S,
    Hold,
    Line,
    Refusal,
    Report,
    Totals,
    check_amount,
    landed,
    new_hold_id,
    parse_key,
    to_nanos,
    to_nanos_down,
    to_nanos_up,
    to_usd,
)

_T = TypeVar("_T")

# The hash tag keeps every key in one Redis Cluster slot, so one script may touch them all.
DEFAULT_PREFIX: Final = "router:{ledger}:"
# Connections per ledger object. Past this, a call waits for a free connection instead of failing:
# a burst of a thousand concurrent requests must queue, not error. A URL may say ?max_connections=N.
MAX_CONNECTIONS: Final = 64
POOL_WAIT_S: Final = 30.0
# A server that stops answering (paused, a network partition) fails a call after this long
# instead of hanging the request; a URL may say ?socket_timeout=N.
SOCKET_TIMEOUT_S: Final = 5.0
CONNECT_TIMEOUT_S: Final = 2.0
# Spent keys outlive their window by this much: late settles still land, `router spend` still sees them.
KEEP_S: Final = 86_400


class _Codec:
    """Keys, arguments and replies: everything about a call except sending it."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def keys(self, lines: Iterable[Line]) -> list[str]:
        return [k for line in lines for k in self.line_keys(line.key)]

    def line_keys(self, key: str) -> tuple[str, str, str]:
        return f"{self.prefix}spent:{key}", f"{self.prefix}holds:{key}", f"{self.prefix}amounts:{key}"

    def figure_keys(self, keys: Iterable[str]) -> list[str]:
        """The keys SETTLE and TOTALS read per line: the three of ``line_keys`` and the estimated one."""
        return [k for key in keys for k in (*self.line_keys(key), f"{self.prefix}estimated:{key}")]

    def settled_key(self, hold: Hold) -> str:
        return f"{self.prefix}settled:{hold.id}"

    def warning_key(self, line: Line, threshold: float) -> str:
        return f"{self.prefix}warned:{line.key}|{threshold!r}"

    @staticmethod
    def warning_ttl(line: Line) -> int | None:
        """A whole window past the reset: the mark outlives its period, so it can never warn twice."""
        return None if line.resets_at is None else math.ceil(line.resets_at - line.period_start) + KEEP_S

    @staticmethod
    def spent_ttl(line: Line, now: float) -> int:
        """Seconds the spent key must live, counted from ``now`` (ours, not the server's); 0: forever."""
        if line.resets_at is None:
            return 0
        return max(math.ceil(line.resets_at - now), 0) + KEEP_S

    def reserve_args(self, hold: Hold, amount: int, now: float) -> list[Any]:
        limits = [to_nanos_down(line.limit_usd) for line in hold.lines]
        return [hold.id, amount, repr(hold.expires_at), repr(now), KEEP_S, *limits]

    def settle_keys(self, hold: Hold) -> list[str]:
        return [*self.figure_keys(line.key for line in hold.lines), self.settled_key(hold)]

    def settle_args(self, hold: Hold, cost: int, now: float, estimated: bool) -> list[Any]:
        keep = math.ceil(max(hold.expires_at - now, 0)) + SETTLED_KEEP_S
        ttls = (self.spent_ttl(line, now) for line in hold.lines)
        return [hold.id, cost, repr(now), "1" if estimated else "0", keep, *ttls]

    @staticmethod
    def reserve_reply(hold: Hold, reply: list[int]) -> Hold | Refusal:
        if reply[0] == 0:
            return hold
        index, spent, reserved = (int(x) for x in reply)
        return Refusal(hold.lines[index - 1], to_usd(spent), to_usd(reserved), hold.amount_usd)

    @staticmethod
    def totals_reply(keys: Sequence[str], reply: list[int]) -> dict[str, Totals]:
        return {
            key: Totals(
                to_usd(int(reply[3 * i])), to_usd(int(reply[3 * i + 1])), to_usd(int(reply[3 * i + 2]))
            )
            for i, key in enumerate(keys)
        }

    def line_key_of(self, redis_key: bytes | str) -> str | None:
        """The ``Line.key`` inside one of our spent/amounts keys; None for any other key."""
        text = redis_key.decode() if isinstance(redis_key, bytes) else redis_key
        for kind in ("spent:", "amounts:"):
            head = self.prefix + kind
            if text.startswith(head):
                return text[len(head) :]
        return None

    @staticmethod
    def report(keys: Sequence[str], totals: dict[str, Totals]) -> Report:
        rows: Report = []
        for key in keys:
            figures = totals[key]
            if figures.spent_usd or figures.reserved_usd:
                scope, window, start = parse_key(key)
                rows.append((scope, window, start, figures))
        return sorted(rows, key=lambda row: row[:3])

    def pattern(self) -> str:
        # SCAN's glob: escape the glob characters of the prefix (the hash tag has none, brackets may).
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return escaped + "*"


def _new_hold(
    lines: Sequence[Line], amount_usd: float, ttl_s: float, now: float, hold_id: str | None
) -> Hold:
    return Hold(hold_id or new_hold_id(), tuple(lines), amount_usd, now + ttl_s)


class RedisLedger:
    """A ledger on a Redis server; thread-safe (redis-py pools connections)."""

    def __repr__(self) -> str:
        return f"RedisLedger({self.url!r})"

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.url = redact_url(url)  # the password stays in the pool, never in a repr or message
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
        )
        self._redis = redis.Redis.from_pool(pool)
        self._codec = _Codec(prefix)
        self._reserve = self._redis.register_script(_lua.RESERVE)
        self._settle = self._redis.register_script(_lua.SETTLE)
        self._release = self._redis.register_script(_lua.RELEASE)
        self._totals = self._redis.register_script(_lua.TOTALS)

    def reserve(
        self,
        lines: Sequence[Line],
        amount_usd: float,
        *,
        ttl_s: float,
        now: float,
        hold_id: str | None = None,
    ) -> Hold | Refusal:
        check_amount("amount_usd", amount_usd)
        hold = _new_hold(lines, amount_usd, ttl_s, now, hold_id)
        if not lines:
            return hold
        args = self._codec.reserve_args(hold, to_nanos_up(amount_usd), now)
        return self._codec.reserve_reply(hold, self._reserve(keys=self._codec.keys(lines), args=args))

    def settle(
        self, hold: Hold, cost_usd: float, *, now: float, estimated: bool = False
    ) -> dict[str, Totals]:
        check_amount("cost_usd", cost_usd)
        if not hold.lines:
            return {}
        args = self._codec.settle_args(hold, to_nanos(cost_usd), now, estimated)
        reply = self._settle(keys=self._codec.settle_keys(hold), args=args)
        return self._codec.totals_reply([line.key for line in hold.lines], reply)

    def release(self, hold: Hold) -> None:
        if hold.lines:
            self._release(keys=self._codec.keys(hold.lines), args=[hold.id])

    def totals(self, lines: Sequence[Line], *, now: float) -> dict[str, Totals]:
        return self._totals_of([line.key for line in lines], now)

    def _totals_of(self, keys: Sequence[str], now: float) -> dict[str, Totals]:
        if not keys:
            return {}
        redis_keys = self._codec.figure_keys(keys)
        return self._codec.totals_reply(keys, self._totals(keys=redis_keys, args=[repr(now)]))

    def first_warning(self, line: Line, threshold: float) -> bool:
        key, ttl = self._codec.warning_key(line, threshold), self._codec.warning_ttl(line)
        return bool(self._redis.set(key, 1, nx=True, ex=ttl))

    def report(self, *, now: float) -> Report:
        found = {self._codec.line_key_of(k) for k in self._redis.scan_iter(match=self._codec.pattern())}
        keys = sorted(k for k in found if k is not None)
        return self._codec.report(keys, self._totals_of(keys, now))

    def close(self) -> None:
        self._redis.close()


class AsyncRedisLedger:
    """``RedisLedger`` for asyncio code, over ``redis.asyncio``."""

    def __repr__(self) -> str:
        return f"AsyncRedisLedger({self.url!r})"

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.url = redact_url(url)  # the password stays in the pool, never in a repr or message
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
        )
        self._redis = redis.asyncio.Redis.from_pool(pool)
        self._codec = _Codec(prefix)
        self._reserve = self._redis.register_script(_lua.RESERVE)
        self._settle = self._redis.register_script(_lua.SETTLE)
        self._release = self._redis.register_script(_lua.RELEASE)
        self._totals = self._redis.register_script(_lua.TOTALS)
        # Writes whose caller was cancelled, going on to land (referenced: the loop keeps only weak ones).
        self._landing: set[asyncio.Task[Any]] = set()

    def _spawn(self, work: Awaitable[_T]) -> asyncio.Task[_T]:
        """A write that goes on if its caller is cancelled: redis-py drops a connection whose reply
        was not read, so a cancelled script may or may not have run; finishing it says which."""
        task = asyncio.ensure_future(work)
        self._landing.add(task)
        task.add_done_callback(self._landing.discard)
        return task

    async def reserve(
        self,
        lines: Sequence[Line],
        amount_usd: float,
        *,
        ttl_s: float,
        now: float,
        hold_id: str | None = None,
    ) -> Hold | Refusal:
        check_amount("amount_usd", amount_usd)
        hold = _new_hold(lines, amount_usd, ttl_s, now, hold_id)
        if not lines:
            return hold
        args = self._codec.reserve_args(hold, to_nanos_up(amount_usd), now)
        asked = self._spawn(self._reserve(keys=self._codec.keys(lines), args=args))
        try:
            reply = await asyncio.shield(asked)
        except asyncio.CancelledError:
            # Cancelled while it was being made: once it lands, give it back.
            asked.add_done_callback(lambda done: self._release_orphan(hold, done))
            raise
        return self._codec.reserve_reply(hold, reply)

    def _release_orphan(self, hold: Hold, done: asyncio.Future[Any]) -> None:
        granted = not done.cancelled() and done.exception() is None
        if granted and self._codec.reserve_reply(hold, done.result()) is hold:
            self._spawn(self._quiet_release(hold))

    async def _quiet_release(self, hold: Hold) -> None:
        with contextlib.suppress(Exception):  # unreleased, it expires at its TTL
            await self.release(hold)

    async def settle(
        self, hold: Hold, cost_usd: float, *, now: float, estimated: bool = False
    ) -> dict[str, Totals]:
        check_amount("cost_usd", cost_usd)
        if not hold.lines:
            return {}
        args = self._codec.settle_args(hold, to_nanos(cost_usd), now, estimated)
        reply = await landed(self._spawn(self._settle(keys=self._codec.settle_keys(hold), args=args)))
        return self._codec.totals_reply([line.key for line in hold.lines], reply)

    async def release(self, hold: Hold) -> None:
        if hold.lines:
            await landed(self._spawn(self._release(keys=self._codec.keys(hold.lines), args=[hold.id])))

    async def totals(self, lines: Sequence[Line], *, now: float) -> dict[str, Totals]:
        return await self._totals_of([line.key for line in lines], now)

    async def _totals_of(self, keys: Sequence[str], now: float) -> dict[str, Totals]:
        if not keys:
            return {}
        redis_keys = self._codec.figure_keys(keys)
        return self._codec.totals_reply(keys, await self._totals(keys=redis_keys, args=[repr(now)]))

    async def first_warning(self, line: Line, threshold: float) -> bool:
        key, ttl = self._codec.warning_key(line, threshold), self._codec.warning_ttl(line)
        return bool(await self._redis.set(key, 1, nx=True, ex=ttl))

    async def report(self, *, now: float) -> Report:
        found = {self._codec.line_key_of(k) async for k in self._redis.scan_iter(match=self._codec.pattern())}
        keys = sorted(k for k in found if k is not None)
        return self._codec.report(keys, await self._totals_of(keys, now))

    async def close(self) -> None:
        while self._landing:  # cancelled callers' writes (and releases they start): let them land
            await asyncio.gather(*self._landing, return_exceptions=True)
        await self._redis.aclose()
