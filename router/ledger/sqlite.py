"""``sqlite:///path``: the default ledger. One machine, any number of processes and threads.

Each reserve and settle is one ``BEGIN IMMEDIATE`` transaction: SQLite lets one writer in at a
time across every process that has the file open, so check-then-add can never interleave. The
async ledger commits in groups: the reserves, settles and releases queued meanwhile share one
transaction (``apply``), each checked in order against what the ones before it left; the
transaction reads and writes each budget period once, not once per call (``_batch``).
WAL lets readers (``router spend``) run beside the writer; ``synchronous=NORMAL`` is durable
against a process crash, which is what a ledger on one machine has to survive, and skips the
fsync per transaction that FULL would cost.

Each period's row keeps the sum of the reservations stored for it (``reserved_nanos``), so a
reserve costs the same with five requests in flight or five thousand. Reservations carry their
expiry, so a process killed mid-call leaks nothing: each reserve first deletes the expired ones
(taking them off the sums), and readers subtract any expired ones not deleted yet. At a few
microseconds per statement, the number of statements is a cost, hence the combined ones: a
reserve alone is BEGIN, one upsert per line that returns the figures it is checked against, one
insert, COMMIT; a settle alone is BEGIN, the idempotency insert, one delete that returns what was
held, one upsert per line that returns the totals, COMMIT. The other cost is the pages a commit
copies to the WAL (two writes and a checksum each), hence hold ids in time order (``new_hold_id``),
and a new file's layout: one B-tree per table, one index per table, 1 KiB pages (``_SCHEMA``).
The sweep of expired reservations and forgotten settle ids runs at most once a second (of the
ledger's clock): readers never count an expired reservation anyway, so the sweep only bounds the
tables' size.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TypeVar

from router.ledger import DEFAULT_BUSY_TIMEOUT_S
from router.ledger._batch import Op, ReleaseOp, ReserveOp, SettleOp, apply_in
from router.ledger._group import GroupCommit, Outcome
from router.ledger._types import (
    Hold,
    LedgerError,
    Line,
    Refusal,
    Report,
    ThreadedAsyncLedger,
    Totals,
    WouldWait,
    check_amount,
    new_hold_id,
    to_usd,
)

_T = TypeVar("_T")

_SCHEMA_VERSION: Final = 2
_CHECKPOINT_EVERY_S: Final = 1.0
_PAGE_SIZE: Final = 1024
_CHECKPOINT_RETRY_S: Final = 0.05
# After SQLite starts the WAL over, it cuts the file back to this size.
WAL_SIZE_LIMIT: Final = 16 * 1024 * 1024
# Seconds (of the callers' ``now``) between two sweeps of expired reservations and forgotten settle ids.
_PURGE_EVERY_S: Final = 1.0
# A new file's layout. Each table is one B-tree (WITHOUT ROWID: a rowid table with a text key is two,
# the rows and the key's index) and reservations have one index: a commit copies every page it dirtied
# to the WAL, so a reserve writes three pages and a settle five, not five and eight. Files made by an
# older router keep their layout (same tables and columns, so both run the same statements).
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS spend (
    key            TEXT PRIMARY KEY,
    scope          TEXT NOT NULL,
    window         TEXT NOT NULL,
    period_start   REAL NOT NULL,
    resets_at      REAL,
    spent_nanos    INTEGER NOT NULL DEFAULT 0,
    reserved_nanos INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reservations (
    id           TEXT NOT NULL,
    key          TEXT NOT NULL,
    amount_nanos INTEGER NOT NULL,
    expires_at   REAL NOT NULL,
    PRIMARY KEY (id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reservations_by_key ON reservations (key, expires_at);
CREATE TABLE IF NOT EXISTS warnings (
    key       TEXT NOT NULL,
    threshold REAL NOT NULL,
    PRIMARY KEY (key, threshold)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settled (
    id         TEXT PRIMARY KEY,
    forget_at  REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS settled_by_age ON settled (forget_at);
"""
# Version 2: settles are idempotent by hold id (the settled table) and estimated charges are counted.
_MIGRATE_2: Final = "ALTER TABLE spend ADD COLUMN estimated_nanos INTEGER NOT NULL DEFAULT 0"
# spend.reserved_nanos is the sum of the key's rows in reservations; the live part leaves out
# expired rows not deleted yet (inside a reserve, there are none).
_LIVE_RESERVED: Final = (
    "reserved_nanos - (SELECT COALESCE(SUM(amount_nanos), 0) FROM reservations r"
    " WHERE r.key = spend.key AND r.expires_at <= ?)"
)
_FIGURES: Final = f"SELECT spent_nanos, {_LIVE_RESERVED}, estimated_nanos FROM spend WHERE key = ?"


