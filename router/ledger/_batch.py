"""A batch of reserves, settles and releases done inside one SQLite write transaction, in order.

Each statement costs a few microseconds of overhead besides its rows' B-tree work, so a batch runs
a fixed handful of them per period, not per op: it reads the figures of every period it touches
once, decides each op in Python against the running figures, and writes each period's change once:

1. each settle's id, inserted into ``settled`` unless already there (a settle whose id was there
   is a replay: it counts once); all of a batch's ids in a few multi-row inserts, whose row count
   says whether every id was new; when one was not (a journal replayed: rare), the batch is rolled
   back and each op done in a transaction of its own (``ReplayInBatch``), where each insert tells;
2. the reservation rows of the settled and released holds, deleted in one statement that returns
   what they held;
3. per period, what the batch most likely adds (every reserve granted), in an upsert that returns
   the figures, so the read costs no statement of its own; only when a reservation has expired and
   not been swept yet (rare: the sweep runs once a second) one more, for those rows;
4. the ops in order, in Python: each reserve checked against what the ops before it left, exactly
   as the same calls one transaction each would be (``spent + live reserved + amount <= limit``);
5. what the ops changed beyond step 3 (a refused reserve takes its amount back), and the new
   reservation rows.

The transaction is SQLite's ``BEGIN IMMEDIATE``: no other process writes or sees anything between
the read (3) and the writes (5), so deciding in Python is as safe across processes as deciding in
SQL. The file looks the same afterwards as if each op had run alone (``spend.reserved_nanos`` is
still the sum of the period's reservation rows), so processes running an older router share it.
A reserve alone is then ``BEGIN``, one upsert, one insert, ``COMMIT``; a settle ``BEGIN``, its id,
one delete, one upsert, ``COMMIT``; a batch of twenty of each, 26 statements instead of 102. A reserve
or settle alone (every call of the sync client) runs those statements without the batch's bookkeeping
(``_reserve_alone``, ``_settle_alone``): about a third of its Python time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Final, NamedTuple

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


# Named tuples, not frozen dataclasses: two of them are made per request, and a frozen dataclass's
# ``__init__`` sets each field through ``object.__setattr__`` (about 0.5-1 µs more per op).
class ReserveOp(NamedTuple):
    """``SqliteLedger.reserve`` as data, for ``apply``; the hold (its id made by the caller) is what
    a granted reserve returns."""

    hold: Hold
    now: float


class SettleOp(NamedTuple):
    hold: Hold
    cost_usd: float
    now: float
    estimated: bool = False


class ReleaseOp(NamedTuple):
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
_ADD_RETURNING: Final = (
    f"{_ADD} RETURNING spent_nanos, reserved_nanos, estimated_nanos,"
    " (SELECT MIN(expires_at) FROM reservations r WHERE r.key = spend.key)"
)
_DROP_UNUSED: Final = (
    "DELETE FROM spend WHERE key = ? AND spent_nanos = 0 AND reserved_nanos = 0 AND estimated_nanos = 0"
)
_INSERT_HOLD: Final = "INSERT INTO reservations (id, key, amount_nanos, expires_at) VALUES (?, ?, ?, ?)"


# A batch's settle ids go in a few statements, not one each: chunks of a power of two rows (so a
# handful of statement texts, all kept in the connection's statement cache). Without RETURNING,
# which made it slower than one insert per id: the row count says whether every id was new.
_SETTLE_CHUNKS: Final = tuple(
    (size, "INSERT OR IGNORE INTO settled (id, forget_at) VALUES " + ", ".join(["(?, ?)"] * size))
    for size in (256, 128, 64, 32, 16, 8, 4, 2, 1)
)


class ReplayInBatch(Exception):
    """A batch's settle ids were not all new: one of its settles is a replay (a journal replayed, a
    retry), and one insert of many ids cannot tell which. Raised inside the transaction, so that
    ``SqliteLedger.apply`` rolls the batch back and does each op in a transaction of its own, where
    each settle's insert tells. Rare: replays happen only after the ledger failed."""


