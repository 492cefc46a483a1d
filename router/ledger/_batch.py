"""A batch of reserves, settles and releases done inside one SQLite write transaction, in order.

Statements, not rows, are what a batch costs (a few microseconds each, plus the Python around them),
so a batch runs a fixed handful of them whatever its size: it reads the figures of every period it
touches once, decides each op in Python against the running figures, and writes each period's net
change once:

1. each settle's id, inserted into ``settled`` unless already there (a settle whose id was there
   is a replay: it counts once);
2. the reservation rows of the settled and released holds, deleted in one statement that returns
   what they held;
3. each period's figures (spent, reserved, estimated) with its earliest reservation expiry; only
   when a reservation has expired and not been swept yet (rare: the sweep runs once a second) one
   more, for those rows;
4. the ops in order, in Python: each reserve checked against what the ops before it left, exactly
   as the same calls one transaction each would be (``spent + live reserved + amount <= limit``);
5. one upsert per period with its net change, and the new reservation rows, each an ``executemany``.

The transaction is SQLite's ``BEGIN IMMEDIATE``: no other process writes between the read (3) and
the writes (5), so deciding in Python is as safe across processes as deciding in SQL. The file
looks the same afterwards as if each op had run alone (``spend.reserved_nanos`` is still the sum of
the period's reservation rows), so processes running an older router share it unchanged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from router.ledger._types import (
    SETTLED_KEEP_S,
    Hold,
    Line,
    Refusal,
    Totals,
    to_nanos,
    to_nanos_down,
    to_nanos_up,
    to_usd,
)


@dataclass(frozen=True, slots=True)
class ReserveOp:
    """``SqliteLedger.reserve`` as data, for ``apply``; the hold (its id made by the caller) is what
    a granted reserve returns."""

    hold: Hold
    now: float


@dataclass(frozen=True, slots=True)
class SettleOp:
    hold: Hold
    cost_usd: float
    now: float
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class ReleaseOp:
    hold: Hold


Op = ReserveOp | SettleOp | ReleaseOp

# Measured per statement: about 3 µs of overhead, and about 2 µs a row of B-tree work. So plain
# statements where a batch has one of a thing (a period, a hold), and json_each (one statement,
# one parameter, one cached plan whatever the count) where it has many: 8 µs for one id, 2 a row.
_FIRST_SETTLE: Final = "INSERT OR IGNORE INTO settled (id, forget_at) VALUES (?, ?)"
_TAKE_ONE: Final = "DELETE FROM reservations WHERE id = ? RETURNING id, key, amount_nanos, expires_at"
_TAKE_MANY: Final = (
    "DELETE FROM reservations WHERE id IN (SELECT value FROM json_each(?))"
    " RETURNING id, key, amount_nanos, expires_at"
)
# With the period's earliest reservation expiry: later than every ``now`` of the batch, no row of it
# has expired unswept, and the stored sum is the live one.
_FIGURES: Final = (
    "SELECT spent_nanos, reserved_nanos, estimated_nanos,"
    " (SELECT MIN(expires_at) FROM reservations WHERE key = ?1) FROM spend WHERE key = ?1"
)
_EXPIRED: Final = (
    "SELECT id, key, amount_nanos, expires_at FROM reservations WHERE key = ? AND expires_at <= ?"
)
_ADD: Final = (
    "INSERT INTO spend (key, scope, window, period_start, resets_at, spent_nanos, reserved_nanos,"
    " estimated_nanos) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
    " spent_nanos = spent_nanos + excluded.spent_nanos,"
    " reserved_nanos = reserved_nanos + excluded.reserved_nanos,"
    " estimated_nanos = estimated_nanos + excluded.estimated_nanos"
)
_INSERT_HOLD: Final = "INSERT INTO reservations (id, key, amount_nanos, expires_at) VALUES (?, ?, ?, ?)"


def apply_in(db: sqlite3.Connection, ops: Sequence[Op]) -> list[object]:
    """Inside a write transaction: each op's result, in order (a Hold or Refusal, the totals after
    a settle, None for a release). Raises, having written nothing, on anything but a refusal."""
    return _Batch(db, ops).run()


class _Period:
    """One period's figures as the ops so far left them, and as they were read."""

    __slots__ = ("estimated", "expired", "line", "read", "reserved", "spent")

    def __init__(self, line: Line, spent: int = 0, reserved: int = 0, estimated: int = 0) -> None:
        self.line = line
        self.spent, self.reserved, self.estimated = spent, reserved, estimated
        self.read = (spent, reserved, estimated)
        # Reservation rows of this period present now but expired by the latest ``now`` of the batch:
        # hold id -> (expires_at, amount). Nearly always empty (the sweep deletes them once a second).
        self.expired: dict[str, tuple[float, int]] = {}

    def live(self, now: float) -> int:
        """Reserved, less the reservations expired at ``now`` (they no longer count)."""
        if not self.expired:
            return self.reserved
        return self.reserved - sum(amount for at, amount in self.expired.values() if at <= now)

    def totals(self, now: float) -> Totals:
        return Totals(to_usd(self.spent), to_usd(self.live(now)), to_usd(self.estimated))

    def change(self) -> tuple[object, ...] | None:
        """``_ADD``'s parameters for the net change, None when there is none."""
        spent, reserved, estimated = self.read
        if (self.spent, self.reserved, self.estimated) == (spent, reserved, estimated):
            return None
        line = self.line
        return (
            line.key,
            line.scope,
            line.window,
            line.period_start,
            line.resets_at,
            self.spent - spent,
            self.reserved - reserved,
            self.estimated - estimated,
        )


