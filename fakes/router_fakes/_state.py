"""The fake's mutable state: scripts, fault cursors and the request log, behind one lock.

The server's event loop thread reads it for every request while tests script it from their own thread;
the lock is held only for dictionary and deque operations, never across I/O.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .script import Fault, ModelScript, RecordedRequest

_REDACTED_HEADERS = frozenset(("authorization", "x-api-key", "x-goog-api-key", "api-key"))


def redact(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lower-cased (HTTP does not care), credential values replaced."""
    return {k.lower(): ("<redacted>" if k.lower() in _REDACTED_HEADERS else v) for k, v in headers.items()}


@dataclass(frozen=True, slots=True)
class Turn:
    """What one request gets: the model's script, the fault it consumed (if any), its number, and the
    scripted reply it consumed (if any)."""

    script: ModelScript
    fault: Fault | None
    number: int
    reply: str | None = None


class _ModelState:
    __slots__ = ("cursor", "flex_cursor", "replied", "rng", "script")

    def __init__(self, script: ModelScript) -> None:
        self.script = script
        self.cursor = 0
        self.flex_cursor = 0
        self.replied = 0
        self.rng = random.Random(script.seed)

    def next_reply(self) -> str | None:
        replies = self.script.replies
        if self.replied >= len(replies):
            return None
        self.replied += 1
        return replies[self.replied - 1]

    def next_flex_fault(self) -> Fault | None:
        faults = self.script.flex_faults
        if faults and (self.script.repeat_faults or self.flex_cursor < len(faults)):
            fault = faults[self.flex_cursor % len(faults)]
            self.flex_cursor += 1
            return fault
        return None

    def next_fault(self) -> Fault | None:
        script = self.script
        if script.faults and (script.repeat_faults or self.cursor < len(script.faults)):
            fault = script.faults[self.cursor % len(script.faults)]
            self.cursor += 1
            return fault
        if script.fail_rate and self.rng.random() < script.fail_rate:
            return Fault("status", status=script.fail_status)
        return None


class State:
    def __init__(self, log_limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        # Arrival times per rate key within the last 60 s, and the requests refused for going over.
        self._arrivals: dict[str, deque[float]] = {}
        self._spent: dict[str, deque[tuple[float, int]]] = {}  # (time, tokens) of answers, per rate key
        self.rate_limited: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self._models: dict[str, _ModelState] = {}
        self._log: deque[RecordedRequest] = deque(maxlen=log_limit)
        self._numbers = itertools.count(1)

    def script(self, script: ModelScript) -> None:
        with self._lock:
            self._models[script.model] = _ModelState(script)

    def reset(self) -> None:
        with self._lock:
            self._models.clear()
            self._log.clear()
            self._arrivals.clear()
            self._spent.clear()
            self.rate_limited.clear()

    def admit(self, key: str, rpm: int) -> tuple[int, float]:
        """Count a request against ``rpm`` within the 60 s before now: (requests left, 0) when taken,
        (0, seconds until a slot frees) when refused (and remembered in ``rate_limited``)."""
        now = self.clock()
        with self._lock:
            arrivals = self._arrivals.setdefault(key, deque())
            while arrivals and arrivals[0] <= now - 60.0:
                arrivals.popleft()
            if len(arrivals) >= rpm:
                self.rate_limited.append((key, now))
                return 0, max(arrivals[0] + 60.0 - now, 0.001)
            arrivals.append(now)
            return rpm - len(arrivals), 0.0

    def requests_reset_s(self, key: str) -> float:
        """Seconds until the oldest request counted in ``key``'s window leaves it (0: none counted)."""
        now = self.clock()
        with self._lock:
            arrivals = self._arrivals.get(key)
            return max(arrivals[0] + 60.0 - now, 0.0) if arrivals else 0.0

    def tokens_left(self, key: str, tpm: int) -> tuple[int, float]:
        """Tokens ``key`` may still use within the 60 s before now, and seconds until the oldest
        counted ones leave the window."""
        now = self.clock()
        with self._lock:
            spent = self._spent.setdefault(key, deque())
            while spent and spent[0][0] <= now - 60.0:
                spent.popleft()
            used = sum(tokens for _, tokens in spent)
            return max(tpm - used, 0), (max(spent[0][0] + 60.0 - now, 0.0) if spent else 0.0)

    def spend(self, key: str, tokens: int) -> None:
        """Count an answer's tokens against ``key``'s tpm window."""
        with self._lock:
            self._spent.setdefault(key, deque()).append((self.clock(), tokens))

    def scripted_models(self) -> list[str]:
        with self._lock:
            return [name for name, state in self._models.items() if not state.script.unknown]

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._log.append(request)

    def requests(self, model: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._log if model is None or r.model == model]

    def prefills(self, model: str) -> bool:
        """Whether ``model`` (OpenAI protocol) is scripted to serve vLLM's continue_final_message."""
        with self._lock:
            state = self._models.get(model)
            return state is not None and state.script.prefill

    def take(self, model: str, *, flex: bool = False) -> Turn:
        """The next turn for ``model``; an unknown model consumes no fault. A ``flex`` request (OpenAI's
        ``service_tier: "flex"``) takes the script's flex faults when it has any, else the others."""
        with self._lock:
            number = next(self._numbers)
            state = self._models.get(model)
            if state is None:
                return Turn(ModelScript(model), None, number)
            if state.script.unknown:
                return Turn(state.script, None, number)
            fault = state.next_flex_fault() if flex and state.script.flex_faults else state.next_fault()
            reply = state.next_reply() if fault is None else None
            return Turn(state.script, fault, number, reply)
