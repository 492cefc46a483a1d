"""Planning with deployments: the per-request decision when models list several deployments.

Times ``Planner.plan`` plus the balancer's pick of the first candidate's deployment (what
``Session.next_step`` adds for a pooled model), on a 10-model policy whose models each have three
deployments: weighted (no I/O), usage with rpm/tpm on the in-process counters, and usage on the SQLite
counters (one INSERT ... SELECT statement per claim). Limits are set far above what the run sends, so
every pick claims a slot and none is refused; the injected wall clock moves 10 ms per call.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Final

_MIN_CALLS: Final = 50
_MAX_CALLS: Final = 200_000
_CASES: Final = (
    ("none", None, None),
    ("weighted, no limits", "weighted", None),
    ("usage, in-process counters", "usage", "memory://"),
    ("usage, SQLite counters", "usage", "sqlite"),
)


def _policy(balance: str | None) -> Any:
    from benchmarks._configs import planning_models
    from policies.schema import Policy

    models = planning_models(10)
    if balance is not None:
        for name, spec in models.items():
            spec["balance"] = balance
            limits = {"rpm": 10**7, "tpm": 10**12} if balance == "usage" else {}
            spec["deployments"] = [
                {"name": f"d{i}", "model": f"{name}-d{i}", "weight": i + 1, **limits} for i in range(3)
            ]
    return Policy.model_validate({"models": models, "routes": {"auto": {"strategy": "cheapest"}}})


def cells(budget_s: float) -> list[dict[str, Any]]:
    """One planning cell per case, in the shape of benchmarks.planning's (prompt: the case)."""
    from benchmarks._stats import summarize_ns
    from router._deployments import Balancer
    from router._engine import Engine
    from router._pipeline import normalize
    from router.ledger._rates import MemoryRates, SqliteRates

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, balance, counters in _CASES:
            engine = Engine(_policy(balance), env=os.environ)
            now = [1_700_000_000.0]
            balancer = None
            if balance is not None:
                rates = SqliteRates(Path(tmp) / f"{label}.rates") if counters == "sqlite" else MemoryRates()
                balancer = Balancer(engine, rates, wall_clock=lambda clock=now: clock[0])
            samples: list[int] = []
            spent, budget_ns = 0, int(budget_s * 1e9)
            plan: Any = None
            while (spent < budget_ns or len(samples) < _MIN_CALLS) and len(samples) < _MAX_CALLS:
                messages = [{"role": "user", "content": f"{len(samples)} Say hello in one word."}]
                route = normalize({"model": "auto", "messages": messages}, None).route
                now[0] += 0.01
                start = time.perf_counter_ns()
                plan = engine.planner.plan(route)
                if balancer is not None:
                    pick = balancer.pick(
                        plan.candidates[0].model, plan.route, route, tried={}, admit=None, remaining_s=600.0
                    )
                    assert pick.deployment is not None
                elapsed = time.perf_counter_ns() - start
                samples.append(elapsed)
                spent += elapsed
            if balancer is not None:
                balancer.close()
            s = summarize_ns(samples)
            out.append(
                {
                    "models": 10,
                    "prompt": f"short; 3 deployments/model, {label}" if balance else "short; no deployments",
                    "strategy": "cheapest",
                    "prompt_tokens": 10,
                    "iterations": s.n,
                    "median_us": s.p50_us,
                    "p99_us": s.p99_us,
                    "candidates": len(plan.candidates),
                    "rejected": len(plan.rejected),
                }
            )
    return out
