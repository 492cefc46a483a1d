"""Calendar windows in UTC: where the current period of a budget starts and when it resets.

Hour, day and week are integer arithmetic on Unix seconds (no leap seconds there, so every day is
86,400 s); only month needs the calendar. Times are floored to whole seconds first, so a clock
reading a hair before midnight never rounds into the next day.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Final

WINDOWS: Final = ("hour", "day", "week", "month", "total")

_HOUR: Final = 3600
_DAY: Final = 86_400
# 1970-01-01 was a Thursday: day 0 is 3 days after a Monday.
_EPOCH_WEEKDAY: Final = 3


def window_bounds(window: str, now: float) -> tuple[float, float | None]:
    """(start, resets_at) of the period of ``window`` that contains ``now``; (0.0, None) for total."""
    if window == "total":
        return 0.0, None
    second = math.floor(now)
    if window == "hour":
        start = second - second % _HOUR
        return float(start), float(start + _HOUR)
    if window == "day":
        start = second - second % _DAY
        return float(start), float(start + _DAY)
    if window == "week":
        day = second // _DAY
        monday = day - (day + _EPOCH_WEEKDAY) % 7
        return float(monday * _DAY), float((monday + 7) * _DAY)
    if window == "month":
        moment = datetime.fromtimestamp(second, UTC)
        first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
        following = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
        return first.timestamp(), following.timestamp()
    raise ValueError(f"unknown budget window {window!r}; expected one of {', '.join(WINDOWS)}")


def iso_utc(seconds: float) -> str:
    """2026-12-01T00:00:00Z: how resets are shown to people."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