def _insert_settled(db: sqlite3.Connection, rows: list[tuple[str, float]]) -> int:
    """Insert (id, forget_at) rows into ``settled``, ignoring ids already there; how many were new."""
    inserted, start, count = 0, 0, len(rows)
    for size, sql in _SETTLE_CHUNKS:
        while count - start >= size:
            parameters = [value for row in rows[start : start + size] for value in row]
            inserted += db.execute(sql, parameters).rowcount
            start += size
    return inserted


def apply_in(db: sqlite3.Connection, ops: Sequence[Op]) -> list[object]:
    """Inside a write transaction: each op's result, in order (a Hold or Refusal, the totals after
    a settle, None for a release). Raises, having written nothing, on anything but a refusal."""
    if len(ops) == 1:
        op = ops[0]
        lines = op.hold.lines
        keys = (lines[0].key,) if len(lines) == 1 else tuple([line.key for line in lines])
        # (A hold naming a period twice takes the general way.)
        if len(keys) == 1 or len(set(keys)) == len(keys):
            kind = type(op)
            if kind is ReserveOp:
                return [_reserve_alone(db, op, keys)]  # type: ignore[arg-type]
            if kind is SettleOp:
                return [_settle_alone(db, op, keys)]  # type: ignore[arg-type]
    return _Batch(db, ops).run()


# A reserve or a settle alone (every sync call's): the same statements and the same results as a batch
# of one (``_Batch``), without the bookkeeping a batch needs to hand figures from one op to the next.


def _live(db: sqlite3.Connection, key: str, reserved: int, earliest: float | None, now: float) -> int:
    """A period's stored reserved sum less its rows expired at ``now`` and not swept yet (rare)."""
    if earliest is None or earliest > now:
        return reserved
    expired: int = sum(row[2] for row in db.execute(_EXPIRED, (key, now)))
    return reserved - expired


def _reserve_alone(db: sqlite3.Connection, op: ReserveOp, keys: tuple[str, ...]) -> Hold | Refusal:
    """Add the amount to every period (returning its figures), check each in order; granted, insert
    the hold's rows; refused, take the amount back (and drop the periods it opened)."""
    hold, now = op.hold, op.now
    if not keys:
        return hold
    amount = to_nanos_up(hold.amount_usd)
    stored = []
    refusal = None
    for key, line in zip(keys, hold.lines, strict=True):
        if amount:
            row = db.execute(_ADD_RETURNING, _parameters(key, line, 0, amount, 0)).fetchone()
        else:  # adds nothing: a period never used gets no row
            row = db.execute(_FIGURES, (key,)).fetchone() or (0, 0, 0, None)
        spent, reserved, estimated, earliest = row
        stored.append((key, line, spent, reserved - amount, estimated))
        if refusal is None:
            live = _live(db, key, reserved, earliest, now)
            if spent + live > to_nanos_down(line.limit_usd):
                refusal = Refusal(line, to_usd(spent), to_usd(live - amount), hold.amount_usd)
    if refusal is None:
        db.executemany(_INSERT_HOLD, [(hold.id, key, amount, hold.expires_at) for key in keys])
        return hold
    if not amount:
        return refusal
    db.executemany(_ADD, [_parameters(key, line, 0, -amount, 0) for key, line, *_ in stored])
    db.executemany(
        _DROP_UNUSED,
        [(key,) for key, _, spent, reserved, estimated in stored if spent == reserved == estimated == 0],
    )
    return refusal


