"""The rows of ``router spend``: each budget's current window, then any other period the ledger knows.

Pure: the CLI reads the ledger and renders; this only joins the policy's limits to the figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router._budgets import ALL_FEATURES, BudgetBook
from router.ledger import Report, Totals, iso_utc, window_bounds


@dataclass(frozen=True, slots=True)
class SpendRow:
    scope: str  # the feature, or "*" for the policy-wide budget
    window: str
    period_start: float
    resets_at: float | None
    spent_usd: float
    reserved_usd: float
    limit_usd: float | None  # None: the policy has no such budget (any more)
    current: bool  # the window that is running now
    estimated_usd: float = 0.0  # the part of spent_usd charged as an estimate (cancelled after sending)

    @property
    def percent(self) -> float | None:
        """Settled spend as a percentage of the limit."""
        return None if not self.limit_usd else 100 * self.spent_usd / self.limit_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.scope,
            "window": self.window,
            "period_start": None if self.window == "total" else iso_utc(self.period_start),
            "resets_at": None if self.resets_at is None else iso_utc(self.resets_at),
            "spent_usd": _nano(self.spent_usd),
            "reserved_usd": _nano(self.reserved_usd),
            "estimated_usd": _nano(self.estimated_usd),
            "limit_usd": None if self.limit_usd is None else _nano(self.limit_usd),
            "percent": None if self.percent is None else round(self.percent, 4),
            "current": self.current,
        }


def _nano(value: float) -> float:
    """Dollars rounded to the nano-dollar: JSON without float noise (0.00015629999999999998)."""
    return round(value, 9)


def spend_rows(
    book: BudgetBook | None, current: Mapping[str, Totals], report: Report, now: float
) -> list[SpendRow]:
    """The policy's budgets in their current windows (figures from ``current``, by line key), then
    the ledger's other periods (``report``), newest first."""
    lines = book.current_lines(now) if book is not None else ()
    rows: list[SpendRow] = []
    seen: set[tuple[str, str, float]] = set()
    for line in lines:
        figures = current.get(line.key, Totals(0.0, 0.0))
        rows.append(
            SpendRow(
                line.scope,
                line.window,
                line.period_start,
                line.resets_at,
                figures.spent_usd,
                figures.reserved_usd,
                line.limit_usd,
                current=True,
                estimated_usd=figures.estimated_usd,
            )
        )
        seen.add((line.scope, line.window, line.period_start))
    others = [row for row in report if row[:3] not in seen]
    others.sort(key=lambda row: (row[0] == ALL_FEATURES, row[0], row[1], -row[2]))
    limits = {(line.scope, line.window): line.limit_usd for line in lines}
    for scope, window, start, figures in others:
        resets = window_bounds(window, start)[1]
        rows.append(
            SpendRow(
                scope,
                window,
                start,
                resets,
                figures.spent_usd,
                figures.reserved_usd,
                limits.get((scope, window)),
                current=start == window_bounds(window, now)[0],
                estimated_usd=figures.estimated_usd,
            )
        )
    return rows
