"""OpenTelemetry through the public clients: what an app that set up the SDK sees for each request.

The clients take no tracer provider, so these tests use the process's global one, as an app would.
OpenTelemetry lets the global provider be set only once per process: the module fixture sets an SDK
``TracerProvider`` unless one is already set (by an earlier test, say), and adds its exporter to
whichever it is, forwarding only while this module runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from router_fakes import FakeProviders, ModelScript, status

from router import AsyncOpenAI, OpenAI, RoutingRecord
from router.testing import capture_events

KEY_ENV = "ROUTER_OTEL_E2E_KEY"
API_KEY = "sk-test-DISTINCTIVE-KEY-5519"
PROMPT = "PURPLE-ELEPHANT-7781"
MESSAGES: list[Any] = [{"role": "user", "content": f"Summarize the memo about {PROMPT}, please."}]
EPOCH = 1_780_000_000.0
NS = 1_000_000_000


class _WhileActive(SpanProcessor):
    """Hands ended spans to the exporter while this module's tests run, and drops them after."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._inner = SimpleSpanProcessor(exporter)
        self.active = True

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            self._inner.on_end(span)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


@pytest.fixture(scope="module")
def module_exporter() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())  # ignored (with a warning) if already set
        provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        pytest.skip("this process's global tracer provider is not the OpenTelemetry SDK's")
    exporter = InMemorySpanExporter()
    processor = _WhileActive(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.active = False
    exporter.clear()


@pytest.fixture
def exporter(module_exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    module_exporter.clear()
    return module_exporter


class Clocks:
    """A monotonic clock and a wall clock that move together, a millisecond per reading of either.

    Span times come from both (starts from the wall clock, durations from the monotonic one), so
    sharing one counter makes every span's place in time exact.
    """

    def __init__(self) -> None:
        self.elapsed = 0.0

    def monotonic(self) -> float:
        self.elapsed += 0.001
        return self.elapsed

    def wall(self) -> float:
        return EPOCH + self.monotonic()


def policy(fake: FakeProviders) -> dict[str, Any]:
    model = {"provider": "openai", "api_base": fake.openai_base, "api_key_env": KEY_ENV}
    return {
        "retry": {"attempts": 1},
        "models": {"gpt-4o-mini": model, "gpt-4o": model},
        "routes": {"auto": {"candidates": ["gpt-4o-mini"], "fallbacks": ["gpt-4o"]}},
    }


@pytest.fixture
def client(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAI]:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    clocks = Clocks()
    with OpenAI(policy=policy(fake), clock=clocks.monotonic, wall_clock=clocks.wall) as routed:
        yield routed


def request_and_attempts(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The router's one request span and its children, in the order they started."""
    finished = [s for s in exporter.get_finished_spans() if _scope(s) == "router"]
    (request,) = [s for s in finished if "router.attempt" not in (s.attributes or {})]
    children = sorted((s for s in finished if s is not request), key=lambda s: s.start_time or 0)
    for child in children:
        assert child.parent is not None and child.parent.span_id == request.context.span_id
        assert child.context.trace_id == request.context.trace_id
    assert len(children) == len(finished) - 1
    return request, children


def _scope(span: ReadableSpan) -> str | None:
    return span.instrumentation_scope.name if span.instrumentation_scope is not None else None


def times(span: ReadableSpan) -> tuple[int, int]:
    assert span.start_time is not None and span.end_time is not None
    return span.start_time, span.end_time


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def check_fallback_spans(
    exporter: InMemorySpanExporter, routing: RoutingRecord, usage: openai.types.CompletionUsage
) -> tuple[ReadableSpan, ReadableSpan, ReadableSpan]:
    """gpt-4o-mini failed with a 500, gpt-4o answered: the spans say so, with the GenAI attributes."""
    request, (failed, answered) = request_and_attempts(exporter)
    assert (request.name, request.kind) == ("chat auto", SpanKind.CLIENT)
    assert request.status.status_code is StatusCode.UNSET
    assert attributes(request) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "auto",
        "gen_ai.response.model": "gpt-4o",
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "router.request_id": routing.request_id,
        "router.feature": "support",
        "router.route": "auto",
        "router.strategy": "ordered",
        "router.cost_usd": routing.cost_usd,
        "router.attempts": 2,
        "router.fallback": True,
        "router.stream": False,
        "router.policy_hash": attributes(request)["router.policy_hash"],
    }
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert re.fullmatch(r"[0-9a-f]{12}", attributes(request)["router.policy_hash"])

    assert (failed.name, failed.kind) == ("chat gpt-4o-mini", SpanKind.CLIENT)
    assert failed.status.status_code is StatusCode.ERROR
    assert attributes(failed) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "router.request_id": routing.request_id,
        "router.attempt": 1,
        "router.outcome": "error",
        "router.wait_s": 0.0,
        "http.response.status_code": 500,
        "error.type": "server",
    }
    assert answered.name == "chat gpt-4o" and answered.status.status_code is StatusCode.UNSET
    assert attributes(answered) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o",
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "router.request_id": routing.request_id,
        "router.attempt": 2,
        "router.outcome": "ok",
        "router.wait_s": 0.0,
        "router.cost_usd": routing.cost_usd,
    }
    return request, failed, answered


