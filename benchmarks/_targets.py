"""DESIGN.md's performance budget, evaluated against one run's figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from benchmarks._results import Results
from benchmarks._stats import ratio, scaling_exponent

Status = Literal["PASS", "FAIL", "n/a"]
TIMES: Final = "\N{MULTIPLICATION SIGN}"

SDK_P50_LIMIT: Final = 1.05  # router everything-on p50 / openai SDK p50, at most
LITELLM_SPEEDUP_FLOOR: Final = 3.0  # litellm Router p50 / router everything-on p50, at least
ASYNC_FLOOR: Final = 2.0  # router.AsyncOpenAI req/s / AsyncOpenAI req/s at 64 in flight, at least
AIOHTTP_LIMIT: Final = 2.0  # bare aiohttp loop req/s / router.AsyncOpenAI req/s at 64 in flight, at most
SDK_P99_LIMIT: Final = 1.2  # router everything-on p99 / openai SDK p99, at most
IMPORT_LIMIT: Final = 1.2  # import router / import openai, at most
PLANNING_LIMIT_US: Final = 20.0  # median plan() at 10 models, short prompt
# DESIGN.md: planning with learned adequacy on, 10 models.
ADEQUACY_PLANNING_LIMIT_US: Final = 100.0
LINEAR_EXPONENT_LIMIT: Final = 1.2  # t ∝ models^k from 100 to 1,000 models: "roughly linear"
RSS_GROWTH_LIMIT_MB: Final = 5.0  # "flat within a few MB"


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    limit: str
    measured: str
    status: Status
    margin: str = ""


def _at_most(name: str, limit: float, value: float | None, fmt: str, unit: str = "") -> Target:
    shown = f"≤ {limit:{fmt}}{unit}"
    if value is None:
        return Target(name, shown, "not measured", "n/a")
    status: Status = "PASS" if value <= limit else "FAIL"
    margin = (
        f"{(limit - value) / limit:+.0%} headroom" if status == "PASS" else f"over by {value / limit - 1:.0%}"
    )
    return Target(name, shown, f"{value:{fmt}}{unit}", status, margin)


def _at_least(name: str, floor: float, value: float | None, fmt: str, unit: str = "") -> Target:
    shown = f"≥ {floor:{fmt}}{unit}"
    if value is None:
        return Target(name, shown, "not measured", "n/a")
    status: Status = "PASS" if value >= floor else "FAIL"
    margin = (
        f"{value / floor - 1:+.0%} above the floor"
        if status == "PASS"
        else f"short by {1 - value / floor:.0%}"
    )
    return Target(name, shown, f"{value:{fmt}}{unit}", status, margin)


def _p50(results: Results, key: str) -> float | None:
    line = results.latency_of(key)
    return line.p50_us if line else None


def _rps(results: Results, key: str, concurrency: int | None = None) -> float | None:
    line = results.throughput_of(key, concurrency)
    return line.rps if line else None


def _p99(results: Results, key: str) -> float | None:
    line = results.latency_of(key)
    return line.p99_us if line else None


def _soak(results: Results) -> list[Target]:
    from benchmarks.soak import verdict

    if results.soak is None or not results.soak.rounds:
        return [Target("fault soak flat (benchmarks/soak.py)", "all checks hold", "not measured", "n/a")]
    checks = verdict(results.soak)
    failed = [what for what, held, _ in checks if not held]
    return [
        Target(
            "fault soak flat (benchmarks/soak.py)",
            "all checks hold",
            f"{len(checks) - len(failed)} of {len(checks)} hold",
            "FAIL" if failed else "PASS",
            "; ".join(failed),
        )
    ]


def _import_ms(results: Results, module: str) -> float | None:
    line = results.import_of(module)
    return line.median_ms if line else None


def import_ratio(results: Results, module: str = "router") -> float | None:
    """``import module`` / ``import openai``: the median of the paired runs' ratios (each pair ran
    back to back), else the ratio of the two medians."""
    line = results.import_of(module)
    if line is not None and line.pair_ratio is not None:
        return line.pair_ratio
    return ratio(_import_ms(results, module), _import_ms(results, "openai"))


def planning_exponent(results: Results, small: int = 100, large: int = 1000) -> float | None:
    """The worst scaling exponent over both prompts between two policy sizes."""
    exponents = []
    for prompt in ("short", "100k"):
        a, b = results.planning_of(small, prompt), results.planning_of(large, prompt)
        if a and b:
            exponents.append(scaling_exponent(a.median_us, b.median_us, small, large))
    return max(exponents) if exponents else None


def evaluate(results: Results) -> list[Target]:
    """One Target per line of DESIGN.md's performance budget (plus the RSS check asked for)."""
    full, sdk, lite_router = (_p50(results, k) for k in ("router_full", "openai", "litellm_router"))
    ten = results.planning_of(10, "short")
    adequacy = results.planning_of(10, "adequacy, ~2k chars")
    memory = results.memory
    return [
        _at_most("router everything-on p50 / openai SDK p50", SDK_P50_LIMIT, ratio(full, sdk), ".2f", TIMES),
        _at_least(
            "litellm Router p50 / router everything-on p50",
            LITELLM_SPEEDUP_FLOOR,
            ratio(lite_router, full),
            ".2f",
            TIMES,
        ),
        _at_most(
            "router everything-on p99 / openai SDK p99",
            SDK_P99_LIMIT,
            ratio(_p99(results, "router_full"), _p99(results, "openai")),
            ".2f",
            TIMES,
        ),
        _at_least(
            "router.AsyncOpenAI / AsyncOpenAI throughput, 64 in flight",
            ASYNC_FLOOR,
            ratio(_rps(results, "router_full", 64), _rps(results, "openai", 64)),
            ".2f",
            TIMES,
        ),
        _at_most(
            "bare aiohttp loop / router.AsyncOpenAI throughput, 64 in flight",
            AIOHTTP_LIMIT,
            ratio(_rps(results, "aiohttp", 64), _rps(results, "router_full", 64)),
            ".2f",
            TIMES,
        ),
        _at_most(
            "import router / import openai",
            IMPORT_LIMIT,
            import_ratio(results),
            ".2f",
            TIMES,
        ),
        _at_most(
            "planning median, 10 models, short prompt",
            PLANNING_LIMIT_US,
            ten.median_us if ten else None,
            ".1f",
            " µs",
        ),
        _at_most(
            "planning scaling exponent k (t ∝ models^k, 100 → 1,000, worst prompt)",
            LINEAR_EXPONENT_LIMIT,
            planning_exponent(results),
            ".2f",
        ),
        _at_most(
            "planning median with learned adequacy, 10 models, ~2k-char prompt",
            ADEQUACY_PLANNING_LIMIT_US,
            adequacy.median_us if adequacy else None,
            ".1f",
            " µs",
        ),
        _at_most(
            "RSS growth after warm-up, router.OpenAI",
            RSS_GROWTH_LIMIT_MB,
            memory.growth_mb if memory else None,
            ".1f",
            " MB",
        ),
        *_soak(results),
    ]
