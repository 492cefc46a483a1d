"""Budget windows are UTC calendar periods: hours, days, ISO weeks from Monday, months, or forever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.ledger import iso_utc, window_bounds


def ts(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.timestamp())
calendar_windows = st.sampled_from(["hour", "day", "week", "month"])


@pytest.mark.parametrize(
    ("window", "now", "start", "resets"),
    [
        ("month", ts(2026, 11, 30, 23, 59, 59), ts(2026, 11, 1), ts(2026, 12, 1)),
        ("month", ts(2026, 12, 1), ts(2026, 12, 1), ts(2027, 1, 1)),
        ("month", ts(2026, 12, 31, 23, 59, 59), ts(2026, 12, 1), ts(2027, 1, 1)),
        ("month", ts(2028, 2, 29, 12), ts(2028, 2, 1), ts(2028, 3, 1)),
        ("day", ts(2026, 11, 30, 23, 59, 59), ts(2026, 11, 30), ts(2026, 12, 1)),
        ("day", ts(2026, 12, 1), ts(2026, 12, 1), ts(2026, 12, 2)),
        ("hour", ts(2026, 11, 30, 23, 59, 59), ts(2026, 11, 30, 23), ts(2026, 12, 1)),
        ("hour", ts(2026, 12, 1, 0, 0, 1), ts(2026, 12, 1), ts(2026, 12, 1, 1)),
        # 2026-11-30 is a Monday: Sunday night still belongs to the week of Monday the 23rd.
        ("week", ts(2026, 11, 29, 23, 59, 59), ts(2026, 11, 23), ts(2026, 11, 30)),
        ("week", ts(2026, 11, 30), ts(2026, 11, 30), ts(2026, 12, 7)),
        ("week", ts(2026, 12, 31, 12), ts(2026, 12, 28), ts(2027, 1, 4)),
    ],
)
def test_a_window_rolls_over_at_the_utc_boundary(
    window: str, now: float, start: float, resets: float
) -> None:
    assert window_bounds(window, now) == (start, resets)


def test_a_clock_a_hair_before_midnight_stays_in_the_old_day() -> None:
    midnight = ts(2026, 12, 1)
    assert window_bounds("month", midnight - 1e-6) == (ts(2026, 11, 1), midnight)
    assert window_bounds("day", midnight - 1e-6)[1] == midnight


def test_the_total_window_starts_at_zero_and_never_resets() -> None:
    assert window_bounds("total", ts(2026, 11, 30)) == (0.0, None)


def test_an_unknown_window_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="hour, day, week, month, total"):
        window_bounds("fortnight", 0.0)


def test_resets_are_shown_in_utc_iso_form() -> None:
    assert iso_utc(ts(2026, 12, 1)) == "2026-12-01T00:00:00Z"


@settings(max_examples=300, deadline=None)
@given(window=calendar_windows, now=moments)
def test_the_period_contains_now_and_the_next_one_starts_where_it_resets(window: str, now: float) -> None:
    start, resets = window_bounds(window, now)
    assert resets is not None
    assert start <= now < resets
    assert window_bounds(window, start) == (start, resets)
    assert window_bounds(window, resets)[0] == resets
    assert window_bounds(window, resets - 1) == (start, resets)


@settings(max_examples=300, deadline=None)
@given(window=calendar_windows, now=moments)
def test_periods_start_on_calendar_boundaries(window: str, now: float) -> None:
    start, resets = window_bounds(window, now)
    assert resets is not None
    first, following = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(resets, UTC)
    assert (first.minute, first.second, first.microsecond) == (0, 0, 0)
    if window == "hour":
        assert following - first == timedelta(hours=1)
    elif window == "day":
        assert first.hour == 0 and following - first == timedelta(days=1)
    elif window == "week":
        assert first.hour == 0 and first.weekday() == 0 and following - first == timedelta(days=7)
    else:
        assert first.hour == 0 and first.day == 1 and following.day == 1
        assert following.month == first.month % 12 + 1
