"""One request's way through its plan, decided without I/O.

The sync and async clients are thin loops over ``Session``: ask it for the next deployment,
make the call, and report the outcome back. Every decision (what to try next, when to give
up, what the record says) lives here, once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import httpx
import openai

from policies.plan import DEFAULT_FEATURE, Plan, RouteRequest, describe_request
from providers.base import JSON, CallOptions, Deployment, Timeout
from providers.errors import error_class, retry_after_s
from router._engine import Engine
from router._exceptions import DeadlineExceededError, NoCandidateError
from router._health import Breakers
from router._observations import Observations
from router._resilience import RETRYABLE, Resilience
from router._routing import Attempt, RoutingRecord, Usage

# Keyword arguments of ``create`` that steer the router or the transport rather than the model.
_TRANSPORT: Final = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
# Errors after which trying another model cannot help: the request itself is at fault.
_FATAL: Final = frozenset({"bad_request"})


_SENTINELS: Final = (openai.NotGiven, openai.Omit)


def _given(value: object) -> bool:
    # openai's NOT_GIVEN / omit sentinels are falsy singletons of their own classes.
    return not isinstance(value, _SENTINELS)


@dataclass(frozen=True, slots=True)
class Request:
    """A normalized ``create`` call."""

    request_id: str
    route: RouteRequest
    body: JSON
    options: CallOptions
    stream: bool
    # Whether the caller asked for the usage chunk; we always ask providers for it, to price the call.
    caller_wants_usage: bool


def normalize(kwargs: Mapping[str, Any], default_timeout: Timeout) -> Request:
    """Turn ``create(**kwargs)`` into a Request: feature from metadata, route from model."""
    params = {k: v for k, v in kwargs.items() if v is not None and _given(v)}
    if "messages" not in params:
        raise TypeError("create() missing required keyword argument: 'messages'")
    if "model" not in params:
        raise TypeError(
            "create() missing required keyword argument: 'model' (a route such as 'auto', or a model)"
        )
    model = str(params.pop("model"))
    stream = bool(params.pop("stream", False))
    feature = DEFAULT_FEATURE
    metadata = params.pop("metadata", None)
    if metadata:
        metadata = dict(metadata)
        feature = str(metadata.pop("feature", DEFAULT_FEATURE))
        if metadata:
            params["metadata"] = metadata
    timeout = params.pop("timeout", None)
    options = CallOptions(
        timeout=timeout if timeout is not None else default_timeout,
        extra_headers=params.pop("extra_headers", None),
        extra_query=params.pop("extra_query", None),
    )
    extra_body = params.pop("extra_body", None)
    if extra_body:
        params.update(extra_body)
    caller_wants_usage = False
    if stream:
        stream_options = dict(params.get("stream_options") or {})
        caller_wants_usage = bool(stream_options.get("include_usage"))
        params["stream"] = True
        params["stream_options"] = {**stream_options, "include_usage": True}
    return Request(
        request_id=f"req_{os.urandom(12).hex()}",
        route=describe_request(model, feature, params, stream),
        body=params,
        options=options,
        stream=stream,
        caller_wants_usage=caller_wants_usage,
    )


def usage_of(data: Mapping[str, Any] | None) -> Usage | None:
    """Read OpenAI-format usage, including cached prompt and reasoning tokens."""
    if not data:
        return None
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


@dataclass(frozen=True, slots=True)
class Step:
    """What the driver does next: wait ``wait_s`` (injected sleep), then call ``deployment``."""

    deployment: Deployment
    wait_s: float
    options: CallOptions


class Session:
    """The state of one request: the models still to try, retries, the deadline, every attempt.

    Drivers loop ``next_step`` → sleep → ``begin`` → call → ``failed``/``succeeded``; every
    decision (retry the same model or move on, how long to wait, when to give up) is made here.
    """

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
    ) -> None:
        self.engine = engine
        self._observations = observations
        self._breakers = breakers
        self.resilience = resilience or engine.resilience_for(plan.route)
        self._retry_attempts = retry_attempts or self.resilience.retry.attempts
        self.request = request
        self.plan = plan
        self._clock = clock
        self._started = clock()
        self._started_at = time.time()
        self._deadline = self._started + self.resilience.timeout_s
        self._pending: deque[str] = deque(c.model for c in plan.candidates)
        self._attempts: list[Attempt] = []
        self._skipped: dict[str, str] = {}
        self._last_error: BaseException | None = None
        self._current: Deployment | None = None
        self._tries_on_current = 0
        self._retry_wait: float | None = None
        self._wait_s = 0.0
        self._attempt_started = self._started
        self._attempt_started_at = self._started_at
        self._deadline_passed = False
        self._kept: tuple[Deployment, Any, Usage | None] | None = None

    # ----------------------------------------------------------------- what to do next

    def next_step(self) -> Step | None:
        """The next call to make (same model again after a wait, or the next candidate), or None."""
        resilience = self.resilience
        if len(self._attempts) >= resilience.max_attempts:
            return None
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            self._deadline_passed = self._last_error is not None or bool(self._attempts)
            return None
        wait = self._retry_wait
        self._retry_wait = None
        if wait is not None and self._current is not None:
            if wait < remaining:
                return Step(self._current, wait, self._options(remaining - wait))
            self._skipped.setdefault(self._current.name, f"retry wait {wait:.1f}s would pass the deadline")
        while self._pending:
            name = self._pending.popleft()
            if self._breakers is not None:
                reason = self._breakers.admit(name)
                if reason is not None:
                    self._skipped[name] = reason
                    continue
            self._current = self.engine.deployments[name]
            self._tries_on_current = 0
            return Step(self._current, 0.0, self._options(remaining))
        return None

    def _options(self, remaining: float) -> CallOptions:
        """The caller's per-call options with every timeout capped by the deadline (and, for streams,
        the read timeout set to the idle timeout: the longest wait for the next chunk)."""
        options = self.request.options
        idle = self.resilience.stream_idle_timeout_s if self.request.stream else None
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
        self._attempt_started_at = time.time()

    def remaining_s(self) -> float:
        return max(self._deadline - self._clock(), 0.0)

    def attempt_elapsed_ms(self) -> float:
        """Time since the current attempt began (time to first token, for streams)."""
        return self._elapsed_ms(self._attempt_started)

    # ----------------------------------------------------------------- outcomes

    def _elapsed_ms(self, since: float) -> float:
        return round((self._clock() - since) * 1000.0, 3)

    def failed(self, deployment: Deployment, exc: BaseException) -> None:
        """Record a failed attempt and decide: raise now, retry this model, or move on."""
        kind = self.failed_quietly(deployment, exc)
        if kind in _FATAL:
            self._attach(exc)
            raise exc
        if kind == "context_window":
            self._keep_larger_windows(deployment)
            return
        resilience = self.resilience
        if kind not in RETRYABLE or self._tries_on_current >= self._retry_attempts:
            return
        if kind == "rate_limited":
            retry_after = retry_after_s(exc, time.time())
            if retry_after is not None:
                if retry_after > resilience.max_retry_after_s:
                    # Waiting that long would hold the request hostage: skip the model until then.
                    if self._breakers is not None:
                        self._breakers.open_for(
                            deployment.name,
                            retry_after,
                            f"a 429 asking to wait {retry_after:g}s (max_retry_after_s "
                            f"{resilience.max_retry_after_s:g})",
                        )
                    return
                self._retry_wait = retry_after
                return
        self._retry_wait = resilience.backoff_s(self._tries_on_current)

    def failed_quietly(self, deployment: Deployment, exc: BaseException) -> str:
        """Record a failed attempt (and tell the breaker) without deciding what comes next."""
        kind = error_class(exc)
        status = getattr(exc, "status_code", None)
        self._attempts.append(
            Attempt(
                model=deployment.name,
                provider=deployment.provider,
                error=kind,
                status=status if isinstance(status, int) else None,
                message=type(exc).__name__,
                latency_ms=self._elapsed_ms(self._attempt_started),
                wait_s=self._wait_s,
                started_at=self._attempt_started_at,
            )
        )
        self._last_error = exc
        if self._breakers is not None:
            self._breakers.failed(deployment.name, kind, self.resilience.cooldown)
        return kind

    def content_filtered(self, deployment: Deployment, answer: Any, usage: Usage | None) -> None:
        """The provider's filter emptied this answer: record it, keep the first such answer, move on.

        Another model may answer; if none does, the kept answer is what the caller gets (it is what
        the provider itself returned), priced, with every attempt in its record.
        """
        self._attempts.append(
            Attempt(
                model=deployment.name,
                provider=deployment.provider,
                error="content_filter",
                status=200,
                message="finish_reason=content_filter",
                latency_ms=self._elapsed_ms(self._attempt_started),
                wait_s=self._wait_s,
                started_at=self._attempt_started_at,
            )
        )
        if self._kept is None:
            self._kept = (deployment, answer, usage)

    def kept_answer(self) -> tuple[Deployment, Any, RoutingRecord] | None:
        """The content-filtered answer to return when no model did better, with its record."""
        if self._kept is None:
            return None
        deployment, answer, usage = self._kept
        return deployment, answer, self.record(deployment, usage, self.cost_of(deployment, usage))

    def _keep_larger_windows(self, deployment: Deployment) -> None:
        """After a context-length error, only models with a larger window are worth a try."""
        window = self.engine.catalog[deployment.name].context_window
        if window is None:
            return
        catalog = self.engine.catalog
        self._pending = deque(name for name in self._pending if (catalog[name].context_window or 0) > window)

    def succeeded(
        self, deployment: Deployment, usage: Usage | None, *, ttft_ms: float | None = None
    ) -> RoutingRecord:
        """Record the successful attempt, price it, and learn its output size and latency."""
        latency_ms = self._elapsed_ms(self._attempt_started)
        self._attempts.append(
            Attempt(
                model=deployment.name,
                provider=deployment.provider,
                latency_ms=latency_ms,
                wait_s=self._wait_s,
                started_at=self._attempt_started_at,
                ttft_ms=ttft_ms,
            )
        )
        if self._breakers is not None:
            self._breakers.succeeded(deployment.name)
        if self._observations is not None:
            self._observations.record(
                self.request.route.feature,
                deployment.name,
                usage.completion_tokens if usage is not None else None,
                latency_ms,
            )
        return self.record(deployment, usage, self.cost_of(deployment, usage))

    def cost_of(self, deployment: Deployment, usage: Usage | None) -> float | None:
        if usage is None:
            return None
        return self.engine.catalog[deployment.name].cost_usd(
            usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens
        )

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
            attempts=tuple(self._attempts),
            usage=usage,
            cost_usd=cost,
            latency_ms=self._elapsed_ms(self._started),
            started_at=self._started_at,
            stream=self.request.stream,
        )

    def exhausted(self) -> BaseException:
        """The error to raise when no model answered.

        The deadline's own error when it passed; else the last provider error (so ``except
        openai.RateLimitError`` still works); NoCandidateError when nothing could be tried at all.
        Every one carries the routing record.
        """
        error: BaseException
        if self._deadline_passed:
            error = DeadlineExceededError(
                timeout_s=self.resilience.timeout_s, attempts=len(self._attempts), last_error=self._last_error
            )
            if self._last_error is not None:
                error.__cause__ = self._last_error
        elif self._last_error is not None:
            error = self._last_error
        else:
            error = NoCandidateError(
                self.request.route.model, {**self.plan.rejected, **self._skipped}, self.plan.route
            )
        self._attach(error)
        return error

    def _attach(self, exc: BaseException) -> None:
        # Callers who catch the error can still see every attempt.
        with contextlib.suppress(AttributeError):
            exc.routing = self.record(None)  # type: ignore[attr-defined]


def capped_timeout(timeout: Timeout, remaining: float, idle: float | None) -> Timeout:
    """``timeout`` with no phase longer than the time left, and reads bounded by ``idle``.

    Returns ``timeout`` itself when nothing needs capping (the common case: no allocation).
    """
    if isinstance(timeout, httpx.Timeout):
        phases = (timeout.connect, timeout.read, timeout.write, timeout.pool)
    else:
        phases = (timeout, timeout, timeout, timeout)
    read_cap = remaining if idle is None else min(idle, remaining)
    if all(p is not None and p <= remaining for p in phases) and (phases[1] or 0) <= read_cap:
        return timeout

    def cap(value: float | None, limit: float) -> float:
        return limit if value is None else min(value, limit)

    return httpx.Timeout(
        connect=cap(phases[0], remaining),
        read=cap(phases[1], read_cap),
        write=cap(phases[2], remaining),
        pool=cap(phases[3], remaining),
    )


class StreamTracker:
    """What a stream has delivered so far, and whether it has committed to its model.

    A stream commits at its first chunk that carries content (text, a tool call, or usage):
    before that a failure can still move to the next model unseen by the caller; after it, a
    failure can only be reported. A finish reason alone does not commit: an answer that ends
    before saying anything is not worth keeping if the stream then fails.
    """

    __slots__ = ("characters", "chunks", "committed", "finish_reason", "finished", "tool_calls", "usage")

    def __init__(self) -> None:
        self.chunks = 0
        self.characters = 0
        self.committed = False
        self.finished = False
        self.finish_reason: str | None = None
        self.tool_calls = False
        self.usage: Usage | None = None

    def observe(self, data: Mapping[str, Any]) -> bool:
        """Account for one chunk; True when it is a usage-only chunk (no choices)."""
        usage = data.get("usage")
        if usage:
            self.usage = usage_of(usage)
            self.committed = True
        choices = data.get("choices") or ()
        for choice in choices:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.characters += len(content)
                self.committed = True
            if delta.get("tool_calls") or delta.get("function_call"):
                self.tool_calls = True
                self.committed = True
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                self.finished = True
                self.finish_reason = finish_reason
        if choices:
            self.chunks += 1
        return not choices

    @property
    def content_filtered(self) -> bool:
        """The provider's filter ended the answer before it said anything."""
        return self.finish_reason == "content_filter" and not self.characters and not self.tool_calls


def content_filtered(data: Mapping[str, Any]) -> bool:
    """A completion the provider's content filter emptied (finish_reason content_filter, no content)."""
    choices = data.get("choices") or ()
    if not choices:
        return False
    choice = choices[0]
    message = choice.get("message") or {}
    return (
        choice.get("finish_reason") == "content_filter"
        and not message.get("content")
        and not message.get("tool_calls")
    )
