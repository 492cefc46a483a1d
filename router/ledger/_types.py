"""What every ledger speaks: budget lines, holds, refusals, totals, and the two protocols.

Money crosses this boundary as float dollars and is stored as integer nano-dollars, so that a
million settles of $0.0001851 add up to exactly $185.10 in every backend (floats drift; Redis's
Lua numbers are doubles, exact for integers up to 2**53 nano-dollars, about $9 million).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from providers.errors import RouterError

_T = TypeVar("_T")

NANOS_PER_USD: Final = 1_000_000_000
# A thousandth of a nano-dollar: float noise such as 0.3 * 1e9 == 300000000.00000006 is not a unit.
_NOISE: Final = 1e-3


# How long a settled hold id is remembered after its reservation would have expired: a journal
# replayed later than this (a ledger down for a week) could count a charge twice.
SETTLED_KEEP_S: Final = 7 * 86_400


def to_nanos(usd: float) -> int:
    """An exact cost, to the nearest nano-dollar."""
    return round(usd * NANOS_PER_USD)


def to_nanos_up(usd: float) -> int:
    """A reservation: never less than the worst case it stands for."""
    return math.ceil(usd * NANOS_PER_USD - _NOISE)


def to_nanos_down(usd: float) -> int:
    """A limit: never more than the policy allows."""
    return math.floor(usd * NANOS_PER_USD + _NOISE)


def to_usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD


def new_hold_id() -> str:
    """The time in nanoseconds, then 64 random bits: unique across processes and machines without
    coordination, and in the order they were made.

    The order is what a SQLite ledger writes: a settle's id goes into an index (``settled``) that
    grows all day. Random ids land each on a page of their own, so a batch of 30 settles dirtied
    about 30 pages that the commit copies to the WAL (two writes each) and the checkpoint back;
    ids in time order all land on the index's last page or two. The random part comes from the OS
    (not ``random``, which a program may seed: two processes seeded alike on a coarse clock would
    make the same ids, and a settle of one would pass for a replay of the other's).
    """
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


class LedgerError(RouterError):
    """The budget ledger failed: it could not be opened, or a read or write on it failed.

    Every backend error (``sqlite3.*``, ``redis.exceptions.*``, ``OSError``) reaches callers as
    this, naming the ledger with its credentials redacted (``ledger``) and saying what to do; the
    backend's own exception is the ``__cause__``. A budgeted request then fails closed or goes on
    unchecked, as the budget's ``on_ledger_error`` says; a charge that cannot be written is
    journaled, never dropped (docs/budgets.md, "When the ledger fails").
    """

    def __init__(self, message: str, *, ledger: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.ledger = ledger


@dataclass(frozen=True, slots=True)
class Line:
    """One cap a request counts against, in its current window."""

    scope: str  # the feature name, or "*" for the policy-wide budget
    window: str  # "hour" | "day" | "week" | "month" | "total"
    # Unix seconds of the window's start (UTC calendar; weeks start Monday); 0.0 for total
    period_start: float
    resets_at: float | None  # Unix seconds of the next window's start; None for total
    limit_usd: float

    @property
    def key(self) -> str:
        """Names the (scope, window, period); not the limit, so raising a limit keeps what was spent."""
        return f"{self.scope}|{self.window}|{int(self.period_start)}"


def parse_key(key: str) -> tuple[str, str, float]:
    """``Line.key`` back into (scope, window, period_start); a scope may itself contain ``|``."""
    scope, window, start = key.rsplit("|", 2)
    return scope, window, float(start)


@dataclass(frozen=True, slots=True)
class Totals:
    spent_usd: float
    reserved_usd: float  # live (unexpired) reservations only
    # The part of spent_usd charged as an estimate (a call cancelled after it was sent): the
    # conservative worst case, since the provider's own figure never arrived.
    estimated_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation: ``amount_usd`` set aside on every line until settled, released or expired."""

    id: str
    lines: tuple[Line, ...]
    amount_usd: float
    expires_at: float  # Unix seconds


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation did not fit: the first line that refused it, with its figures at that moment."""

    line: Line
    spent_usd: float
    reserved_usd: float
    amount_usd: float

    @property
    def blocked_by_reservations(self) -> bool:
        """Settled spend leaves room: waiting for in-flight reservations to settle may help."""
        return to_nanos(self.spent_usd) + to_nanos_up(self.amount_usd) <= to_nanos_down(self.line.limit_usd)


Report = list[tuple[str, str, float, Totals]]


class Ledger(Protocol):
    """Spend and reservations per budget line; every method is atomic, across processes too."""

    def reserve(
        self,
        lines: Sequence[Line],
        amount_usd: float,
        *,
        ttl_s: float,
        now: float,
        hold_id: str | None = None,
    ) -> Hold | Refusal:
        """Set ``amount_usd`` aside on every line, or on none: refused when spent + live reserved +
        amount would pass a line's limit. Expired reservations no longer count.

        ``hold_id``: the id the hold gets (a fresh one when None). A caller that chose it before
        asking can give the hold back (``release``) even when it was interrupted before the answer
        reached it; releasing an id that was never reserved does nothing."""
        ...

    def settle(
        self, hold: Hold, cost_usd: float, *, now: float, estimated: bool = False
    ) -> dict[str, Totals]:
        """Drop the reservation (if it has not expired) and add the cost to every line of it, once:
        settling a hold id a second time (a journal replayed after a reply was lost) adds nothing.
        ``estimated``: the cost is a conservative estimate, also counted in ``estimated_usd``.
        Returns the totals afterwards, keyed by ``Line.key``."""
        ...

    def release(self, hold: Hold) -> None:
        """Drop the reservation and spend nothing (the call failed)."""
        ...

    def totals(self, lines: Sequence[Line], *, now: float) -> dict[str, Totals]: ...

    def first_warning(self, line: Line, threshold: float) -> bool:
        """True exactly once per (line.key, threshold), whichever process asks first."""
        ...

    def report(self, *, now: float) -> Report:
        """(scope, window, period_start, totals) of every period with spend or live reservations."""
        ...

    def close(self) -> None: ...


class AsyncLedger(Protocol):
    """``Ledger`` for asyncio code: the same methods and meaning, awaited."""

    async def reserve(
        self,
        lines: Sequence[Line],
        amount_usd: float,
        *,
        ttl_s: float,
        now: float,
        hold_id: str | None = None,
    ) -> Hold | Refusal: ...

    async def settle(
        self, hold: Hold, cost_usd: float, *, now: float, estimated: bool = False
    ) -> dict[str, Totals]: ...

    async def release(self, hold: Hold) -> None: ...

    async def totals(self, lines: Sequence[Line], *, now: float) -> dict[str, Totals]: ...

    async def first_warning(self, line: Line, threshold: float) -> bool: ...

    async def report(self, *, now: float) -> Report: ...

    async def close(self) -> None: ...


async def landed(future: asyncio.Future[_T]) -> _T:
    """Await a ledger write that must complete even if its caller is cancelled (a settle, a
    release): the caller gets its CancelledError at once, the write goes on and lands."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(_consume)  # its error, if any, has nobody left to raise it to
        raise


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def check_amount(name: str, usd: float) -> None:
    if not math.isfinite(usd) or usd < 0:
        raise ValueError(f"{name} must be a finite, non-negative number of dollars, got {usd!r}")


class InlineAsyncLedger:
    """A sync ledger behind the async protocol, called inline on the event loop.

    Only for a backend that never waits (memory): handing each call to a thread would cost more
    than the call itself. A backend that may wait on a lock or the network is a ``ThreadedAsyncLedger``.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.sync = ledger

    async def reserve(
        self,
        lines: Sequence[Line],
        amount_usd: float,
        *,
        ttl_s: float,
        now: float,
        hold_id: str | None = None,
    ) -> Hold | Refusal:
        return self.sync.reserve(lines, amount_usd, ttl_s=ttl_s, now=now, hold_id=hold_id)

    async def settle(
        self, hold: Hold, cost_usd: float, *, now: float, estimated: bool = False
    ) -> dict[str, Totals]:
        return self.sync.settle(hold, cost_usd, now=now, estimated=estimated)

    async def release(self, hold: Hold) -> None:
        self.sync.release(hold)

    async def totals(self, lines: Sequence[Line], *, now: float) -> dict[str, Totals]:
        return self.sync.totals(lines, now=now)

    async def first_warning(self, line: Line, threshold: float) -> bool:
        return self.sync.first_warning(line, threshold)

    async def report(self, *, now: float) -> Report:
        return self.sync.report(now=now)

    async def close(self) -> None:
        self.sync.close()


class WouldWait(Exception):
    """Raised by ``ThreadedAsyncLedger.now`` when a call cannot be done without waiting."""


class ThreadedAsyncLedger:
    """A sync ledger behind the async protocol, run on one worker thread of its own.

    The event loop never waits on the backend: another process holding SQLite's write lock stalls
    the worker, not the loop. One worker keeps the calls in order (the backend serializes them
    anyway). A reservation whose caller was cancelled while it was being made is released once it
    completes, and a settle whose caller was cancelled still completes: the work is the thread's.

    A backend that can tell at once whether a call would wait overrides ``now``: the call then runs
    inline when it would not (tens of microseconds, less than the hop to a thread), and on the
    worker only when it would.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.sync = ledger
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-ledger")

    def now(self, call: Callable[[], _T]) -> _T:
        """Run ``call`` inline if it cannot wait on a lock, else raise WouldWait (doing nothing)."""
        raise WouldWait

    async def _run(self, call: Callable[[], _T]) -> _T:
        try:
            return self.now(call)
        except WouldWait:
            pass
        future = asyncio.get_running_loop().run_in_executor(self._worker, call)
        return await asyncio.shield(future)

    async def reserve(
        self,
        lines: Sequence[Line],
        amount_usd: float,
        *,
        ttl_s: float,
        now: float,
        hold_id: str | None = None,
    ) -> Hold | Refusal:
        def call() -> Hold | Refusal:
            return self.sync.reserve(lines, amount_usd, ttl_s=ttl_s, now=now, hold_id=hold_id)

        try:
            return self.now(call)
        except WouldWait:
            pass
        future = asyncio.get_running_loop().run_in_executor(self._worker, call)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(self._release_orphan)
            raise

    def _release_orphan(self, future: asyncio.Future[Hold | Refusal] | asyncio.Future[object]) -> None:
        if not future.cancelled() and future.exception() is None:
            outcome = future.result()
            if isinstance(outcome, Hold):
                self._worker.submit(_quietly, self.sync.release, outcome)

    async def settle(
        self, hold: Hold, cost_usd: float, *, now: float, estimated: bool = False
    ) -> dict[str, Totals]:
        return await self._run(lambda: self.sync.settle(hold, cost_usd, now=now, estimated=estimated))

    async def release(self, hold: Hold) -> None:
        await self._run(lambda: self.sync.release(hold))

    async def totals(self, lines: Sequence[Line], *, now: float) -> dict[str, Totals]:
        return await self._run(lambda: self.sync.totals(lines, now=now))

    async def first_warning(self, line: Line, threshold: float) -> bool:
        return await self._run(lambda: self.sync.first_warning(line, threshold))

    async def report(self, *, now: float) -> Report:
        return await self._run(lambda: self.sync.report(now=now))

    async def close(self) -> None:
        # On the worker, after whatever it still has to do (an orphaned reservation's release).
        await asyncio.get_running_loop().run_in_executor(self._worker, self.sync.close)
        self._worker.shutdown(wait=False)


def _quietly(call: Callable[[Hold], None], hold: Hold) -> None:
    """Best effort: an orphaned hold that cannot be released expires at its TTL instead."""
    with contextlib.suppress(Exception):
        call(hold)
