"""The ledger fault contract: what a client sees when its ledger fails.

``Guarded`` wraps any backend so that:

- every backend error (``sqlite3.*``, ``redis.exceptions.*``, ``OSError``) becomes a
  ``LedgerError`` that names the ledger with its credentials redacted and says what to do;
- a settle that cannot be written returns the error instead of raising it, after the charge went
  to the write-ahead journal: the answer it belongs to was served and is returned to the caller;
- journaled charges are replayed into the ledger as soon as it answers again (checked at most
  once a second, one ``stat`` each time), idempotently by hold id;
- a release or a warning mark that fails is dropped: a reservation left behind expires at its
  TTL (over-reserving is the safe side), a warning may be logged twice.

Whether a request goes on when ``reserve`` raises is the budget's ``on_ledger_error``, decided
by the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Final, Generic, NoReturn, TypeVar

from router.ledger._journal import Charge, Journal, areplay
from router.ledger._types import (
    AsyncLedger,
    Hold,
    Ledger,
    LedgerError,
    Line,
    Refusal,
    Report,
    Totals,
    new_hold_id,
)

_T = TypeVar("_T")
_B = TypeVar("_B", Ledger, AsyncLedger)

# How often a client looks for journaled charges to replay (one stat of the journal file).
_REPLAY_EVERY_S: Final = 1.0

_THEN: Final = (
    " Budgeted requests fail closed while the ledger is unavailable (on_ledger_error: fail_closed,"
    " the default); on_ledger_error: fail_open serves them unchecked and journals their charges."
)


def is_fault(exc: BaseException) -> bool:
    """A failure of the ledger's backend, as opposed to a bug of ours (ValueError, TypeError...)."""
    if isinstance(exc, LedgerError | OSError):
        return True
    return any(cls.__module__.split(".")[0] in ("sqlite3", "redis") for cls in type(exc).__mro__[:-1])


def translate(exc: BaseException, where: str, operation: str, secrets: Sequence[str] = ()) -> LedgerError:
    """The LedgerError for a backend failure: which ledger, what failed, what to do."""
    if isinstance(exc, LedgerError):
        if exc.ledger is None:
            exc.ledger = where
        return exc
    name = type(exc).__name__
    detail = str(exc)
    for secret in secrets:
        if secret:
            detail = detail.replace(secret, "***")
    text = detail.lower()
    module = type(exc).__module__.split(".")[0]
    if module == "sqlite3" and ("locked" in text or "busy" in text):
        hint = (
            "Another process holds the SQLite write lock longer than the ledger waits (busy_timeout_s);"
            " find the process with a long write transaction on the file, or wait longer with"
            " ?busy_timeout_s=N in the ledger URL."
        )
    elif module == "sqlite3":
        hint = "Check that the file is a router ledger, readable and writable, and that the disk is not full."
    elif module == "redis" and ("auth" in name.lower() or "wrongpass" in text or "noauth" in text):
        hint = "Check the user name and password in the ledger URL."
    elif module == "redis" and ("connection" in name.lower() or "timeout" in name.lower()):
        hint = "Check that the Redis server is running and reachable from this machine."
    elif module == "redis":
        hint = "Check the Redis server's log and the ledger URL (database number, TLS with rediss://)."
    else:
        hint = "Check the path, its permissions and free disk space."
    return LedgerError(
        f"The budget ledger {where} failed ({operation}): {name}: {detail}. {hint}{_THEN}", ledger=where
    )