def is_locked(exc: BaseException) -> bool:
    """Whether SQLite refused because another connection holds a lock ("database is locked",
    "database is busy"): a call that may not wait then waited for nothing and changed nothing."""
    text = str(exc)
    return "locked" in text or "busy" in text


class Checkpointer:
    """Copies the WAL back into the database off the request path, every ``_CHECKPOINT_EVERY_S``.

    RESTART, not PASSIVE: a passive checkpoint never catches up with a writer that never pauses
    (frames appended while it copies stay behind), so SQLite never starts the WAL over and it grows
    by every transaction (about 55 kB a request: a gigabyte in 20,000 requests under steady load,
    and every statement slower as the WAL's index grows). RESTART takes the write lock for the copy,
    so the next transaction starts the WAL from its beginning. Its connection waits for no lock: a
    writer mid-transaction (ours or another process's) or a reader makes it copy what it can, and it
    tries again ``_CHECKPOINT_RETRY_S`` later. A transaction that meets it waits out the copy
    (a few pages and one fsync): on an event loop, that wait is the ledger's worker thread's. Hence a
    PASSIVE checkpoint first, which copies and syncs the second's frames with writers going on: the
    RESTART then holds the lock for what they wrote meanwhile (2-5 ms here, was 10-70).
    """

    def __init__(self, path: Path) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(path,), name="router-ledger-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            db = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return  # the requests' own connection reports what is wrong with the file
        wait = _CHECKPOINT_EVERY_S
        try:
            while not self._stop.wait(wait):
                wait = _CHECKPOINT_EVERY_S
                try:
                    # The copy and its fsyncs first, writers going on meanwhile; then RESTART, which
                    # holds the write lock, has only what they wrote since to copy and sync.
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    busy = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
                except sqlite3.Error:
                    continue
                if busy:
                    wait = _CHECKPOINT_RETRY_S
        finally:
            db.close()

    def stop(self) -> None:
        self._stop.set()


