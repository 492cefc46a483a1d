"""The budget book (policy budgets -> ledger lines, thresholds, messages) and BudgetExceededError."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import pytest

import router
from policies.loader import parse_policy
from policies.schema import Policy
from router._budgets import BudgetBook, exceeded_message, format_usd
from router.ledger import Line, Refusal, Totals


def ts(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


def policy(**extra: Any) -> Policy:
    return Policy.model_validate({"models": {"m": {"provider": "openai"}}, **extra})


BOOK = BudgetBook(
    policy(
        features={
            "support": {"budget": {"limit_usd": 50, "window": "day", "warn_at": [0.8, 0.5]}},
            "summarizer": {"budget": {"limit_usd": 200, "window": "month", "on_exceed": "downgrade"}},
            "search": {"require": ["tools"]},
        },
        budget={"limit_usd": 1000, "window": "week"},
    )
)
NOW = ts(2026, 11, 30, 23, 59, 59)


def test_a_feature_counts_against_its_own_budget_then_the_policy_wide_one() -> None:
    own, overall = BOOK.lines_for("support", NOW)
    assert own == Line("support", "day", ts(2026, 11, 30), ts(2026, 12, 1), 50.0)
    assert overall == Line("*", "week", ts(2026, 11, 30), ts(2026, 12, 7), 1000.0)


def test_a_feature_without_a_budget_counts_only_against_the_policy_wide_one() -> None:
    assert [line.scope for line in BOOK.lines_for("search", NOW)] == ["*"]
    assert [line.scope for line in BOOK.lines_for("not-in-the-policy", NOW)] == ["*"]


def test_no_budgets_means_no_lines_and_no_ledger_call() -> None:
    book = BudgetBook(policy(features={"support": {"require": ["tools"]}}))
    assert not book.has_budgets
    assert book.lines_for("support", NOW) == ()
    assert BudgetBook(policy(budget={"limit_usd": 1})).has_budgets


def test_lines_roll_over_to_the_next_month_at_the_utc_boundary() -> None:
    (before, _) = BOOK.lines_for("summarizer", NOW)
    (after, _) = BOOK.lines_for("summarizer", NOW + 1)
    assert (before.period_start, before.resets_at) == (ts(2026, 11, 1), ts(2026, 12, 1))
    assert (after.period_start, after.resets_at) == (ts(2026, 12, 1), ts(2027, 1, 1))
    assert before.key != after.key
    assert BOOK.window_bounds("day", NOW + 1) == (ts(2026, 12, 1), ts(2026, 12, 2))


def test_lines_are_those_of_the_windows_around_now_whichever_order_the_times_come_in() -> None:
    # Lines are kept between requests while their windows last: a time after a reset, or one
    # before the kept windows began (a clock set back), gets that time's own windows.
    book = BudgetBook(
        policy(
            features={"support": {"budget": {"limit_usd": 50, "window": "day"}}},
            budget={"limit_usd": 1000, "window": "week"},
        )
    )
    times = [NOW, NOW - 60, NOW + 1, NOW - 86_400, NOW + 86_400 * 7, NOW, NOW + 1]
    for now in times:
        own, overall = book.lines_for("support", now)
        assert (own.period_start, own.resets_at) == book.window_bounds("day", now)
        assert (overall.period_start, overall.resets_at) == book.window_bounds("week", now)
        assert book.lines_for("no-budget", now) == (overall,)
    total = BudgetBook(policy(budget={"limit_usd": 1, "window": "total"}))
    assert total.lines_for("any", NOW) == total.lines_for("any", NOW + 10**9)


def test_spec_for_finds_the_settings_a_line_came_from() -> None:
    own, overall = BOOK.lines_for("summarizer", NOW)
    assert BOOK.spec_for(own).on_exceed == "downgrade"
    assert BOOK.spec_for(overall).window == "week"
    assert [line.scope for line in BOOK.current_lines(NOW)] == ["support", "summarizer", "*"]


@pytest.mark.parametrize(
    ("before", "after", "crossed"),
    [
        (20.0, 24.99, []),
        (20.0, 25.0, [0.5]),  # reaching the mark exactly counts
        (25.0, 30.0, []),  # already past it before
        (24.0, 41.0, [0.5, 0.8]),
        (Totals(39.0, 5.0), Totals(40.5, 0.0), [0.8]),  # reservations never count
    ],
)
def test_crossed_thresholds_are_the_warn_at_marks_settled_spend_went_past(
    before: Totals | float, after: Totals | float, crossed: list[float]
) -> None:
    (line, _) = BOOK.lines_for("support", NOW)
    assert BOOK.crossed_thresholds(line, BOOK.spec_for(line), before, after) == crossed


def test_refusal_names_the_first_line_the_worst_case_does_not_fit() -> None:
    own, overall = BOOK.lines_for("support", NOW)
    totals = {own.key: Totals(49.0, 0.5), overall.key: Totals(10.0, 0.0)}
    assert BOOK.refusal([own, overall], totals, 0.5) is None
    refused = BOOK.refusal([own, overall], totals, 0.6)
    assert refused == Refusal(own, 49.0, 0.5, 0.6) and refused.blocked_by_reservations
    assert BOOK.downgrade_reason(refused) == (
        "worst case $0.60 does not fit the day budget of feature 'support' ($49.00 spent, $0.50 reserved, "
        "of $50.00)"
    )


def test_the_exceeded_message_says_which_cap_the_figures_the_reset_and_what_to_do() -> None:
    (line, _) = BOOK.lines_for("support", NOW)
    message = exceeded_message(
        feature="support", line=line, spent_usd=49.99, reserved_usd=0.02, amount_usd=0.0041
    )
    assert message == (
        "Budget exceeded for feature 'support': the day limit is $50.00, $49.99 is spent, $0.02 reserved by "
        "requests in flight, and this request may cost up to $0.0041. The day window resets at "
        "2026-12-01T00:00:00Z. To serve such requests now, raise features.support.budget.limit_usd in the "
        "policy, or set on_exceed: downgrade there to use the models whose worst case still fits."
    )


def test_the_policy_wide_message_says_all_features_and_a_total_never_resets() -> None:
    line = Line("*", "total", 0.0, None, 10.0)
    message = exceeded_message(feature="support", line=line, spent_usd=10.0, reserved_usd=0.0)
    assert message.startswith("Budget exceeded for all features (request for 'support'): the total limit")
    assert "does not reset" in message and "budget.limit_usd at the top of the policy" in message


def test_money_is_shown_in_cents_when_exact_and_to_the_nano_dollar_otherwise() -> None:
    assert [format_usd(v) for v in (50, 1234.5, 0.0041, 0.000000001)] == [
        "$50.00",
        "$1,234.50",
        "$0.0041",
        "$0.000000001",
    ]


def budget_error(scope: str = "support") -> router.BudgetExceededError:
    line = Line(scope, "day", ts(2026, 11, 30), ts(2026, 12, 1), 50.0)
    return router.BudgetExceededError("support", Refusal(line, 49.99, 0.02, 0.0041))


def test_budget_exceeded_is_caught_as_openais_429_insufficient_quota() -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        raise budget_error()
    error = caught.value
    assert isinstance(error, router.RouterError)
    assert (
        error.status_code == 429 and error.code == "insufficient_quota" and error.type == "insufficient_quota"
    )
    assert error.response.json()["error"]["code"] == "insufficient_quota"
    assert str(error).startswith("Budget exceeded for feature 'support'")


def test_budget_exceeded_carries_the_figures() -> None:
    error = budget_error("*")
    assert (error.feature, error.scope, error.window) == ("support", "*", "day")
    assert (error.limit_usd, error.spent_usd, error.reserved_usd) == (50.0, 49.99, 0.02)
    assert error.resets_at == ts(2026, 12, 1)
    assert "BudgetExceededError" in router.__all__


def test_the_example_in_the_budgets_docs_loads_with_three_budgets() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "budgets.md").read_text(encoding="utf-8")
    (block,) = [b.split("```", 1)[0] for b in docs.split("<!-- loads -->\n```yaml\n")[1:]]
    book = BudgetBook(parse_policy(block, source="docs/budgets.md"))
    assert [(line.scope, line.window, line.limit_usd) for line in book.current_lines(NOW)] == [
        ("support-bot", "day", 50.0),
        ("summarizer", "month", 200.0),
        ("*", "month", 1000.0),
    ]
