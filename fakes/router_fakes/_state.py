"""The fake's mutable state: scripts, fault cursors and the request log, behind one lock.

The server's event loop thread reads it for every request while tests script it from their own thread;
the lock is held only for dictionary and deque operations, never across I/O.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import deque
from collections.abc import Mapping
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
    __slots__ = ("cursor", "replied", "rng", "script")

    def __init__(self, script: ModelScript) -> None:
        self.script = script
        self.cursor = 0
        self.replied = 0
        self.rng = random.Random(script.seed)

    def next_reply(self) -> str | None:
        replies = self.script.replies
        if self.replied >= len(replies):
            return None
        self.replied += 1
        return replies[self.replied - 1]

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
    def __init__(self, log_limit: int) -> None:
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

    def scripted_models(self) -> list[str]:
        with self._lock:
            return [name for name, state in self._models.items() if not state.script.unknown]

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._log.append(request)

    def requests(self, model: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._log if model is None or r.model == model]

    def take(self, model: str) -> Turn:
        """The next turn for ``model``; an unknown model consumes no fault."""
        with self._lock:
            number = next(self._numbers)
            state = self._models.get(model)
            if state is None:
                return Turn(ModelScript(model), None, number)
            if state.script.unknown:
                return Turn(state.script, None, number)
            fault = state.next_fault()
            reply = state.next_reply() if fault is None else None
            return Turn(state.script, fault, number, reply)
