"""The pure ranking of a model's deployments (router._balancing), one strategy at a time."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from providers.base import Deployment
from router._balancing import Load, Member, headroom, moving_average, rank, why


def member(name: str, weight: float = 1.0, rpm: int | None = None, tpm: int | None = None) -> Member:
    deployment = Deployment(name="m", provider="openai", model=name, adapter="openai", pool_name=name)
    return Member(deployment, weight, tpm, rpm)


def firsts(members: list[Member], strategy: str, loads: dict[str, Load], draws: int = 2000) -> Counter[str]:
    rng = random.Random(11)
    return Counter(
        rank(members, strategy, loads, 100, rng)[0].deployment.pool_name or ""
        for _ in range(draws)  # type: ignore[arg-type]
    )


def test_weighted_draws_the_first_in_proportion_to_the_weights() -> None:
    counts = firsts([member("a", 1), member("b", 3)], "weighted", {})
    assert abs(counts["b"] / 2000 - 0.75) < 0.03


def test_weighted_failover_order_is_weighted_too() -> None:
    rng = random.Random(3)
    members = [member("a", 1), member("b", 1), member("c", 8)]
    seconds = Counter(rank(members, "weighted", {}, 1, rng)[1].key for _ in range(3000))
    # After c (usually first), a and b share second place evenly.
    assert abs(seconds["m/a"] - seconds["m/b"]) < 300


def test_least_busy_prefers_fewest_in_flight_per_weight_and_breaks_ties_at_random() -> None:
    members = [member("a"), member("b"), member("c", weight=4)]
    loads = {"m/a": Load(in_flight=2), "m/b": Load(in_flight=2), "m/c": Load(in_flight=4)}
    assert firsts(members, "least_busy", loads)["c"] == 2000  # 4 in flight at weight 4 is the least busy
    tied = firsts(members[:2], "least_busy", {})
    assert tied["a"] > 800 and tied["b"] > 800  # never "always the first listed"


def test_latency_tries_the_unobserved_first_then_the_fastest() -> None:
    members = [member("slow"), member("fast"), member("new")]
    loads = {"m/slow": Load(latency_ms=900.0), "m/fast": Load(latency_ms=120.0)}
    order = rank(members, "latency", loads, 1, random.Random(0))
    assert [m.deployment.pool_name for m in order] == ["new", "fast", "slow"]


def test_usage_prefers_the_most_headroom_under_the_tighter_limit() -> None:
    members = [member("a", rpm=10, tpm=1000), member("b", rpm=100, tpm=1000)]
    loads = {"m/a": Load(requests=1, tokens=100), "m/b": Load(requests=1, tokens=800)}
    order = rank(members, "usage", loads, 100, random.Random(0))
    assert [m.deployment.pool_name for m in order] == ["a", "b"]  # b's tokens are the tighter limit
    assert headroom(members[1], loads["m/b"], 100) == pytest.approx(0.1)
    assert headroom(member("free"), Load(requests=10**6), 10**6) == 1.0


def test_why_names_what_decided() -> None:
    assert why(member("a", 2), "weighted", Load(), 1, 4) == "weighted: weight 2 of 4"
    assert why(member("a"), "least_busy", Load(in_flight=3), 1, 1) == "least_busy: 3 in flight"
    assert why(member("a"), "latency", Load(), 1, 1) == "latency: not observed yet"
    assert why(member("a", rpm=60), "usage", Load(requests=30), 1, 1) == "usage: 30/60 rpm used; 48% left"


def test_moving_average_starts_at_the_first_sample_and_leans_to_recent_ones() -> None:
    assert moving_average(None, 100.0) == 100.0
    assert moving_average(100.0, 200.0) == 120.0