class SqliteLedger:
    """A ledger in one SQLite file; safe to share between threads (one connection, one lock).

    The file's identity (device, inode) is taken at open and checked before every transaction:
    a ledger file deleted or replaced while in use raises LedgerError instead of letting writes go
    on into an unlinked file that no other process (nor ``router spend``) can see.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S
    ) -> None:
        self.path = Path(path)
        self._file = os.fspath(self.path)  # what _check_file stats before every transaction
        self.busy_timeout_s = busy_timeout_s
        self._identity: tuple[int, int] | None = None  # set once open: see _check_file
        try:
            # isolation_level=None: we issue BEGIN ourselves, so IMMEDIATE is what runs.
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise LedgerError(_cannot_open(self.path, exc)) from exc
        # Re-entrant: a stream collected while this thread is inside a transaction settles from its
        # finalizer, on this thread. It must not deadlock: _enter refuses the nested transaction
        # (a LedgerError), and the charge goes to the journal instead.
        self._lock = threading.RLock()
        # The connection's busy timeout now, and the one the next transaction needs: 0 while a call runs
        # inline on an event loop (without_waiting), else busy_timeout_s. Set by a PRAGMA only when it
        # changes, so a run of inline calls pays for none.
        self._busy_ms = self._wanted_busy_ms = int(busy_timeout_s * 1000)
        # The ledger time (a caller's ``now``) of the last sweep of expired rows; see _sweep.
        self._swept_at = float("-inf")
        try:
            self._db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            # Only a new, empty file takes it (an existing one keeps its own). The ledger's rows are small
            # and a commit copies each page it dirtied whole: 1 KiB pages make a reserve and its settle
            # about a third cheaper than 4 KiB ones.
            self._db.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
            # A file already set up needs no write to open: opening must not wait on another
            # process's write lock any more than a request does.
            if self._db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            current = self._db.execute("PRAGMA user_version").fetchone()[0] >= _SCHEMA_VERSION
            with contextlib.nullcontext(self._db) if current else self._write() as db:
                if db.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    columns = {row[1] for row in db.execute("PRAGMA table_info(spend)")}
                    if "estimated_nanos" not in columns:
                        db.execute(_MIGRATE_2)
                    db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            # SQLite's automatic checkpoint runs inside the COMMIT that fills the WAL past 1,000
            # pages, with two fsyncs: about one request in fifty paid for it (the everything-on p99).
            # A thread of this ledger's copies the WAL back instead, about once a second.
            self._db.execute("PRAGMA wal_autocheckpoint = 0")
            self._db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            self._identity = _identity(self.path)
        except (sqlite3.Error, OSError) as exc:
            self._db.close()
            raise LedgerError(_cannot_open(self.path, exc)) from exc
        self._checkpointer = Checkpointer(self.path)
        weakref.finalize(self, self._checkpointer.stop)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: taken at BEGIN, so no other process can slip in before COMMIT."""
        with self._lock:
            self._begin()
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()  # a failed COMMIT too: the next transaction must not find this one open
                raise

    def _begin(self) -> None:
        """``BEGIN IMMEDIATE`` (under the lock): raises, having started nothing, when it cannot."""
        self._enter()
        if self._wanted_busy_ms != self._busy_ms:
            self._set_busy_timeout()
        self._db.execute("BEGIN IMMEDIATE")

    def _commit(self, ops: Sequence[Op], sweep_at: float | None) -> list[object]:
        """After ``_begin``: the sweep (if due at ``sweep_at``), the ops, COMMIT. On any failure, a
        failed COMMIT too, rolled back (the sweep's clock with it) and raised. Plain calls, not a
        context manager: this is every reserve's and settle's path."""
        db, swept_at = self._db, self._swept_at
        try:
            if sweep_at is not None:
                self._sweep(db, sweep_at)
            results = apply_in(db, ops)
            db.execute("COMMIT")
        except BaseException:
            self._swept_at = swept_at
            self._rollback()
            raise
        return results

    def _transaction(self, ops: Sequence[Op], sweep_at: float | None = None) -> list[object]:
        """The ops in one write transaction of their own."""
        with self._lock:
            self._begin()
            return self._commit(ops, sweep_at)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One snapshot for several SELECTs, so totals of two lines are from the same moment."""
        with self._lock:
            self._enter()
            self._set_busy_timeout()
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    def without_waiting(self, call: Callable[[], _T]) -> _T:
        """Run ``call`` only if it needs no wait for a lock (this object's, or another process's
        write lock): SQLite's busy timeout is 0 meanwhile. Else raise WouldWait, having changed
        nothing (a refused BEGIN IMMEDIATE starts no transaction; a later failure rolls back)."""
        if not self._lock.acquire(blocking=False):
            raise WouldWait
        try:
            if self._db.in_transaction:  # re-entered from a finalizer: let the call say so
                return call()
            self._wanted_busy_ms = 0
            try:
                return call()
            except sqlite3.OperationalError as exc:
                if is_locked(exc):
                    raise WouldWait from exc
                raise
            finally:
                self._wanted_busy_ms = int(self.busy_timeout_s * 1000)
        finally:
            self._lock.release()

    def _set_busy_timeout(self) -> None:
        """Give the connection the busy timeout this transaction needs (under the lock)."""
        wanted = self._wanted_busy_ms
        if wanted != self._busy_ms:
            self._db.execute(f"PRAGMA busy_timeout = {wanted}")
            self._busy_ms = wanted

    def _enter(self) -> None:
        if self._db.in_transaction:
            raise LedgerError(
                f"the SQLite ledger {self.path} was called again from inside one of its own"
                " transactions (a stream's finalizer run by the garbage collector); the charge is"
                " journaled and replayed",
                ledger=f"sqlite:///{self.path}",
            )
        self._check_file()

    def _check_file(self) -> None:
        identity = self._identity
        if identity is None:  # still opening
            return
        try:
            stat = os.stat(self._file)
            current = (stat.st_dev, stat.st_ino)
        except OSError:
            current = None
        if current != identity:
            what = "deleted" if current is None else "replaced by another file"
            raise LedgerError(
                f"the SQLite ledger {self.path} was {what} while in use: writing on would record"
                " spend no other process can see, and a new file starts every budget at $0. Restore"
                " the file (or point the policy's ledger: at the new one) and restart the process.",
                ledger=f"sqlite:///{self.path}",
            )

    def _sweep(self, db: sqlite3.Connection, now: float) -> None:
        """``_purge`` at most once every ``_PURGE_EVERY_S`` of ledger time (and whenever the clock
        went back). Skipping it changes no figure: every read leaves out expired reservations."""
        if self._swept_at <= now < self._swept_at + _PURGE_EVERY_S:
            return
        _purge(db, now)
        self._swept_at = now

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
        hold = Hold(hold_id or new_hold_id(), tuple(lines), amount_usd, now + ttl_s)
        if not lines:
            return hold
        try:
            granted = self._transaction((ReserveOp(hold, now),), now)[0]
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # Interrupted (Ctrl-C) around the COMMIT: the hold may have landed with nobody to
                # settle it. Give it back now rather than at its expiry (a no-op if it did not land).
                with contextlib.suppress(Exception):
                    self.release(hold)
            raise
        assert isinstance(granted, (Hold, Refusal))  # (a tuple: `Hold | Refusal` builds a union per call)
        return granted

    def settle(
        self, hold: Hold, cost_usd: float, *, now: float, estimated: bool = False
    ) -> dict[str, Totals]:
        check_amount("cost_usd", cost_usd)
        totals = self._transaction((SettleOp(hold, cost_usd, now, estimated),))[0]
        assert isinstance(totals, dict)
        return totals

    def release(self, hold: Hold) -> None:
        self._transaction((ReleaseOp(hold),))

    def apply(self, ops: Sequence[Op]) -> list[Outcome]:
        """Several reserves, settles and releases in ONE write transaction (group commit), in order.

        Each reserve is checked against the figures as the ops before it in the batch left them, so
        the batch decides exactly what the same calls one transaction each would have decided, and no
        cap is passed. A refused reserve changes nothing; a settle replayed in the same batch counts
        once. A batch reads each period once and writes its net change once (``_batch``), and pays for
        one commit (the dirty pages written to the WAL). If anything but a refusal fails inside the
        transaction, the whole batch is rolled back and each op is done again in a transaction of its
        own, so one op's error is its own outcome and the others' results still land; so is a batch
        whose settle ids were not all new (``ReplayInBatch``: a replayed settle, which then counts once).

        Raises, having done nothing, when the transaction cannot begin (the write lock not had within
        the busy timeout, the file deleted or replaced): that is every op's outcome, and trying each
        alone would only wait as long again for each.
        """
        if not ops:
            return []
        # A batch with a reserve sweeps expired holds first, at the earliest clock of any op that reads
        # the figures: a later one would drop a hold that a reserve or settle before it still counts.
        reserving, earliest = False, float("inf")
        for op in ops:  # (one loop, not a generator and a list: this is every batch's path)
            kind = type(op)
            if kind is not ReleaseOp:
                if op.now < earliest:  # type: ignore[union-attr]
                    earliest = op.now  # type: ignore[union-attr]
                if kind is ReserveOp and op.hold.lines:
                    reserving = True
        with self._lock:
            self._begin()
            try:
                results = self._commit(ops, earliest if reserving else None)
            except Exception as exc:
                if len(ops) == 1:
                    return [(None, exc)]
                return [self._alone(op) for op in ops]
        return [(result, None) for result in results]

    def _rollback(self) -> None:
        """End a failed transaction, whether SQLite already rolled it back or not."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _alone(self, op: Op) -> Outcome:
        """One op in a transaction of its own, its error as its outcome."""
        try:
            if isinstance(op, ReserveOp):
                if not op.hold.lines:
                    return (op.hold, None)
                return (self._transaction((op,), op.now)[0], None)
            return (self._transaction((op,))[0], None)
        except Exception as exc:
            return (None, exc)

    def totals(self, lines: Sequence[Line], *, now: float) -> dict[str, Totals]:
        with self._read() as db:
            return _totals(db, lines, now)

    def first_warning(self, line: Line, threshold: float) -> bool:
        with self._lock:
            self._set_busy_timeout()
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO warnings (key, threshold) VALUES (?, ?)", (line.key, threshold)
            )
            return cursor.rowcount == 1

    def report(self, *, now: float) -> Report:
        with self._read() as db:
            rows = db.execute(
                f"SELECT scope, window, period_start, spent_nanos, {_LIVE_RESERVED}, estimated_nanos"
                " FROM spend ORDER BY scope, window, period_start",
                (now,),
            ).fetchall()
        return [
            (scope, window, float(start), Totals(to_usd(spent), to_usd(reserved), to_usd(estimated)))
            for scope, window, start, spent, reserved, estimated in rows
            if spent or reserved
        ]

    def close(self) -> None:
        self._checkpointer.stop()
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # never waits for readers
            self._db.close()


