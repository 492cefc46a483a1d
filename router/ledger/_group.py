"""Group commit: ledger writes queued from event loops, done by one worker thread in batches.

Under load a SQLite ledger's cost is its commits, not its statements: a reserve and a settle each
in a transaction of their own cost about 240 µs of CPU per request (the dirty pages of four
tables and their indexes written to the WAL twice), the same two inside a batch of sixteen
about 60. So reserves, settles and releases are queued; the worker takes everything queued when
it gets to it (what arrived while it was committing the last batch), does it in one transaction
(``apply``: in order, each reserve checked against the running totals), and hands the results
back to each event loop with one wake-up per batch rather than one per call.

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

_Op = TypeVar("_Op")

# A batch's transaction holds SQLite's write lock: other processes wait for it. A bound keeps that
# wait (and the loop's wake-up with all the results) short; the rest is the next batch.
MAX_BATCH: Final = 256

# What one op came to: (its result, None), or (None, the exception it raised).
Outcome = tuple[object, Exception | None]


class GroupCommit(Generic[_Op]):
    """Queue ops from any event loop; ``worker`` applies them in batches with ``apply``.

    ``apply`` gets the ops in the order they were queued and returns one outcome per op; it must
    not raise (an exception it does raise becomes every op's outcome).
    """

    def __init__(self, worker: Executor, apply: Callable[[Sequence[_Op]], list[Outcome]]) -> None:
        self._worker = worker
        self._apply = apply
        self._lock = threading.Lock()
        self._queue: list[tuple[_Op, asyncio.Future[object]]] = []
        self._draining = False  # a drain is submitted or running: it will see what is queued now

    def submit(self, op: _Op) -> asyncio.Future[object]:
        """Queue ``op``; the future (of the running loop) gets its result once its batch committed.

        The worker is woken at the end of the loop's current turn, not at once: every op queued in
        the same turn (the loop runs all the callbacks that are ready) then goes in one batch.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        with self._lock:
            self._queue.append((op, future))
            if self._draining:
                return future
            self._draining = True
        loop.call_soon(self._wake)
        return future

    def _wake(self) -> None:
        try:
            self._worker.submit(self._drain)
        except BaseException as exc:  # the worker is shut down (the ledger closed): nothing will drain
            with self._lock:
                self._draining = False
                batch, self._queue[:] = list(self._queue), []
            _resolve([(future, (None, _closed(exc))) for _, future in batch])

    def _drain(self) -> None:
        """On the worker: batch after batch until the queue is empty."""
        while True:
            with self._lock:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                if not batch:
                    self._draining = False
                    return
            try:
                outcomes = self._apply([op for op, _ in batch])
            except Exception as exc:  # a bug in apply: every op of the batch gets it
                outcomes = [(None, exc)] * len(batch)
            _hand_back(batch, outcomes)


def _hand_back(batch: list[tuple[_Op, asyncio.Future[object]]], outcomes: list[Outcome]) -> None:
    """One ``call_soon_threadsafe`` per event loop in the batch (normally one), not one per op."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[object], Outcome]]] = {}
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(future.get_loop(), []).append((future, outcome))
    for loop, results in by_loop.items():
        # A loop closed meanwhile has nobody left waiting on these futures.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, results)


def _resolve(results: list[tuple[asyncio.Future[object], Outcome]]) -> None:
    for future, (value, error) in results:
        if future.done():  # cancelled: shielded callers are no longer waiting on it
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


def _closed(exc: BaseException) -> Exception:
    return exc if isinstance(exc, Exception) else RuntimeError(f"the ledger's worker stopped: {exc!r}")
