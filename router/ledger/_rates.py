"""Fleet-wide TPM/RPM counters per deployment: sliding 60-s windows, in memory, SQLite or Redis.

A deployment's quota is the provider's, shared by every process that calls it; counting per process
lets N replicas send N times the limit (LiteLLM #27736, #40291). Here each request *claims* a slot
atomically before it is sent: the claim is the earliest time at or after now when the window ending
then holds fewer than ``rpm`` requests and room for the request's tokens under ``tpm``. Claims are
handed out in order (never before the latest one), so no 60-s window ever holds more than the
limits, whichever process claimed. A claim in the future is a wait (``when_all_limited: wait``);
with ``max_wait_s=0`` a full deployment is refused instead, and the request goes elsewhere.

- ``MemoryRates``: this process (the default; a ``memory://`` ledger or none);
- ``SqliteRates``: processes on one machine, in ``<ledger file>.rates`` beside a SQLite ledger;
- ``RedisRates``: machines sharing a Redis ledger, one Lua script per claim.

Times are Unix seconds from the client's ``wall_clock`` (injectable): monotonic clocks differ
between machines. Providers' ``x-ratelimit-remaining-*`` headers are folded in by ``observe``:
what the provider says is used (by anyone on the key) becomes placeholder claims that leave the
window when the provider's counter resets.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from router.ledger import DEFAULT_BUSY_TIMEOUT_S
from router.ledger._types import WouldWait

if TYPE_CHECKING:
    import sqlite3

WINDOW_S: Final = 60.0
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Claim:
    """A slot in a deployment's window: granted (send after ``wait_s``), or refused (free in ``wait_s``)."""

    granted: bool
    wait_s: float
    entry: str = ""


class Rates(Protocol):
    # What the backend raises when it cannot answer (its store is down or locked).
    errors: tuple[type[BaseException], ...]

    def claim(
        self, key: str, *, rpm: int | None, tpm: int | None, tokens: int, now: float, max_wait_s: float
    ) -> Claim: ...

    def settle(self, key: str, entry: str, tokens: int) -> None: ...

    def usage(self, keys: Sequence[str], now: float) -> dict[str, tuple[int, int]]: ...

    def observe(self, key: str, used_requests: int, used_tokens: int, until: float, now: float) -> None: ...

    def close(self) -> None: ...


def schedule(
    entries: Sequence[tuple[Any, ...]], now: float, rpm: int | None, tpm: int | None, tokens: int
) -> float:
    """The earliest time >= now (and >= the latest claim) at which a request of ``tokens`` fits.

    ``entries`` are the claims (time, tokens, ...) still in the window at ``now``, oldest first. A
    window ending at t holds the claims made after t - 60. A request larger than ``tpm`` waits for an
    empty window rather than never fitting.
    """
    at = now
    if entries:
        at = max(at, entries[-1][0])
    if rpm is not None and len(entries) >= rpm:
        at = max(at, entries[len(entries) - rpm][0] + WINDOW_S)
    if tpm is not None:
        need = min(tokens, tpm)
        total = sum(e[1] for e in entries)
        for entry in entries:
            if total + need <= tpm:
                break
            total -= entry[1]
            at = max(at, entry[0] + WINDOW_S)
    return at


def _fits_now(
    count: int, total: int, last: float | None, now: float, rpm: int | None, tpm: int | None, tokens: int
) -> float | None:
    """``schedule``'s answer from the window's count, token total and latest claim alone, when the
    request fits at once (the common case: no claims need reading); None when it does not."""
    if rpm is not None and count >= rpm:
        return None
    if tpm is not None and total + min(tokens, tpm) > tpm:
        return None
    return now if last is None else max(now, last)


def _decide(
    entries: Sequence[tuple[Any, ...]],
    now: float,
    rpm: int | None,
    tpm: int | None,
    tokens: int,
    max_wait_s: float,
) -> tuple[bool, float]:
    at = schedule(entries, now, rpm, tpm, tokens)
    wait = at - now
    return wait <= max_wait_s, at