def _settle_alone(db: sqlite3.Connection, op: SettleOp, keys: tuple[str, ...]) -> dict[str, Totals]:
    """Mark the id settled; the first time, delete the hold's rows and add the cost less what they
    held to every period (returning the totals); a replay only reads them."""
    hold, now = op.hold, op.now
    forget_at = max(hold.expires_at, now) + SETTLED_KEEP_S
    fresh = db.execute(_FIRST_SETTLE, (hold.id, forget_at)).rowcount == 1
    cost = estimated_cost = 0
    held: dict[str, int] = {}
    if fresh:
        held = {key: amount for _, key, amount, _ in db.execute(_TAKE_ONE, (hold.id,)).fetchall()}
        cost = to_nanos(op.cost_usd)
        estimated_cost = cost if op.estimated else 0
    totals = {}
    for key, line in zip(keys, hold.lines, strict=True):
        taken = held.get(key, 0)
        if cost or taken or estimated_cost:
            row = db.execute(_ADD_RETURNING, _parameters(key, line, cost, -taken, estimated_cost)).fetchone()
        else:
            row = db.execute(_FIGURES, (key,)).fetchone()
        if row is None:
            totals[key] = Totals(0.0, 0.0, 0.0)
            continue
        spent, reserved, estimated, earliest = row
        live = _live(db, key, reserved, earliest, now)
        totals[key] = Totals(to_usd(spent), to_usd(live), to_usd(estimated))
    return totals


