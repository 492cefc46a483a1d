"""``memory://``: one process, forgotten on exit. For tests, demos and single-process scripts.

One lock around plain dicts; the async wrapper calls straight into it, since nothing here waits.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from router.ledger._types import (
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
    # hold id -> (nano-dollars, expires_at)
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)

    def reserved(self, now: float) -> int:
        return sum(amount for amount, expires in self.holds.values() if expires > now)

    def purge(self, now: float) -> None:
        for hold_id in [h for h, (_, expires) in self.holds.items() if expires <= now]:
            del self.holds[hold_id]


class MemoryLedger:
    """The reference implementation of ``Ledger``: the other backends must behave exactly like it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._periods: dict[str, _Period] = {}
        self._warned: set[tuple[str, float]] = set()

    def _period(self, line: Line) -> _Period:
        period = self._periods.get(line.key)
        if period is None:
            period = self._periods[line.key] = _Period()
        return period

    def reserve(
        self, lines: Sequence[Line], amount_usd: float, *, ttl_s: float, now: float
    ) -> Hold | Refusal:
        check_amount("amount_usd", amount_usd)
        amount = to_nanos_up(amount_usd)
        hold = Hold(new_hold_id(), tuple(lines), amount_usd, now + ttl_s)
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

    def settle(self, hold: Hold, cost_usd: float, *, now: float) -> dict[str, Totals]:
        check_amount("cost_usd", cost_usd)
        cost = to_nanos(cost_usd)
        with self._lock:
            for line in hold.lines:
                period = self._period(line)
                period.holds.pop(hold.id, None)
                period.spent += cost
            return self._totals(hold.lines, now)

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
            result[line.key] = Totals(to_usd(period.spent), to_usd(period.reserved(now)))
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
                    rows.append((scope, window, start, Totals(to_usd(period.spent), to_usd(reserved))))
            return sorted(rows, key=lambda row: row[:3])

    def close(self) -> None:
        """Nothing to close; the figures stay readable until the object is dropped."""


class AsyncMemoryLedger(InlineAsyncLedger):
    """``MemoryLedger`` for asyncio code; pass one in to share its figures with sync code."""

    def __init__(self, ledger: MemoryLedger | None = None) -> None:
        super().__init__(ledger or MemoryLedger())
