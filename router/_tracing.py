"""OpenTelemetry spans for a finished request: one for the request, a child for each attempt.

Imported only once the app has imported ``opentelemetry.trace`` itself (see ``Events._trace``),
and handed that module, so nothing here imports OpenTelemetry. The spans are made after the fact,
with explicit start and end times from the record, because the pipeline's decisions hold no spans.

Attributes follow the GenAI semantic conventions (``gen_ai.*``, both ``gen_ai.system`` and its
newer name ``gen_ai.provider.name``) plus ``router.*`` for what the conventions have no name for.
No message content is ever set on a span.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any, Final

from providers.errors import error_class
from router._routing import Attempt, RoutingRecord

_NS: Final = 1_000_000_000
_NS_PER_MS: Final = 1_000_000


def provider_for(trace: ModuleType, provider: Any) -> Any | None:
    """The provider to use (``provider``, else the global one), or None when it is a no-op."""
    if provider is None:
        provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        # No SDK set up: every span would be dropped, so building them is wasted work.
        return None
    return provider


def emit(
    trace: ModuleType, tracer: Any, record: RoutingRecord, error: BaseException | None, policy_hash: str
) -> None:
    """Record the request's span and its attempts' child spans, already ended."""
    duration_ns = int(record.latency_ms * _NS_PER_MS)
    start_ns = int(record.started_at * _NS) if record.started_at > 0 else time.time_ns() - duration_ns
    attributes = _request_attributes(record, policy_hash)
    if error is not None:
        attributes["error.type"] = type(error).__name__
        attributes["router.error_class"] = error_class(error)
    span = tracer.start_span(
        f"chat {record.route or record.model or record.requested}",
        kind=trace.SpanKind.CLIENT,
        start_time=start_ns,
        attributes=attributes,
    )
    if span.is_recording():
        context = trace.set_span_in_context(span)
        # Attempts without a start time of their own are laid end to end from the request's start.
        cursor = start_ns
        for number, attempt in enumerate(record.attempts, 1):
            cursor = _attempt_span(trace, tracer, context, record, attempt, number, cursor)
        if error is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
    span.end(end_time=start_ns + duration_ns)


def _request_attributes(record: RoutingRecord, policy_hash: str) -> dict[str, Any]:
    provider = record.provider or (record.attempts[-1].provider if record.attempts else None)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": record.requested,
        "router.request_id": record.request_id,
        "router.feature": record.feature,
        "router.strategy": record.strategy,
        "router.attempts": len(record.attempts),
        "router.stream": record.stream,
        "router.policy_hash": policy_hash,
    }
    if provider is not None:
        attributes["gen_ai.system"] = attributes["gen_ai.provider.name"] = provider
    if record.model is not None:
        attributes["gen_ai.response.model"] = record.model
        attributes["router.fallback"] = bool(record.attempts) and record.model != record.attempts[0].model
    if record.route is not None:
        attributes["router.route"] = record.route
    if record.cost_usd is not None:
        attributes["router.cost_usd"] = record.cost_usd
    _add_usage(attributes, record)
    return attributes


def _add_usage(attributes: dict[str, Any], record: RoutingRecord) -> None:
    usage = record.usage
    if usage is None:
        return
    attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
    attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
    attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
    attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens


def _attempt_span(
    trace: ModuleType,
    tracer: Any,
    context: Any,
    record: RoutingRecord,
    attempt: Attempt,
    number: int,
    cursor: int,
) -> int:
    """One attempt's child span; returns when it ended, where an untimed next attempt starts."""
    timed = attempt.started_at > 0
    start_ns = int(attempt.started_at * _NS) if timed else cursor + int(attempt.wait_s * _NS)
    end_ns = start_ns + int(attempt.latency_ms * _NS_PER_MS)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": attempt.provider,
        "gen_ai.provider.name": attempt.provider,
        "gen_ai.request.model": attempt.model,
        "router.request_id": record.request_id,
        "router.attempt": number,
        "router.outcome": "ok" if attempt.error is None else "error",
        "router.wait_s": attempt.wait_s,
    }
    if attempt.status is not None:
        attributes["http.response.status_code"] = attempt.status
    if attempt.ttft_ms is not None:
        attributes["router.ttft_ms"] = attempt.ttft_ms
    if attempt.error is not None:
        attributes["error.type"] = attempt.error
    elif attempt.model == record.model:
        # The attempt that answered: the response and the usage are its own.
        attributes["gen_ai.response.model"] = attempt.model
        _add_usage(attributes, record)
        if record.cost_usd is not None:
            attributes["router.cost_usd"] = record.cost_usd
    span = tracer.start_span(
        f"chat {attempt.model}",
        context=context,
        kind=trace.SpanKind.CLIENT,
        start_time=start_ns,
        attributes=attributes,
    )
    if attempt.error is not None:
        span.set_status(trace.Status(trace.StatusCode.ERROR, attempt.error))
    span.end(end_time=end_ns)
    return end_ns
