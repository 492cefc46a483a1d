"""Circuit breakers per deployment: skip a model that keeps failing, then let one request try it.

Closed → (``failures`` within ``window_s``, or a Retry-After beyond the cap, or auth/not-found)
→ open for ``cooldown_s`` → half-open: the next request that picks the model is its trial; success
closes the breaker, failure opens it again. Open and half-open-with-a-trial models reach the
planner as health reasons, so they show in ``routing.rejected`` like any other filter.

One ``Breakers`` per client (shared by its ``with_options`` copies), never module state. The clock
is injected so tests drive cooldowns without sleeping.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, NamedTuple

from providers import error_kinds

if TYPE_CHECKING:
    from policies.schema import CooldownSpec

# Error classes that say something about the deployment's health (the error table's ``breaker``
# column). A bad request, a too-long prompt or a content filter says nothing about it.
COUNTED: Final = error_kinds.COUNTED
# The deployment itself is unusable as configured: take it out at once.
MARK_DOWN: Final = error_kinds.MARK_DOWN

_NONE: Final[Mapping[str, str]] = MappingProxyType({})


class Cooldown(str):
    """A breaker's reason to skip a model, as ``routing.rejected`` shows it, that also knows what
    opened the breaker (``kind``, an error kind) and when the model may be tried again (``until``,
    on the breakers' clock). When every model that could serve a request is held back by one, the
    router answers 429 or 503 with a Retry-After from these, not a 400 (``Session.exhausted``).
    """

    kind: str
    until: float

    def __new__(cls, text: str, kind: str, until: float) -> Cooldown:
        reason = super().__new__(cls, text)
        reason.kind = kind
        reason.until = until
        return reason

    def __reduce__(self) -> tuple[type[Cooldown], tuple[str, str, float]]:
        return type(self), (str(self), self.kind, self.until)


class Breakers:
    """In-process breaker state for every deployment of one client."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}
        self._open_until: dict[str, float] = {}
        self._reason: dict[str, str] = {}
        self._kind: dict[str, str] = {}  # the error kind that opened each breaker
        # Half-open trials in flight, with when each was claimed and the cooldown then in force: a
        # trial that never reports back (a stream dropped, a task cancelled) is given up after that
        # long, so the model is not kept out for ever.
        self._trial: dict[str, float] = {}
        self._trial_timeout: dict[str, float] = {}

    def snapshot(self) -> Mapping[str, str]:
        """Models to skip now, with the reason; empty (and cheap) when every breaker is closed."""
        if not self._open_until:
            return _NONE
        now = self._clock()
        with self._lock:
            skip: dict[str, str] = {}
            for model in self._open_until:
                reason = self._held(model, now)
                if reason is not None:
                    skip[model] = reason
            return skip

    def _held(self, model: str, now: float) -> Cooldown | None:
        """Why ``model`` is held back now (open, or half-open with a trial in flight), or None."""
        until = self._open_until[model]
        kind = self._kind.get(model, "unknown")
        if now < until:
            text = f"cooling down after {self._reason[model]} ({until - now:.1f}s left)"
            return Cooldown(text, kind, until)
        if self._trial_live(model, now):
            # The trial's answer is due any moment: the soonest the model may be free again is now.
            text = f"half-open after {self._reason[model]}: a trial request is in flight"
            return Cooldown(text, kind, now)
        return None

    def admit(self, model: str) -> str | None:
        """May ``model`` be called now? None if so (claiming the half-open trial), else why not."""
        if model not in self._open_until:
            return None
        now = self._clock()
        with self._lock:
            until = self._open_until.get(model)
            if until is None:
                return None
            reason = self._held(model, now)
            if reason is not None:
                return reason
            self._trial[model] = now
            return None

    def succeeded(self, model: str) -> None:
        if model not in self._open_until and model not in self._failures:
            return
        with self._lock:
            self._failures.pop(model, None)
            self._open_until.pop(model, None)
            self._reason.pop(model, None)
            self._kind.pop(model, None)
            self._trial.pop(model, None)

    def failed(self, model: str, kind: str, cooldown: CooldownSpec) -> None:
        """Count a failure; open the breaker when the policy's threshold is reached."""
        now = self._clock()
        with self._lock:
            if kind in MARK_DOWN:
                self._open(model, now + cooldown.cooldown_s, f"an {kind} error", kind)
                return
            if kind not in COUNTED:
                # The trial told us nothing about health: let the next request try again.
                self._trial.pop(model, None)
                return
            if model in self._trial:
                self._open(model, now + cooldown.cooldown_s, f"a failed trial ({kind})", kind)
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
                    kind,
                )

    def _trial_live(self, model: str, now: float) -> bool:
        claimed = self._trial.get(model)
        return claimed is not None and now - claimed < self._trial_timeout.get(model, 0.0)

    def open_for(self, model: str, seconds: float, reason: str, kind: str = "rate_limited") -> None:
        """Skip ``model`` for ``seconds`` (a Retry-After longer than the policy lets us wait)."""
        now = self._clock()
        with self._lock:
            self._open(model, now + seconds, reason, kind)

    def close(self) -> None:
        """Nothing to release in-process; shared breakers close their connection."""

    def _open(self, model: str, until: float, reason: str, kind: str) -> None:
        self._open_until[model] = max(until, self._open_until.get(model, 0.0))
        self._reason[model] = reason
        self._kind[model] = kind
        self._trial.pop(model, None)
        self._trial_timeout[model] = max(until - self._clock(), 1.0)
        self._failures.pop(model, None)


