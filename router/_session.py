"""The state of one request: its plan, its attempts, its budget events, and the record they make.

``Session`` keeps the books (attempts, breaker reports, the routing record, budget events) and
answers the questions the decision core (``router._decide``) asks it. No I/O.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import openai

from policies.filters import NoObservations, PlanContext, worst_case_cost, worst_case_tokens
from policies.plan import Plan
from providers import error_kinds
from providers.base import CallOptions, Deployment
from providers.errors import error_class, retry_after_s
from router._budgets import BudgetBook
from router._deployments import Balancer, ClaimRate, Finished, Pick, ReadUsage, Started
from router._engine import Engine
from router._events import Events
from router._exceptions import (
    BudgetExceededError,
    CoolingDownError,
    DeadlineExceededError,
    NoCandidateError,
    RateLimitCooldownError,
    ServerCooldownError,
)
from router._health import Breakers, Cooldown
from router._observations import Observations
from router._request import Request, capped_timeout
from router._resilience import Resilience
from router._routing import Attempt, BudgetEvent, RoutingRecord, Usage
from router._stream_state import StreamTracker, first_content_timeout
from router.ledger._types import Hold, Line, Refusal, Totals, to_nanos, to_nanos_up, to_usd

if TYPE_CHECKING:
    from router._feedback import Outcomes

# Errors after which trying another model cannot help: the request itself is at fault.
_FATAL: Final = error_kinds.FATAL

# A worst case is judged on the request alone (PlanContext's default, shared: it holds nothing).
_NOTHING_OBSERVED: Final = NoObservations()

# No model has a window this large: a count above it is a provider bug, not a bill.
_ABSURD_TOKENS: Final = 100_000_000


@dataclass(frozen=True, slots=True)
class Step:
    """What comes next: wait ``wait_s`` (injected sleep), then call ``deployment``."""

    deployment: Deployment
    wait_s: float
    options: CallOptions


class Choice(NamedTuple):
    """A pooled model comes next: run ``picking`` (its counter actions performed by the driver) and
    hand its ``Pick`` to ``Session.picked`` for the step."""

    model: str
    remaining_s: float
    picking: Generator[ReadUsage | ClaimRate, Any, Pick]


@dataclass(frozen=True, slots=True)
class BudgetAsk:
    """What to reserve before calling a model: this request's worst case on every budget line."""

    lines: tuple[Line, ...]
    amount_usd: float
    ttl_s: float


# While only in-flight reservations stand in the way, wait this long between asks (DESIGN: budgets
# under a burst), doubling up to the cap; the request's deadline bounds the whole wait.
_BUDGET_POLL_S: Final = 0.05
_BUDGET_POLL_MAX_S: Final = 1.0
# A reservation outlives the call it guards by this much, so only a dead process's ones expire.
_HOLD_MARGIN_S: Final = 120.0


