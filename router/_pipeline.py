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
from typing import Any, Final

import openai

from policies.plan import DEFAULT_FEATURE, Plan, RouteRequest, describe_request
from providers.base import JSON, CallOptions, Deployment, Timeout
from providers.errors import error_class
from router._engine import Engine
from router._exceptions import NoCandidateError
from router._observations import Observations
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


class Session:
    """The state of one request: the models still to try and every attempt so far."""

    def __init__(
        self,
        engine: Engine,
        request: Request,
        plan: Plan,
        clock: Callable[[], float] = time.perf_counter,
        observations: Observations | None = None,
    ) -> None:
        self.engine = engine
        self._observations = observations
        self.request = request
        self.plan = plan
        self._clock = clock
        self._started = clock()
        self._pending: deque[str] = deque(c.model for c in plan.candidates)
        self._attempts: list[Attempt] = []
        self._last_error: BaseException | None = None
        self._attempt_started = 0.0

    def next_deployment(self) -> Deployment | None:
        """The next model to call, or None when the plan is exhausted."""
        if not self._pending:
            return None
        self._attempt_started = self._clock()
        return self.engine.deployments[self._pending.popleft()]

    def _elapsed_ms(self, since: float) -> float:
        return round((self._clock() - since) * 1000.0, 3)

    def failed(self, deployment: Deployment, exc: BaseException) -> None:
        """Record a failed attempt; re-raise at once when no other model could do better."""
        kind = self.failed_quietly(deployment, exc)
        if kind in _FATAL:
            self._attach(exc)
            raise exc
        if kind == "context_window":
            self._keep_larger_windows(deployment)

    def failed_quietly(self, deployment: Deployment, exc: BaseException) -> str:
        """Record a failed attempt and return its error class, deciding nothing."""
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
            )
        )
        self._last_error = exc
        return kind

    def _keep_larger_windows(self, deployment: Deployment) -> None:
        """After a context-length error, only models with a larger window are worth a try."""
        window = self.engine.catalog[deployment.name].context_window
        if window is None:
            return
        catalog = self.engine.catalog
        self._pending = deque(name for name in self._pending if (catalog[name].context_window or 0) > window)

    def succeeded(self, deployment: Deployment, usage: Usage | None) -> RoutingRecord:
        """Record the successful attempt, price it, and learn its output size and latency."""
        latency_ms = self._elapsed_ms(self._attempt_started)
        self._attempts.append(
            Attempt(model=deployment.name, provider=deployment.provider, latency_ms=latency_ms)
        )
        if self._observations is not None:
            self._observations.record(
                self.request.route.feature,
                deployment.name,
                usage.completion_tokens if usage is not None else None,
                latency_ms,
            )
        cost = None
        if usage is not None:
            cost = self.engine.catalog[deployment.name].cost_usd(
                usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens
            )
        return self.record(deployment, usage, cost)

    def record(
        self, deployment: Deployment | None, usage: Usage | None = None, cost: float | None = None
    ) -> RoutingRecord:
        return RoutingRecord(
            request_id=self.request.request_id,
            model=deployment.name if deployment else None,
            provider=deployment.provider if deployment else None,
            feature=self.request.route.feature,
            route=self.plan.route,
            strategy=self.plan.strategy,
            requested=self.request.route.model,
            candidates=self.plan.candidates,
            rejected=self.plan.rejected,
            rules=self.plan.rules,
            attempts=tuple(self._attempts),
            usage=usage,
            cost_usd=cost,
            latency_ms=self._elapsed_ms(self._started),
        )

    def exhausted(self) -> BaseException:
        """The error to raise when every candidate failed: the last provider error, with the record."""
        if self._last_error is None:
            return NoCandidateError(self.request.route.model, self.plan.rejected, self.plan.route)
        self._attach(self._last_error)
        return self._last_error

    def _attach(self, exc: BaseException) -> None:
        # Callers who catch the error can still see every attempt.
        with contextlib.suppress(AttributeError):
            exc.routing = self.record(None)  # type: ignore[attr-defined]


class StreamTracker:
    """What a stream has delivered so far, and whether it has committed to its model.

    A stream commits at its first chunk that carries content (text, a tool call, a finish
    reason or usage): before that a failure can still move to the next model unseen by the
    caller; after it, a failure can only be reported.
    """

    __slots__ = ("characters", "chunks", "committed", "finished", "usage")

    def __init__(self) -> None:
        self.chunks = 0
        self.characters = 0
        self.committed = False
        self.finished = False
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
                self.committed = True
            if choice.get("finish_reason"):
                self.committed = True
                self.finished = True
        if choices:
            self.chunks += 1
        return not choices
