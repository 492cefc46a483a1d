"""Processes for tests/router/test_deployments_fleet.py: one replica of a fleet sharing rate counters.

The replicas and the fake provider read one scaled clock (``ScaledClock``): Unix time since a common
start, sped up ``SPEED`` times, so a 60-s rate window passes in a few real seconds and every process
agrees on what time it is (the injected ``clock``/``wall_clock``/``sleep`` of each client).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import router

SPEED = 10.0
START = 1_700_000_000.0


class ScaledClock:
    """Virtual seconds: ``START`` at real time ``origin``, ``speed`` virtual seconds per real second."""

    def __init__(self, origin: float, speed: float = SPEED) -> None:
        self.origin = origin
        self.speed = speed

    def __call__(self) -> float:
        return START + (time.time() - self.origin) * self.speed

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0) / self.speed)


class Recorded:
    """The client's rate counters, recording every claim granted: (deployment key, the time claimed)."""

    def __init__(self, rates: Any) -> None:
        self._rates = rates
        self.claims: list[tuple[str, float]] = []

    def claim(self, key: str, **kwargs: Any) -> Any:
        claim = self._rates.claim(key, **kwargs)
        if claim.granted:
            self.claims.append((key, kwargs["now"] + claim.wait_s))
        return claim

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rates, name)


def replica(
    policy: dict[str, Any], ledger: str, origin: float, requests: int, ready: Any, go: Any, results: Any
) -> None:
    """Send ``requests`` sequential requests through ``router.OpenAI``; report who served each."""
    clock = ScaledClock(origin)
    served: Counter[str] = Counter()
    errors: list[str] = []
    with router.OpenAI(
        policy=policy, ledger=ledger, clock=clock, wall_clock=clock, sleep=clock.sleep
    ) as client:
        balancer = client._router._balancer
        recorded = balancer._rates = Recorded(balancer._rates)
        ready.put(os.getpid())
        go.wait()
        for _ in range(requests):
            try:
                response = client.chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": "Hi"}], max_tokens=16
                )
            except Exception as exc:  # reported to the parent, which fails the test with it
                errors.append(repr(exc))
                continue
            served[response.routing.deployment or response.routing.model or "?"] += 1
    results.put({"served": dict(served), "errors": errors, "claims": recorded.claims})
