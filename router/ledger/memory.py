"""``memory://``: one process, forgotten on exit. For tests, demos and single-process scripts.

One lock around plain dicts; the async wrapper calls straight into it, since nothing here waits.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from router.ledger._types import (
    SETTLED_KEEP_S,
    Hold,
    InlineAsyncLedger,
    Line,
    Refusal,
    Report,
    Totals,
    check_amount,
    new_hold_id,
    parse_key,
    to_nanos,
    to_nanos_down,
    to_nanos_up,
    to_usd,
)


@dataclass(slots=True)
class _Period:
    spent: int = 0
    estimated: int = 0  # the part of spent that was charged as an estimate
    # hold id -> (nano-dollars, expires_at)
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)

    def reserved(self, now: float) -> int:
        # A copy: a stream's finalizer may settle from inside this loop (see MemoryLedger).
        return sum(amount for amount, expires in list(self.holds.values()) if expires > now)

    def purge(self, now: float) -> None:
        for hold_id in [h for h, (_, expires) in list(self.holds.items()) if expires <= now]:
            del self.holds[hold_id]


class MemoryLedger:
    """The reference implementation of ``Ledger``: the other backends must behave exactly like it."""

    def __init__(self) -> None:
        # Re-entrant: a stream collected by the garbage collector while this thread is inside a
        # method settles from its finalizer, on this thread, and must not deadlock.
        self._lock = threading.RLock()
        self._periods: dict[str, _Period] = {}
        self._warned: set[tuple[str, float]] = set()
        # Settled hold ids, with when they may be forgotten: a replayed settle must not count twice.
        self._settled: dict[str, float] = {}
        self._settled_order: deque[str] = deque()  # the same ids, in the order they were settled

    def _period(self, line: Line) -> _Period:
        period = self._periods.get(line.key)
        if period is None:
            period = self._periods[line.key] = _Period()
        return period

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
        amount = to_nanos_up(amount_usd)
        hold = Hold(hold_id or new_hold_id(), tuple(lines), amount_usd, now + ttl_s)
        with self._lock:
            periods = [self._period(line) for line in lines]
            for line, period in zip(lines, periods, strict=True):
                period.purge(now)
                reserved = period.reserved(now)
                if period.spent + reserved + amount > to_nanos_down(line.limit_usd):
                    return Refusal(line, to_usd(period.spent), to_usd(reserved), amount_usd)
            for period in periods:
                period.holds[hold.id] = (amount, hold.expires_at)
        return hold

    def settle(
        self, hold: Hold, cost_usd: float, *, now: float, estimated: bool = False
    ) -> dict[str, Totals]:
        check_amount("cost_usd", cost_usd)
        cost = to_nanos(cost_usd)
        with self._lock:
            if hold.id not in self._settled:
                self._forget_settled(now)
                self._settled[hold.id] = max(hold.expires_at, now) + SETTLED_KEEP_S
                self._settled_order.append(hold.id)
                for line in hold.lines:
                    period = self._period(line)
                    period.holds.pop(hold.id, None)
                    period.spent += cost
                    if estimated:
                        period.estimated += cost
            return self._totals(hold.lines, now)

    def _forget_settled(self, now: float) -> None:
        """Forget the ids whose keep time has passed, oldest first, stopping at the first still kept.

        Ids are queued in the order they were settled, and their keep times nearly follow it (a
        week after the later of the hold's expiry and the settle): the front of the queue is where
        the due ones are. An id behind one not yet due waits for it, i.e. is kept a little longer
        than promised, never less. Each id is looked at once when forgotten, and one more look per
        settle finds the front not due: no scan of every id (which, once 1,024 were kept, made each
        settle copy the whole week's ids: a memory ledger slowed down with every request).
        """
        settled, order = self._settled, self._settled_order
        while order and settled[order[0]] <= now:
            del settled[order.popleft()]

    def release(self, hold: Hold) -> None:
        with self._lock:
            for line in hold.lines:
                period = self._periods.get(line.key)
                if period is not None:
                    period.holds.pop(hold.id, None)

    def totals(self, lines: Sequence[Line], *, now: float) -> dict[str, Totals]:
        with self._lock:
            return self._totals(lines, now)

    def _totals(self, lines: Sequence[Line], now: float) -> dict[str, Totals]:
        result = {}
        for line in lines:
            period = self._periods.get(line.key) or _Period()
            result[line.key] = Totals(
                to_usd(period.spent), to_usd(period.reserved(now)), to_usd(period.estimated)
            )
        return result

    def first_warning(self, line: Line, threshold: float) -> bool:
        with self._lock:
            if (line.key, threshold) in self._warned:
                return False
            self._warned.add((line.key, threshold))
            return True

    def report(self, *, now: float) -> Report:
        with self._lock:
            rows: Report = []
            for key, period in self._periods.items():
                reserved = period.reserved(now)
                if period.spent or reserved:
                    scope, window, start = parse_key(key)
                    figures = Totals(to_usd(period.spent), to_usd(reserved), to_usd(period.estimated))
                    rows.append((scope, window, start, figures))
            return sorted(rows, key=lambda row: row[:3])

    def close(self) -> None:
        """Nothing to close; the figures stay readable until the object is dropped."""


class AsyncMemoryLedger(InlineAsyncLedger):
    """``MemoryLedger`` for asyncio code; pass one in to share its figures with sync code."""

    def __init__(self, ledger: MemoryLedger | None = None) -> None:
        super().__init__(ledger or MemoryLedger())
