"""What every ledger does, run against memory, SQLite and Redis, through the sync and the async class."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policies.schema import Policy
from router._budgets import BudgetBook
from router.ledger import AsyncLedger, Hold, Line, Refusal, Totals

T0 = 1_764_547_000.0  # 2025-11-30T23:56:40Z, four minutes before a month ends
DAY = Line("support", "day", 1_764_460_800.0, 1_764_547_200.0, 1.0)
OVERALL = Line("*", "total", 0.0, None, 0.5)


async def reserve(ledger: AsyncLedger, lines: list[Line], amount: float, *, now: float = T0) -> Hold:
    result = await ledger.reserve(lines, amount, ttl_s=60, now=now)
    assert isinstance(result, Hold), result
    return result


async def test_a_reservation_that_fits_is_held_and_counts_as_reserved(ledger: AsyncLedger) -> None:
    hold = await reserve(ledger, [DAY], 0.25)
    assert hold.lines == (DAY,) and hold.amount_usd == 0.25 and hold.expires_at == T0 + 60
    assert await ledger.totals([DAY], now=T0) == {DAY.key: Totals(0.0, 0.25)}


async def test_a_reservation_may_fill_the_limit_exactly_but_not_pass_it(ledger: AsyncLedger) -> None:
    await reserve(ledger, [DAY], 0.7)
    await reserve(ledger, [DAY], 0.3)
    refused = await ledger.reserve([DAY], 0.000000001, ttl_s=60, now=T0)
    assert refused == Refusal(DAY, 0.0, 1.0, 0.000000001)


async def test_spent_plus_reserved_plus_amount_over_the_limit_is_refused(ledger: AsyncLedger) -> None:
    hold = await reserve(ledger, [DAY], 0.5)
    await ledger.settle(hold, 0.5, now=T0)
    await reserve(ledger, [DAY], 0.3)
    refused = await ledger.reserve([DAY], 0.3, ttl_s=60, now=T0)
    assert refused == Refusal(DAY, spent_usd=0.5, reserved_usd=0.3, amount_usd=0.3)
    assert refused.blocked_by_reservations  # 0.5 spent + 0.3 fits: waiting for the 0.3 in flight may help


async def test_a_refusal_on_spent_alone_is_not_blocked_by_reservations(ledger: AsyncLedger) -> None:
    hold = await reserve(ledger, [DAY], 0.9)
    await ledger.settle(hold, 0.9, now=T0)
    refused = await ledger.reserve([DAY], 0.2, ttl_s=60, now=T0)
    assert isinstance(refused, Refusal) and not refused.blocked_by_reservations


async def test_reserve_is_atomic_across_lines_one_full_line_reserves_nothing_anywhere(
    ledger: AsyncLedger,
) -> None:
    filler = await reserve(ledger, [OVERALL], 0.5)
    refused = await ledger.reserve([DAY, OVERALL], 0.1, ttl_s=60, now=T0)
    assert isinstance(refused, Refusal) and refused.line == OVERALL
    assert (await ledger.totals([DAY], now=T0))[DAY.key] == Totals(0.0, 0.0)
    await ledger.release(filler)
    both = await reserve(ledger, [DAY, OVERALL], 0.1)
    assert await ledger.totals([DAY, OVERALL], now=T0) == {
        DAY.key: Totals(0.0, 0.1),
        OVERALL.key: Totals(0.0, 0.1),
    }
    assert both.lines == (DAY, OVERALL)


async def test_settle_adds_the_exact_cost_to_every_line_and_drops_the_reservation(
    ledger: AsyncLedger,
) -> None:
    hold = await reserve(ledger, [DAY, OVERALL], 0.01)
    after = await ledger.settle(hold, 0.0001851, now=T0)
    assert after == {DAY.key: Totals(0.0001851, 0.0), OVERALL.key: Totals(0.0001851, 0.0)}


async def test_many_small_costs_add_up_without_float_drift(ledger: AsyncLedger) -> None:
    for _ in range(200):
        hold = await reserve(ledger, [DAY], 0.001)
        await ledger.settle(hold, 0.0001851, now=T0)  # 1,234 GPT-4o mini input tokens at $0.15/M
    assert (await ledger.totals([DAY], now=T0))[DAY.key] == Totals(0.03702, 0.0)


async def test_release_drops_the_reservation_and_spends_nothing(ledger: AsyncLedger) -> None:
    hold = await reserve(ledger, [DAY, OVERALL], 0.4)
    await ledger.release(hold)
    await ledger.release(hold)  # twice is harmless
    assert await ledger.totals([DAY, OVERALL], now=T0) == {
        DAY.key: Totals(0.0, 0.0),
        OVERALL.key: Totals(0.0, 0.0),
    }


async def test_a_hold_id_chosen_by_the_caller_names_the_hold_and_releases_it(ledger: AsyncLedger) -> None:
    # The router picks the id before asking, so it can give the hold back without having seen it.
    chosen = Hold("a1b2c3d4e5f6a1b2c3d4e5f6", (DAY,), 0.25, T0 + 60)
    granted = await ledger.reserve([DAY], 0.25, ttl_s=60, now=T0, hold_id=chosen.id)
    assert granted == chosen
    await ledger.release(chosen)
    assert await ledger.totals([DAY], now=T0) == {DAY.key: Totals(0.0, 0.0)}


async def test_releasing_a_hold_id_that_was_never_reserved_changes_nothing(ledger: AsyncLedger) -> None:
    kept = await reserve(ledger, [DAY], 0.25)
    await ledger.release(Hold("0" * 24, (DAY,), 0.5, T0 + 60))  # refused, or never asked for
    assert await ledger.totals([DAY], now=T0) == {DAY.key: Totals(0.0, 0.25)}
    await ledger.settle(kept, 0.1, now=T0)
    assert await ledger.totals([DAY], now=T0) == {DAY.key: Totals(0.1, 0.0)}


async def test_an_expired_reservation_no_longer_counts_and_frees_the_cap(ledger: AsyncLedger) -> None:
    await reserve(ledger, [DAY], 1.0)  # expires at T0 + 60
    assert (await ledger.totals([DAY], now=T0 + 59.9))[DAY.key].reserved_usd == 1.0
    assert (await ledger.totals([DAY], now=T0 + 60))[DAY.key].reserved_usd == 0.0
    await reserve(ledger, [DAY], 1.0, now=T0 + 60)


async def test_settling_an_expired_reservation_still_records_the_cost(ledger: AsyncLedger) -> None:
    hold = await reserve(ledger, [DAY], 0.5)
    assert await ledger.settle(hold, 0.2, now=T0 + 120) == {DAY.key: Totals(0.2, 0.0)}


async def test_first_warning_is_true_once_per_line_and_threshold(ledger: AsyncLedger) -> None:
    assert await ledger.first_warning(DAY, 0.5)
    assert not await ledger.first_warning(DAY, 0.5)
    assert await ledger.first_warning(DAY, 0.8)
    tomorrow = Line("support", "day", DAY.period_start + 86_400, DAY.period_start + 2 * 86_400, 1.0)
    assert await ledger.first_warning(tomorrow, 0.5)


async def test_report_lists_periods_with_spend_or_live_reservations(ledger: AsyncLedger) -> None:
    weird = Line("a|b", "hour", 1_764_543_600.0, 1_764_547_200.0, 5.0)  # "|" inside a feature name
    await ledger.settle(await reserve(ledger, [DAY, OVERALL], 0.1), 0.05, now=T0)
    await reserve(ledger, [weird], 0.2)
    await reserve(ledger, [Line("gone", "day", DAY.period_start, DAY.resets_at, 1.0)], 0.1)  # will expire
    rows = await ledger.report(now=T0 + 30)
    assert ("a|b", "hour", 1_764_543_600.0, Totals(0.0, 0.2)) in rows
    assert ("support", "day", DAY.period_start, Totals(0.05, 0.0)) in rows
    assert ("*", "total", 0.0, Totals(0.05, 0.0)) in rows
    later = await ledger.report(now=T0 + 61)
    assert sorted(r[0] for r in later) == ["*", "support"]


async def test_spend_of_one_window_does_not_count_in_the_next(ledger: AsyncLedger) -> None:
    policy = Policy.model_validate(
        {
            "models": {"m": {"provider": "openai"}},
            "features": {"support": {"budget": {"limit_usd": 1, "window": "month"}}},
        }
    )
    book = BudgetBook(policy)
    november = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC).timestamp()
    (line,) = book.lines_for("support", november)
    await ledger.settle(await reserve(ledger, [line], 1.0, now=november), 1.0, now=november)
    refused = await ledger.reserve(book.lines_for("support", november), 0.01, ttl_s=60, now=november)
    assert isinstance(refused, Refusal)
    december = november + 1
    (fresh,) = book.lines_for("support", december)
    assert fresh.period_start == december and fresh.key != line.key
    await reserve(ledger, [fresh], 1.0, now=december)


async def test_no_lines_means_a_hold_that_touches_nothing(ledger: AsyncLedger) -> None:
    hold = await reserve(ledger, [], 5.0)
    assert await ledger.settle(hold, 5.0, now=T0) == {}
    await ledger.release(hold)
    assert await ledger.report(now=T0) == []


async def test_negative_or_non_finite_amounts_are_refused_as_errors(ledger: AsyncLedger) -> None:
    with pytest.raises(ValueError, match="amount_usd"):
        await ledger.reserve([DAY], -0.1, ttl_s=60, now=T0)
    with pytest.raises(ValueError, match="amount_usd"):
        await ledger.reserve([DAY], float("nan"), ttl_s=60, now=T0)
    hold = await reserve(ledger, [DAY], 0.1)
    with pytest.raises(ValueError, match="cost_usd"):
        await ledger.settle(hold, -1.0, now=T0)


def test_hold_ids_sort_in_the_order_they_were_made() -> None:
    # A SQLite ledger's settled-id index then grows at its end instead of on a random page per settle.
    from router.ledger._types import new_hold_id

    ids = [new_hold_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert sorted(ids) == ids
