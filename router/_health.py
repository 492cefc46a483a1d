"""Circuit breakers per deployment: skip a model that keeps failing, then let one request try it.

Closed → (``failures`` within ``window_s``, or a Retry-After beyond the cap, or auth/not-found)
→ open for ``cooldown_s`` → half-open: the next request that picks the model is its trial; success
closes the breaker, failure opens it again. Open and half-open-with-a-trial models reach the
planner as health reasons, so they show in ``routing.rejected`` like any other filter.

One ``Breakers`` per client (shared by its ``with_options`` copies), never module state. The clock
is injected so tests drive cooldowns without sleeping.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from policies.schema import CooldownSpec

# Error classes that say something about the deployment's health. A bad request, a too-long
# prompt or a content filter says nothing about it.
COUNTED: Final = frozenset({"rate_limited", "server", "timeout", "connection"})
# The deployment itself is unusable as configured: take it out at once.
MARK_DOWN: Final = frozenset({"auth", "not_found"})

_NONE: Final[Mapping[str, str]] = MappingProxyType({})


class Breakers:
    """In-process breaker state for every deployment of one client."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}
        self._open_until: dict[str, float] = {}
        self._reason: dict[str, str] = {}
        self._trial: set[str] = set()

    def snapshot(self) -> Mapping[str, str]:
        """Models to skip now, with the reason; empty (and cheap) when every breaker is closed."""
        if not self._open_until:
            return _NONE
        now = self._clock()
        with self._lock:
            skip: dict[str, str] = {}
            for model, until in self._open_until.items():
                if now < until:
                    skip[model] = f"cooling down after {self._reason[model]} ({until - now:.1f}s left)"
                elif model in self._trial:
                    skip[model] = f"half-open after {self._reason[model]}: a trial request is in flight"
            return skip

    def admit(self, model: str) -> str | None:
        """May ``model`` be called now? None if so (claiming the half-open trial), else why not."""
        if model not in self._open_until:
            return None
        now = self._clock()
        with self._lock:
            until = self._open_until.get(model)
            if until is None:
                return None
            if now < until:
                return f"cooling down after {self._reason[model]} ({until - now:.1f}s left)"
            if model in self._trial:
                return f"half-open after {self._reason[model]}: a trial request is in flight"
            self._trial.add(model)
            return None

    def succeeded(self, model: str) -> None:
        if model not in self._open_until and model not in self._failures:
            return
        with self._lock:
            self._failures.pop(model, None)
            self._open_until.pop(model, None)
            self._reason.pop(model, None)
            self._trial.discard(model)

    def failed(self, model: str, kind: str, cooldown: CooldownSpec) -> None:
        """Count a failure; open the breaker when the policy's threshold is reached."""
        now = self._clock()
        with self._lock:
            if kind in MARK_DOWN:
                self._open(model, now + cooldown.cooldown_s, f"an {kind} error")
                return
            if kind not in COUNTED:
                # The trial told us nothing about health: let the next request try again.
                self._trial.discard(model)
                return
            if model in self._trial:
                self._open(model, now + cooldown.cooldown_s, f"a failed trial ({kind})")
                return
            recent = self._failures.get(model)
            if recent is None:
                recent = self._failures[model] = deque(maxlen=cooldown.failures)
            recent.append(now)
            while recent and recent[0] <= now - cooldown.window_s:
                recent.popleft()
            if len(recent) >= cooldown.failures:
                self._open(
                    model,
                    now + cooldown.cooldown_s,
                    f"{len(recent)} failures in {cooldown.window_s:g}s (last: {kind})",
                )

    def open_for(self, model: str, seconds: float, reason: str) -> None:
        """Skip ``model`` for ``seconds`` (a Retry-After longer than the policy lets us wait)."""
        now = self._clock()
        with self._lock:
            self._open(model, now + seconds, reason)

    def _open(self, model: str, until: float, reason: str) -> None:
        self._open_until[model] = max(until, self._open_until.get(model, 0.0))
        self._reason[model] = reason
        self._trial.discard(model)
        self._failures.pop(model, None)
