"""Request normalization, stream accounting and the attempt state machine, without I/O."""

import httpx
import openai
import pytest

from providers.base import Deployment
from router._engine import Engine
from router._exceptions import NoCandidateError
from router._request import normalize, usage_of
from router._session import Session
from router._stream_state import StreamTracker
from tests.router.helpers import two_model_policy

HI = [{"role": "user", "content": "hi"}]


def test_feature_comes_from_metadata_and_is_not_forwarded() -> None:
    request = normalize(
        {"model": "auto", "messages": HI, "metadata": {"feature": "support-bot", "team": "x"}}, None
    )
    assert request.route.feature == "support-bot"
    assert request.body["metadata"] == {"team": "x"}
    assert "model" not in request.body


def test_default_feature_and_no_metadata_when_only_feature_was_given() -> None:
    assert normalize({"model": "auto", "messages": HI}, None).route.feature == "default"
    assert (
        "metadata"
        not in normalize({"model": "auto", "messages": HI, "metadata": {"feature": "f"}}, None).body
    )


def test_openai_sentinels_and_none_are_dropped() -> None:
    request = normalize(
        {
            "model": "auto",
            "messages": HI,
            "temperature": openai.NOT_GIVEN,
            "top_p": openai.omit,
            "seed": None,
        },
        None,
    )
    assert request.body == {"messages": HI}


def test_transport_options_are_separated_and_extra_body_merged() -> None:
    request = normalize(
        {
            "model": "auto",
            "messages": HI,
            "timeout": 3.0,
            "extra_headers": {"x-a": "1"},
            "extra_body": {"top_k": 5},
        },
        None,
    )
    assert request.options.timeout == 3.0 and request.options.extra_headers == {"x-a": "1"}
    assert request.body == {"messages": HI, "top_k": 5}


def test_streams_always_ask_providers_for_usage_but_remember_what_the_caller_asked() -> None:
    plain = normalize({"model": "auto", "messages": HI, "stream": True}, None)
    assert plain.body["stream_options"] == {"include_usage": True} and not plain.caller_wants_usage
    asked = normalize(
        {"model": "auto", "messages": HI, "stream": True, "stream_options": {"include_usage": True}}, None
    )
    assert asked.caller_wants_usage


def test_missing_messages_or_model_is_a_type_error_like_openais() -> None:
    with pytest.raises(TypeError, match="messages"):
        normalize({"model": "auto"}, None)
    with pytest.raises(TypeError, match="model"):
        normalize({"messages": HI}, None)


def test_usage_reads_cached_and_reasoning_tokens() -> None:
    usage = usage_of(
        {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2},
        }
    )
    assert usage is not None and (usage.cached_tokens, usage.reasoning_tokens) == (4, 2)


def test_stream_commits_at_first_content_not_at_the_role_chunk() -> None:
    tracker = StreamTracker()
    tracker.observe({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    assert not tracker.committed
    tracker.observe({"choices": [{"index": 0, "delta": {"content": "Hello"}}]})
    assert tracker.committed and (tracker.chunks, tracker.characters) == (2, 5)
    assert tracker.observe({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}) is True
    assert tracker.usage is not None and tracker.usage.prompt_tokens == 3


def test_a_tool_call_delta_commits_the_stream() -> None:
    tracker = StreamTracker()
    tracker.observe({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c"}]}}]})
    assert tracker.committed


def _session(**route: object) -> Session:
    engine = Engine(two_model_policy(**route), env={})
    request = normalize({"model": "auto", "messages": HI}, None)
    return Session(engine, request, engine.planner.plan(request.route), clock=iter(range(100)).__next__)


def _next(session: Session) -> Deployment | None:
    """What a driver does: take the next step and begin it (no sleeping here)."""
    step = session.next_step()
    if step is None:
        return None
    session.begin(step)
    return step.deployment


def _error(status: int, body: object) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://x.test")
    response = httpx.Response(status, json=body, request=request)
    from providers.errors import status_error_from_response

    return status_error_from_response(response)


def test_a_server_error_moves_on_to_the_next_candidate_and_is_recorded() -> None:
    session = _session()
    first = _next(session)
    assert first is not None and first.name == "a"
    session.failed(first, _error(500, {"error": {"message": "boom"}}))
    second = _next(session)
    assert second is not None and second.name == "b"
    record = session.succeeded(second, usage_of({"prompt_tokens": 10_000, "completion_tokens": 0}))
    assert [(a.model, a.error, a.status) for a in record.attempts] == [
        ("a", "server", 500),
        ("b", None, None),
    ]
    assert record.cost_usd == pytest.approx(0.01)


def test_a_bad_request_is_raised_at_once_with_the_record_attached() -> None:
    session = _session()
    first = _next(session)
    assert first is not None
    error = _error(400, {"error": {"message": "messages must not be empty"}})
    with pytest.raises(openai.BadRequestError) as caught:
        session.failed(first, error)
    assert caught.value.routing.attempts[0].error == "bad_request"  # type: ignore[attr-defined]
    assert _next(session) is not None  # the driver never asks: raising ends the request


def test_a_context_window_error_keeps_only_models_with_a_larger_window() -> None:
    session = _session()
    first = _next(session)
    assert first is not None
    session.failed(first, _error(400, {"error": {"message": "too long", "code": "context_length_exceeded"}}))
    nxt = _next(session)
    assert nxt is not None and nxt.name == "b"  # 16k > 8k: still worth a try


def test_when_every_candidate_fails_the_last_provider_error_is_raised() -> None:
    session = _session()
    while (deployment := _next(session)) is not None:
        session.failed(deployment, _error(429, {"error": {"message": "slow"}}))
    exc = session.exhausted()
    assert isinstance(exc, openai.RateLimitError)
    assert len(exc.routing.attempts) == 2  # type: ignore[attr-defined]


def test_an_empty_plan_is_a_no_candidate_error() -> None:
    engine = Engine(two_model_policy(), env={})
    request = normalize({"model": "auto", "messages": HI}, None)
    plan = engine.planner.plan(request.route)
    empty = type(plan)(route="auto", strategy="ordered", candidates=(), rejected={"a": "no key"})
    exc = Session(engine, request, empty).exhausted()
    assert isinstance(exc, NoCandidateError) and "a: no key" in str(exc)
