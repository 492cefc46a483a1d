"""Hand-built records for the event, logging and tracing tests, and a fixture that restores the logger."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import MappingProxyType

import httpx
import openai
import pytest

from policies.plan import Candidate
from router._routing import Attempt, BudgetEvent, RoutingRecord, Usage

# What must never reach a log line unless content logging is on (the prompt) or ever (the key).
PROMPT = "PURPLE-ELEPHANT-PROMPT-7731"
ANSWER = "ORANGE-GIRAFFE-ANSWER-4412"
API_KEY = "sk-test-DISTINCTIVE-0123456789abcdef"
MESSAGES = [{"role": "user", "content": f"Summarize this: {PROMPT}"}]
STARTED_AT = 1_700_000_000.25


def fallback_record(**changes: object) -> RoutingRecord:
    """gpt-4o-mini failed with a 500 after a retry wait; gpt-4o answered."""
    values: dict[str, object] = {
        "request_id": "req_fallback",
        "model": "gpt-4o",
        "provider": "openai",
        "feature": "support-bot",
        "route": "auto",
        "strategy": "cheapest",
        "requested": "auto",
        "candidates": (
            Candidate(
                "gpt-4o-mini", "openai", expected_cost_usd=0.0004, prompt_tokens=900, output_tokens=256
            ),
            Candidate("gpt-4o", "openai", expected_cost_usd=0.005, fallback=True),
        ),
        "rejected": MappingProxyType({"phi-4": "context 16,384 < 20,000 needed"}),
        "rules": ("features.support-bot.min_quality",),
        "attempts": (
            Attempt(
                "gpt-4o-mini",
                "openai",
                error="server",
                status=500,
                message="InternalServerError",
                latency_ms=12.5,
                wait_s=0.0,
                started_at=STARTED_AT,
            ),
            Attempt("gpt-4o", "openai", latency_ms=30.0, wait_s=0.5, started_at=STARTED_AT + 0.5125),
        ),
        "usage": Usage(prompt_tokens=900, completion_tokens=120, cached_tokens=100, reasoning_tokens=7),
        "cost_usd": 0.00345,
        "latency_ms": 543.0,
        "started_at": STARTED_AT,
        "stream": False,
    }
    values.update(changes)
    return RoutingRecord(**values)  # type: ignore[arg-type]


def stream_record() -> RoutingRecord:
    """A streamed request answered by its first candidate."""
    return fallback_record(
        request_id="req_stream",
        model="gpt-4o-mini",
        attempts=(Attempt("gpt-4o-mini", "openai", latency_ms=80.0, started_at=STARTED_AT, ttft_ms=21.5),),
        latency_ms=81.0,
        stream=True,
    )


def failed_record() -> RoutingRecord:
    """Both candidates failed: the caller gets the last error."""
    return fallback_record(
        request_id="req_failed",
        model=None,
        provider=None,
        attempts=(
            Attempt("gpt-4o-mini", "openai", error="rate_limited", status=429, latency_ms=3.0),
            Attempt("gpt-4o", "openai", error="rate_limited", status=429, latency_ms=4.0),
        ),
        usage=None,
        cost_usd=None,
        latency_ms=9.0,
    )


def rate_limit_error() -> openai.RateLimitError:
    """A provider error whose text quotes the prompt and a key, as some providers' errors do."""
    request = httpx.Request(
        "POST", "https://api.test/v1/chat/completions", headers={"Authorization": API_KEY}
    )
    response = httpx.Response(429, request=request)
    return openai.RateLimitError(
        f"Rate limited for key {API_KEY} on prompt {PROMPT!r}", response=response, body=None
    )


WARNING = BudgetEvent(
    kind="warning",
    scope="support-bot",
    window="day",
    limit_usd=10.0,
    spent_usd=8.25,
    reserved_usd=0.5,
    threshold=0.8,
    resets_at=1_700_006_400.0,
)


@pytest.fixture(name="router_logger")
def router_logger_fixture() -> Iterator[logging.Logger]:
    """The ``router`` logger, put back as it was (level, handlers, flags) after the test."""
    logger = logging.getLogger("router")
    level, handlers = logger.level, list(logger.handlers)
    disabled, propagate = logger.disabled, logger.propagate
    yield logger
    for handler in [h for h in logger.handlers if h not in handlers]:
        logger.removeHandler(handler)
        handler.close()
    for handler in handlers:
        if handler not in logger.handlers:
            logger.addHandler(handler)
    logger.setLevel(level)
    logger.disabled, logger.propagate = disabled, propagate
