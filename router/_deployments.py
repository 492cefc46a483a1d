"""A client's balancer: picks a deployment of a pooled model and keeps what the strategies look at.

The ranking itself is pure (router._balancing); this object holds the per-client state it reads
(calls in flight, latency averages) and the rate counters (router.ledger._rates) that claim a slot
of a deployment's tpm/rpm before the call. One per client, shared by its ``with_options`` copies.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from policies.plan import RouteRequest
from providers.base import Deployment
from router._balancing import (
    Balance,
    Load,
    Member,
    Pool,
    WhenAllLimited,
    headroom,
    moving_average,
    rank,
    request_tokens,
    why,
)
from router._engine import Engine
from router.ledger._rates import Claim, Rates, provider_usage
from router.ledger._types import WouldWait

# Claims are handed out in order, never before the latest one. A claim whose ``now`` was read a moment
# before another request's claim landed (a thread of the async client's, another process, another
# machine) is due just after that one, although the window has room: waiting those milliseconds is
# not waiting for a full deployment, so even ``when_all_limited: fallback`` takes it. (Refused
# instead, busy clients passed a deployment far from its limits over for the next model, a dearer
# one: 18% of requests at 64 in flight with SQLite counters.)
ORDER_SLACK_S: Final = 0.25

_logger = logging.getLogger("router")
_UNUSED = (0, 0)  # no request or token counted this window
# While the rate counters are out of reach, every pick would say so (two calls a request: at 1,000
# requests a second, 2,000 warnings a second): the first failure of an outage warns, then at most one
# warning this often (with the count of calls failed meanwhile), and an info line when they answer.
OUTAGE_WARN_EVERY_S: Final = 60.0


@dataclass
class _Outage:
    """The rate counters' current outage (``since`` None: none), shared by a balancer's copies."""

    since: float | None = None
    warned_at: float = float("-inf")
    failed: int = 0  # calls failed since the last warning


class ReadUsage(NamedTuple):
    """Read this window's (requests, tokens) of ``keys`` from the rate counters (``Rates.usage``)."""

    keys: tuple[str, ...]
    now: float


class ClaimRate(NamedTuple):
    """Claim a slot of deployment ``key``'s rpm/tpm (``Rates.claim``); reports the ``Claim``."""

    key: str
    rpm: int | None
    tpm: int | None
    tokens: int
    now: float
    max_wait_s: float


class Started(NamedTuple):
    """A call on pooled ``deployment`` begins: one more in flight (``least_busy``)."""

    deployment: Deployment


class Finished(NamedTuple):
    """A call on pooled ``deployment`` ended (``Balancer.finished``): ``latency_ms`` and ``tokens``
    of a success (None otherwise), the rate ``claim`` to settle, the ``error`` of a failure, and the
    provider's x-ratelimit-* ``headers`` of a success (None when it sent none)."""

    deployment: Deployment
    latency_ms: float | None
    tokens: int | None
    claim: tuple[str, str] | None
    error: BaseException | None = None
    headers: Mapping[str, str] | None = None


class Bookkeep(NamedTuple):
    """Record calls starting and ending on pooled deployments (``Balancer.record``): in-flight counts,
    latency averages, claims settled to the tokens used, providers' rate-limit headers folded into
    the counters. Reports nothing; a counter that fails is logged (the request goes on)."""

    notes: tuple[Started | Finished, ...]


@dataclass(frozen=True, slots=True)
class Pick:
    """The deployment to call (after ``wait_s``), or None with ``reason``; what was skipped, and why."""

    deployment: Deployment | None
    wait_s: float = 0.0
    why: str = ""
    reason: str = ""
    skipped: Mapping[str, str] = field(default_factory=dict)
    claim: tuple[str, str] | None = None  # (deployment key, claim entry) to settle with real tokens
    tokens: int = 0