def test_a_fallback_is_a_request_span_with_a_child_per_attempt_and_the_genai_attributes(
    client: OpenAI, fake: FakeProviders, exporter: InMemorySpanExporter
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(500),)))
    with capture_events() as events:
        response = client.chat.completions.create(
            model="auto", messages=MESSAGES, metadata={"feature": "support"}
        )
    assert response.usage is not None
    request, failed, answered = check_fallback_spans(exporter, response.routing, response.usage)
    # The span and the log events name the same request and the same policy.
    (decided,) = [e for e in events if e["event"] == "route.decided"]
    assert attributes(request)["router.policy_hash"] == decided["policy_hash"]
    assert {e["request_id"] for e in events} == {attributes(request)["router.request_id"]}
    # Each span lasts what the record says, the attempts one after the other within the request.
    routing = response.routing
    request_start, request_end = times(request)
    assert request_start == int(routing.started_at * NS)
    assert request_end == request_start + int(routing.latency_ms * 1_000_000)
    for span, attempt in zip((failed, answered), routing.attempts, strict=True):
        start, end = times(span)
        assert (start, end) == (int(attempt.started_at * NS), start + int(attempt.latency_ms * 1_000_000))
    assert request_start <= times(failed)[0] < times(failed)[1] <= times(answered)[0]
    assert times(answered)[0] < times(answered)[1] <= request_end


async def test_an_async_fallback_is_traced_the_same_way(
    fake: FakeProviders, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    fake.script(ModelScript("gpt-4o-mini", faults=(status(500),)))
    async with AsyncOpenAI(policy=policy(fake)) as client:
        response = await client.chat.completions.create(
            model="auto", messages=MESSAGES, metadata={"feature": "support"}
        )
    assert response.usage is not None
    check_fallback_spans(exporter, response.routing, response.usage)


def test_a_request_that_fails_has_an_error_span_naming_the_error_but_not_its_text(
    client: OpenAI, fake: FakeProviders, exporter: InMemorySpanExporter
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(400),)))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="auto", messages=MESSAGES)
    request, (attempt,) = request_and_attempts(exporter)
    assert request.status.status_code is StatusCode.ERROR
    assert request.status.description == "BadRequestError"
    request_attributes = attributes(request)
    assert (request_attributes["error.type"], request_attributes["router.error_class"]) == (
        "BadRequestError",
        "bad_request",
    )
    assert request_attributes["gen_ai.system"] == "openai"
    assert "gen_ai.response.model" not in request_attributes
    assert "gen_ai.usage.input_tokens" not in request_attributes
    assert attempt.status.status_code is StatusCode.ERROR
    assert attributes(attempt)["http.response.status_code"] == 400
    assert attributes(attempt)["error.type"] == "bad_request"


def test_a_stream_is_traced_when_it_ends_with_its_time_to_first_token(
    client: OpenAI, exporter: InMemorySpanExporter
) -> None:
    stream = client.chat.completions.create(model="auto", messages=MESSAGES, stream=True)
    assert exporter.get_finished_spans() == ()  # the request is not over until the stream is
    chunks = list(stream)
    assert chunks
    request, (attempt,) = request_and_attempts(exporter)
    assert attributes(request)["router.stream"] is True
    assert stream.routing.usage is not None
    assert attributes(request)["gen_ai.usage.output_tokens"] == stream.routing.usage.completion_tokens
    ttft = attributes(attempt)["router.ttft_ms"]
    assert ttft == stream.routing.attempts[0].ttft_ms and ttft > 0


def test_the_request_span_is_a_child_of_the_apps_current_span(
    client: OpenAI, exporter: InMemorySpanExporter
) -> None:
    with trace.get_tracer("app").start_as_current_span("POST /chat") as app_span:
        client.chat.completions.create(model="auto", messages=MESSAGES)
    app = app_span.get_span_context()
    request, (attempt,) = request_and_attempts(exporter)
    assert request.parent is not None and request.parent.span_id == app.span_id
    assert request.context.trace_id == attempt.context.trace_id == app.trace_id


def test_no_span_carries_the_prompt_or_the_key(
    client: OpenAI, fake: FakeProviders, exporter: InMemorySpanExporter
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(500),)))
    client.chat.completions.create(model="auto", messages=MESSAGES)
    fake.script(ModelScript("gpt-4o-mini", faults=(status(400),)))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="auto", messages=MESSAGES)
    spans = exporter.get_finished_spans()
    assert len(spans) == 3 + 2
    dumped = json.dumps(
        [(s.name, attributes(s), s.status.description, [e.name for e in s.events]) for s in spans],
        default=str,
    )
    assert PROMPT in json.dumps([r.body for r in fake.requests])  # it was sent...
    assert PROMPT not in dumped and API_KEY not in dumped  # ...and is in no span


def test_a_client_given_its_own_tracer_provider_sends_its_spans_there_only(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter
) -> None:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    own = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(own))
    with OpenAI(policy=policy(fake), tracer_provider=provider) as routed:
        routed.chat.completions.create(model="auto", messages=MESSAGES)
    names = [span.name for span in own.get_finished_spans()]
    assert names.count("chat auto") == 1 and len(names) == 2  # the request and its one attempt
    assert exporter.get_finished_spans() == ()  # nothing reached the global provider