class _Period:
    """One period's figures as the ops so far left them, as they were before the batch, and what
    the batch added to the row already."""

    __slots__ = ("added", "estimated", "expired", "line", "read", "reserved", "spent")

    def __init__(
        self,
        line: Line,
        read: tuple[int, int, int] = (0, 0, 0),
        added: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        self.line = line
        self.spent, self.reserved, self.estimated = read
        self.read = read
        self.added = added
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
        """``_ADD``'s parameters for what the ops changed beyond what was added, None if nothing."""
        (spent, reserved, estimated), (more_spent, more_reserved, more_estimated) = self.read, self.added
        spent = self.spent - spent - more_spent
        reserved = self.reserved - reserved - more_reserved
        estimated = self.estimated - estimated - more_estimated
        return (
            _parameters(self.line.key, self.line, spent, reserved, estimated)
            if spent or reserved or estimated
            else None
        )

    def unused(self) -> bool:
        return self.spent == self.reserved == self.estimated == 0


def _parameters(key: str, line: Line, spent: int, reserved: int, estimated: int) -> tuple[object, ...]:
    return (key, line.scope, line.window, line.period_start, line.resets_at, spent, reserved, estimated)


class _Batch:
    __slots__ = ("_db", "_fresh", "_horizon", "_keys", "_new", "_ops", "_periods", "_taken")

    def __init__(self, db: sqlite3.Connection, ops: Sequence[Op]) -> None:
        self._db = db
        self._ops = ops
        self._periods: dict[str, _Period] = {}
        # Settle ids seen for the first time (each counts once: the first settle of it in the batch).
        self._fresh: set[str] = set()
        # What the deleted reservation rows held, per hold id and key, until an op takes it off.
        self._taken: dict[str, dict[str, int]] = {}
        # Holds granted in this batch, not yet settled or released: the rows to insert at the end.
        self._new: dict[str, tuple[Hold, int, tuple[str, ...]]] = {}
        # Each op's hold's line keys (``Line.key`` formats a string: made once per op, not per use).
        self._keys: list[tuple[str, ...]] = []
        # The latest clock of the ops that read figures (set by ``_read``).
        self._horizon = float("-inf")

    def run(self) -> list[object]:
        self._read()
        results: list[object] = []
        append = results.append
        reserve, settle = self._reserve, self._settle
        for op, keys in zip(self._ops, self._keys, strict=True):
            kind = type(op)
            if kind is ReserveOp:
                append(reserve(op.hold, keys, op.now))  # type: ignore[union-attr]
            elif kind is SettleOp:
                append(settle(op, keys))  # type: ignore[arg-type]
            else:
                self._release(op.hold, keys)
                append(None)
        self._write()
        return results

    def _read(self) -> None:
        """Steps 1 to 3: the settle ids, the rows taken, the figures (see the module's docstring).

        What the batch most likely adds to each period (every reserve granted, every settle adding
        its cost and taking off what its rows held) is added first, in the upsert that returns the
        figures: one statement where a read and a write would be two. It changes nothing that is
        decided: the figures before the batch are the returned ones less that, and inside ``BEGIN
        IMMEDIATE`` nobody else sees them meanwhile; what the ops then do otherwise (a refusal) is
        added at the end.
        """
        db, fresh = self._db, self._fresh
        taking = []
        # Each settle's id and when to forget it (the first settle of the id in the batch's), and the
        # settles with their keys, decided once the ids are in.
        settle_ids: dict[str, float] = {}
        settles: list[tuple[SettleOp, tuple[str, ...]]] = []
        lines: dict[str, Line] = {}
        likely: dict[str, list[int]] = {}
        every_keys = self._keys
        horizon = float("-inf")
        for op in self._ops:
            hold = op.hold
            hold_lines = hold.lines
            # (One line, the common case, without a generator.)
            keys = (hold_lines[0].key,) if len(hold_lines) == 1 else tuple([line.key for line in hold_lines])
            every_keys.append(keys)
            for key, line in zip(keys, hold_lines, strict=True):
                if key not in likely:
                    lines[key], likely[key] = line, [0, 0, 0]
            kind = type(op)
            if kind is ReserveOp:
                if op.now > horizon:  # type: ignore[union-attr]
                    horizon = op.now  # type: ignore[union-attr]
                amount = to_nanos_up(hold.amount_usd)
                for key in keys:
                    likely[key][1] += amount
            elif kind is SettleOp:
                now = op.now  # type: ignore[union-attr]
                if now > horizon:
                    horizon = now
                if hold.id not in settle_ids:  # a second settle of it in the batch: not a row of its own
                    expires_at = hold.expires_at
                    settle_ids[hold.id] = (expires_at if expires_at > now else now) + SETTLED_KEEP_S
                settles.append((op, keys))  # type: ignore[arg-type]
            else:
                taking.append(hold.id)
        self._horizon = horizon
        if len(settle_ids) == 1:  # one id: its insert tells for certain whether it is a replay
            if db.execute(_FIRST_SETTLE, next(iter(settle_ids.items()))).rowcount == 0:
                settles = []
        elif settle_ids and _insert_settled(db, list(settle_ids.items())) < len(settle_ids):
            raise ReplayInBatch(f"{len(settle_ids)} settle ids, some already settled")
        for op, keys in settles:
            hold_id = op.hold.id
            if hold_id in fresh:  # settled twice in this batch: counts once, the first
                continue
            fresh.add(hold_id)
            taking.append(hold_id)
            cost = to_nanos(op.cost_usd)
            for key in keys:
                figures = likely[key]
                figures[0] += cost
                if op.estimated:
                    figures[2] += cost
        deleted: list[tuple[str, str, int, float]] = []
        if len(taking) == 1:
            deleted = db.execute(_TAKE_ONE, (taking[0],)).fetchall()
        elif taking:
            deleted = db.execute(_TAKE_MANY, (json.dumps(taking),)).fetchall()
        for _, key, amount, _ in deleted:
            if key in likely:
                likely[key][1] -= amount
        periods = self._periods
        expired: list[tuple[str, str, int, float]] = []
        for key, (spent, reserved, estimated) in likely.items():
            line = lines[key]
            if spent or reserved or estimated:
                rows = db.execute(
                    _ADD_RETURNING, _parameters(key, line, spent, reserved, estimated)
                ).fetchall()
            else:
                rows = db.execute(_FIGURES, (key,)).fetchall()
                if not rows:
                    periods[key] = _Period(line)
                    continue
            was_spent, was_reserved, was_estimated, earliest = rows[0]
            periods[key] = _Period(
                line,
                (was_spent - spent, was_reserved - reserved, was_estimated - estimated),
                (spent, reserved, estimated),
            )
            if earliest is not None and earliest <= horizon:
                expired += db.execute(_EXPIRED, (key, horizon)).fetchall()
        taken = self._taken
        for hold_id, key, amount, expires_at in deleted:
            held = taken.get(hold_id)
            if held is None:
                taken[hold_id] = {key: amount}
            else:
                held[key] = amount
            if expires_at <= horizon and key in periods:
                expired.append((hold_id, key, amount, expires_at))
        for hold_id, key, amount, expires_at in expired:
            periods[key].expired[hold_id] = (expires_at, amount)

    def _reserve(self, hold: Hold, keys: tuple[str, ...], now: float) -> Hold | Refusal:
        lines = hold.lines
        if not lines:
            return hold
        if hold.id in self._new or hold.id in self._taken:
            # Its rows are still there (the first was deleted above only to be settled later in the
            # batch): one transaction per call would have failed on the primary key here too.
            raise sqlite3.IntegrityError(f"UNIQUE constraint failed: reservations.id ({hold.id})")
        amount = to_nanos_up(hold.amount_usd)
        periods = self._periods
        for n, (key, line) in enumerate(zip(keys, lines, strict=True)):
            period = periods[key]
            period.reserved += amount
            spent, reserved = period.spent, period.live(now)
            if spent + reserved > to_nanos_down(line.limit_usd):
                for taken in keys[: n + 1]:
                    periods[taken].reserved -= amount
                return Refusal(line, to_usd(spent), to_usd(reserved - amount), hold.amount_usd)
        self._new[hold.id] = (hold, amount, keys)
        if hold.expires_at <= self._horizon:  # a later op of the batch must not count it
            for key in keys:
                periods[key].expired[hold.id] = (hold.expires_at, amount)
        return hold

    def _take(self, hold_id: str) -> dict[str, int]:
        """What a hold's reservation rows held per key (none: released, settled or swept already)."""
        new = self._new.pop(hold_id, None)
        held = dict.fromkeys(new[2], new[1]) if new else self._taken.pop(hold_id, {})
        periods = self._periods
        for key in held:
            period = periods.get(key)  # None: a row under a key the hold does not name
            if period is not None and period.expired:
                period.expired.pop(hold_id, None)
        return held

    def _settle(self, op: SettleOp, keys: tuple[str, ...]) -> dict[str, Totals]:
        hold, now, periods = op.hold, op.now, self._periods
        if hold.id not in self._fresh:  # a replay of a settle that already landed: count it once
            return {key: periods[key].totals(now) for key in keys}
        self._fresh.discard(hold.id)
        held = self._take(hold.id)
        cost = to_nanos(op.cost_usd)
        estimated = op.estimated
        totals = {}
        for key in keys:
            period = periods[key]
            period.spent += cost
            period.reserved -= held.get(key, 0)
            if estimated:
                period.estimated += cost
            totals[key] = period.totals(now)
        return totals

    def _release(self, hold: Hold, keys: tuple[str, ...]) -> None:
        held = self._take(hold.id)
        for key in keys:
            self._periods[key].reserved -= held.get(key, 0)

    def _write(self) -> None:
        changes = [(period, change) for period in self._periods.values() if (change := period.change())]
        if changes:
            self._db.executemany(_ADD, [change for _, change in changes])
            # A period this batch opened and left empty (its reserves refused) keeps no row.
            self._db.executemany(
                _DROP_UNUSED, [(period.line.key,) for period, _ in changes if period.unused()]
            )
        if self._new:
            self._db.executemany(
                _INSERT_HOLD,
                [
                    (hold.id, key, amount, hold.expires_at)
                    for hold, amount, keys in self._new.values()
                    for key in keys
                ],
            )