class _Batch:
    __slots__ = ("_db", "_fresh", "_horizon", "_new", "_ops", "_periods", "_taken")

    def __init__(self, db: sqlite3.Connection, ops: Sequence[Op]) -> None:
        self._db = db
        self._ops = ops
        self._periods: dict[str, _Period] = {}
        # Settle ids seen for the first time (each counts once: the first settle of it in the batch).
        self._fresh: set[str] = set()
        # What the deleted reservation rows held, per hold id and key, until an op takes it off.
        self._taken: dict[str, dict[str, int]] = {}
        # Holds granted in this batch, not yet settled or released: the rows to insert at the end.
        self._new: dict[str, tuple[Hold, int]] = {}
        self._horizon = max((op.now for op in ops if not isinstance(op, ReleaseOp)), default=float("-inf"))

    def run(self) -> list[object]:
        self._read()
        results: list[object] = []
        for op in self._ops:
            if isinstance(op, ReserveOp):
                results.append(self._reserve(op.hold, op.now))
            elif isinstance(op, SettleOp):
                results.append(self._settle(op))
            else:
                self._release(op.hold)
                results.append(None)
        self._write()
        return results

    def _read(self) -> None:
        db, ops = self._db, self._ops
        fresh = self._fresh
        taking = []
        for op in ops:
            if isinstance(op, SettleOp):
                forget_at = max(op.hold.expires_at, op.now) + SETTLED_KEEP_S
                if db.execute(_FIRST_SETTLE, (op.hold.id, forget_at)).rowcount == 1:
                    fresh.add(op.hold.id)
                    taking.append(op.hold.id)
            elif isinstance(op, ReleaseOp):
                taking.append(op.hold.id)
        deleted: list[tuple[str, str, int, float]] = []
        if len(taking) == 1:
            deleted = db.execute(_TAKE_ONE, (taking[0],)).fetchall()
        elif taking:
            deleted = db.execute(_TAKE_MANY, (json.dumps(taking),)).fetchall()
        lines = {line.key: line for op in ops for line in op.hold.lines}
        periods = self._periods
        horizon = self._horizon
        expired: list[tuple[str, str, int, float]] = []
        for key, line in lines.items():
            row = db.execute(_FIGURES, (key,)).fetchone()
            if row is None:
                periods[key] = _Period(line)
                continue
            periods[key] = _Period(line, row[0], row[1], row[2])
            if row[3] is not None and row[3] <= horizon:
                expired += db.execute(_EXPIRED, (key, horizon)).fetchall()
        for hold_id, key, amount, expires_at in deleted:
            self._taken.setdefault(hold_id, {})[key] = amount
            if expires_at <= horizon and key in periods:
                expired.append((hold_id, key, amount, expires_at))
        for hold_id, key, amount, expires_at in expired:
            periods[key].expired[hold_id] = (expires_at, amount)

    def _reserve(self, hold: Hold, now: float) -> Hold | Refusal:
        lines = hold.lines
        if not lines:
            return hold
        if hold.id in self._new or hold.id in self._taken:
            # Its rows are still there (the first was deleted above only to be settled later in the
            # batch): one transaction per call would have failed on the primary key here too.
            raise sqlite3.IntegrityError(f"UNIQUE constraint failed: reservations.id ({hold.id})")
        amount = to_nanos_up(hold.amount_usd)
        periods = self._periods
        for n, line in enumerate(lines):
            period = periods[line.key]
            period.reserved += amount
            spent, reserved = period.spent, period.live(now)
            if spent + reserved > to_nanos_down(line.limit_usd):
                for taken_line in lines[: n + 1]:
                    periods[taken_line.key].reserved -= amount
                return Refusal(line, to_usd(spent), to_usd(reserved - amount), hold.amount_usd)
        self._new[hold.id] = (hold, amount)
        if hold.expires_at <= self._horizon:  # a later op of the batch must not count it
            for line in lines:
                periods[line.key].expired[hold.id] = (hold.expires_at, amount)
        return hold

    def _take(self, hold_id: str) -> dict[str, int]:
        """What a hold's reservation rows held per key (none: released, settled or swept already)."""
        new = self._new.pop(hold_id, None)
        held = {line.key: new[1] for line in new[0].lines} if new else self._taken.pop(hold_id, {})
        for key in held:
            period = self._periods.get(key)  # None: a row under a key the hold does not name
            if period is not None:
                period.expired.pop(hold_id, None)
        return held

    def _settle(self, op: SettleOp) -> dict[str, Totals]:
        hold, now, periods = op.hold, op.now, self._periods
        if hold.id not in self._fresh:  # a replay of a settle that already landed: count it once
            return {line.key: periods[line.key].totals(now) for line in hold.lines}
        self._fresh.discard(hold.id)
        held = self._take(hold.id)
        cost = to_nanos(op.cost_usd)
        totals = {}
        for line in hold.lines:
            period = periods[line.key]
            period.spent += cost
            period.reserved -= held.get(line.key, 0)
            if op.estimated:
                period.estimated += cost
            totals[line.key] = period.totals(now)
        return totals

    def _release(self, hold: Hold) -> None:
        held = self._take(hold.id)
        for line in hold.lines:
            self._periods[line.key].reserved -= held.get(line.key, 0)

    def _write(self) -> None:
        changes = [change for period in self._periods.values() if (change := period.change()) is not None]
        if changes:
            self._db.executemany(_ADD, changes)
        if self._new:
            self._db.executemany(
                _INSERT_HOLD,
                [
                    (hold.id, line.key, amount, hold.expires_at)
                    for hold, amount in self._new.values()
                    for line in hold.lines
                ],
            )
