"""The SQLite ledger's CPU per reserve + settle, two checkouts A/B in one process.

    python -m benchmarks.ledger_ab BASE BRANCH [--pairs-per-batch K] [--batches N] [--sync]

Loads ``router.ledger`` from each checkout (say a ``git archive`` of main and this worktree), gives
each its own SQLite file, and alternates batches between them: K reserves plus the settles of the
previous batch's K holds in one ``SqliteLedger.apply`` (what the async client's group commit does at
K pairs a turn; about 11 at 64 in flight), or with ``--sync`` K reserve/settle pairs one transaction
each (the sync client). Each batch is timed in thread CPU time, so both sides share the same load
at the same moments: on a busy two-core machine that is what makes the comparison hold where
separate runs swing by ±20%. The checkpointer thread is stopped (its work is off the request path
and shows up in neither column).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from types import ModuleType
from typing import Any

T0 = 1_764_500_000.0


def _load(repo: str) -> tuple[ModuleType, ModuleType]:
    for name in [m for m in sys.modules if m.split(".")[0] in ("router", "providers", "policies")]:
        del sys.modules[name]
    sys.path.insert(0, repo)
    try:
        sqlite = importlib.import_module("router.ledger.sqlite")
        return sqlite, importlib.import_module("router.ledger._types")
    finally:
        sys.path.remove(repo)


class _Side:
    def __init__(self, repo: str) -> None:
        self.sqlite, self.types = _load(repo)
        self.ledger: Any = self.sqlite.SqliteLedger(f"{tempfile.mkdtemp(prefix='ledger-ab-')}/ledger.db")
        self.ledger._checkpointer.stop()
        self.line = self.types.Line("bench", "day", 1_764_460_800.0, 1_764_547_200.0, 1_000_000.0)
        self.previous: list[Any] = []
        self.now = T0
        self.samples: list[float] = []

    def batch(self, pairs: int, sync: bool) -> None:
        self.now += 0.001
        now, types, ledger = self.now, self.types, self.ledger
        started = time.thread_time()
        if sync:
            for _ in range(pairs):
                hold = ledger.reserve((self.line,), 0.0123, ttl_s=60, now=now, hold_id=types.new_hold_id())
                ledger.settle(hold, 0.006, now=now)
        else:
            holds = [types.Hold(types.new_hold_id(), (self.line,), 0.0123, now + 60) for _ in range(pairs)]
            settles = [self.sqlite.SettleOp(hold, 0.006, now) for hold in self.previous]
            ledger.apply([self.sqlite.ReserveOp(hold, now) for hold in holds] + settles)
            self.previous = holds
        self.samples.append((time.thread_time() - started) / pairs * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("branch")
    parser.add_argument("--pairs-per-batch", type=int, default=11)
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--sync", action="store_true")
    args = parser.parse_args()
    sides = {"base": _Side(args.base), "branch": _Side(args.branch)}
    for _ in range(100):  # warm-up: statement caches, the tables' first pages
        for side in sides.values():
            side.batch(args.pairs_per_batch, args.sync)
    for side in sides.values():
        side.samples.clear()
    for n in range(args.batches):
        for name in ("base", "branch") if n % 2 else ("branch", "base"):
            sides[name].batch(args.pairs_per_batch, args.sync)
    how = "sync, one transaction a call" if args.sync else f"{args.pairs_per_batch} pairs a batch"
    for name, side in sides.items():
        median = statistics.median(side.samples)
        print(f"{name:6}: {median:6.1f} µs CPU per reserve + settle (median of {len(side.samples)}; {how})")


if __name__ == "__main__":
    main()
