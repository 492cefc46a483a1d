"""The events of a request: their names, levels and every field, redaction, and no work when off."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import pytest

import router._events as events_module
from router._events import Events
from router._exceptions import NoCandidateError
from router._routing import Attempt, BudgetEvent
from router.testing import capture_events
from tests.router.event_helpers import (
    ANSWER,
    API_KEY,
    MESSAGES,
    PROMPT,
    WARNING,
    failed_record,
    fallback_record,
    rate_limit_error,
    router_logger_fixture,  # noqa: F401 - the fixture router_logger
    stream_record,
)

EVENTS = Events(policy_hash="0123456789ab")


def emit_all(events: Events) -> None:
    """One of every event, with content offered wherever the API takes it."""
    record = fallback_record()
    events.decided(record, messages=MESSAGES)
    for number, attempt in enumerate(record.attempts, 1):
        events.attempt(record.request_id, record.feature, attempt, number)
    events.budget(record.request_id, record.feature, WARNING)
    events.completed(record, content=ANSWER)
    events.failed(failed_record(), rate_limit_error())


def test_route_decided_names_the_candidates_the_rejections_and_the_policy() -> None:
    with capture_events() as captured:
        EVENTS.decided(fallback_record())
    assert captured == [
        {
            "event": "route.decided",
            "request_id": "req_fallback",
            "feature": "support-bot",
            "route": "auto",
            "requested": "auto",
            "strategy": "cheapest",
            "candidates": [
                {
                    "model": "gpt-4o-mini",
                    "provider": "openai",
                    "expected_cost_usd": 0.0004,
                    "fallback": False,
                },
                {"model": "gpt-4o", "provider": "openai", "expected_cost_usd": 0.005, "fallback": True},
            ],
            "rejected": {"phi-4": "context 16,384 < 20,000 needed"},
            "rules": ["features.support-bot.min_quality"],
            "policy_hash": "0123456789ab",
            "log_level": "info",
        }
    ]


def test_a_failed_attempt_is_a_warning_with_its_error_class_and_status() -> None:
    record = fallback_record()
    with capture_events() as captured:
        EVENTS.attempt(record.request_id, record.feature, record.attempts[0], 1)
    assert captured == [
        {
            "event": "route.attempt",
            "request_id": "req_fallback",
            "feature": "support-bot",
            "model": "gpt-4o-mini",
            "provider": "openai",
            "attempt": 1,
            "outcome": "error",
            "error_class": "server",
            "status": 500,
            "wait_s": 0.0,
            "latency_ms": 12.5,
            "ttft_ms": None,
            "log_level": "warning",
        }
    ]


def test_a_successful_attempt_is_info_with_its_wait() -> None:
    record = fallback_record()
    with capture_events() as captured:
        EVENTS.attempt(record.request_id, record.feature, record.attempts[1], 2)
    (event,) = captured
    assert event["log_level"] == "info"
    assert (event["attempt"], event["outcome"], event["error_class"], event["status"]) == (
        2,
        "ok",
        None,
        None,
    )
    assert (event["model"], event["wait_s"], event["latency_ms"]) == ("gpt-4o", 0.5, 30.0)


def test_a_streamed_attempt_reports_its_time_to_first_token() -> None:
    record = stream_record()
    with capture_events() as captured:
        EVENTS.attempt(record.request_id, record.feature, record.attempts[0], 1)
    assert captured[0]["ttft_ms"] == 21.5


def test_route_completed_has_the_model_tokens_cost_latency_and_fallback() -> None:
    with capture_events() as captured:
        EVENTS.completed(fallback_record())
    assert captured == [
        {
            "event": "route.completed",
            "request_id": "req_fallback",
            "feature": "support-bot",
            "route": "auto",
            "model": "gpt-4o",
            "provider": "openai",
            "prompt_tokens": 900,
            "completion_tokens": 120,
            "cached_tokens": 100,
            "reasoning_tokens": 7,
            "cost_usd": 0.00345,
            "latency_ms": 543.0,
            "attempts": 2,
            "fallback": True,
            "stream": False,
            "log_level": "info",
        }
    ]


def test_a_request_answered_by_its_first_attempt_is_no_fallback() -> None:
    with capture_events() as captured:
        EVENTS.completed(stream_record())
    (event,) = captured
    assert (event["fallback"], event["stream"], event["attempts"]) == (False, True, 1)


def test_unknown_usage_is_logged_as_null_not_zero() -> None:
    with capture_events() as captured:
        EVENTS.completed(fallback_record(usage=None, cost_usd=None))
    (event,) = captured
    assert [event[k] for k in ("prompt_tokens", "completion_tokens", "cost_usd")] == [None, None, None]


def test_route_failed_is_an_error_with_the_error_type_class_and_status_but_not_its_text() -> None:
    with capture_events() as captured:
        EVENTS.failed(failed_record(), rate_limit_error())
    assert captured == [
        {
            "event": "route.failed",
            "request_id": "req_failed",
            "feature": "support-bot",
            "route": "auto",
            "error_type": "RateLimitError",
            "error_class": "rate_limited",
            "status": 429,
            "attempts": 2,
            "latency_ms": 9.0,
            "log_level": "error",
        }
    ]


def test_a_request_no_model_could_serve_fails_with_no_attempts() -> None:
    error = NoCandidateError("auto", {"phi-4": "context 16,384 < 20,000 needed"}, route="auto")
    with capture_events() as captured:
        EVENTS.failed(fallback_record(attempts=(), model=None, provider=None), error)
    (event,) = captured
    assert (event["error_type"], event["error_class"], event["status"], event["attempts"]) == (
        "NoCandidateError",
        "bad_request",
        400,
        0,
    )


@pytest.mark.parametrize(
    ("kind", "level"), [("warning", "warning"), ("exceeded", "warning"), ("downgraded", "info")]
)
def test_budget_events_are_named_by_kind_and_carry_the_budget(kind: str, level: str) -> None:
    event = BudgetEvent(kind=kind, scope="*", window="month", limit_usd=100.0, spent_usd=99.5, model="gpt-4o")
    with capture_events() as captured:
        EVENTS.budget("req_1", "support-bot", event)
    assert captured == [
        {
            "event": f"budget.{kind}",
            "request_id": "req_1",
            "feature": "support-bot",
            "scope": "*",
            "window": "month",
            "limit_usd": 100.0,
            "spent_usd": 99.5,
            "reserved_usd": 0.0,
            "threshold": None,
            "model": "gpt-4o",
            "resets_at": None,
            "log_level": level,
        }
    ]


def test_every_event_carries_the_request_id_and_feature() -> None:
    with capture_events() as captured:
        emit_all(EVENTS)
    assert len(captured) == 6
    for event in captured:
        assert event["request_id"].startswith("req_") and event["feature"] == "support-bot", event


def test_no_event_carries_content_the_key_or_error_text_by_default() -> None:
    with capture_events() as captured:
        emit_all(EVENTS)
    text = repr(captured)
    for secret in (PROMPT, ANSWER, API_KEY, "Rate limited"):
        assert secret not in text
    assert not any({"messages", "content"} & event.keys() for event in captured)


def test_log_content_adds_the_messages_and_the_answer_but_never_the_key() -> None:
    with capture_events() as captured:
        emit_all(Events(policy_hash="0123456789ab", log_content=True))
    by_name = {event["event"]: event for event in captured}
    assert by_name["route.decided"]["messages"] == MESSAGES
    assert by_name["route.completed"]["content"] == ANSWER
    assert API_KEY not in repr(captured)
    assert "content" not in by_name["route.failed"]


def test_content_logging_on_without_content_adds_no_field() -> None:
    with capture_events() as captured:
        content_on = Events(policy_hash="x", log_content=True)
        content_on.decided(fallback_record())
        content_on.completed(fallback_record())
    assert not any({"messages", "content"} & event.keys() for event in captured)


def _refuse(*args: object, **kwargs: object) -> Any:
    raise AssertionError("an event was built although its level is off")


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.decided(fallback_record(), messages=MESSAGES),
        lambda e: e.attempt("req_1", "f", Attempt("m", "p"), 1),
        lambda e: e.attempt("req_1", "f", Attempt("m", "p", error="server"), 1),
        lambda e: e.completed(fallback_record(), content=ANSWER),
        lambda e: e.failed(failed_record(), rate_limit_error()),
        lambda e: e.budget("req_1", "f", WARNING),
    ],
)
def test_an_event_whose_level_is_off_builds_nothing(
    router_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, call: Callable[[Events], None]
) -> None:
    router_logger.setLevel(logging.CRITICAL)
    monkeypatch.setattr(events_module, "Event", _refuse)
    monkeypatch.setattr(events_module, "_emit", _refuse)
    call(Events(policy_hash="x", log_content=True))


def test_plain_stdlib_handlers_get_a_readable_message_and_the_fields_as_attributes(
    router_logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logging.Formatter("%(levelname)s %(name)s %(message)s | %(request_id)s %(cost_usd)s")
    )
    router_logger.addHandler(handler)
    router_logger.setLevel(logging.INFO)
    EVENTS.completed(fallback_record())
    line = stream.getvalue().strip()
    assert line.startswith("INFO router route.completed request_id=req_fallback feature=support-bot ")
    assert "model=gpt-4o " in line and "fallback=true " in line
    assert line.endswith("| req_fallback 0.00345")


def test_a_plain_message_quotes_values_that_would_split_it() -> None:
    event = events_module.Event(event="route.decided", rejected={"a": "no tool support"}, route="my route")
    assert str(event) == 'route.decided rejected={"a":"no tool support"} route="my route"'


def test_the_router_logger_has_a_null_handler_so_nothing_reaches_last_resort() -> None:
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("router").handlers)
