"""Group commit: ledger writes queued on event loops and done in batches, one transaction each.

Under load a SQLite ledger's cost is its commits, not its statements: a reserve and a settle each
in a transaction of their own cost about 240 µs of CPU per request (the dirty pages of four
tables and their indexes written to the WAL twice), the same two inside a batch of sixteen
about 60. So reserves, settles and releases are queued, and at the end of the event loop's turn
everything queued meanwhile is done in one transaction (``apply``: in order, each reserve checked
against the running totals).

The batch runs on the loop's own thread when it can start at once (``inline``: SQLite's write lock
free, no busy wait; a few hundred microseconds of work that has to be done anyway), and on the
ledger's worker thread when it would wait (another process holds the lock): the loop never waits
on a lock. Calls queued while the worker commits join its next batch, and the worker hands the
results back with one ``call_soon_threadsafe`` per batch rather than one per call. Inline first,
because a hop to the thread and back costs more than the transaction: both threads want the GIL,
and the handoffs showed in the profile as the loop waiting on ``Executor.submit``.

Nothing is acknowledged before its batch committed: a caller gets its reservation, and a request
its answer, only after the transaction holding them is on disk (WAL, ``synchronous=NORMAL``:
durable against a process crash). A process killed mid-batch loses only calls nobody was told had
landed, as a process killed mid-transaction always did.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Final, Generic, TypeVar

from router.ledger._types import WouldWait

_Op = TypeVar("_Op")

# A batch's transaction holds SQLite's write lock: other processes wait for it. A bound keeps that
# wait (and the loop's turn with all the results) short; the rest is the next batch.
MAX_BATCH: Final = 256

# What one op came to: (its result, None), or (None, the exception it raised).
Outcome = tuple[object, Exception | None]
_Queued = tuple[_Op, "asyncio.Future[object]"]


class GroupCommit(Generic[_Op]):
    """Queue ops from any event loop; apply them in batches, inline or on ``worker``.

    ``apply`` gets the ops in the order they were queued and returns one outcome per op; it raises
    only when the batch could not start (that is then every op's outcome). ``inline`` is ``apply``
    that raises ``WouldWait`` (having done nothing) rather than wait for a lock.

    A caller awaits its op's future directly (no ``asyncio.shield``: that is a second future and a
    second turn of the loop per call). Cancelling the caller cancels the future, not the op: the op
    is queued and lands all the same, and its result, which nobody awaits any more, goes to
    ``orphaned(op, result)`` on the loop (e.g. to give back a reservation the caller never got).
    """

    def __init__(
        self,
        worker: Executor,
        apply: Callable[[Sequence[_Op]], list[Outcome]],
        inline: Callable[[Sequence[_Op]], list[Outcome]] | None = None,
        orphaned: Callable[[_Op, object], None] | None = None,
    ) -> None:
        self._worker = worker
        self._apply = apply
        self._inline = inline
        self._orphaned = orphaned
        self._lock = threading.Lock()
        self._queue: list[_Queued[_Op]] = []
        # A flush is scheduled or running (on a loop or the worker): it will see what is queued now.
        self._flushing = False
        # The loop it is scheduled on (None: the worker has it). A loop closed before running it
        # never will: the next ``submit`` takes the queue over rather than leave it stranded.
        self._flush_loop: asyncio.AbstractEventLoop | None = None

    def submit(self, op: _Op) -> asyncio.Future[object]:
        """Queue ``op``; the future (of the running loop) gets its result once its batch committed.

        The batch is flushed at the end of the loop's current turn, not at once: every op queued in
        the same turn (the loop runs all the callbacks that are ready) then shares its transaction.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        with self._lock:
            self._queue.append((op, future))
            owner = self._flush_loop
            if self._flushing and (owner is None or owner is loop or not owner.is_closed()):
                return future
            self._flushing, self._flush_loop = True, loop
        loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        """On the loop: the batch inline if its transaction can start now, else the worker's."""
        if self._inline is not None:
            with self._lock:
                batch = self._queue[:MAX_BATCH]
            try:
                outcomes = _applied(self._inline, batch)
            except WouldWait:
                pass
            else:
                with self._lock:
                    del self._queue[: len(batch)]
                    more = self._flushing = bool(self._queue)
                    self._flush_loop = asyncio.get_running_loop() if more else None
                self._hand_back(batch, outcomes, asyncio.get_running_loop())
                if more:  # beyond MAX_BATCH, or queued by another loop meanwhile
                    asyncio.get_running_loop().call_soon(self._flush)
                return
        with self._lock:
            self._flush_loop = None
        try:
            self._worker.submit(self._drain)
        except RuntimeError as exc:  # the worker is shut down (the ledger closed): nothing will drain
            with self._lock:
                self._flushing = False
                batch, self._queue[:] = list(self._queue), []
            self._hand_back(batch, [(None, exc)] * len(batch), asyncio.get_running_loop())

    def _drain(self) -> None:
        """On the worker: batch after batch until the queue is empty."""
        while True:
            with self._lock:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                if not batch:
                    self._flushing = False
                    return
            self._hand_back(batch, _applied(self._apply, batch), None)

    def _hand_back(
        self, batch: list[_Queued[_Op]], outcomes: list[Outcome], here: asyncio.AbstractEventLoop | None
    ) -> None:
        """Resolve the futures: at once on ``here`` (the running loop), and with one
        ``call_soon_threadsafe`` per other event loop (normally the one), not one per op."""
        elsewhere: dict[asyncio.AbstractEventLoop, list[tuple[_Op, asyncio.Future[object], Outcome]]] = {}
        resolve = self._resolve_one
        for (op, future), outcome in zip(batch, outcomes, strict=True):
            loop = future.get_loop()
            if loop is here:  # the common case: resolved in place, no list, no tuple per op
                resolve(op, future, outcome)
            else:
                elsewhere.setdefault(loop, []).append((op, future, outcome))
        for loop, results in elsewhere.items():
            # A loop closed meanwhile has nobody left waiting on these futures.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._resolve, results)

    def _resolve(self, results: list[tuple[_Op, asyncio.Future[object], Outcome]]) -> None:
        resolve = self._resolve_one
        for op, future, outcome in results:
            resolve(op, future, outcome)

    def _resolve_one(self, op: _Op, future: asyncio.Future[object], outcome: Outcome) -> None:
        value, error = outcome
        if future.done():  # cancelled: its caller is no longer waiting on it
            if error is None and self._orphaned is not None:
                self._orphaned(op, value)
        elif error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


def _applied(apply: Callable[[Sequence[_Op]], list[Outcome]], batch: list[_Queued[_Op]]) -> list[Outcome]:
    try:
        return apply([op for op, _ in batch])
    except WouldWait:
        raise
    except Exception as exc:  # the batch could not start: every op of it gets the error
        return [(None, exc)] * len(batch)
