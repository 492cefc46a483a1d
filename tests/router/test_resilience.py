"""Fault injection through the public clients, sync and async, for each wire protocol.

Every test runs through ``router.OpenAI`` and ``router.AsyncOpenAI`` (the ``make_caller`` fixture)
against the fake providers: OpenAI over our httpx fast path, Gemini and Anthropic over litellm's real
translation code. Backoff, Retry-After and cooldowns run on an injected clock, so nothing sleeps;
timeouts are real but short (0.3 s).
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionChunk
from router_fakes import (
    FakeProviders,
    ModelScript,
    content_filter,
    hang,
    malformed,
    reset,
    status,
    stream_cut,
    stream_stall,
)

from router import DeadlineExceededError, ServerCooldownError, StreamInterruptedError, routing_of

from .fault_helpers import MODELS, QUESTION, MakeCaller, attempts, build_policy, fallback_of, text_of

# A hang far longer than any call timeout below: the request would never answer.
NEVER = 30.0
SHORT_TIMEOUT = 0.3

# fault → (how the model is scripted, the error class and status recorded for the failed attempt).
# A reset repeats: litellm's async client reconnects once by itself after a reset, so a single reset
# would be invisible there (the fake would see two requests and the second would succeed).
FALLBACK_FAULTS: dict[str, tuple[dict[str, Any], str, int | None]] = {
    "429": ({"faults": (status(429),)}, "rate_limited", 429),
    "500": ({"faults": (status(500),)}, "server", 500),
    "502": ({"faults": (status(502),)}, "server", 502),
    "503": ({"faults": (status(503),)}, "server", 503),
    "504": ({"faults": (status(504),)}, "server", 504),
    "529": ({"faults": (status(529),)}, "server", 529),
    "timeout": ({"faults": (hang(NEVER),)}, "timeout", None),
    "connection reset": ({"faults": (reset(),), "repeat_faults": True}, "connection", None),
    "malformed body": ({"faults": (malformed(),)}, "server", 200),
    "content filter": ({"faults": (content_filter(),)}, "content_filter", 200),
}


@pytest.mark.parametrize("fault", list(FALLBACK_FAULTS))
@pytest.mark.parametrize("model", MODELS)
def test_a_failed_call_is_answered_by_the_next_candidate_and_recorded(
    make_caller: MakeCaller, fake: FakeProviders, model: str, fault: str
) -> None:
    script, error, code = FALLBACK_FAULTS[fault]
    fake.script(ModelScript(model, **script))
    # A short call timeout only where a call must time out: it also bounds the fallback's answer,
    # which a busy machine may not give within 0.3 s.
    caller = make_caller(
        build_policy(fake), timeout=SHORT_TIMEOUT if fault == "timeout" else openai.NOT_GIVEN
    )
    response = caller.create(model=f"first-{model}", messages=QUESTION)
    second = fallback_of(model)
    assert response.model == second
    assert response.choices[0].message.content
    assert attempts(response.routing) == [(model, error, code), (second, None, None)]
    assert [a.wait_s for a in response.routing.attempts] == [0.0, 0.0]
    assert len(fake.requests_for(second)) == 1


@pytest.mark.parametrize("model", MODELS)
def test_a_429_with_retry_after_2_is_retried_on_the_same_model_after_2_seconds(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(status(429, retry_after=2),)))
    caller = make_caller(build_policy(fake, retry={"attempts": 2}))
    response = caller.create(model=f"first-{model}", messages=QUESTION)
    assert response.model == model
    assert attempts(response.routing) == [(model, "rate_limited", 429), (model, None, None)]
    assert caller.clock is not None and caller.clock.sleeps == [2.0]
    assert response.routing.attempts[1].wait_s == 2.0
    assert len(fake.requests_for(model)) == 2


def test_retry_after_ms_is_honoured_to_the_millisecond(make_caller: MakeCaller, fake: FakeProviders) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(429, retry_after_ms=1500),)))
    caller = make_caller(build_policy(fake, retry={"attempts": 2}))
    response = caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    assert caller.clock is not None and caller.clock.sleeps == [1.5]
    assert response.routing.attempts[1].wait_s == 1.5


@pytest.mark.parametrize("model", MODELS)
def test_a_429_asking_longer_than_max_retry_after_skips_the_model_until_then(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(status(429, retry_after=30),)))
    caller = make_caller(build_policy(fake, retry={"attempts": 3}, max_retry_after_s=10))
    clock = caller.clock
    assert clock is not None
    second = fallback_of(model)

    first = caller.create(model=f"first-{model}", messages=QUESTION)
    assert attempts(first.routing) == [(model, "rate_limited", 429), (second, None, None)]
    assert clock.sleeps == []  # never waits 30 s inside a request

    skipped = caller.create(model=f"first-{model}", messages=QUESTION)
    assert skipped.model == second
    assert "429" in skipped.routing.rejected[model]
    assert len(fake.requests_for(model)) == 1

    clock.advance(31)
    again = caller.create(model=f"first-{model}", messages=QUESTION)
    assert attempts(again.routing) == [(model, None, None)]


def test_retries_without_retry_after_back_off_on_tenacitys_exponential_curve(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(500), status(503))))
    policy = build_policy(fake, retry={"attempts": 3, "backoff_initial_s": 0.5, "jitter": False})
    caller = make_caller(policy)
    response = caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    assert attempts(response.routing) == [
        ("gpt-4o-mini", "server", 500),
        ("gpt-4o-mini", "server", 503),
        ("gpt-4o-mini", None, None),
    ]
    assert caller.clock is not None and caller.clock.sleeps == [0.5, 1.0]
    assert [a.wait_s for a in response.routing.attempts] == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("code", [401, 403])
@pytest.mark.parametrize("model", MODELS)
def test_an_auth_error_marks_the_deployment_down_and_the_next_candidate_answers(
    make_caller: MakeCaller, fake: FakeProviders, model: str, code: int
) -> None:
    fake.script(ModelScript(model, faults=(status(code),)))
    caller = make_caller(build_policy(fake, retry={"attempts": 3}))
    second = fallback_of(model)
    response = caller.create(model=f"first-{model}", messages=QUESTION)
    assert attempts(response.routing) == [(model, "auth", code), (second, None, None)]  # no retry

    later = caller.create(model=f"first-{model}", messages=QUESTION)
    assert later.model == second
    assert "auth" in later.routing.rejected[model]
    assert len(fake.requests_for(model)) == 1


@pytest.mark.parametrize("model", MODELS)
def test_a_model_unknown_to_the_provider_is_marked_down_and_the_next_candidate_answers(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, unknown=True))
    caller = make_caller(build_policy(fake, retry={"attempts": 3}))
    second = fallback_of(model)
    response = caller.create(model=f"first-{model}", messages=QUESTION)
    assert attempts(response.routing) == [(model, "not_found", 404), (second, None, None)]

    later = caller.create(model=f"first-{model}", messages=QUESTION)
    assert "not_found" in later.routing.rejected[model]
    assert len(fake.requests_for(model)) == 1


@pytest.mark.parametrize("model", MODELS)
def test_a_bad_request_reaches_the_provider_exactly_once_and_is_raised_without_fallback(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(status(400, message="messages: invalid role"),)))
    caller = make_caller(build_policy(fake, retry={"attempts": 3}))
    with pytest.raises(openai.BadRequestError) as caught:
        caller.create(model=f"first-{model}", messages=QUESTION)
    assert attempts(caught.value.routing) == [(model, "bad_request", 400)]  # type: ignore[attr-defined]
    assert len(fake.requests) == 1
    assert caller.clock is not None and caller.clock.sleeps == []


@pytest.mark.parametrize("model", MODELS)
def test_a_context_length_error_moves_on_to_a_bigger_window_model_only(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    smaller, bigger = (m for m in MODELS if m != model)
    windows = {model: 100_000, smaller: 50_000, bigger: 1_000_000}
    policy = build_policy(
        fake,
        models={name: {"context_window": window} for name, window in windows.items()},
        routes={"long": {"candidates": [model, smaller, bigger]}},
    )
    # The provider counts the prompt beyond its limit; the router's estimate thought it fitted.
    fake.script(ModelScript(model, context_limit=5))
    caller = make_caller(policy)
    response = caller.create(model="long", messages=QUESTION)
    assert attempts(response.routing) == [(model, "context_window", 400), (bigger, None, None)]
    assert fake.requests_for(smaller) == []


@pytest.mark.parametrize("model", MODELS)
def test_a_context_length_error_with_no_bigger_window_raises_the_providers_error(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    others = [m for m in MODELS if m != model]
    policy = build_policy(
        fake,
        models={model: {"context_window": 2_000_000}},
        routes={"long": {"candidates": [model, *others]}},
    )
    fake.script(ModelScript(model, context_limit=5))
    caller = make_caller(policy)
    with pytest.raises(openai.BadRequestError) as caught:
        caller.create(model="long", messages=QUESTION)
    assert attempts(caught.value.routing) == [(model, "context_window", 400)]  # type: ignore[attr-defined]
    assert all(fake.requests_for(m) == [] for m in others)


@pytest.mark.parametrize("model", MODELS)
def test_a_content_filtered_answer_is_returned_when_no_other_model_answers(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(content_filter(),)))
    caller = make_caller(build_policy(fake, routes={"only": {"candidates": [model]}}))
    response = caller.create(model="only", messages=QUESTION)
    assert response.model == model
    assert response.choices[0].finish_reason == "content_filter"
    assert attempts(response.routing) == [(model, "content_filter", 200)]


# --------------------------------------------------------------------------- streams


@pytest.mark.parametrize("model", MODELS)
def test_a_stream_cut_after_3_chunks_raises_stream_interrupted_naming_model_chunks_and_characters(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(stream_cut(3),)))
    caller = make_caller(build_policy(fake), timeout=SHORT_TIMEOUT)
    received: list[ChatCompletionChunk] = []
    with pytest.raises(StreamInterruptedError) as caught:
        caller.stream(received, model=f"first-{model}", messages=QUESTION)
    error = caught.value
    assert isinstance(error, openai.APIConnectionError)
    text = text_of(received)
    assert len([c for c in received if c.choices and c.choices[0].delta.content]) == 3
    assert (error.model, error.chunks, error.characters) == (model, len(received), len(text))
    assert f"from {model} was interrupted after {len(received)} chunks ({len(text)} characters)" in str(error)
    assert error.routing is not None and attempts(error.routing) == [(model, "connection", None)]
    assert fake.requests_for(fallback_of(model)) == []  # content was out: no silent switch


@pytest.mark.parametrize("model", MODELS)
def test_a_stream_stalled_beyond_the_idle_timeout_after_content_raises_stream_interrupted(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(stream_stall(2, NEVER),)))
    caller = make_caller(build_policy(fake, stream_idle_timeout_s=SHORT_TIMEOUT))
    received: list[ChatCompletionChunk] = []
    with pytest.raises(StreamInterruptedError) as caught:
        caller.stream(received, model=f"first-{model}", messages=QUESTION)
    error = caught.value
    assert error.model == model and error.characters == len(text_of(received)) > 0
    assert error.routing is not None and attempts(error.routing) == [(model, "timeout", None)]


# Faults before any content: the stream is not committed, so the fallback answers unseen.
EARLY_STREAM_FAULTS: dict[str, tuple[dict[str, Any], str]] = {
    "503": ({"faults": (status(503),)}, "server"),
    "timeout": ({"faults": (hang(NEVER),)}, "timeout"),
    "connection reset": ({"faults": (reset(),), "repeat_faults": True}, "connection"),
    # litellm swallows the unreadable event and makes up a finish reason: the missing usage shows it.
    "malformed event": ({"faults": (malformed(),)}, "*"),
    "content filter": ({"faults": (content_filter(),)}, "content_filter"),
}


@pytest.mark.parametrize("fault", list(EARLY_STREAM_FAULTS))
@pytest.mark.parametrize("model", MODELS)
def test_a_stream_that_fails_before_its_first_chunk_is_answered_by_the_fallback_in_chunks(
    make_caller: MakeCaller, fake: FakeProviders, model: str, fault: str
) -> None:
    script, error = EARLY_STREAM_FAULTS[fault]
    fake.script(ModelScript(model, **script))
    caller = make_caller(
        build_policy(fake), timeout=SHORT_TIMEOUT if fault == "timeout" else openai.NOT_GIVEN
    )
    received: list[ChatCompletionChunk] = []
    routing = caller.stream(received, model=f"first-{model}", messages=QUESTION)
    second = fallback_of(model)
    assert len(received) > 2 and {c.model for c in received} == {second}
    assert text_of(received).startswith(f"[{second}]")
    assert [a.model for a in routing.attempts] == [model, second]
    first = routing.attempts[0]
    # A malformed event reads as a broken body (fast path) or a stream cut short (litellm).
    assert first.error == error or (error == "*" and first.error in ("server", "connection"))
    assert routing.attempts[1].error is None


# --------------------------------------------------------------------------- breakers


@pytest.mark.parametrize("model", MODELS)
def test_a_model_that_keeps_failing_is_skipped_for_its_cooldown_then_tried_again(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(status(500), status(500))))
    policy = build_policy(fake, cooldown={"failures": 2, "window_s": 60, "cooldown_s": 30})
    caller = make_caller(policy)
    clock = caller.clock
    assert clock is not None
    second = fallback_of(model)
    for _ in range(2):
        failed_over = caller.create(model=f"first-{model}", messages=QUESTION)
        assert attempts(failed_over.routing) == [(model, "server", 500), (second, None, None)]

    skipped = caller.create(model=f"first-{model}", messages=QUESTION)
    assert skipped.model == second
    assert "cooling down after 2 failures" in skipped.routing.rejected[model]
    assert len(fake.requests_for(model)) == 2  # the fake saw no request while it cooled down

    clock.advance(31)
    trial = caller.create(model=f"first-{model}", messages=QUESTION)  # half-open: one trial
    assert attempts(trial.routing) == [(model, None, None)]
    closed = caller.create(model=f"first-{model}", messages=QUESTION)
    assert closed.model == model and model not in closed.routing.rejected


def test_a_failed_half_open_trial_opens_the_breaker_again(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(503),), repeat_faults=True))
    policy = build_policy(fake, cooldown={"failures": 1, "window_s": 60, "cooldown_s": 30})
    caller = make_caller(policy)
    assert caller.clock is not None
    caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    caller.clock.advance(31)
    trial = caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    assert attempts(trial.routing)[0] == ("gpt-4o-mini", "server", 503)
    after = caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    assert "failed trial" in after.routing.rejected["gpt-4o-mini"]
    assert len(fake.requests_for("gpt-4o-mini")) == 2


# --------------------------------------------------------------------------- deadlines and caps


@pytest.mark.parametrize("model", MODELS)
def test_the_timeout_s_deadline_ends_the_request_with_deadline_exceeded_and_its_record(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    # The real clock: the deadline caps the call's own (default, 600 s) timeout.
    fake.script(ModelScript(model, faults=(hang(NEVER),)))
    caller = make_caller(build_policy(fake, timeout_s=SHORT_TIMEOUT), real_clock=True)
    with pytest.raises(DeadlineExceededError) as caught:
        caller.create(model=f"first-{model}", messages=QUESTION)
    error = caught.value
    assert isinstance(error, openai.APITimeoutError)
    assert error.routing is not None and attempts(error.routing)[0] == (model, "timeout", None)
    assert "deadline of 0.3s" in str(error)


def test_max_attempts_caps_the_chain_of_candidates(make_caller: MakeCaller, fake: FakeProviders) -> None:
    fake.script(*(ModelScript(m, faults=(status(500),), repeat_faults=True) for m in MODELS))
    caller = make_caller(build_policy(fake, max_attempts=2))
    with pytest.raises(openai.InternalServerError) as caught:
        caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    assert [a.model for a in caught.value.routing.attempts] == list(MODELS[:2])  # type: ignore[attr-defined]
    assert fake.requests_for(MODELS[2]) == []


def test_max_attempts_counts_same_model_retries(make_caller: MakeCaller, fake: FakeProviders) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(500),), repeat_faults=True))
    caller = make_caller(build_policy(fake, retry={"attempts": 5}, max_attempts=3))
    with pytest.raises(openai.InternalServerError) as caught:
        caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    assert len(caught.value.routing.attempts) == 3  # type: ignore[attr-defined]
    assert len(fake.requests_for("gpt-4o-mini")) == 3


def test_max_retries_0_means_no_same_model_retry(make_caller: MakeCaller, fake: FakeProviders) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(500),)))
    caller = make_caller(build_policy(fake, retry={"attempts": 3}), max_retries=0)
    response = caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    assert attempts(response.routing) == [("gpt-4o-mini", "server", 500), (MODELS[1], None, None)]
    assert caller.clock is not None and caller.clock.sleeps == []


def test_max_retries_n_allows_n_retries_of_the_same_model(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(500), status(500), status(500))))
    caller = make_caller(build_policy(fake), max_retries=1)
    response = caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    assert [(a.model, a.error) for a in response.routing.attempts] == [
        ("gpt-4o-mini", "server"),
        ("gpt-4o-mini", "server"),
        (MODELS[1], None),
    ]


@pytest.mark.parametrize("model", MODELS)
def test_a_streamed_429_with_retry_after_is_retried_after_that_wait_before_any_chunk(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(status(429, retry_after=2),)))
    caller = make_caller(build_policy(fake, retry={"attempts": 2}))
    received: list[ChatCompletionChunk] = []
    routing = caller.stream(received, model=f"first-{model}", messages=QUESTION)
    assert {c.model for c in received} == {model}
    assert attempts(routing) == [(model, "rate_limited", 429), (model, None, None)]
    assert caller.clock is not None and caller.clock.sleeps == [2.0]


def test_a_model_whose_breaker_opened_is_not_retried_by_the_same_request(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(500),)))
    policy = build_policy(
        fake, retry={"attempts": 2}, cooldown={"failures": 1, "window_s": 60, "cooldown_s": 30}
    )
    caller = make_caller(policy)
    response = caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    assert attempts(response.routing) == [("gpt-4o-mini", "server", 500), (MODELS[1], None, None)]


def test_a_trial_stream_closed_early_does_not_keep_the_model_out_for_ever(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(500),)))
    policy = build_policy(fake, cooldown={"failures": 1, "window_s": 60, "cooldown_s": 30})
    caller = make_caller(policy)
    assert caller.clock is not None
    caller.create(model="first-gpt-4o-mini", messages=QUESTION)  # opens the breaker
    caller.clock.advance(31)

    class Enough(Exception):
        pass

    class FirstChunkOnly(list[ChatCompletionChunk]):
        def append(self, item: ChatCompletionChunk) -> None:
            super().append(item)
            raise Enough  # the caller stops reading: the stream is closed on the way out

    with pytest.raises(Enough):
        caller.stream(FirstChunkOnly(), model="first-gpt-4o-mini", messages=QUESTION)
    caller.clock.advance(3600)
    later = caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    assert later.model == "gpt-4o-mini", later.routing.rejected


def test_a_429_beyond_max_retry_after_skips_the_model_even_with_no_retries_configured(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(429, retry_after=30),)))
    caller = make_caller(build_policy(fake, retry={"attempts": 1}, max_retry_after_s=10))
    caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    later = caller.create(model="first-gpt-4o-mini", messages=QUESTION)
    assert "429" in later.routing.rejected.get("gpt-4o-mini", "")
    assert len(fake.requests_for("gpt-4o-mini")) == 1


def test_when_every_model_is_cooling_down_no_provider_is_called_and_the_reasons_are_listed(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(401),)))
    caller = make_caller(build_policy(fake, routes={"only": {"candidates": ["gpt-4o-mini"]}}))
    with pytest.raises(openai.AuthenticationError):
        caller.create(model="only", messages=QUESTION)
    # Not the request's fault: a 503 (openai retries those) naming the reason, not a 400.
    with pytest.raises(ServerCooldownError) as caught:
        caller.create(model="only", messages=QUESTION)
    assert isinstance(caught.value, openai.InternalServerError) and caught.value.status_code == 503
    assert caught.value.cooling == {"gpt-4o-mini": "auth"}
    assert "cooling down after an auth error" in caught.value.message
    record = routing_of(caught.value)
    assert record is not None and "cooling down after an auth error" in record.rejected["gpt-4o-mini"]
    assert len(fake.requests) == 1