class Session:
    """The state of one request: the models still to try, retries, the deadline, every attempt.

    ``router._decide.Decider`` loops ``next_step`` → sleep → ``begin`` → call → ``failed``/
    ``succeeded``, and the answers (retry the same model or move on, how long to wait, when to
    give up) come from here; the clients only perform the Decider's actions.
    """

    # Slots: one Session per request, and its attributes are all set here (no per-request dict).
    __slots__ = (
        "_attempt_started",
        "_attempt_started_at",
        "_attempts",
        "_balancer",
        "_breakers",
        "_budget_events",
        "_budget_poll",
        "_budgets",
        "_claim",
        "_clock",
        "_context",
        "_current",
        "_deadline",
        "_deadline_passed",
        "_events",
        "_kept",
        "_last_error",
        "_last_refusal",
        "_limits",
        "_lines",
        "_observations",
        "_outcomes",
        "_pending",
        "_picked_by",
        "_retry_attempts",
        "_retry_wait",
        "_settled_totals",
        "_skipped",
        "_started",
        "_started_at",
        "_tries_on_current",
        "_vetted",
        "_wait_s",
        "_wall_clock",
        "engine",
        "notes",
        "plan",
        "request",
        "resilience",
    )

    def __init__(
        self,
        engine: Engine,
        request: Request,
        plan: Plan,
        *,
        clock: Callable[[], float] = time.monotonic,
        observations: Observations | None = None,
        breakers: Breakers | None = None,
        resilience: Resilience | None = None,
        retry_attempts: int | None = None,
        events: Events | None = None,
        budgets: BudgetBook | None = None,
        budget_lines: tuple[Line, ...] = (),
        wall_clock: Callable[[], float] = time.time,
        outcomes: Outcomes | None = None,
        balancer: Balancer | None = None,
    ) -> None:
        self.engine = engine
        self._balancer = balancer  # picks among a model's deployments (issue 18)
        self._claim: tuple[str, str] | None = None
        self._picked_by = ""
        # Calls begun and ended on pooled deployments, for the balancer: the Decider hands them to
        # the driver (``Bookkeep``), so the session itself writes no shared state.
        self.notes: list[Started | Finished] = []
        self._limits: Mapping[str, str] | None = None  # the answer's x-ratelimit-* headers
        self._outcomes = outcomes  # kept for client.feedback() (router._feedback)
        self._observations = observations
        self._breakers = breakers
        self.resilience = resilience or engine.resilience_for(plan.route)
        self._retry_attempts = retry_attempts or self.resilience.retry.attempts
        self.request = request
        self.plan = plan
        self._clock = clock
        self._started = clock()
        self._wall_clock = wall_clock
        self._started_at = wall_clock()
        self._deadline = self._started + self.resilience.timeout_s
        self._pending: deque[str] = deque(c.model for c in plan.candidates)
        # Tuples, grown by one: the record takes them as they are (usually one attempt, no events).
        self._attempts: tuple[Attempt, ...] = ()
        self._skipped: dict[str, str] = {}
        self._last_error: BaseException | None = None
        self._current: Deployment | None = None
        self._tries_on_current = 0
        self._retry_wait: float | None = None
        self._wait_s = 0.0
        self._attempt_started = self._started
        self._attempt_started_at = self._started_at
        self._deadline_passed = False
        self._events = events
        self._budgets = budgets
        self._lines = budget_lines
        self._budget_events: tuple[BudgetEvent, ...] = ()
        self._budget_poll = _BUDGET_POLL_S
        self._last_refusal: Refusal | None = None
        self._settled_totals: Mapping[str, Totals] = {}
        if events is not None and events.deciding():
            route, messages = request.route, request.body.get("messages")
            events.planned(request.request_id, route.feature, route.model, plan, messages=messages)
        self._kept: tuple[Deployment, Any, Usage | None] | None = None
        self._context: PlanContext | None = None  # made on first use (_plan_context)
        # The last usage vetted: (deployment, as given, as vetted).
        self._vetted: tuple[Deployment, Usage, Usage] | None = None

    # ----------------------------------------------------------------- what to do next

    def next_step(self) -> Step | Choice | None:
        """The next call to make (same model again after a wait, or the next candidate; a pooled
        model's ``Choice``, to pick its deployment), or None."""
        resilience = self.resilience
        if len(self._attempts) >= resilience.max_attempts:
            return None
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            # The deadline ended the request if anything was tried or was still to try (time spent
            # before the first attempt counts too); with no candidate at all, the plan's refusal says more.
            self._deadline_passed = (
                self._last_error is not None or bool(self._attempts) or bool(self._pending)
            )
            return None
        wait = self._retry_wait
        self._retry_wait = None
        if wait is not None and self._current is not None:
            # A retry asks the breaker too: this very failure may have opened it.
            refused = self._breakers.admit(self._current.key) if self._breakers is not None else None
            if refused is not None:
                self._skipped.setdefault(self._current.key, refused)
            elif wait < remaining:
                return Step(self._current, wait, self._options(remaining - wait))
            else:
                self._skipped.setdefault(
                    self._current.name, f"retry wait {wait:.1f}s would pass the deadline"
                )
        while self._pending:
            name = self._pending.popleft()
            if self._breakers is not None:
                reason = self._breakers.admit(name)
                if reason is not None:
                    self._skipped[name] = reason
                    continue
            if self._balancer is not None and name in self._balancer.pools:
                # A pooled model: its deployment is picked from the rate counters, whose reads and
                # claims the driver performs (``Choice.picking``), then handed to ``picked``.
                admit = self._breakers.admit if self._breakers is not None else None
                tried = self._tried(name)
                picking = self._balancer.picking(
                    name, self.plan.route, self.request.route, tried=tried, admit=admit, remaining_s=remaining
                )
                return Choice(name, remaining, picking)
            self._current = self.engine.deployments[name]
            self._tries_on_current = 0
            return Step(self._current, 0.0, self._options(remaining))
        return None

    def picked(self, choice: Choice, pick: Pick) -> Step | None:
        """The deployment ``choice.picking`` chose: the step to take, or None (the model is skipped,
        with why; ``next_step`` goes on to the next candidate)."""
        self._skipped.update(pick.skipped)
        if pick.deployment is None:
            self._skipped[choice.model] = pick.reason
            return None
        self._current, self._claim, self._picked_by = pick.deployment, pick.claim, pick.why
        self._tries_on_current = 0
        return Step(pick.deployment, pick.wait_s, self._options(choice.remaining_s - pick.wait_s))

    def _tried(self, model: str) -> dict[str, int]:
        """How often this request called each deployment of ``model``."""
        tried: dict[str, int] = {}
        for attempt in self._attempts:
            if attempt.model == model and attempt.deployment is not None:
                key = f"{model}/{attempt.deployment}"
                tried[key] = tried.get(key, 0) + 1
        return tried

    def _options(self, remaining: float) -> CallOptions:
        """The caller's per-call options with every timeout capped by the deadline (and, for streams,
        each read bounded by the first-content limit: ``stream_idle_timeout_s``, or
        ``first_token_timeout_s`` when shorter). A read timeout is the one bound a blocking (sync)
        client can put on a silent provider, so both clients get the same one."""
        options = self.request.options
        idle = self.resilience.first_content_s if self.request.stream else None
        timeout = capped_timeout(options.timeout, remaining, idle)
        if timeout is options.timeout:
            return options
        return CallOptions(
            timeout=timeout, extra_headers=options.extra_headers, extra_query=options.extra_query
        )

    def begin(self, step: Step) -> None:
        """The driver is about to call ``step.deployment`` (after sleeping ``step.wait_s``)."""
        self._wait_s = step.wait_s
        self._tries_on_current += 1
        self._attempt_started = self._clock()
        self._attempt_started_at = self._wall_clock()
        if step.deployment.pool_name is not None:
            self._limits = None
            self.notes.append(Started(step.deployment))

    def provider_limits(self, headers: Mapping[str, str] | None) -> None:
        """The x-ratelimit-* headers the provider sent with the answer being read (a deployment with
        tpm/rpm): folded into the counters when the attempt is recorded."""
        self._limits = headers

    def remaining_s(self) -> float:
        return max(self._deadline - self._clock(), 0.0)

    def first_content_wait_s(self) -> float:
        """How much longer this stream attempt may wait for its first content chunk."""
        limit = self._attempt_started + self.resilience.first_content_s
        return max(min(limit, self._deadline) - self._clock(), 0.0)

    def first_content_overdue(self) -> openai.APITimeoutError | None:
        """The timeout to fail this stream attempt with when its first content is late, else None.

        Asked between chunks (``Decider.take``: a role chunk or keep-alive resets a read timeout
        without bringing content); the async driver also puts a hard stop at ``first_content_wait_s``.
        """
        if self.first_content_wait_s() > 0:
            return None
        return first_content_timeout(self.resilience.first_content_s)

    def attempt_elapsed_ms(self) -> float:
        """Time since the current attempt began (time to first token, for streams)."""
        return self._elapsed_ms(self._attempt_started)

    # ----------------------------------------------------------------- outcomes

    def _elapsed_ms(self, since: float) -> float:
        return round((self._clock() - since) * 1000.0, 3)

    def _add(self, attempt: Attempt) -> None:
        attempts = self._attempts = (*self._attempts, attempt)
        if self._events is not None:
            self._events.attempt(self.request.request_id, self.request.route.feature, attempt, len(attempts))

    def failed(self, deployment: Deployment, exc: BaseException) -> None:
        """Record a failed attempt and decide: raise now, retry this model, or move on."""
        kind = self.failed_quietly(deployment, exc)
        if kind in _FATAL or (kind == "content_policy" and self.resilience.on_content_policy == "raise"):
            # The request is at fault (or refused for its content, which any model would refuse too
            # and routing around a provider's moderation is not a default): raise the provider's error.
            self._attach(exc)
            raise exc
        if kind == "context_window":
            self._keep_larger_windows(deployment)
            return
        resilience = self.resilience
        retry_after = retry_after_s(exc, self._wall_clock()) if kind == "rate_limited" else None
        too_long = retry_after is not None and retry_after > resilience.max_retry_after_s
        if too_long and self._breakers is not None:
            # Waiting that long would hold requests hostage: skip the model until then (retries or not).
            self._breakers.open_for(
                deployment.key,
                retry_after or 0.0,
                f"a 429 asking to wait {retry_after:g}s (max_retry_after_s {resilience.max_retry_after_s:g})",
            )
        if deployment.pool_name is not None and self._balancer is not None:
            # Another deployment of the same model before the next model; each one again (retries).
            tried = self._tried(deployment.name)
            members = self._balancer.pools[deployment.name].members
            untried = any(m.key not in tried for m in members)
            if untried or (
                resilience.retries(kind) and sum(tried.values()) < len(members) * self._retry_attempts
            ):
                self._pending.appendleft(deployment.name)
            return
        if too_long:
            return
        if not resilience.retries(kind) or self._tries_on_current >= self._retry_attempts:
            return
        if kind == "rate_limited" and deployment.service_tier is not None:
            return  # flex capacity is short: the same model at standard is next (docs/flex.md)
        self._retry_wait = (
            retry_after if retry_after is not None else resilience.backoff_s(self._tries_on_current)
        )

    def failed_quietly(
        self,
        deployment: Deployment,
        exc: BaseException,
        *,
        ttft_ms: float | None = None,
        malformed_events: int = 0,
    ) -> str:
        """Record a failed attempt (and tell the breaker) without deciding what comes next."""
        kind = error_class(exc)
        status = getattr(exc, "status_code", None)
        self._add(
            Attempt(
                model=deployment.name,
                provider=deployment.provider,
                error=kind,
                status=status if isinstance(status, int) else None,
                message=type(exc).__name__,
                latency_ms=self._elapsed_ms(self._attempt_started),
                wait_s=self._wait_s,
                started_at=self._attempt_started_at,
                ttft_ms=ttft_ms,
                malformed_events=malformed_events,
                deployment=deployment.pool_name,
                picked_by=self._picked_by if deployment.pool_name else None,
            )
        )
        self._last_error = exc
        if self._breakers is not None:
            self._breakers.failed(deployment.key, kind, self.resilience.cooldown)
        if deployment.pool_name is not None:
            self.notes.append(Finished(deployment, None, None, self._claim, exc))
        return kind

    def content_filtered(self, deployment: Deployment, answer: Any, usage: Usage | None) -> None:
        """The provider's filter emptied this answer: record it, keep the first such answer, move on.

        Another model may answer; if none does, the kept answer is what the caller gets (it is what
        the provider itself returned), priced, with every attempt in its record.
        """
        self._add(
            Attempt(
                model=deployment.name,
                provider=deployment.provider,
                error="content_filter",
                status=200,
                message="finish_reason=content_filter",
                latency_ms=self._elapsed_ms(self._attempt_started),
                wait_s=self._wait_s,
                started_at=self._attempt_started_at,
                deployment=deployment.pool_name,
                picked_by=self._picked_by if deployment.pool_name else None,
            )
        )
        if deployment.pool_name is not None:
            self.notes.append(Finished(deployment, None, None, self._claim, None, self._limits))
        if self._kept is None:
            self._kept = (deployment, answer, self.vetted(deployment, usage))

    def kept_answer(self) -> tuple[Deployment, Any, RoutingRecord] | None:
        """The content-filtered answer to return when no model did better, with its record."""
        if self._kept is None:
            return None
        deployment, answer, usage = self._kept
        record = self.record(deployment, usage, self.cost_of(deployment, usage))
        if self._events is not None:
            self._events.completed(record, skipped=self._skipped)
        return deployment, answer, record

    def _keep_larger_windows(self, deployment: Deployment) -> None:
        """After a context-length error, only models with a larger window are worth a try."""
        window = self.engine.catalog[deployment.name].context_window
        if window is None:
            return
        catalog = self.engine.catalog
        self._pending = deque(name for name in self._pending if (catalog[name].context_window or 0) > window)

    def succeeded(
        self,
        deployment: Deployment,
        usage: Usage | None,
        *,
        ttft_ms: float | None = None,
        malformed_events: int = 0,
        continued_from_usd: float | None = None,
    ) -> RoutingRecord:
        """Record the successful attempt, price it, and learn its output size and latency.

        ``continued_from_usd``: this attempt continued cut streams (router._continuation) that cost
        that much; the request's cost includes them, and a continuation teaches nothing about sizes.
        """
        usage = self.vetted(deployment, usage)
        latency_ms = self._elapsed_ms(self._attempt_started)
        self._add(
            Attempt(
                model=deployment.name,
                provider=deployment.provider,
                latency_ms=latency_ms,
                wait_s=self._wait_s,
                started_at=self._attempt_started_at,
                ttft_ms=ttft_ms,
                malformed_events=malformed_events,
                deployment=deployment.pool_name,
                picked_by=self._picked_by if deployment.pool_name else None,
            )
        )
        if self._breakers is not None:
            self._breakers.succeeded(deployment.key)
        if deployment.pool_name is not None:
            used = usage.prompt_tokens + usage.completion_tokens if usage is not None else None
            self.notes.append(Finished(deployment, latency_ms, used, self._claim, None, self._limits))
        if self._observations is not None and continued_from_usd is None:
            trusted = usage is not None and usage.suspect is None
            self._observations.record(
                self.request.route.feature,
                deployment.name,
                # Per choice: what one answer of this feature writes on this model.
                usage.completion_tokens // self.request.route.choices if trusted and usage else None,
                latency_ms,
            )
        cost = self.cost_of(deployment, usage)
        if cost is not None and continued_from_usd is not None:
            cost += continued_from_usd
        record = self.record(deployment, usage, cost)
        if self._events is not None:
            self._events.completed(record, skipped=self._skipped)
        if self._outcomes is not None:
            self._outcomes.routed(self.plan, record, self.request.body.get("messages"))
        return record

    def cost_of(self, deployment: Deployment, usage: Usage | None) -> float | None:
        usage = self.vetted(deployment, usage)
        if usage is None:
            return None
        # A pooled deployment has its own prices (docs/deployments.md); otherwise the tier the
        # provider reports it served at prices the answer (docs/flex.md).
        if deployment.pool_name is not None:
            info = self.engine.info_for(deployment)
        else:
            info = self.engine.priced(deployment.name, usage.service_tier)
        return info.cost_usd(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)

    def vetted(self, deployment: Deployment, usage: Usage | None) -> Usage | None:
        """The usage to record and charge: the provider's, or this request's worst case when the
        provider's figures are impossible (malformed, or beyond the model's limits)."""
        if usage is None:
            return None
        last = self._vetted
        if last is not None and last[0] is deployment and (last[1] is usage or last[2] is usage):
            return last[2]  # the same answer's usage, asked again (to settle, record, price it)
        reason = usage.suspect or self._impossible(deployment, usage)
        vetted = usage
        if reason is not None:
            prompt, output = worst_case_tokens(self.engine.catalog[deployment.name], self._plan_context())
            vetted = Usage(prompt_tokens=prompt, completion_tokens=output, suspect=reason)
        self._vetted = (deployment, usage, vetted)
        return vetted

    def _impossible(self, deployment: Deployment, usage: Usage) -> str | None:
        info = self.engine.catalog[deployment.name]
        choices = self.request.route.choices
        window = info.context_window
        if usage.prompt_tokens > (window or _ABSURD_TOKENS):
            return f"prompt_tokens={usage.prompt_tokens:,} is beyond the model's window"
        output_limit = (info.max_output_tokens or window or _ABSURD_TOKENS) * choices
        if usage.completion_tokens > output_limit:
            return f"completion_tokens={usage.completion_tokens:,} is beyond the model's output limit"
        if usage.cached_tokens > usage.prompt_tokens:
            return f"cached_tokens={usage.cached_tokens:,} is more than prompt_tokens={usage.prompt_tokens:,}"
        if usage.reasoning_tokens > usage.completion_tokens:
            # OpenAI counts reasoning inside completion_tokens; more of it than the total means the
            # figures are not what we price by, and the bill may be the sum.
            return (
                f"reasoning_tokens={usage.reasoning_tokens:,} is more than"
                f" completion_tokens={usage.completion_tokens:,}"
            )
        return None

    def _plan_context(self) -> PlanContext:
        """What the worst case of a call is judged on (the same for every call of the request)."""
        context = self._context
        if context is None:
            route = self.engine.policy.routes.get(self.plan.route or "")
            expected = (
                route.expected_output_tokens if route else None
            ) or self.engine.policy.expected_output_tokens
            context = self._context = PlanContext(
                request=self.request.route, expected_output_tokens=expected, observed=_NOTHING_OBSERVED
            )
        return context

    def record(
        self, deployment: Deployment | None, usage: Usage | None = None, cost: float | None = None
    ) -> RoutingRecord:
        rejected = self.plan.rejected
        if self._skipped:
            rejected = MappingProxyType({**rejected, **self._skipped})
        return RoutingRecord(
            request_id=self.request.request_id,
            model=deployment.name if deployment else None,
            provider=deployment.provider if deployment else None,
            feature=self.request.route.feature,
            route=self.plan.route,
            strategy=self.plan.strategy,
            requested=self.request.route.model,
            candidates=self.plan.candidates,
            rejected=rejected,
            rules=self.plan.rules,
            attempts=self._attempts,
            usage=usage,
            cost_usd=cost,
            latency_ms=self._elapsed_ms(self._started),
            started_at=self._started_at,
            stream=self.request.stream,
            budget_events=self._budget_events,
            deployment=deployment.pool_name if deployment else None,
        )

    def exhausted(self) -> BaseException:
        """The error to raise when no model answered.

        The deadline's own error when it passed; else the last provider error (so ``except
        openai.RateLimitError`` still works) when it was a passing failure; else, when models that
        could serve the request are only cooling down, a 429 (after rate limits) or 503 with a
        Retry-After; the last provider error when there is one; NoCandidateError (400) only when
        no model can serve the request itself. Every one carries the routing record.
        """
        error: BaseException
        cooling = None if self._deadline_passed else self._cooling_down()
        if self._deadline_passed:
            error = DeadlineExceededError(
                timeout_s=self.resilience.timeout_s, attempts=len(self._attempts), last_error=self._last_error
            )
            if self._last_error is not None:
                error.__cause__ = self._last_error
        elif self._last_error is not None and (
            cooling is None or error_class(self._last_error) in error_kinds.RETRYABLE
        ):
            error = self._last_error
        elif cooling is not None:
            error = cooling
        elif self._last_error is not None:
            error = self._last_error
        else:
            error = NoCandidateError(
                self.request.route.model, {**self.plan.rejected, **self._skipped}, self.plan.route
            )
        self._attach(error)
        return error

    def _cooling_down(self) -> CoolingDownError | None:
        """The error for models held back only by their breakers (a rate limit never becomes a 400).

        The planner checks health after what the request needs (policies.filters), so a model whose
        reason is a breaker's Cooldown could serve this request once it recovers. A 429 when any
        of them is cooling down after rate limits, else a 503; Retry-After is the soonest recovery.
        """
        held = {
            model: reason
            for model, reason in {**self.plan.rejected, **self._skipped}.items()
            if isinstance(reason, Cooldown)
        }
        if not held:
            return None
        wait = max(min(reason.until for reason in held.values()) - self._clock(), 0.0)
        kinds = {model: reason.kind for model, reason in held.items()}
        cls = RateLimitCooldownError if "rate_limited" in kinds.values() else ServerCooldownError
        return cls(kinds, wait, self.plan.route, held)

    def _attach(self, exc: BaseException) -> None:
        """Give the error the routing record (callers can still see every attempt) and log the failure."""
        record = self.record(None)
        with contextlib.suppress(AttributeError):
            exc.routing = record  # type: ignore[attr-defined]
        if self._events is not None:
            self._events.failed(record, exc)

    def interrupted(
        self,
        deployment: Deployment,
        exc: BaseException,
        ttft_ms: float | None = None,
        malformed_events: int = 0,
    ) -> RoutingRecord:
        """A committed stream broke: the record for its StreamInterruptedError, logged as failed."""
        self.failed_quietly(deployment, exc, ttft_ms=ttft_ms, malformed_events=malformed_events)
        return self.record(deployment)

    def stream_failed(self, error: BaseException, record: RoutingRecord) -> None:
        if self._events is not None:
            self._events.failed(record, error)

    # ----------------------------------------------------------------- budgets (decided here, I/O in drivers)

    @property
    def budgeted(self) -> bool:
        return bool(self._lines)

    def budget_ask(self, deployment: Deployment) -> BudgetAsk | None:
        """What to reserve before calling ``deployment``; None when no budget covers this request."""
        if not self._lines:
            return None
        info = self.engine.info_for(deployment)
        # Never None here: under a budget the planner rejects unpriced models (priced_for_budget).
        amount = worst_case_cost(info, self._plan_context()) or 0.0
        ttl = self.resilience.timeout_s + (
            self.resilience.stream_idle_timeout_s if self.request.stream else 0.0
        )
        return BudgetAsk(self._lines, amount, ttl + _HOLD_MARGIN_S)

    def budget_held(self) -> None:
        self._budget_poll = _BUDGET_POLL_S

    def budget_refused(self, deployment: Deployment, refusal: Refusal) -> float | None:
        """A reservation was refused: seconds to wait before asking again, None to skip this model.

        Raises BudgetExceededError when the cap's policy is ``reject`` (or ``downgrade`` found no
        model that fits, which the driver learns when the plan runs out).
        """
        if refusal.blocked_by_reservations:
            # Settled spend plus this request fits: only requests in flight stand in the way.
            wait = self._budget_poll
            if wait < self.remaining_s():
                self._budget_poll = min(wait * 2, _BUDGET_POLL_MAX_S)
                return wait
        line = refusal.line
        spec = self._budgets.spec_for(line) if self._budgets is not None else None
        downgrade = spec is not None and spec.on_exceed == "downgrade"
        event = _budget_event("downgraded" if downgrade else "exceeded", refusal, model=deployment.name)
        self._budget_event(event)
        if event.kind == "downgraded":
            self._skipped[deployment.name] = BudgetBook.downgrade_reason(refusal)
            self._last_refusal = refusal
            return None
        error = BudgetExceededError(self.request.route.feature, refusal)
        self._attach(error)
        raise error

    def budget_downgraded(self, model: str, refusal: Refusal) -> None:
        """Planning skipped ``model``: its worst case no longer fits a downgrade budget."""
        self._budget_event(_budget_event("downgraded", refusal, model=model))

    def budget_refused_before_any(self, refusal: Refusal) -> None:
        """Planning left no model whose worst case fits a downgrade budget: refuse the request."""
        self._last_refusal = refusal
        self.budget_exhausted()

    def budget_exhausted(self) -> None:
        """Every model was skipped to stay under a downgrade budget: refuse, as ``reject`` would."""
        refusal = self._last_refusal
        if refusal is None or self._attempts or self._kept is not None:
            return
        self._budget_event(_budget_event("exceeded", refusal))
        error = BudgetExceededError(self.request.route.feature, refusal)
        self._attach(error)
        raise error

    def partial_cost(self, deployment: Deployment, tracker: StreamTracker) -> float | None:
        """A cut or abandoned stream's cost: the prompt plus what arrived (about 4 characters a token)."""
        if tracker.usage is not None:
            return self.cost_of(deployment, tracker.usage)
        prompt = self.request.route.prompt.best if self.request.route.prompt is not None else 0
        return self.engine.info_for(deployment).cost_usd(prompt, -(-tracker.characters // 4), 0)

    def budget_settled(
        self, hold: Hold, totals: Mapping[str, Totals], cost: float
    ) -> list[tuple[Line, float]]:
        """The warn_at thresholds this settlement crossed, to be claimed with ``first_warning``.

        A cost above the reservation (the provider billed more than the worst case we could bound,
        e.g. a prompt far above its estimate) was settled in full: it is recorded as an overrun.
        """
        if self._budgets is None:
            return []
        overrun = to_nanos(cost) - to_nanos_up(hold.amount_usd)
        crossed: list[tuple[Line, float]] = []
        for line in hold.lines:
            after = totals.get(line.key)
            if overrun > 0:
                figures = after or Totals(0.0, 0.0)
                self._budget_event(
                    BudgetEvent(
                        kind="overrun",
                        scope=line.scope,
                        window=line.window,
                        limit_usd=line.limit_usd,
                        spent_usd=figures.spent_usd,
                        reserved_usd=figures.reserved_usd,
                        model=self._current.name if self._current is not None else None,
                        resets_at=line.resets_at,
                        overrun_usd=to_usd(overrun),
                    )
                )
            if after is None:
                continue
            spec = self._budgets.spec_for(line)
            if spec.warn_at:
                before = max(after.spent_usd - cost, 0.0)
                crossed += [(line, t) for t in BudgetBook.crossed_thresholds(line, spec, before, after)]
        self._settled_totals = totals
        return crossed

    def budget_warned(self, line: Line, threshold: float) -> None:
        totals = self._settled_totals.get(line.key, Totals(0.0, 0.0))
        self._budget_event(
            BudgetEvent(
                kind="warning",
                scope=line.scope,
                window=line.window,
                limit_usd=line.limit_usd,
                spent_usd=totals.spent_usd,
                reserved_usd=totals.reserved_usd,
                threshold=threshold,
                resets_at=line.resets_at,
            )
        )

    def budget_estimated(self, hold: Hold, amount: float, totals: Mapping[str, Totals] | None) -> None:
        """A call cancelled after it was sent was charged its worst case: say so on every line."""
        for line in hold.lines:
            figures = (totals or {}).get(line.key, Totals(0.0, 0.0))
            self._budget_event(_line_event("estimated", line, figures, amount_usd=amount))

    def ledger_failed(self, error: BaseException, lines: Sequence[Line], *, unchecked: bool) -> None:
        """The ledger failed before the call: logged; the error carries the routing record unless the
        budget's ``on_ledger_error: fail_open`` lets the request go on unchecked."""
        for line in lines:
            self._budget_event(_line_event("ledger_error", line, Totals(0.0, 0.0), detail=str(error)))
        if not unchecked:
            self._attach(error)

    def ledger_journaled(self, error: BaseException, hold: Hold, amount: float) -> None:
        """The ledger failed after the call: the charge went to the journal, the answer is returned."""
        for line in hold.lines:
            event = _line_event("journaled", line, Totals(0.0, 0.0), amount_usd=amount, detail=str(error))
            self._budget_event(event)

    def _budget_event(self, event: BudgetEvent) -> None:
        self._budget_events = (*self._budget_events, event)
        if self._events is not None:
            self._events.budget(self.request.request_id, self.request.route.feature, event)


def _line_event(
    kind: str, line: Line, totals: Totals, *, amount_usd: float | None = None, detail: str | None = None
) -> BudgetEvent:
    return BudgetEvent(
        kind=kind,
        scope=line.scope,
        window=line.window,
        limit_usd=line.limit_usd,
        spent_usd=totals.spent_usd,
        reserved_usd=totals.reserved_usd,
        resets_at=line.resets_at,
        amount_usd=amount_usd,
        detail=detail,
    )


def _budget_event(kind: str, refusal: Refusal, *, model: str | None = None) -> BudgetEvent:
    line = refusal.line
    return BudgetEvent(
        kind=kind,
        scope=line.scope,
        window=line.window,
        limit_usd=line.limit_usd,
        spent_usd=refusal.spent_usd,
        reserved_usd=refusal.reserved_usd,
        model=model,
        resets_at=line.resets_at,
    )