class MemoryRates:
    """Counters of this process only."""

    errors: tuple[type[BaseException], ...] = ()
    blocking = False  # no I/O: the async client claims on its loop (SQLite and Redis go to a thread)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, list[tuple[float, int, str]]] = {}
        self._totals: dict[str, int] = {}  # tokens of each key's claims in the window, kept as they change
        self._ids = 0

    def _live(self, key: str, now: float) -> list[tuple[float, int, str]]:
        entries = self._entries.setdefault(key, [])
        cut = now - WINDOW_S
        if entries and entries[0][0] <= cut:
            end = bisect.bisect_right(entries, cut, key=lambda e: e[0])
            self._totals[key] = self._totals.get(key, 0) - sum(e[1] for e in entries[:end])
            del entries[:end]
        return entries

    def claim(
        self, key: str, *, rpm: int | None, tpm: int | None, tokens: int, now: float, max_wait_s: float
    ) -> Claim:
        with self._lock:
            entries = self._live(key, now)
            total = self._totals.get(key, 0)
            last = entries[-1][0] if entries else None
            at = _fits_now(len(entries), total, last, now, rpm, tpm, tokens)
            if at is None:
                granted, at = _decide(entries, now, rpm, tpm, tokens, max_wait_s)
                if not granted:
                    return Claim(False, at - now)
            elif at - now > max_wait_s:
                return Claim(False, at - now)
            self._ids += 1
            entry = f"m{self._ids}"
            entries.append((at, tokens, entry))  # never before the latest claim: still sorted
            self._totals[key] = total + tokens
            return Claim(True, at - now, entry)

    def settle(self, key: str, entry: str, tokens: int) -> None:
        with self._lock:
            entries = self._entries.get(key, [])
            for index in range(len(entries) - 1, -1, -1):  # newest first: the claim is recent
                at, before, name = entries[index]
                if name == entry:
                    entries[index] = (at, tokens, name)
                    self._totals[key] = self._totals.get(key, 0) + tokens - before
                    return

    def usage(self, keys: Sequence[str], now: float) -> dict[str, tuple[int, int]]:
        with self._lock:
            out = {}
            for key in keys:
                entries = self._live(key, now)
                if not entries or entries[-1][0] <= now:  # no claim waits for a later slot: all were sent
                    out[key] = (len(entries), self._totals.get(key, 0))
                    continue
                sent = bisect.bisect_right(entries, now, key=lambda e: e[0])  # not the claims still waiting
                waiting = sum(e[1] for e in entries[sent:])
                out[key] = (sent, self._totals.get(key, 0) - waiting)
            return out

    def observe(self, key: str, used_requests: int, used_tokens: int, until: float, now: float) -> None:
        with self._lock:
            entries = self._live(key, now)
            at = max(until - WINDOW_S, now - WINDOW_S + 1e-6)
            for _ in range(used_requests):
                self._ids += 1
                entries.append((at, 0, f"m{self._ids}"))
            if used_tokens:
                self._ids += 1
                entries.append((at, used_tokens, f"m{self._ids}"))
                self._totals[key] = self._totals.get(key, 0) + used_tokens
            entries.sort(key=lambda e: e[0])  # placeholders go back in time: restore the order

    def close(self) -> None:
        """Nothing to release."""


