"""The write-ahead journal: charges the ledger could not take, kept on local disk until it can.

An answer the provider already served is never thrown away because the ledger failed when its
cost was to be written: the charge is appended here (one JSON line, fsynced) and replayed into the
ledger once it answers again. Settles are idempotent by hold id in every backend, so a charge
replayed after its first write did land (the reply was lost) is counted once.

Several processes may share one journal (it sits next to the SQLite file, or at a configured
path): appends and replays take an exclusive ``flock`` on it, so a replay never races an append.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from router.ledger._types import Hold, Line

try:  # POSIX; elsewhere appends are still atomic per line, replays are not fenced
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Charge:
    """One journaled settle: what ``Ledger.settle`` would have been called with."""

    hold: Hold
    cost_usd: float
    estimated: bool
    at: float  # Unix seconds of the settle that failed; the replay settles "as of" then

    def to_json(self) -> str:
        lines = [
            {
                "scope": line.scope,
                "window": line.window,
                "period_start": line.period_start,
                "resets_at": line.resets_at,
                "limit_usd": line.limit_usd,
            }
            for line in self.hold.lines
        ]
        record = {
            "v": _VERSION,
            "id": self.hold.id,
            "lines": lines,
            "amount_usd": self.hold.amount_usd,
            "expires_at": self.hold.expires_at,
            "cost_usd": self.cost_usd,
            "estimated": self.estimated,
            "at": self.at,
        }
        return json.dumps(record, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Charge:
        data: dict[str, Any] = json.loads(text)
        lines = tuple(
            Line(item["scope"], item["window"], item["period_start"], item["resets_at"], item["limit_usd"])
            for item in data["lines"]
        )
        hold = Hold(data["id"], lines, data["amount_usd"], data["expires_at"])
        return cls(hold, data["cost_usd"], bool(data["estimated"]), data["at"])


class Journal:
    """Charges waiting for the ledger, in one JSON-lines file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @contextlib.contextmanager
    def _locked(self, mode: str) -> Iterator[IO[str]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, mode, encoding="utf-8") as file:
            if fcntl is not None:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            yield file

    def append(self, charge: Charge) -> None:
        """Write one charge durably (fsync): the answer is returned only after this."""
        with self._locked("a") as file:
            file.write(charge.to_json() + "\n")
            file.flush()
            os.fsync(file.fileno())

    def has_pending(self) -> bool:
        """One stat: cheap enough to ask before every ledger call."""
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def pending(self) -> list[Charge]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return _parse(text)

    def replay(self, settle: Callable[[Charge], None]) -> int:
        """Settle every journaled charge in order; returns how many landed. Stops at the first
        failure (the ledger is still down): the rest stay for the next replay.

        No lock is held across the settles (the ledger may take seconds to refuse); settles are
        idempotent by hold id, so two processes replaying the same charge count it once.
        """
        charges = self.pending()
        done = 0
        try:
            for charge in charges:
                settle(charge)
                done += 1
        finally:
            if done:
                _drop_replayed(self, {c.hold.id for c in charges[:done]})
        return done


def _parse(text: str) -> list[Charge]:
    charges = []
    for line in text.splitlines():
        if line.strip():
            # A torn last line (a crash mid-append, before fsync returned) was never acknowledged.
            with contextlib.suppress(ValueError, KeyError, TypeError):
                charges.append(Charge.from_json(line))
    return charges


def _rewrite(file: IO[str], charges: list[Charge]) -> None:
    file.seek(0)
    file.truncate()
    for charge in charges:
        file.write(charge.to_json() + "\n")
    file.flush()
    os.fsync(file.fileno())


async def areplay(journal: Journal, settle: Callable[[Charge], Any]) -> int:
    """``Journal.replay`` with an async settle: read, settle each, then keep what did not land.

    No flock is held across the awaits (it would block the loop's thread for other tasks); the
    settles are idempotent, so two processes replaying the same charge count it once.
    """
    charges = journal.pending()
    done = 0
    try:
        for charge in charges:
            await settle(charge)
            done += 1
    finally:
        if done:
            _drop_replayed(journal, {c.hold.id for c in charges[:done]})
    return done


def _drop_replayed(journal: Journal, ids: set[str]) -> None:
    with journal._locked("r+") as file:
        rest = [c for c in _parse(file.read()) if c.hold.id not in ids]
        _rewrite(file, rest)
