"""OpenTelemetry: a span per request and a child per attempt, with the GenAI attributes."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from router._events import Events
from tests.router.event_helpers import (
    API_KEY,
    PROMPT,
    STARTED_AT,
    failed_record,
    fallback_record,
    rate_limit_error,
    router_logger_fixture,  # noqa: F401 - the fixture router_logger
    stream_record,
)

NS = 1_000_000_000


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    # A provider of the test's own: the global one is never set, so tests cannot leak into each other.
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider


@pytest.fixture
def events(provider: TracerProvider) -> Events:
    return Events(policy_hash="0123456789ab", tracer_provider=provider)


def spans(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The request's span and its children, in the order they started."""
    finished = exporter.get_finished_spans()
    (request,) = [s for s in finished if s.parent is None]
    children = sorted((s for s in finished if s.parent is not None), key=lambda s: s.start_time or 0)
    assert len(children) == len(finished) - 1
    return request, children


def test_a_completed_request_is_a_span_with_the_genai_and_routing_attributes(
    events: Events, exporter: InMemorySpanExporter
) -> None:
    events.completed(fallback_record())
    request, _ = spans(exporter)
    assert request.name == "chat auto" and request.kind is SpanKind.CLIENT
    assert request.status.status_code is StatusCode.UNSET
    assert dict(request.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "auto",
        "gen_ai.response.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 900,
        "gen_ai.usage.output_tokens": 120,
        "gen_ai.usage.cache_read.input_tokens": 100,
        "gen_ai.usage.reasoning.output_tokens": 7,
        "router.request_id": "req_fallback",
        "router.feature": "support-bot",
        "router.route": "auto",
        "router.strategy": "cheapest",
        "router.cost_usd": 0.00345,
        "router.attempts": 2,
        "router.fallback": True,
        "router.stream": False,
        "router.policy_hash": "0123456789ab",
    }


def test_the_request_span_spans_the_recorded_start_and_latency(
    events: Events, exporter: InMemorySpanExporter
) -> None:
    events.completed(fallback_record())
    request, _ = spans(exporter)
    assert request.start_time == int(STARTED_AT * NS)
    assert request.end_time == request.start_time + 543_000_000


def test_each_attempt_is_a_child_span_timed_from_its_own_start(
    events: Events, exporter: InMemorySpanExporter
) -> None:
    events.completed(fallback_record())
    request, (failed, answered) = spans(exporter)
    for child in (failed, answered):
        assert child.parent is not None and child.parent.span_id == request.context.span_id
        assert child.context.trace_id == request.context.trace_id
    assert (failed.name, answered.name) == ("chat gpt-4o-mini", "chat gpt-4o")
    assert (failed.start_time, failed.end_time) == (int(STARTED_AT * NS), int(STARTED_AT * NS) + 12_500_000)
    assert answered.start_time == int((STARTED_AT + 0.5125) * NS)
    assert answered.end_time == answered.start_time + 30_000_000


def test_a_failed_attempt_span_has_error_status_and_error_type(
    events: Events, exporter: InMemorySpanExporter
) -> None:
    events.completed(fallback_record())
    _, (failed, _answered) = spans(exporter)
    assert failed.status.status_code is StatusCode.ERROR
    assert dict(failed.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "router.request_id": "req_fallback",
        "router.attempt": 1,
        "router.outcome": "error",
        "router.wait_s": 0.0,
        "http.response.status_code": 500,
        "error.type": "server",
    }


def test_the_answering_attempt_span_carries_the_response_model_and_usage(
    events: Events, exporter: InMemorySpanExporter
) -> None:
    events.completed(fallback_record())
    _, (_failed, answered) = spans(exporter)
    attributes: dict[str, Any] = dict(answered.attributes or {})
    assert answered.status.status_code is StatusCode.UNSET
    assert attributes["router.outcome"] == "ok" and attributes["router.wait_s"] == 0.5
    assert attributes["gen_ai.response.model"] == "gpt-4o"
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (900, 120)
    assert attributes["router.cost_usd"] == 0.00345


def test_a_streamed_attempt_span_has_its_time_to_first_token(
    events: Events, exporter: InMemorySpanExporter
) -> None:
    events.completed(stream_record())
    request, (attempt,) = spans(exporter)
    assert request.attributes is not None and request.attributes["router.stream"] is True
    assert attempt.attributes is not None and attempt.attributes["router.ttft_ms"] == 21.5