# Each key's claim count and token total, kept by triggers in the claims' own transactions: a claim
# reads two numbers instead of aggregating its window (which held thousands of rows at high rpm).
_SQLITE_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS rate_claims"
    " (key TEXT NOT NULL, at REAL NOT NULL, tokens INTEGER NOT NULL, entry TEXT PRIMARY KEY)",
    "CREATE INDEX IF NOT EXISTS rate_claims_key_at ON rate_claims (key, at)",
    "CREATE TABLE IF NOT EXISTS rate_totals"
    " (key TEXT PRIMARY KEY, n INTEGER NOT NULL, tokens INTEGER NOT NULL) WITHOUT ROWID",
)
_SQLITE_TRIGGERS: Final = (
    "CREATE TRIGGER rate_claims_added AFTER INSERT ON rate_claims BEGIN"
    " INSERT INTO rate_totals VALUES (NEW.key, 1, NEW.tokens)"
    " ON CONFLICT (key) DO UPDATE SET n = n + 1, tokens = tokens + excluded.tokens; END",
    "CREATE TRIGGER rate_claims_removed AFTER DELETE ON rate_claims BEGIN"
    " UPDATE rate_totals SET n = n - 1, tokens = tokens - OLD.tokens WHERE key = OLD.key; END",
    "CREATE TRIGGER rate_claims_settled AFTER UPDATE OF tokens ON rate_claims BEGIN"
    " UPDATE rate_totals SET tokens = tokens - OLD.tokens + NEW.tokens WHERE key = OLD.key; END",
    # Files written before the totals existed: their claims counted once, with the triggers.
    "INSERT OR REPLACE INTO rate_totals SELECT key, count(*), sum(tokens) FROM rate_claims GROUP BY key",
)
# A claim that fits now, in one statement (one implicit write transaction, which takes the write lock
# before it reads: as atomic across processes as BEGIN IMMEDIATE, without four more round trips). The
# window is the key's totals less its expired claims (pruned now and then, so few); no row inserted
# means the request does not fit at once, and ``_full`` works out when it would.
_SQLITE_FAST_CLAIM: Final = """
INSERT INTO rate_claims (key, at, tokens, entry)
SELECT :key, max(:now, coalesce(w.last, :now)), :tokens, :entry
FROM (
  SELECT coalesce(t.n, 0) - e.n AS n, coalesce(t.tokens, 0) - e.tokens AS total,
    (SELECT max(at) FROM rate_claims WHERE key = :key) AS last
  FROM (SELECT count(*) AS n, coalesce(sum(tokens), 0) AS tokens
        FROM rate_claims WHERE key = :key AND at <= :cut) AS e
  LEFT JOIN rate_totals AS t ON t.key = :key
) AS w
WHERE (:rpm IS NULL OR w.n < :rpm)
  AND (:tpm IS NULL OR w.total + min(:tokens, :tpm) <= :tpm)
  AND max(:now, coalesce(w.last, :now)) - :now <= :max_wait
RETURNING at
"""
# This window's (requests, tokens) of a key: its totals less the claims expired or still waiting.
_SQLITE_USAGE: Final = """
SELECT t.key,
  t.n - (SELECT count(*) FROM rate_claims AS c WHERE c.key = t.key AND c.at <= :cut)
      - (SELECT count(*) FROM rate_claims AS c WHERE c.key = t.key AND c.at > :now),
  t.tokens - (SELECT coalesce(sum(tokens), 0) FROM rate_claims AS c WHERE c.key = t.key AND c.at <= :cut)
           - (SELECT coalesce(sum(tokens), 0) FROM rate_claims AS c WHERE c.key = t.key AND c.at > :now)
FROM rate_totals AS t WHERE t.key IN ({marks})
"""
# How often a handle deletes a key's expired claims (they are excluded meanwhile, not counted). Every
# claim and read counts the expired claims still stored, to leave them out: at 600 claims a second,
# once the window was full, five seconds of them made a read, a claim and a settle cost 986 µs of
# CPU; half a second, 256 µs (benchmarks: docs/deployments.md). Deleting them costs the same
# whatever the period: the rows go one by one, with their totals' trigger.
_PRUNE_EVERY_S: Final = 0.5