class AsyncSqliteLedger(ThreadedAsyncLedger):
    """``SqliteLedger`` for asyncio code, with group commit and a worker thread of its own.

    Another process may hold the write lock for seconds (a long ``BEGIN IMMEDIATE``, a backup):
    that wait must stall the worker, never the event loop and every other request on it. Reserves,
    settles and releases are queued and done in batches, one transaction each, at the end of the
    loop's turn (``router.ledger._group``): under load a commit per call is what the ledger costs.
    A batch, like a read (totals, warnings, the report), is first tried inline with no busy wait at
    all, and handed to the worker only when the lock is taken.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S
    ) -> None:
        self._sqlite = SqliteLedger(path, busy_timeout_s=busy_timeout_s)
        super().__init__(self._sqlite)
        sqlite = self._sqlite
        self._group: GroupCommit[Op] = GroupCommit(
            self._worker,
            sqlite.apply,
            lambda ops: sqlite.without_waiting(lambda: sqlite.apply(ops)),
            self._orphaned,
        )

    def now(self, call: Callable[[], _T]) -> _T:
        return self._sqlite.without_waiting(call)

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
        hold = Hold(hold_id or new_hold_id(), tuple(lines), amount_usd, now + ttl_s)
        if not lines:
            return hold
        op = ReserveOp(hold, now)
        future = self._group.submit(op)
        try:
            outcome = await future
        except asyncio.CancelledError:
            # Cancelled while it was being made: once it lands, give it back (``_orphaned``); or it
            # had landed, and this task was cancelled before it could take the hold.
            if not future.cancelled():
                self._orphaned(op, future.result())
            raise
        assert isinstance(outcome, (Hold, Refusal))  # (a tuple: `Hold | Refusal` builds a union per call)
        return outcome

    async def settle(
        self, hold: Hold, cost_usd: float, *, now: float, estimated: bool = False
    ) -> dict[str, Totals]:
        check_amount("cost_usd", cost_usd)
        # A settle whose caller was cancelled still lands: it is queued, the work is the batch's.
        # Awaited here, not in a helper coroutine: one frame less to create and resume per settle.
        future = self._group.submit(SettleOp(hold, cost_usd, now, estimated))
        try:
            totals = await future
        except asyncio.CancelledError:
            _consumed(future)
            raise
        return totals  # type: ignore[return-value]

    async def release(self, hold: Hold) -> None:
        future = self._group.submit(ReleaseOp(hold))
        try:
            await future
        except asyncio.CancelledError:
            _consumed(future)
            raise

    def _orphaned(self, op: Op, outcome: object) -> None:
        """An op landed after its caller was cancelled: a reservation nobody got is given back."""
        if isinstance(op, ReserveOp) and isinstance(outcome, Hold):
            with contextlib.suppress(RuntimeError):  # the worker is shut down: it expires at its TTL
                self._worker.submit(_quietly, self._sqlite.release, outcome)


def _consumed(future: asyncio.Future[object]) -> None:
    """A settle's or release's caller was cancelled (``landed`` without a shield): the op lands all
    the same; if it already landed with an error, nobody is left to see it."""
    if future.done() and not future.cancelled():
        future.exception()


def _quietly(release: Callable[[Hold], None], hold: Hold) -> None:
    """Best effort: an orphaned hold that cannot be released expires at its TTL instead."""
    with contextlib.suppress(Exception):
        release(hold)


def _identity(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _figures(db: sqlite3.Connection, key: str, now: float) -> tuple[int, int, int]:
    """(spent, live reserved, estimated) of one period in nano-dollars; zeros for a period never used."""
    row = db.execute(_FIGURES, (now, key)).fetchone()
    return (row[0], row[1], row[2]) if row else (0, 0, 0)


def _totals(db: sqlite3.Connection, lines: Sequence[Line], now: float) -> dict[str, Totals]:
    result = {}
    for line in lines:
        spent, reserved, estimated = _figures(db, line.key, now)
        result[line.key] = Totals(to_usd(spent), to_usd(reserved), to_usd(estimated))
    return result


def _purge(db: sqlite3.Connection, now: float) -> None:
    """Delete the expired reservations and take them off their periods' sums."""
    # No GROUP BY: SQLite would walk the (key, expires_at) index, every row, to avoid a sort. A new
    # file has no index by expiry: this scans the table, which holds only the holds in flight.
    expired = db.execute(
        "SELECT key, amount_nanos FROM reservations WHERE expires_at <= ?", (now,)
    ).fetchall()
    if expired:
        freed: dict[str, int] = {}
        for key, amount in expired:
            freed[key] = freed.get(key, 0) + amount
        db.executemany(
            "UPDATE spend SET reserved_nanos = reserved_nanos - ? WHERE key = ?",
            [(amount, key) for key, amount in freed.items()],
        )
        db.execute("DELETE FROM reservations WHERE expires_at <= ?", (now,))
    db.execute("DELETE FROM settled WHERE forget_at <= ?", (now,))


def _cannot_open(path: Path, exc: sqlite3.Error | OSError) -> str:
    where = path if path.is_absolute() else f"{path} (relative to {Path.cwd()})"
    hint = ""
    if is_locked(exc):
        hint = (
            "; another process holds the SQLite write lock longer than the ledger waits"
            " (busy_timeout_s): find the process with a long write transaction on the file, or wait"
            " longer with ?busy_timeout_s=N in the ledger URL"
        )
    if not path.parent.is_dir():
        hint = (
            f"; the directory {path.parent} does not exist — create it, or note that sqlite:///path is"
            " relative to the working directory and sqlite:////path (four slashes) is absolute"
        )
    return f"cannot open the SQLite ledger at {where}: {exc}{hint}"
