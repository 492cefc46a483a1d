"""The planning row with learned adequacy, CPU per plan, two checkouts A/B in one process.

    python -m benchmarks.planning_ab BASE BRANCH [--plans-per-batch K] [--batches N] [--no-memory]

Loads ``router`` and ``policies`` from each checkout (say a ``git archive`` of main and this worktree)
and builds each one's planner for the planning row ``adequacy, ~2k chars`` (benchmarks/planning.py:
10 models, ``cost_weight: auto``, a 12,000-term file with four tasks and a neighbour memory of 16,267
prompts); ``--no-memory`` adds a third side, BRANCH's planner on the same file without its memory.
Batches of K plans alternate between the sides, each timed in thread CPU time, so every side shares
the same load at the same moments: on a busy two-core machine that is what makes the comparison hold
where separate runs swing by ±20%. Each plan's prompt differs from the previous one (its first word
is a count), as in the row.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.planning import adequacy_policy

_PACKAGES = ("router", "providers", "policies")


def _load(repo: str) -> tuple[Any, Any]:
    """The checkout's Engine and normalize (its modules, imported afresh)."""
    for name in [m for m in sys.modules if m.split(".")[0] in _PACKAGES]:
        del sys.modules[name]
    sys.path.insert(0, repo)
    try:
        engine = importlib.import_module("router._engine")
        pipeline = importlib.import_module("router._pipeline")
        return engine.Engine, pipeline.normalize
    finally:
        sys.path.remove(repo)


class _Side:
    def __init__(self, repo: str, memory: bool) -> None:
        engine, self.normalize = _load(repo)
        with tempfile.TemporaryDirectory(prefix="planning-ab-") as folder:
            # validated by this checkout's schema: its modules are the ones imported now
            policy, self.text = adequacy_policy(Path(folder), memory)
            self.planner = engine(policy, env=os.environ).planner
        self.count = 0
        self.samples: list[float] = []
        self.plans: list[Any] = []

    def batch(self, plans: int) -> None:
        requests = []
        for _ in range(plans):
            self.count += 1
            messages = [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": f"{self.count} {self.text}"},
            ]
            requests.append(self.normalize({"model": "auto", "messages": messages}, None).route)
        plan = self.planner.plan
        started = time.thread_time()
        for request in requests:
            plan(request)
        self.samples.append((time.thread_time() - started) / plans * 1e6)
        self.plans.append(plan(requests[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("branch")
    parser.add_argument("--plans-per-batch", type=int, default=100)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--no-memory", action="store_true", help="also BRANCH without the memory")
    args = parser.parse_args()
    sides = {"base": _Side(args.base, True), "branch": _Side(args.branch, True)}
    if args.no_memory:
        sides["branch, no memory"] = _Side(args.branch, False)
    names = list(sides)
    for _ in range(10):  # warm-up
        for side in sides.values():
            side.batch(args.plans_per_batch)
    for side in sides.values():
        side.samples.clear()
        side.plans.clear()
    for n in range(args.batches):
        for name in names if n % 2 else reversed(names):
            sides[name].batch(args.plans_per_batch)
    base, branch = sides["base"], sides["branch"]
    same = all(
        (a.rejected, [c.model for c in a.candidates], a.rules)
        == (b.rejected, [c.model for c in b.candidates], b.rules)
        for a, b in zip(base.plans, branch.plans, strict=True)
    )
    for name, side in sides.items():
        median = statistics.median(side.samples)
        print(
            f"{name:18}: {median:6.1f} µs CPU per plan (median of {len(side.samples)} batches of "
            f"{args.plans_per_batch}; best batch {min(side.samples):.1f})"
        )
    ratios = [b / a for a, b in zip(base.samples, branch.samples, strict=True)]
    print(f"branch / base, per batch pair: median {statistics.median(ratios):.3f}")
    print(f"same plans (rejections, order, rules) on both sides: {same}")


if __name__ == "__main__":
    main()