class SqliteRates:
    """Counters shared by the processes of one machine, in a SQLite file.

    A claim that fits at once is one ``INSERT … SELECT … RETURNING`` (its own write transaction); a
    full window takes a ``BEGIN IMMEDIATE`` transaction that reads the claims to schedule the slot.
    Per-key totals kept by triggers spare both from aggregating the window.
    """

    def __init__(self, path: str | os.PathLike[str], busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        import sqlite3  # only a SQLite ledger gets here

        from router.ledger.sqlite import WAL_SIZE_LIMIT, Checkpointer, is_locked

        self.path = Path(path)
        self.errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)
        # Kept here, not imported in ``without_waiting``: it runs on every claim of the event loop.
        self._operational_error, self._is_locked = sqlite3.OperationalError, is_locked
        # Two connections, each with its lock (re-entrant: ``without_waiting`` holds one around calls
        # of the methods, which take it too): one that waits out another process's write lock (the
        # sync client, the async client's worker thread), and one that never waits (the async
        # client's event loop, which hands the call to the thread instead when the file is locked).
        # Apart, so that a call waiting on the thread does not send every other one there too.
        self._waiting_lock, self._now_lock = threading.RLock(), threading.RLock()
        self._waiting = sqlite3.connect(
            self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._waiting.execute("PRAGMA journal_mode=WAL")
        self._now_db = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        self._local = threading.local()  # ``now``: this thread is inside ``without_waiting``
        for db in (self._waiting, self._now_db):
            # Counters, not money: a claim lost to a power cut only frees a slot early. No fsync per
            # claim (FULL costs milliseconds a request); WAL with NORMAL is still safe against a crashed
            # process. No checkpoint inside a claim's commit either (its fsyncs would stall the event
            # loop): a thread copies the WAL back, as for the ledger.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA wal_autocheckpoint=0")
            db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        self._pruned: dict[str, float] = {}  # when this handle last deleted each key's expired claims
        self._transaction(self._create)
        self._checkpointer = Checkpointer(self.path)
        weakref.finalize(self, self._checkpointer.stop)  # a handle dropped unclosed stops its thread too

    def without_waiting(self, call: Callable[[], _T]) -> _T:
        """Run ``call`` (calls of this object's methods) only if it needs no wait for a lock (this
        object's, or another process's write lock on the file); else raise ``WouldWait``. What was
        refused changed nothing, but for expired claims pruned: ``call`` may be made again elsewhere
        if each of its steps may be repeated (a claim, a read, a settle; not ``observe``)."""
        if not self._now_lock.acquire(blocking=False):  # another event loop's call, on another thread
            raise WouldWait
        try:
            self._local.now = True
            try:
                return call()
            except self._operational_error as exc:
                if self._is_locked(exc):
                    raise WouldWait from exc
                raise
            finally:
                self._local.now = False
        finally:
            self._now_lock.release()

    @property
    def _db(self) -> sqlite3.Connection:
        return self._now_db if getattr(self._local, "now", False) else self._waiting

    @property
    def _lock(self) -> AbstractContextManager[bool]:
        return self._now_lock if getattr(self._local, "now", False) else self._waiting_lock

    def _create(self) -> None:
        for statement in _SQLITE_SCHEMA:
            self._db.execute(statement)
        found = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'rate_claims_added'"
        ).fetchone()
        if found is None:  # under BEGIN IMMEDIATE: one process adds them, the others see them
            for statement in _SQLITE_TRIGGERS:
                self._db.execute(statement)

    def _transaction(self, work: Any) -> Any:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def claim(
        self, key: str, *, rpm: int | None, tpm: int | None, tokens: int, now: float, max_wait_s: float
    ) -> Claim:
        entry = os.urandom(8).hex()
        cut = now - WINDOW_S
        arguments = {
            "key": key,
            "now": now,
            "cut": cut,
            "tokens": tokens,
            "entry": entry,
            "rpm": rpm,
            "tpm": tpm,
            "max_wait": max_wait_s,
        }
        with self._lock:
            if now - self._pruned.get(key, -math.inf) >= _PRUNE_EVERY_S:
                self._pruned[key] = now
                self._db.execute("DELETE FROM rate_claims WHERE key = ? AND at <= ?", (key, cut))
            rows = self._db.execute(_SQLITE_FAST_CLAIM, arguments).fetchall()
        if rows:
            return Claim(True, float(rows[0][0]) - now, entry)
        claim: Claim = self._transaction(lambda: self._full(key, rpm, tpm, tokens, now, max_wait_s, entry))
        return claim

    def _full(
        self,
        key: str,
        rpm: int | None,
        tpm: int | None,
        tokens: int,
        now: float,
        max_wait_s: float,
        entry: str,
    ) -> Claim:
        """A claim on a window that was full a moment ago: when a slot frees, from the claims themselves."""
        self._db.execute("DELETE FROM rate_claims WHERE key = ? AND at <= ?", (key, now - WINDOW_S))
        rows = self._db.execute(
            "SELECT at, tokens FROM rate_claims WHERE key = ? ORDER BY at", (key,)
        ).fetchall()
        granted, at = _decide(rows, now, rpm, tpm, tokens, max_wait_s)
        if not granted:
            return Claim(False, at - now)
        self._db.execute("INSERT INTO rate_claims VALUES (?, ?, ?, ?)", (key, at, tokens, entry))
        return Claim(True, at - now, entry)

    def settle(self, key: str, entry: str, tokens: int) -> None:
        with self._lock:
            self._db.execute("UPDATE rate_claims SET tokens = ? WHERE entry = ?", (tokens, entry))

    def usage(self, keys: Sequence[str], now: float) -> dict[str, tuple[int, int]]:
        names = {f"k{i}": key for i, key in enumerate(keys)}
        query = _SQLITE_USAGE.format(marks=", ".join(f":{name}" for name in names))
        with self._lock:
            rows = self._db.execute(query, {"cut": now - WINDOW_S, "now": now, **names}).fetchall()
        found = {key: (int(count), int(tokens)) for key, count, tokens in rows}
        return {key: found.get(key, (0, 0)) for key in keys}

    def claims(self, key: str) -> list[float]:
        """Every claim time still stored for ``key``, oldest first (for tests and ``router models``)."""
        with self._lock:
            rows = self._db.execute("SELECT at FROM rate_claims WHERE key = ? ORDER BY at", (key,))
            return [float(r[0]) for r in rows]

    def observe(self, key: str, used_requests: int, used_tokens: int, until: float, now: float) -> None:
        at = max(until - WINDOW_S, now - WINDOW_S + 1e-6)
        rows = [(key, at, 0, os.urandom(8).hex()) for _ in range(used_requests)]
        if used_tokens:
            rows.append((key, at, used_tokens, os.urandom(8).hex()))
        if rows:
            self._transaction(
                lambda: self._db.executemany("INSERT INTO rate_claims VALUES (?, ?, ?, ?)", rows)
            )

    def close(self) -> None:
        self._checkpointer.stop()
        self._now_db.close()
        self._waiting.close()