class _Base(Generic[_B]):
    def __init__(
        self,
        opener: Callable[[], _B],
        where: str,
        journal: Journal | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.where = where
        self.journal = journal
        self._secrets = tuple(s for s in secrets if s)
        self._next_replay = float("-inf")
        self._opener: Callable[[], _B] = opener
        self._backend: _B | None = None

    @property
    def backend(self) -> _B:
        """Opened on first use, and again after a failed open: a ledger that could not be opened
        (a server down at start) is a fault like any other, journaled and retried."""
        if self._backend is None:
            self._backend = self._opener()
        return self._backend

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r}, journal={self.journal!r})"

    def _error(self, exc: BaseException, operation: str) -> LedgerError:
        return translate(exc, self.where, operation, self._secrets)

    # What a failure of each operation comes to, decided here once for the sync and async guards.

    def _raise(self, exc: Exception, operation: str) -> NoReturn:
        """reserve, totals, report: a fault is a LedgerError naming the ledger; a bug stays itself."""
        if is_fault(exc):
            raise self._error(exc, operation) from exc
        raise exc

    @staticmethod
    def _drop(exc: Exception, default: _T) -> _T:
        """release, first_warning, close, replay: a fault is dropped (an unreleased hold expires at
        its TTL, a warning may be logged twice); a bug stays itself."""
        if is_fault(exc):
            return default
        raise exc

    def _to_journal(self, exc: BaseException) -> Journal:
        """settle: the journal to append a failed (or interrupted) charge to; raises when there is
        none, or when the failure is a bug rather than a fault."""
        if isinstance(exc, Exception) and not is_fault(exc):
            raise exc
        if self.journal is None:
            if isinstance(exc, Exception):
                raise self._error(exc, "settle") from exc
            raise exc
        return self.journal

    def _replay_due(self) -> bool:
        if self.journal is None:
            return False
        now = time.monotonic()
        if now < self._next_replay:
            return False
        self._next_replay = now + _REPLAY_EVERY_S
        return self.journal.has_pending()

    def _journaled(self, exc: BaseException, charge: Charge, lost: OSError | None) -> LedgerError:
        error = self._error(exc, "settle")
        if self.journal is None:
            return error
        if lost is None:
            error.message += (
                f" The charge ({charge.cost_usd!r} USD, hold {charge.hold.id}) was journaled to"
                f" {self.journal.path} and is replayed into the ledger once it is reachable."
            )
        else:
            error.message += (
                f" The charge ({charge.cost_usd!r} USD, hold {charge.hold.id}) could not be journaled"
                f" either ({self.journal.path}: {lost}): it is NOT recorded; add it by hand, and make"
                " the journal's directory writable."
            )
        error.args = (error.message,)
        self._next_replay = float("-inf")
        return error

    @staticmethod
    def unchecked(lines: Sequence[Line], amount_usd: float, *, ttl_s: float, now: float) -> Hold:
        """A hold the ledger never saw (on_ledger_error: fail_open): settled, or journaled, like any."""
        return Hold(new_hold_id(), tuple(lines), amount_usd, now + ttl_s)


class Guarded(_Base[Ledger]):
    """A sync ledger under the fault contract (see the module's docstring)."""

    def _replay(self) -> None:
        if self._replay_due() and self.journal is not None:
            try:
                self.journal.replay(self._settle_charge)
            except Exception as exc:
                self._drop(exc, None)

    def _settle_charge(self, charge: Charge) -> None:
        self.backend.settle(charge.hold, charge.cost_usd, now=charge.at, estimated=charge.estimated)

    def reserve(
        self,
        lines: Sequence[Line],
        amount_usd: float,
        *,
        ttl_s: float,
        now: float,
        hold_id: str | None = None,
    ) -> Hold | Refusal:
        self._replay()
        try:
            return self.backend.reserve(lines, amount_usd, ttl_s=ttl_s, now=now, hold_id=hold_id)
        except Exception as exc:
            self._raise(exc, "reserve")

    def settle(
        self, hold: Hold, cost_usd: float, *, now: float, estimated: bool = False
    ) -> dict[str, Totals] | LedgerError:
        """The totals after, or (the ledger failed) the error, with the charge journaled."""
        try:
            return self.backend.settle(hold, cost_usd, now=now, estimated=estimated)
        except BaseException as exc:
            charge = Charge(hold, cost_usd, estimated, now)
            lost = _append(self._to_journal(exc), charge)  # interrupted too: counted once on replay
            if not isinstance(exc, Exception):
                raise
            return self._journaled(exc, charge, lost)

    def release(self, hold: Hold) -> None:
        try:
            self.backend.release(hold)
        except Exception as exc:
            self._drop(exc, None)

    def totals(self, lines: Sequence[Line], *, now: float) -> dict[str, Totals]:
        self._replay()
        try:
            return self.backend.totals(lines, now=now)
        except Exception as exc:
            self._raise(exc, "totals")

    def first_warning(self, line: Line, threshold: float) -> bool:
        try:
            return self.backend.first_warning(line, threshold)
        except Exception as exc:
            return self._drop(exc, False)

    def report(self, *, now: float) -> Report:
        self._replay()
        try:
            return self.backend.report(now=now)
        except Exception as exc:
            self._raise(exc, "report")

    def close(self) -> None:
        if self._backend is None:
            return
        try:
            self._backend.close()
        except Exception as exc:
            self._drop(exc, None)


