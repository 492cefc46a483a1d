"""Which deployment of a model serves a request: pure ranking, no I/O (docs/deployments.md).

Filters and ranking (policies/) see a model once; when the plan reaches a model that lists
``deployments:``, its endpoints are ordered here by the model's (or route's) ``balance`` strategy.
The caller (router._deployments.Balancer) then walks that order, skipping deployments whose breaker
is open, that this request already tried, or that are at their tpm/rpm, and claims the first free one.

Every function takes what it looks at as arguments (the loads, a seeded ``random.Random``), so the
choice is reproducible in tests and in ``router explain``.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from providers.base import Deployment

Balance = Literal["weighted", "least_busy", "latency", "usage"]
WhenAllLimited = Literal["wait", "fallback"]

# A rate window: providers count tokens and requests per minute.
WINDOW_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class Member:
    """One deployment of a pooled model, with what balancing needs to know about it."""

    deployment: Deployment
    weight: float = 1.0
    tpm: int | None = None
    rpm: int | None = None
    # Read on every pick: worked out once.
    key: str = field(init=False, default="")
    limited: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.deployment.key)
        object.__setattr__(self, "limited", self.tpm is not None or self.rpm is not None)


@dataclass(frozen=True, slots=True)
class Pool:
    """A model's deployments and the model's own balancing settings (a route may override them)."""

    model: str
    members: tuple[Member, ...]
    balance: Balance = "weighted"
    when_all_limited: WhenAllLimited = "fallback"
    # Deployments left out because they cannot be called (no key, no api_base): name → why.
    unavailable: Mapping[str, str] | None = None
    # Read on every pick: worked out once.
    limited: bool = field(init=False, default=False)
    total_weight: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "limited", any(m.limited for m in self.members))
        object.__setattr__(self, "total_weight", sum(m.weight for m in self.members))


@dataclass(frozen=True, slots=True)
class Load:
    """What is known about one deployment now: calls in flight, latency, this window's usage."""

    in_flight: int = 0
    latency_ms: float | None = None
    requests: int = 0
    tokens: int = 0


_IDLE: Final = Load()


def rank(
    members: Sequence[Member],
    balance: Balance,
    loads: Mapping[str, Load],
    tokens: int,
    rng: random.Random,
) -> list[Member]:
    """``members`` in the order to try them under ``balance``.

    Ties are broken at random (``rng``), never by listed order: a strategy that always prefers the
    first of equals sends it everything (LiteLLM #37622).
    """
    if len(members) <= 1:
        return list(members)
    if balance == "weighted":
        # Efraimidis-Spirakis: sorting by u ** (1 / weight) draws the first member with probability
        # weight / total, the next among the rest likewise, and so on: the failover order stays weighted.
        keyed = sorted(((rng.random() ** (1.0 / m.weight), i) for i, m in enumerate(members)), reverse=True)
        return [members[i] for _, i in keyed]
    ties = {m.key: rng.random() for m in members}

    def load(member: Member) -> Load:
        return loads.get(member.key, _IDLE)

    if balance == "least_busy":
        return sorted(members, key=lambda m: (load(m).in_flight / m.weight, ties[m.key]))
    if balance == "latency":
        # Never observed first: one request each tells the moving average what the rest would not.
        return sorted(
            members,
            key=lambda m: (load(m).latency_ms is not None, load(m).latency_ms or 0.0, ties[m.key]),
        )
    return sorted(members, key=lambda m: (-headroom(m, load(m), tokens), ties[m.key]))


def headroom(member: Member, load: Load, tokens: int) -> float:
    """The share of the tighter of tpm/rpm left after this request (1.0: no limit; below 0: over it)."""
    # Called per deployment per pick under `usage`: plain comparisons, no list (same result as min()).
    rpm, tpm = member.rpm, member.tpm
    if rpm is None and tpm is None:
        return 1.0
    share = math.inf
    if rpm is not None:
        share = 1.0 - (load.requests + 1) / rpm
    if tpm is not None:
        by_tokens = 1.0 - (load.tokens + tokens) / tpm
        if by_tokens < share:
            share = by_tokens
    return 1.0 if share == math.inf else share


def why(member: Member, balance: Balance, load: Load, tokens: int, total_weight: float) -> str:
    """One line for events and ``router explain``: what made ``member`` the pick."""
    if balance == "weighted":
        return _weighted_why(member.weight, total_weight)
    if balance == "least_busy":
        return f"least_busy: {load.in_flight} in flight"
    if balance == "latency":
        shown = "not observed yet" if load.latency_ms is None else f"{load.latency_ms:.0f} ms average"
        return f"latency: {shown}"
    return f"usage: {describe_usage(member, load)} used; {max(headroom(member, load, tokens), 0.0):.0%} left"


@functools.lru_cache(maxsize=1024)
def _weighted_why(weight: float, total: float) -> str:
    return f"weighted: weight {weight:g} of {total:g}"


def describe_usage(member: Member, load: Load) -> str:
    """``12/60 rpm, 3,100/100,000 tpm`` (or ``12 requests`` when the deployment has no limits)."""
    parts = []
    if member.rpm is not None:
        parts.append(f"{load.requests}/{member.rpm} rpm")
    if member.tpm is not None:
        parts.append(f"{load.tokens:,}/{member.tpm:,} tpm")
    return ", ".join(parts) if parts else f"{load.requests} requests, {load.tokens:,} tokens this minute"


def request_tokens(prompt: int, output: int) -> int:
    """The tokens a request counts against a tpm limit before it is sent: its prompt and the output it
    may write (Azure counts max_tokens the same way), at least one."""
    return max(prompt + output, 1)


def moving_average(previous: float | None, sample: float, alpha: float = 0.2) -> float:
    """Exponential moving average: recent calls count most, one slow call does not dominate."""
    return sample if previous is None else previous + alpha * (sample - previous)
