"""What ``router models`` and ``router explain`` show of models with several deployments.

Usage comes from the rate counters beside the policy's ``ledger:`` (SQLite or Redis): those are the
fleet's figures. Without a shared ledger the counters live in each client's process, so a separate
command sees none of their usage (and says so).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from policies.plan import Plan, RouteRequest
from router._deployments import Balancer
from router._engine import Engine
from router.ledger._rates import open_rates


def deployment_rows(engine: Engine, plan: Plan | None, request: RouteRequest | None) -> dict[str, Any]:
    """Per pooled model (the plan's candidates, or every one): its deployments in the order they
    would be tried now, with usage, and those left out (no key, no api_base)."""
    if not engine.pools:
        return {}
    balancer = Balancer(engine, open_rates(engine.policy.ledger), wall_clock=time.time)
    try:
        names = [c.model for c in plan.candidates] if plan is not None else list(engine.pools)
        route = plan.route if plan is not None else None
        shown: dict[str, Any] = {}
        for name in names:
            if name not in engine.pools:
                continue
            balance, when = engine.balance_for(route, name)
            rows = balancer.describe(name, route, request or RouteRequest(model=name))
            shown[name] = {
                "balance": balance,
                "when_all_limited": when,
                "deployments": rows,
                "unavailable": dict(engine.pools[name].unavailable or {}),
            }
        return shown
    finally:
        balancer.close()


def print_deployments(console: Console, shown: dict[str, Any], *, explain: bool) -> None:
    for name, entry in shown.items():
        title = (
            f"{name}: deployments (balance {entry['balance']}, when all limited: {entry['when_all_limited']})"
        )
        table = Table(title=title, title_justify="left")
        columns = ["deployment", "provider", "region", "weight", "rpm", "tpm", "used this minute", "why"]
        for column in columns:
            table.add_column(column, justify="right" if column in ("weight", "rpm", "tpm") else "left")
        for index, row in enumerate(entry["deployments"]):
            picked = explain and index == 0 and not row["why"].startswith("at its limit")
            used = f"{row['requests_this_minute']} req, {row['tokens_this_minute']:,} tok"
            table.add_row(
                Text(row["deployment"] + (" ← would be picked" if picked else "")),
                Text(row["provider"]),
                Text(row["region"] or "-"),
                f"{row['weight']:g}",
                f"{row['rpm']:,}" if row["rpm"] else "-",
                f"{row['tpm']:,}" if row["tpm"] else "-",
                used,
                Text(row["why"]),
            )
        for deployment, reason in entry["unavailable"].items():
            table.add_row(Text(deployment), "", "", "", "", "", "", Text(f"left out: {reason}"))
        console.print(table)
    if shown:
        console.print(
            "[dim]Usage is the fleet's when the policy names a shared ledger: (SQLite or Redis); "
            "otherwise each client counts its own.[/]"
        )
