"""Small, pure statistics: percentiles, summaries, ratios and scaling exponents."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


@dataclass(frozen=True, slots=True)
class Summary:
    """Per-call figures in microseconds."""

    n: int
    p50_us: float
    p99_us: float
    mean_us: float


def summarize_ns(samples_ns: Sequence[int]) -> Summary:
    """Summarize per-call durations measured with ``time.perf_counter_ns``."""
    us = [s / 1000 for s in samples_ns]
    return Summary(n=len(us), p50_us=median(us), p99_us=percentile(us, 99), mean_us=sum(us) / len(us))


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, or None when either is missing or the baseline is zero."""
    if value is None or not baseline:
        return None
    return value / baseline


def scaling_exponent(t_small: float, t_large: float, n_small: int, n_large: int) -> float:
    """k in t ∝ n^k between two sizes: 1 is linear, 2 quadratic, below 1 dominated by fixed costs."""
    if t_small <= 0 or t_large <= 0 or n_small <= 0 or n_large <= n_small:
        raise ValueError("need positive times and n_large > n_small > 0")
    return math.log(t_large / t_small) / math.log(n_large / n_small)