class AsyncGuarded(_Base[AsyncLedger]):
    """``Guarded`` for asyncio code. Journal writes run on a thread: an fsync must not stall the loop."""

    async def _replay(self) -> None:
        """Callers check ``_replay_due()`` first: not due (nearly always), no coroutine is made."""
        if self.journal is not None:
            try:
                await areplay(self.journal, self._settle_charge)
            except Exception as exc:
                self._drop(exc, None)

    async def _settle_charge(self, charge: Charge) -> None:
        await self.backend.settle(charge.hold, charge.cost_usd, now=charge.at, estimated=charge.estimated)

    async def reserve(
        self,
        lines: Sequence[Line],
        amount_usd: float,
        *,
        ttl_s: float,
        now: float,
        hold_id: str | None = None,
    ) -> Hold | Refusal:
        if self._replay_due():
            await self._replay()
        try:
            return await self.backend.reserve(lines, amount_usd, ttl_s=ttl_s, now=now, hold_id=hold_id)
        except Exception as exc:
            self._raise(exc, "reserve")

    async def settle(
        self, hold: Hold, cost_usd: float, *, now: float, estimated: bool = False
    ) -> dict[str, Totals] | LedgerError:
        try:
            return await self.backend.settle(hold, cost_usd, now=now, estimated=estimated)
        except BaseException as exc:
            charge = Charge(hold, cost_usd, estimated, now)
            journal = self._to_journal(exc)
            if isinstance(exc, Exception):
                lost = await asyncio.to_thread(_append, journal, charge)
                return self._journaled(exc, charge, lost)
            # Cancelled mid-settle: no more awaiting; the replay counts it once if it did land.
            _append(journal, charge)
            raise

    async def release(self, hold: Hold) -> None:
        try:
            await self.backend.release(hold)
        except Exception as exc:
            self._drop(exc, None)

    async def totals(self, lines: Sequence[Line], *, now: float) -> dict[str, Totals]:
        if self._replay_due():
            await self._replay()
        try:
            return await self.backend.totals(lines, now=now)
        except Exception as exc:
            self._raise(exc, "totals")

    async def first_warning(self, line: Line, threshold: float) -> bool:
        try:
            return await self.backend.first_warning(line, threshold)
        except Exception as exc:
            return self._drop(exc, False)

    async def report(self, *, now: float) -> Report:
        if self._replay_due():
            await self._replay()
        try:
            return await self.backend.report(now=now)
        except Exception as exc:
            self._raise(exc, "report")

    async def close(self) -> None:
        if self._backend is None:
            return
        try:
            await self._backend.close()
        except Exception as exc:
            self._drop(exc, None)


def _append(journal: Journal, charge: Charge) -> OSError | None:
    try:
        journal.append(charge)
    except OSError as exc:
        return exc
    return None
