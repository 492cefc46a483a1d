"""Which budget lines a request counts against, and what to say about them. Pure: no I/O.

The ledger keeps the figures; this module turns the policy's ``budget:`` settings into the lines
of the current window, judges thresholds and fits from figures the ledger returned, and words the
messages. Built once per policy, so a request pays for a dict lookup and a little arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from router.ledger._types import Line, Refusal, Totals, to_nanos, to_nanos_down, to_nanos_up
from router.ledger._windows import iso_utc, window_bounds

if TYPE_CHECKING:
    from policies.schema import BudgetSpec, Policy

__all__ = ["ALL_FEATURES", "BudgetBook", "exceeded_message", "format_usd"]

# The scope of the policy-wide budget. A feature named "*" would share its figures: don't name one so.
ALL_FEATURES: Final = "*"


class BudgetBook:
    """The policy's budgets: the feature caps and the policy-wide one."""

    __slots__ = ("_current", "_features", "_overall")

    def __init__(self, policy: Policy) -> None:
        self._features: dict[str, BudgetSpec] = {
            name: spec.budget for name, spec in policy.features.items() if spec.budget is not None
        }
        self._overall = policy.budget
        # The lines of each budgeted feature (None: the policy-wide line alone) with the span of time
        # they hold for (their windows' latest start, earliest reset): made again only past it.
        self._current: dict[str | None, tuple[float, float, tuple[Line, ...]]] = {}

    @property
    def has_budgets(self) -> bool:
        return bool(self._features) or self._overall is not None

    window_bounds = staticmethod(window_bounds)

    def lines_for(self, feature: str, now: float) -> tuple[Line, ...]:
        """The feature's line (if it has a budget), then the policy-wide one (if set); often ()."""
        key = feature if feature in self._features else None
        current = self._current.get(key)
        if current is not None and current[0] <= now < current[1]:
            return current[2]
        lines = self._lines_for(feature, now)
        start = max((line.period_start for line in lines), default=now)
        end = min((line.resets_at for line in lines if line.resets_at is not None), default=math.inf)
        self._current[key] = (start, end, lines)  # replaced whole: a thread sees the old or the new
        return lines

    def _lines_for(self, feature: str, now: float) -> tuple[Line, ...]:
        spec = self._features.get(feature)
        if spec is None:
            return () if self._overall is None else (_line(ALL_FEATURES, self._overall, now),)
        own = _line(feature, spec, now)
        return (own,) if self._overall is None else (own, _line(ALL_FEATURES, self._overall, now))

    def current_lines(self, now: float) -> tuple[Line, ...]:
        """Every budget's line in its current window, features first (for ``router spend``)."""
        lines = [_line(name, spec, now) for name, spec in self._features.items()]
        if self._overall is not None:
            lines.append(_line(ALL_FEATURES, self._overall, now))
        return tuple(lines)

    def spec_for(self, line: Line) -> BudgetSpec:
        """The settings a line came from; KeyError for a scope this policy has no budget for."""
        if line.scope == ALL_FEATURES and self._overall is not None:
            return self._overall
        return self._features[line.scope]

    def fail_open(self, lines: Sequence[Line]) -> bool:
        """Whether a request may go on unchecked when the ledger fails: only if every budget it
        counts against says ``on_ledger_error: fail_open``."""
        return bool(lines) and all(self.spec_for(line).on_ledger_error == "fail_open" for line in lines)

    @staticmethod
    def crossed_thresholds(
        line: Line, spec: BudgetSpec, before: Totals | float, after: Totals | float
    ) -> list[float]:
        """The ``warn_at`` fractions that settled spend went past (before < fraction * limit <= after).

        Only settled spend counts: a reservation is a worst case, not money spent. Ask
        ``Ledger.first_warning`` for each, so that one process warns once per window.
        """
        was = to_nanos(before.spent_usd if isinstance(before, Totals) else before)
        is_ = to_nanos(after.spent_usd if isinstance(after, Totals) else after)
        return [f for f in spec.warn_at if was < to_nanos(f * line.limit_usd) <= is_]

    @staticmethod
    def refusal(lines: Sequence[Line], totals: Mapping[str, Totals], amount_usd: float) -> Refusal | None:
        """The first line on which ``amount_usd`` would not fit, judged from figures read earlier.

        For ``on_exceed: downgrade``'s planning only: the answer can be stale by the time a
        reservation is made, and only ``Ledger.reserve`` decides.
        """
        amount = to_nanos_up(amount_usd)
        for line in lines:
            figures = totals.get(line.key, Totals(0.0, 0.0))
            used = to_nanos(figures.spent_usd) + to_nanos(figures.reserved_usd)
            if used + amount > to_nanos_down(line.limit_usd):
                return Refusal(line, figures.spent_usd, figures.reserved_usd, amount_usd)
        return None

    @staticmethod
    def downgrade_reason(refusal: Refusal) -> str:
        """Why a model was skipped under ``on_exceed: downgrade``, for ``rejected`` in the routing record."""
        line = refusal.line
        return (
            f"worst case {format_usd(refusal.amount_usd)} does not fit the {line.window} budget of "
            f"{_owner(line.scope)} ({format_usd(refusal.spent_usd)} spent, "
            f"{format_usd(refusal.reserved_usd)} reserved, of {format_usd(line.limit_usd)})"
        )


def exceeded_message(
    *,
    feature: str,
    line: Line,
    spent_usd: float,
    reserved_usd: float,
    amount_usd: float | None = None,
) -> str:
    """What ``BudgetExceededError`` says: which cap, the figures, when it resets, what to do."""
    owner = _owner(line.scope) + ("" if line.scope != ALL_FEATURES else f" (request for {feature!r})")
    figures = f"{format_usd(spent_usd)} is spent"
    if reserved_usd:
        figures += f", {format_usd(reserved_usd)} reserved by requests in flight"
    need = "" if amount_usd is None else f", and this request may cost up to {format_usd(amount_usd)}"
    if line.resets_at is None:
        resets = "This is a total budget: it does not reset."
    else:
        resets = f"The {line.window} window resets at {iso_utc(line.resets_at)}."
    setting = (
        "budget.limit_usd at the top of the policy"
        if line.scope == ALL_FEATURES
        else f"features.{line.scope}.budget.limit_usd in the policy"
    )
    return (
        f"Budget exceeded for {owner}: the {line.window} limit is {format_usd(line.limit_usd)}, "
        f"{figures}{need}. {resets} To serve such requests now, raise {setting}, or set on_exceed: "
        "downgrade there to use the models whose worst case still fits."
    )


def format_usd(value: float) -> str:
    """$50.00, $0.0041, $49.998765: cents when exact, else up to nine decimals without trailing zeros."""
    if round(value, 2) == value:
        return f"${value:,.2f}"
    return "$" + f"{value:,.9f}".rstrip("0")


def _owner(scope: str) -> str:
    return "all features" if scope == ALL_FEATURES else f"feature {scope!r}"


def _line(scope: str, spec: BudgetSpec, now: float) -> Line:
    start, resets = window_bounds(spec.window, now)
    return Line(scope, spec.window, start, resets, spec.limit_usd)