class Balancer:
    """Deployment choice for one client: strategies, in-flight counts, latency averages, rate claims."""

    def __init__(
        self,
        engine: Engine,
        rates: Rates,
        *,
        wall_clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self.pools: Mapping[str, Pool] = engine.pools
        self._rates = rates
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        # When each call in flight began (wall clock): a call never reported back (a stream the caller
        # abandoned) stops counting once it is older than any request may run.
        self._in_flight: dict[str, deque[float]] = {}
        policy = engine.policy
        self._stale_after_s = (
            max([policy.timeout_s, *(r.timeout_s or 0.0 for r in policy.routes.values())])
            + policy.stream_idle_timeout_s
        )
        self._latency: dict[str, float] = {}
        self.counter_errors = 0  # claims and reads the counters failed (served unchecked meanwhile)
        self._outage = _Outage()
        # (route, model) → (balance, when_all_limited): the policy never changes, so looked up once.
        self._settings: dict[tuple[str | None, str], tuple[Balance, WhenAllLimited]] = {}

    def for_engine(self, engine: Engine) -> Balancer:
        """This balancer for a client copy with other credentials: same counters, its deployments."""
        clone = Balancer.__new__(Balancer)
        clone.__dict__.update(self.__dict__)
        clone._engine = engine
        clone.pools = engine.pools
        clone._settings = {}
        return clone

    # ----------------------------------------------------------------- choosing

    def tokens_for(self, request: RouteRequest, route: str | None) -> int:
        """What this request counts against a tpm before it is sent: prompt + the output it may write."""
        prompt = request.prompt.best if request.prompt is not None else 0
        spec = self._engine.policy.routes.get(route) if route is not None else None
        expected = (
            spec.expected_output_tokens if spec else None
        ) or self._engine.policy.expected_output_tokens
        output = (request.max_output_tokens or expected) * request.choices
        return request_tokens(prompt, output)

    def loads(self, pool: Pool, balance: Balance) -> dict[str, Load]:
        """What each deployment is doing now; this window's usage read from the counters for ``usage``."""
        used: Mapping[str, tuple[int, int]] = {}
        if self._reads_usage(pool, balance):
            try:
                used = self._rates.usage([m.key for m in pool.members], self._wall_clock())
            except self._rates.errors as exc:
                self._counters_failed(exc)
            else:
                if self._outage.since is not None:
                    self._counters_answered()
        return self._loads(pool, used)

    @staticmethod
    def _reads_usage(pool: Pool, balance: Balance) -> bool:
        return balance == "usage" or any(m.limited for m in pool.members)

    def _loads(self, pool: Pool, used: Mapping[str, tuple[int, int]]) -> dict[str, Load]:
        with self._lock:
            # Load(in_flight, latency_ms, requests, tokens), positional: this runs per deployment per pick.
            latency = self._latency
            return {
                m.key: Load(self._live_calls(m.key), latency.get(m.key), *used.get(m.key, _UNUSED))
                for m in pool.members
            }

    def pick(
        self,
        model: str,
        route: str | None,
        request: RouteRequest,
        *,
        tried: Mapping[str, int],
        admit: Callable[[str], str | None] | None,
        remaining_s: float,
    ) -> Pick:
        """``picking``, its counter reads and claims performed here (inline): for tools and tests."""
        flow = self.picking(model, route, request, tried=tried, admit=admit, remaining_s=remaining_s)
        outcome: Any = None
        while True:
            try:
                action = flow.send(outcome)
            except StopIteration as done:
                pick: Pick = done.value
                return pick
            outcome = self.perform(action)

    def perform(self, action: ReadUsage | ClaimRate) -> Any:
        """One counter action, inline (what the sync driver does; the async one runs it off its loop):
        its result, or the counters' error (the decision serves unchecked)."""
        try:
            return self._perform(action)
        except self._rates.errors as exc:
            return exc

    def perform_now(self, action: ReadUsage | ClaimRate) -> Any:
        """``perform`` if the counters can answer without waiting on a lock (SQLite's, when no other
        process holds it): the async client then spares two thread hops, which cost it more than the
        claim. Else ``WouldWait``, having changed nothing: the action is performed on a thread."""
        now = getattr(self._rates, "without_waiting", None)
        if now is None:
            raise WouldWait
        try:
            return now(lambda: self._perform(action))
        except self._rates.errors as exc:
            return exc

    def _perform(self, action: ReadUsage | ClaimRate) -> Any:
        rates = self._rates
        if isinstance(action, ClaimRate):
            return rates.claim(
                action.key,
                rpm=action.rpm,
                tpm=action.tpm,
                tokens=action.tokens,
                now=action.now,
                max_wait_s=action.max_wait_s,
            )
        return rates.usage(action.keys, action.now)

    def record(self, action: Bookkeep, *, settled: bool = False) -> None:
        """The calls ``action`` reports as started or ended (what both drivers do with a Bookkeep);
        ``settled``: their claims are settled already (``record_now``)."""
        for note in action.notes:
            if isinstance(note, Started):
                self.started(note.deployment)
            else:
                self.finished(
                    note.deployment,
                    latency_ms=note.latency_ms,
                    tokens=note.tokens,
                    claim=None if settled else note.claim,
                    error=note.error,
                    headers=note.headers,
                )

    def record_blocks(self, action: Bookkeep) -> bool:
        """Whether recording ``action`` waits on the counters' I/O (a claim to settle, headers to fold)
        on SQLite or Redis: the async driver then runs it on a thread. In-flight and latency are memory."""
        return self.counters_block and any(
            type(note) is Finished and (note.claim is not None or note.headers or note.error is not None)
            for note in action.notes
        )

    def record_now(self, action: Bookkeep) -> None:
        """``record`` if it only settles claims (no provider headers or errors to fold in) and the
        counters can do that without waiting on a lock; else ``WouldWait``, having recorded nothing.
        A settle sets a claim's tokens, so one begun here and refused is simply made again later."""
        now = getattr(self._rates, "without_waiting", None)
        if now is None or any(
            type(note) is Finished and (note.headers or note.error is not None) for note in action.notes
        ):
            raise WouldWait
        settles = [
            (note.deployment.key, note.claim[1], note.tokens)
            for note in action.notes
            if type(note) is Finished
            and note.claim is not None
            and note.tokens is not None
            and note.claim[0] == note.deployment.key
            and note.deployment.pool_name is not None
        ]

        def settle_all() -> None:
            for key, entry, tokens in settles:
                self._rates.settle(key, entry, tokens)

        try:
            now(settle_all)
        except self._rates.errors as exc:
            self._counters_failed(exc)
        self.record(action, settled=True)

    @property
    def counters_block(self) -> bool:
        """Whether a counter action waits on I/O (SQLite, Redis): the async driver runs it on a thread."""
        return bool(getattr(self._rates, "blocking", True))

    def picking(
        self,
        model: str,
        route: str | None,
        request: RouteRequest,
        *,
        tried: Mapping[str, int],
        admit: Callable[[str], str | None] | None,
        remaining_s: float,
    ) -> Generator[ReadUsage | ClaimRate, Any, Pick]:
        """The deployment of ``model`` to call next, in the strategy's order, claiming its rate slot.

        No I/O: the counters' reads and claims are yielded (``ReadUsage``, ``ClaimRate``) for the
        driver to perform, and their results (or the counters' error) sent back; the pick is decided
        from them. Deployments this request tried fewer times come first (a failure moves to the next
        one); a deployment whose breaker is open, or that is at its tpm/rpm, is skipped with the
        reason. When every one is at its limit, ``when_all_limited: wait`` claims the soonest free
        slot within ``remaining_s`` (the deadline), ``fallback`` gives up on the model.
        """
        pool = self.pools[model]
        settings = self._settings.get((route, model))
        if settings is None:
            settings = self._settings[route, model] = self._engine.balance_for(route, model)
        balance, when = settings
        # The token estimate only matters to limits and to `usage`: weighted picks skip it (hot path).
        tokens = self.tokens_for(request, route) if balance == "usage" or pool.limited else 0
        loads: dict[str, Load] = {}
        if balance in ("least_busy", "latency", "usage"):
            used: Any = {}
            if self._reads_usage(pool, balance):
                used = yield ReadUsage(tuple(m.key for m in pool.members), self._wall_clock())
                if isinstance(used, BaseException):
                    self._counters_failed(used)
                    used = {}
                elif self._outage.since is not None:
                    self._counters_answered()
            loads = self._loads(pool, used)
        with self._lock:
            order = rank(pool.members, balance, loads, tokens, self._rng)
        if tried:
            order.sort(key=lambda m: tried.get(m.key, 0))  # stable: the strategy's order among equals
        total_weight = pool.total_weight
        skipped: dict[str, str] = {}
        limited: list[tuple[float, Member]] = []
        now = self._wall_clock() if pool.limited else 0.0
        for member in order:
            refused = admit(member.key) if admit is not None else None
            if refused is not None:
                skipped[member.key] = refused
                continue
            claim = (
                (yield from self._claim(member, tokens, now, max(0.0, min(ORDER_SLACK_S, remaining_s))))
                if member.limited
                else None
            )
            if claim is not None and not claim.granted:
                skipped[member.key] = (
                    f"at its limit ({self._limits(member)}); a slot frees in {claim.wait_s:.1f}s"
                )
                limited.append((claim.wait_s, member))
                continue
            reason = why(member, balance, loads.get(member.key, Load()), tokens, total_weight)
            wait = claim.wait_s if claim is not None else 0.0
            if wait > 0:
                reason += f"; sent {wait * 1000:.0f} ms later, in turn behind another request's claim"
            return Pick(member.deployment, wait, reason, "", skipped, self._entry(member, claim), tokens)
        if when == "wait" and limited:
            for soonest, member in sorted(limited, key=lambda pair: pair[0]):
                if soonest > remaining_s:
                    break
                claim = yield from self._claim(member, tokens, self._wall_clock(), remaining_s)
                if claim is not None and claim.granted:
                    reason = f"when_all_limited: wait {claim.wait_s:.1f}s for a slot"
                    return Pick(
                        member.deployment,
                        claim.wait_s,
                        reason,
                        "",
                        skipped,
                        self._entry(member, claim),
                        tokens,
                    )
        reason = "every deployment is unavailable: " + "; ".join(
            f"{key.rpartition('/')[2]}: {text}" for key, text in skipped.items()
        )
        if limited and when == "wait":
            reason += " (when_all_limited: wait, but no slot frees before the deadline)"
        return Pick(None, 0.0, "", reason, skipped, None, tokens)

    def _claim(
        self, member: Member, tokens: int, now: float, max_wait_s: float
    ) -> Generator[ClaimRate, Any, Claim | None]:
        claim = yield ClaimRate(member.key, member.rpm, member.tpm, tokens, now, max_wait_s)
        if isinstance(claim, BaseException):
            # Counters out of reach (Redis down, SQLite locked): serve unchecked rather than fail the
            # request; the provider's own 429 is still the backstop, and a warning says so.
            self._counters_failed(claim)
            return None
        if self._outage.since is not None:
            self._counters_answered()
        result: Claim = claim
        return result

    def _counters_failed(self, exc: BaseException) -> None:
        """A call the counters failed: counted, and warned of once an outage (then now and then)."""
        now = self._wall_clock()
        with self._lock:
            self.counter_errors += 1
            outage = self._outage
            outage.failed += 1
            if outage.since is None:
                outage.since = now
            if outage.warned_at <= now < outage.warned_at + OUTAGE_WARN_EVERY_S:
                return
            outage.warned_at, failed, outage.failed = now, outage.failed, 0
        _logger.warning(
            "router: the rate counters could not be reached (%s: %s); deployments are picked without "
            "their tpm/rpm until they answer again — check the ledger: named in the policy (%d call%s "
            "failed since the last warning; this warning repeats at most every %g s while it lasts)",
            type(exc).__name__,
            exc,
            failed,
            "" if failed == 1 else "s",
            OUTAGE_WARN_EVERY_S,
        )

    def _counters_answered(self) -> None:
        """The counters answered after an outage: said once, at info level."""
        now = self._wall_clock()
        with self._lock:
            outage = self._outage
            if outage.since is None:  # another thread said it first
                return
            lasted, failed = now - outage.since, outage.failed
            # Reset in place: the balancer's copies (for_engine) share this object.
            outage.since, outage.warned_at, outage.failed = None, float("-inf"), 0
        _logger.info(
            "router: the rate counters answer again after %.1f s out of reach (%d call%s failed since "
            "the last warning); deployments are picked within their tpm/rpm again",
            max(lasted, 0.0),
            failed,
            "" if failed == 1 else "s",
        )

    @staticmethod
    def _entry(member: Member, claim: Claim | None) -> tuple[str, str] | None:
        return (member.key, claim.entry) if claim is not None and claim.granted else None

    @staticmethod
    def _limits(member: Member) -> str:
        parts = []
        if member.rpm is not None:
            parts.append(f"{member.rpm} rpm")
        if member.tpm is not None:
            parts.append(f"{member.tpm:,} tpm")
        return ", ".join(parts)

    # ----------------------------------------------------------------- what happened

    def started(self, deployment: Deployment) -> None:
        if deployment.pool_name is None:
            return
        now = self._wall_clock()
        with self._lock:
            self._in_flight.setdefault(deployment.key, deque()).append(now)

    def _live_calls(self, key: str) -> int:
        """Calls in flight on ``key`` (under the lock), the stale ones dropped."""
        calls = self._in_flight.get(key)
        if not calls:
            return 0
        cut = self._wall_clock() - self._stale_after_s
        while calls and calls[0] < cut:
            calls.popleft()
        return len(calls)

    def finished(
        self,
        deployment: Deployment,
        *,
        latency_ms: float | None,
        tokens: int | None,
        claim: tuple[str, str] | None,
        error: BaseException | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """A call ended: in-flight count down, latency learned (successes only), the claim corrected to
        the tokens really used, and a provider's rate-limit headers (an error's, or ``headers`` sent
        with a success) folded into the counters."""
        if deployment.pool_name is None:
            return
        key = deployment.key
        with self._lock:
            calls = self._in_flight.get(key)
            if calls:
                calls.popleft()  # which call ended does not matter, only how many remain
            if latency_ms is not None and error is None:
                self._latency[key] = moving_average(self._latency.get(key), latency_ms)
        try:
            if claim is not None and tokens is not None and claim[0] == key:
                self._rates.settle(key, claim[1], tokens)
            if error is not None:
                response: Any = getattr(error, "response", None)
                headers = getattr(response, "headers", None)
            if headers:
                self._fold_headers(deployment, headers)
        except self._rates.errors as exc:
            self._counters_failed(exc)

    def _fold_headers(self, deployment: Deployment, headers: Mapping[str, str]) -> None:
        """What the provider says is used of the deployment's quota beyond our own claims becomes
        placeholder claims until its counter resets: the next picks skip a deployment it calls full."""
        member = next((m for m in self.pools[deployment.name].members if m.key == deployment.key), None)
        if member is None or not member.limited:
            return
        now = self._wall_clock()
        counted = self._rates.usage([member.key], now)[member.key]
        extra = provider_usage(headers, member.rpm, member.tpm, counted)
        if extra is not None:
            self._rates.observe(member.key, extra.requests, extra.tokens, now + extra.reset_s, now)

    # ----------------------------------------------------------------- for the CLI

    def describe(self, model: str, route: str | None, request: RouteRequest) -> list[dict[str, Any]]:
        """Each deployment in the order the strategy would try it now, why, and its usage (no claim made).

        A weighted draw has no fixed order: the deployments are listed by weight, each with its share.
        """
        pool = self.pools[model]
        balance, _ = self._engine.balance_for(route, model)
        tokens = self.tokens_for(request, route)
        loads = self.loads(pool, balance)
        if balance == "weighted":
            order = sorted(pool.members, key=lambda m: -m.weight)
        else:
            with self._lock:
                order = rank(pool.members, balance, loads, tokens, random.Random(0))
        total = sum(m.weight for m in pool.members)
        rows: list[dict[str, Any]] = []
        for member in order:
            load = loads[member.key]
            free = headroom(member, load, tokens) >= 0 or not member.limited
            reason = (
                f"weighted: {member.weight / total:.0%} of requests"
                if balance == "weighted"
                else why(member, balance, load, tokens, total)
            )
            rows.append(
                {
                    "deployment": member.deployment.pool_name,
                    "provider": member.deployment.provider,
                    "region": member.deployment.region,
                    "weight": member.weight,
                    "rpm": member.rpm,
                    "tpm": member.tpm,
                    "requests_this_minute": load.requests,
                    "tokens_this_minute": load.tokens,
                    "in_flight": load.in_flight,
                    "why": reason if free else f"at its limit ({self._limits(member)}): skipped",
                }
            )
        return rows

    def close(self) -> None:
        self._rates.close()