# Redis keeps each deployment's claims in a sorted set (score: the claim's time) and their tokens in a
# hash, with the hash's field ``~total`` the tokens of every claim in the set, kept by the scripts as
# claims come, go and are settled. A claim, a settle and a read then touch only what changed (the
# claims that expired, the ones still waiting for their slot), not the window: reading the whole
# window on every request cost the client ~15 ms of CPU a request at 50 requests a second, and a
# window past ~8,000 claims could not be read by one script at all (Lua's unpack limit).
_LUA_HELPERS: Final = """
local function each_chunk(ids, work)
  for s = 1, #ids, 1000 do work(unpack(ids, s, math.min(s + 999, #ids))) end
end
local function tokens_of(hkey, ids)
  local sum = 0
  each_chunk(ids, function(...)
    for _, used in ipairs(redis.call('HMGET', hkey, ...)) do sum = sum + (tonumber(used) or 0) end
  end)
  return sum
end
local function prune(zkey, hkey, cut)
  local old = redis.call('ZRANGEBYSCORE', zkey, '-inf', cut)
  if #old > 0 then
    local gone = tokens_of(hkey, old)
    redis.call('ZREMRANGEBYSCORE', zkey, '-inf', cut)
    each_chunk(old, function(...) redis.call('HDEL', hkey, ...) end)
    if gone ~= 0 then redis.call('HINCRBY', hkey, '~total', -gone) end
  end
end
local function total_of(hkey)
  return tonumber(redis.call('HGET', hkey, '~total') or '0')
end
"""
# One claim, atomic in Redis: prune the window, schedule as ``schedule`` does, add the claim.
# KEYS: the claims' sorted set, their tokens' hash. ARGV: now, window, rpm (0: none), tpm (0: none),
# tokens, max_wait_s, entry. Numbers go back as strings (Lua numbers would be truncated).
_CLAIM_LUA: Final = (
    _LUA_HELPERS
    + """
local zkey, hkey = KEYS[1], KEYS[2]
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, tpm, tokens = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local max_wait, entry = tonumber(ARGV[6]), ARGV[7]
prune(zkey, hkey, now - window)
local n = redis.call('ZCARD', zkey)
local at = now
if n > 0 then
  local last = tonumber(redis.call('ZRANGE', zkey, -1, -1, 'WITHSCORES')[2])
  if last > at then at = last end
end
if rpm > 0 and n >= rpm then
  local free = tonumber(redis.call('ZRANGE', zkey, n - rpm, n - rpm, 'WITHSCORES')[2]) + window
  if free > at then at = free end
end
if tpm > 0 then
  local total, need, start = total_of(hkey), math.min(tokens, tpm), 0
  while total + need > tpm and start < n do
    local flat = redis.call('ZRANGE', zkey, start, start + 999, 'WITHSCORES')
    local ids = {}
    for i = 1, #flat / 2 do ids[i] = flat[2 * i - 1] end
    local used = redis.call('HMGET', hkey, unpack(ids))
    for i = 1, #ids do
      if total + need <= tpm then break end
      total = total - (tonumber(used[i]) or 0)
      local free = tonumber(flat[2 * i]) + window
      if free > at then at = free end
    end
    start = start + 1000
  end
end
if at - now > max_wait then return {0, tostring(at - now)} end
redis.call('ZADD', zkey, at, entry)
redis.call('HSET', hkey, entry, tokens)
redis.call('HINCRBY', hkey, '~total', tokens)
local ttl = math.ceil((at - now + window) * 1000) + 1000
redis.call('PEXPIRE', zkey, ttl)
redis.call('PEXPIRE', hkey, ttl)
return {1, tostring(at - now)}
"""
)
# A claim's tokens corrected to what the call used. KEYS: the hash. ARGV: entry, tokens.
_SETTLE_LUA: Final = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[1], '~total', tonumber(ARGV[2]) - tonumber(old))
end
return 0
"""
# Each deployment's (requests, tokens) sent in the window: its totals less the claims still waiting
# for their slot. KEYS: set, hash, set, hash, ... ARGV: now, window.
_USAGE_LUA: Final = (
    _LUA_HELPERS
    + """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for k = 1, #KEYS, 2 do
  local zkey, hkey = KEYS[k], KEYS[k + 1]
  prune(zkey, hkey, now - window)
  local waiting = redis.call('ZRANGEBYSCORE', zkey, '(' .. ARGV[1], '+inf')
  out[#out + 1] = redis.call('ZCARD', zkey) - #waiting
  out[#out + 1] = tostring(total_of(hkey) - tokens_of(hkey, waiting))
end
return out
"""
)

# What the provider reports used: placeholder claims at ``at`` (the last one carrying the tokens).
# KEYS: set, hash. ARGV: at, ttl_ms, tokens, entries... A key's expiry is only ever lengthened here: a
# claim waiting for a later slot set a longer one.
_OBSERVE_LUA: Final = """
local zkey, hkey = KEYS[1], KEYS[2]
local at, ttl, used = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV do
  redis.call('ZADD', zkey, at, ARGV[i])
  redis.call('HSET', hkey, ARGV[i], 0)
end
if used > 0 then
  redis.call('HSET', hkey, ARGV[#ARGV], used)
  redis.call('HINCRBY', hkey, '~total', used)
end
for _, k in ipairs(KEYS) do
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
return 0
"""


class RedisRates:
    """Counters shared through Redis by every machine of a fleet.

    The keys are versioned (``router:rate:v2:``): the running token total is kept by this version's
    scripts only, so a router of an earlier version counts in its own keys while a fleet is upgraded.
    """

    _PREFIX: Final = "router:rate:v2:"

    def __init__(self, url: str) -> None:
        import redis  # the redis extra; only a redis:// ledger gets here

        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._claim = self._redis.register_script(_CLAIM_LUA)
        self._settle = self._redis.register_script(_SETTLE_LUA)
        self._usage = self._redis.register_script(_USAGE_LUA)
        self._observe = self._redis.register_script(_OBSERVE_LUA)

    def _keys(self, key: str) -> list[str]:
        return [f"{self._PREFIX}{key}", f"{self._PREFIX}{key}:tokens"]

    def claim(
        self, key: str, *, rpm: int | None, tpm: int | None, tokens: int, now: float, max_wait_s: float
    ) -> Claim:
        entry = os.urandom(8).hex()
        args: list[str | int] = [repr(now), repr(WINDOW_S), rpm or 0, tpm or 0, tokens, repr(max_wait_s)]
        reply: Any = self._claim(keys=self._keys(key), args=[*args, entry])
        granted, wait = reply
        return Claim(bool(int(granted)), float(wait), entry if int(granted) else "")

    def settle(self, key: str, entry: str, tokens: int) -> None:
        self._settle(keys=self._keys(key)[1:], args=[entry, tokens])

    def usage(self, keys: Sequence[str], now: float) -> dict[str, tuple[int, int]]:
        if not keys:
            return {}
        reply: Any = self._usage(
            keys=[k for key in keys for k in self._keys(key)], args=[repr(now), repr(WINDOW_S)]
        )
        return {key: (int(reply[2 * i]), int(reply[2 * i + 1])) for i, key in enumerate(keys)}

    def claims(self, key: str) -> list[float]:
        pairs: Any = self._redis.zrange(self._keys(key)[0], 0, -1, withscores=True)
        return [float(score) for _, score in pairs]

    def observe(self, key: str, used_requests: int, used_tokens: int, until: float, now: float) -> None:
        at = max(until - WINDOW_S, now - WINDOW_S + 1e-6)
        entries = [os.urandom(8).hex() for _ in range(used_requests + (1 if used_tokens else 0))]
        if entries:
            ttl = math.ceil((at - now + WINDOW_S) * 1000) + 1000
            self._observe(keys=self._keys(key), args=[repr(at), ttl, used_tokens, *entries])

    def close(self) -> None:
        self._redis.close()


def open_rates(ledger_url: str | None) -> Rates:
    """Counters beside the ledger a client names: SQLite (``<file>.rates``), Redis, else this process."""
    if ledger_url is None:
        return MemoryRates()
    from router.ledger import parse_ledger_url

    target = parse_ledger_url(ledger_url)
    if target.kind == "sqlite":
        path = Path(target.location)
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteRates(f"{path}.rates", target.busy_timeout_s)
    if target.kind == "redis":
        return RedisRates(target.location)
    return MemoryRates()


# --------------------------------------------------------------------------- provider headers

_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_s(text: str) -> float | None:
    """OpenAI's reset durations (``1s``, ``6m0s``, ``20ms``) or plain seconds, else None."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)


@dataclass(frozen=True, slots=True)
class ProviderUsage:
    """What a provider's ``x-ratelimit-*`` headers say is used of a deployment's quota, and until when."""

    requests: int
    tokens: int
    reset_s: float


def provider_usage(
    headers: Mapping[str, str], rpm: int | None, tpm: int | None, counted: tuple[int, int]
) -> ProviderUsage | None:
    """The usage beyond what our own claims ``counted`` (requests, tokens) that the provider reports.

    OpenAI and Azure send ``x-ratelimit-remaining-requests``/``-tokens`` with ``x-ratelimit-reset-*``;
    the provider's counter covers every client of the key, ours only the fleet.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    extra_requests = extra_tokens = 0
    resets = []
    for kind, limit, ours in (("requests", rpm, counted[0]), ("tokens", tpm, counted[1])):
        remaining = lower.get(f"x-ratelimit-remaining-{kind}")
        if limit is None or remaining is None:
            continue
        try:
            left = int(float(remaining))
        except ValueError:
            continue
        extra = max(limit - left - ours, 0)
        if kind == "requests":
            extra_requests = extra
        else:
            extra_tokens = extra
        reset = duration_s(lower.get(f"x-ratelimit-reset-{kind}", "")) if extra else None
        resets.append(reset if reset is not None else WINDOW_S)
    if not (extra_requests or extra_tokens):
        return None
    return ProviderUsage(extra_requests, extra_tokens, max(resets))