class BreakerWrite(NamedTuple):
    """One change to a shared breaker in Redis: SET ``key`` to ``value`` for ``px`` ms, or (value
    None) DELETE it."""

    key: str
    value: str | None
    px: int = 0


class SharedBreakers(Breakers):
    """Breakers whose open state is shared through Redis, so a fleet learns together. No I/O here.

    Each instance counts its own failures (as ``Breakers`` does); when one instance opens a
    breaker, it queues the reason with a TTL of the cooldown (``drain``), and every instance skips
    the model until the key expires. A success after the cooldown (the half-open trial) queues the
    key's deletion for all. Remote state is asked for at most once per ``refresh_s`` per instance
    (``fetch_due``; one MGET of ``keys``, handed back to ``fetched``), so planning stays in
    microseconds. Times in Redis are wall-clock (Unix) seconds: monotonic clocks differ between
    machines.

    The Redis calls themselves are actions (``router._decide.Publish``/``Fetch``) that the drivers
    perform with ``RedisBreakerStore``: inline for ``OpenAI``, on a worker thread for
    ``AsyncOpenAI``, whose event loop never waits on Redis (planning uses the last refresh).
    """

    _PREFIX: Final = "router:breaker:"

    def __init__(
        self,
        clock: Callable[[], float],
        models: tuple[str, ...],
        *,
        wall_clock: Callable[[], float],
        refresh_s: float = 1.0,
    ) -> None:
        super().__init__(clock)
        self._models = models
        self.keys: tuple[str, ...] = tuple(self._PREFIX + model for model in models)
        self._wall_clock = wall_clock
        self._refresh_s = refresh_s
        self._remote: dict[str, tuple[float, str, str]] = {}
        self._next_refresh = float("-inf")
        self._fetching = False
        self._outbox: list[BreakerWrite] = []

    # ----------------------------------------------------------------- what the drivers perform

    def fetch_due(self) -> bool:
        """Whether to read the remote state now (claims the read: no second one until ``fetched``)."""
        now = self._clock()
        if now < self._next_refresh or self._fetching:
            return False
        self._next_refresh = now + self._refresh_s
        self._fetching = True
        return True

    def fetched(self, values: Sequence[object] | None) -> None:
        """The MGET of ``keys`` (None: Redis could not be reached; the local state decides)."""
        self._fetching = False
        if values is None:
            return
        remote: dict[str, tuple[float, str, str]] = {}
        for model, value in zip(self._models, values, strict=True):
            if value:
                text = value.decode() if isinstance(value, bytes) else str(value)
                until, _, rest = text.partition("|")
                kind, known, reason = rest.partition("|")
                if not known:  # written before the kind was: "until|reason"
                    kind, reason = "unknown", rest
                remote[model] = (float(until), kind, reason)
        self._remote = remote

    @property
    def pending(self) -> bool:
        """Whether writes wait to be published (cheap: asked after every decision)."""
        return bool(self._outbox)

    def drain(self) -> tuple[BreakerWrite, ...]:
        """The writes to publish, in order, handed over once."""
        writes, self._outbox = tuple(self._outbox), []
        return writes

    # ----------------------------------------------------------------- the state

    def _remote_reason(self, model: str) -> Cooldown | None:
        entry = self._remote.get(model)
        if entry is None:
            return None
        until, kind, reason = entry
        left = until - self._wall_clock()
        if left <= 0:
            return None
        text = f"cooling down after {reason} (another instance; {left:.1f}s left)"
        return Cooldown(text, kind, self._clock() + left)

    def snapshot(self) -> Mapping[str, str]:
        local = super().snapshot()
        if not self._remote:
            return local
        merged = dict(local)
        for model in self._remote:
            reason = self._remote_reason(model)
            if reason is not None and model not in merged:
                merged[model] = reason
        return merged

    def admit(self, model: str) -> str | None:
        reason = self._remote_reason(model) if self._remote else None
        return reason if reason is not None else super().admit(model)

    def succeeded(self, model: str) -> None:
        was_open = model in self._open_until or model in self._remote
        super().succeeded(model)
        if was_open:
            self._remote.pop(model, None)
            self._outbox.append(BreakerWrite(self._PREFIX + model, None))

    def _open(self, model: str, until: float, reason: str, kind: str) -> None:
        super()._open(model, until, reason, kind)
        seconds = until - self._clock()
        if seconds <= 0:
            return
        wall_until = self._wall_clock() + seconds
        value = f"{wall_until}|{kind}|{reason}"
        self._outbox.append(BreakerWrite(self._PREFIX + model, value, max(int(seconds * 1000), 1)))


class RedisBreakerStore:
    """The Redis side of ``SharedBreakers``, used by the drivers only: reads and writes that fail
    are ignored (a Redis outage falls back to the local state rather than failing requests).

    ``worker``: one thread of its own for ``AsyncOpenAI``, so that writes land in the order made.
    """

    def __init__(self, url: str) -> None:
        import redis  # the redis extra; only a redis:// ledger gets here

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._worker: ThreadPoolExecutor | None = None

    @property
    def worker(self) -> ThreadPoolExecutor:
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="router-breakers")
        return self._worker

    def fetch(self, keys: Sequence[str]) -> Sequence[object] | None:
        """The MGET of ``keys``; None when Redis cannot be reached."""
        try:
            values: Sequence[object] = self._redis.mget(keys)
        except self._errors:
            return None
        return values

    def write(self, writes: Sequence[BreakerWrite]) -> None:
        for write in writes:
            with contextlib.suppress(*self._errors):
                if write.value is None:
                    self._redis.delete(write.key)
                else:
                    self._redis.set(write.key, write.value, px=write.px)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
        self._redis.close()