def test_a_failed_request_span_has_error_status_and_no_error_text(
    events: Events, exporter: InMemorySpanExporter
) -> None:
    events.failed(failed_record(), rate_limit_error())
    request, children = spans(exporter)
    assert request.status.status_code is StatusCode.ERROR
    assert request.status.description == "RateLimitError"
    attributes = dict(request.attributes or {})
    assert (attributes["error.type"], attributes["router.error_class"]) == ("RateLimitError", "rate_limited")
    assert "gen_ai.response.model" not in attributes and "gen_ai.usage.input_tokens" not in attributes
    assert attributes["gen_ai.system"] == "openai"  # the provider of the last attempt
    assert [c.status.status_code for c in children] == [StatusCode.ERROR, StatusCode.ERROR]
    dumped = repr(
        [(s.name, s.attributes, s.status.description, s.events) for s in exporter.get_finished_spans()]
    )
    assert PROMPT not in dumped and API_KEY not in dumped


def test_attempts_without_start_times_are_laid_end_to_end(
    events: Events, exporter: InMemorySpanExporter
) -> None:
    events.failed(failed_record(), rate_limit_error())
    request, (first, second) = spans(exporter)
    assert first.start_time == request.start_time
    assert (first.start_time or 0) + 3_000_000 == first.end_time == second.start_time
    assert second.end_time == (second.start_time or 0) + 4_000_000


def test_a_record_without_a_start_time_ends_now_and_lasts_its_latency(
    events: Events, exporter: InMemorySpanExporter
) -> None:
    events.completed(fallback_record(started_at=0.0))
    request, _ = spans(exporter)
    assert request.start_time is not None and request.start_time > int(STARTED_AT * NS)
    assert request.end_time == request.start_time + 543_000_000


def test_spans_are_made_even_when_logging_is_off(
    events: Events, exporter: InMemorySpanExporter, router_logger: logging.Logger
) -> None:
    router_logger.setLevel(logging.CRITICAL)
    events.completed(fallback_record())
    events.failed(failed_record(), rate_limit_error())
    assert len(exporter.get_finished_spans()) == 3 + 3


def test_the_global_provider_is_used_when_none_is_given(
    provider: TracerProvider, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    Events(policy_hash="x").completed(fallback_record())
    assert len(exporter.get_finished_spans()) == 3


@pytest.mark.parametrize("no_op", [trace.ProxyTracerProvider, trace.NoOpTracerProvider])
def test_without_an_sdk_provider_no_span_is_started(monkeypatch: pytest.MonkeyPatch, no_op: type) -> None:
    started: list[object] = []

    class Spy(no_op):  # type: ignore[misc]
        def get_tracer(self, *args: object, **kwargs: object) -> Any:
            started.append(args)
            return super().get_tracer(*args, **kwargs)

    monkeypatch.setattr(trace, "get_tracer_provider", Spy)
    Events(policy_hash="x").completed(fallback_record())
    assert started == []


def test_opentelemetry_is_never_imported_by_the_router(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in an app that does not use OpenTelemetry: the module is not loaded.
    monkeypatch.delitem(sys.modules, "opentelemetry.trace")
    Events(policy_hash="x").completed(fallback_record())
    Events(policy_hash="x").failed(failed_record(), rate_limit_error())
    assert "opentelemetry.trace" not in sys.modules


def test_the_tracer_is_made_once_per_provider(
    provider: TracerProvider, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    get_tracer = provider.get_tracer

    def counting(name: str, *args: Any, **kwargs: Any) -> trace.Tracer:
        made.append(name)
        return get_tracer(name, *args, **kwargs)

    monkeypatch.setattr(provider, "get_tracer", counting)
    events = Events(policy_hash="x", tracer_provider=provider)
    events.completed(fallback_record())
    events.completed(stream_record())
    assert made == ["router"] and len(exporter.get_finished_spans()) == 3 + 2


def test_an_unsampled_request_makes_no_attempt_spans(exporter: InMemorySpanExporter) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    unsampled = TracerProvider(sampler=ALWAYS_OFF)
    unsampled.add_span_processor(SimpleSpanProcessor(exporter))
    Events(policy_hash="x", tracer_provider=unsampled).completed(fallback_record())
    assert exporter.get_finished_spans() == ()
