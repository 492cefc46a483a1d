"""The errors callers see, through ``router.OpenAI`` and ``router.AsyncOpenAI`` against the fake providers.

A rate limit is always a 429 (also once every model is cooling down after rate limits: with a
Retry-After, never a 400); Gemini's and Anthropic's errors read like OpenAI's (status, ``code``,
``type``, ``param``, no litellm prefixes); every router error is a ``router.RouterError`` with its
routing record, which ``router.routing_of`` finds on any exception.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from router_fakes import FakeProviders, ModelScript, status

import router
from router import (
    NoCandidateError,
    RateLimitCooldownError,
    RouterError,
    ServerCooldownError,
    routing_of,
)

from .fault_helpers import KEY_ENV, MODELS, QUESTION, Caller, FakeClock, MakeCaller, attempts, build_policy

COOLDOWN = {"failures": 2, "window_s": 60, "cooldown_s": 30}


def _only(model: str, **top: Any) -> dict[str, Any]:
    return {"routes": {"only": {"candidates": [model]}}, **top}


def _raises(caller: Caller, stream: bool = False, model: str = "only") -> BaseException:
    """The error a create (or a stream read to its end) raises; fails the test if none does."""
    try:
        if stream:
            caller.stream([], model=model, messages=QUESTION)
        else:
            caller.create(model=model, messages=QUESTION)
    except Exception as exc:
        return exc
    raise AssertionError("the request did not fail")


# --------------------------------------------------------------------------- cooldowns are not 400s


@pytest.mark.parametrize("model", MODELS)
def test_a_single_candidate_route_driven_into_cooldown_by_429s_raises_rate_limit_errors_never_a_400(
    make_caller: MakeCaller, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(status(429),), repeat_faults=True))
    caller = make_caller(build_policy(fake, cooldown=COOLDOWN, **_only(model)))
    assert caller.clock is not None
    seen = [_raises(caller) for _ in range(2)]  # the provider's own 429s open the breaker
    assert all(type(e) is openai.RateLimitError for e in seen)
    cooling = _raises(caller)
    assert isinstance(cooling, openai.RateLimitError) and isinstance(cooling, RateLimitCooldownError)
    assert not isinstance(cooling, openai.BadRequestError)
    assert cooling.status_code == 429 and cooling.code == "rate_limit_exceeded" and cooling.type == "requests"
    assert cooling.response.headers["retry-after"] == "30"
    assert cooling.retry_after_s == pytest.approx(30.0) and cooling.cooling == {model: "rate_limited"}
    caller.clock.advance(12.3)
    later = _raises(caller)
    assert isinstance(later, RateLimitCooldownError)
    assert later.response.headers["retry-after"] == str(math.ceil(30 - 12.3))
    record = routing_of(later)
    assert record is not None and record.attempts == () and "cooling down" in record.rejected[model]
    assert len(fake.requests) == 2  # nothing was sent while the model cooled down


def test_a_cooling_streamed_request_is_a_429_too(make_caller: MakeCaller, fake: FakeProviders) -> None:
    fake.script(ModelScript("gemini-2.5-flash-lite", faults=(status(429),), repeat_faults=True))
    caller = make_caller(build_policy(fake, cooldown=COOLDOWN, **_only("gemini-2.5-flash-lite")))
    for _ in range(2):
        assert isinstance(_raises(caller, stream=True), openai.RateLimitError)
    cooling = _raises(caller, stream=True)
    assert isinstance(cooling, RateLimitCooldownError) and cooling.response.headers["retry-after"] == "30"


def test_a_retry_after_over_max_retry_after_s_makes_the_next_request_a_429_with_what_is_left(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    fake.script(ModelScript("claude-haiku-4-5", faults=(status(429, retry_after=120),)))
    caller = make_caller(build_policy(fake, max_retry_after_s=30, **_only("claude-haiku-4-5")))
    assert caller.clock is not None
    first = _raises(caller)
    assert type(first) is openai.RateLimitError and first.response.headers["retry-after"] == "120"
    caller.clock.advance(100)
    second = _raises(caller)
    assert isinstance(second, RateLimitCooldownError) and second.response.headers["retry-after"] == "20"
    caller.clock.advance(20)
    assert caller.create(model="only", messages=QUESTION).routing.model == "claude-haiku-4-5"


def test_while_a_half_open_trial_is_in_flight_others_get_a_429_asking_for_one_second(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    fake.script(ModelScript("gpt-4o-mini", faults=(status(429), status(429))))
    clock = FakeClock()
    policy = build_policy(fake, cooldown=COOLDOWN, **_only("gpt-4o-mini"))
    with router.OpenAI(policy=policy, clock=clock, sleep=clock.sleep) as client:
        for _ in range(2):
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model="only", messages=QUESTION)
        clock.advance(31)
        trial = client.chat.completions.create(model="only", messages=QUESTION, stream=True)
        with pytest.raises(RateLimitCooldownError) as caught:
            client.chat.completions.create(model="only", messages=QUESTION)
        headers = caught.value.response.headers
        assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "1000")
        assert "a trial request is in flight" in caught.value.message
        with trial:
            assert "".join(c.choices[0].delta.content or "" for c in trial if c.choices)
        assert client.chat.completions.create(model="only", messages=QUESTION).routing.model == "gpt-4o-mini"


def test_every_candidate_cooling_after_server_errors_is_a_503_with_the_soonest_retry_after(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    for model in ("gpt-4o-mini", "claude-haiku-4-5"):
        fake.script(ModelScript(model, faults=(status(500),), repeat_faults=True))
    routes = {
        "gpt": {"candidates": ["gpt-4o-mini"]},
        "claude": {"candidates": ["claude-haiku-4-5"]},
        "pair": {"candidates": ["gpt-4o-mini"], "fallbacks": ["claude-haiku-4-5"]},
    }
    caller = make_caller(build_policy(fake, cooldown=COOLDOWN, routes=routes))
    assert caller.clock is not None
    for _ in range(2):  # gpt opens now, for 30 s
        assert isinstance(_raises(caller, model="gpt"), openai.InternalServerError)
    caller.clock.advance(10)
    for _ in range(2):  # claude opens 10 s later
        assert isinstance(_raises(caller, model="claude"), openai.InternalServerError)
    caller.clock.advance(4)
    cooling = _raises(caller, model="pair")
    assert isinstance(cooling, ServerCooldownError) and isinstance(cooling, openai.InternalServerError)
    assert not isinstance(cooling, openai.RateLimitError)
    assert cooling.status_code == 503 and cooling.type == "server_error"
    assert cooling.response.headers["retry-after"] == "16"  # gpt's, the sooner of the two
    assert cooling.cooling == {"gpt-4o-mini": "server", "claude-haiku-4-5": "server"}


def test_when_one_model_cools_after_rate_limits_and_another_after_server_errors_it_is_a_429(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(503),), repeat_faults=True))
    fake.script(ModelScript("gemini-2.5-flash-lite", faults=(status(429),), repeat_faults=True))
    routes = {"pair": {"candidates": ["gpt-4o-mini"], "fallbacks": ["gemini-2.5-flash-lite"]}}
    caller = make_caller(build_policy(fake, cooldown=COOLDOWN, routes=routes))
    for _ in range(2):
        _raises(caller, model="pair")
    cooling = _raises(caller, model="pair")
    assert isinstance(cooling, RateLimitCooldownError)
    assert cooling.cooling == {"gpt-4o-mini": "server", "gemini-2.5-flash-lite": "rate_limited"}


def test_a_context_error_on_one_model_while_the_other_cools_after_429s_is_a_429(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    # claude is driven into cooldown through its own route; then "pair" tries gpt (too small a
    # window, says the provider) and finds claude cooling: the request can be served, later.
    fake.script(ModelScript("claude-haiku-4-5", faults=(status(429),), repeat_faults=True))
    fake.script(ModelScript("gpt-4o-mini", context_limit=5))
    routes = {
        "claude": {"candidates": ["claude-haiku-4-5"]},
        "pair": {"candidates": ["gpt-4o-mini"], "fallbacks": ["claude-haiku-4-5"]},
    }
    models = {"gpt-4o-mini": {"context_window": 1000}, "claude-haiku-4-5": {"context_window": 200000}}
    caller = make_caller(build_policy(fake, cooldown=COOLDOWN, routes=routes, models=models))
    for _ in range(2):
        _raises(caller, model="claude")
    error = _raises(caller, model="pair")
    assert isinstance(error, RateLimitCooldownError)
    assert attempts(routing_of(error)) == [("gpt-4o-mini", "context_window", 400)]


def test_a_request_the_cooling_model_could_not_serve_anyway_is_still_a_400(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(429),), repeat_faults=True))
    caller = make_caller(build_policy(fake, cooldown=COOLDOWN, **_only("gpt-4o-mini")))
    for _ in range(2):
        _raises(caller)
    with pytest.raises(NoCandidateError) as caught:
        caller.create(model="only", messages=QUESTION, max_tokens=1_000_000)
    assert "max output" in caught.value.rejected["gpt-4o-mini"]
    assert caught.value.status_code == 400 and caught.value.code == "no_candidate"


# --------------------------------------------------------------------------- one shape for every provider


@pytest.fixture
def shape_caller(make_caller: MakeCaller, fake: FakeProviders) -> Caller:
    routes = {f"only-{m}": {"candidates": [m]} for m in MODELS}
    return make_caller(build_policy(fake, routes=routes))


def _shape(exc: BaseException) -> tuple[type, int, str | None, str | None, str | None]:
    assert isinstance(exc, openai.APIStatusError), exc
    return type(exc), exc.status_code, exc.code, exc.type, exc.param


def _no_litellm_in(exc: BaseException) -> None:
    assert isinstance(exc, openai.APIStatusError)
    assert "litellm" not in str(exc).lower() and "litellm" not in exc.message.lower()
    assert "Exception - " not in str(exc)
    assert isinstance(exc.body, dict) and "litellm" not in str(exc.body.get("message")).lower()


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_a_429_reads_the_same_from_every_provider(
    shape_caller: Caller, fake: FakeProviders, stream: bool
) -> None:
    shapes = {}
    for model in MODELS:
        fake.script(ModelScript(model, faults=(status(429, message=f"{model} is busy"),)))
        error = _raises(shape_caller, stream=stream, model=f"only-{model}")
        _no_litellm_in(error)
        assert isinstance(error, openai.APIStatusError) and error.message.startswith("Error code: 429 - ")
        assert isinstance(error.body, dict) and error.body["message"] == f"{model} is busy"
        shapes[model] = _shape(error)
    assert set(shapes.values()) == {(openai.RateLimitError, 429, "rate_limit_exceeded", "requests", None)}


def test_a_400_reads_the_same_from_every_provider(shape_caller: Caller, fake: FakeProviders) -> None:
    shapes = {}
    for model in MODELS:
        fake.script(ModelScript(model, faults=(status(400, message="temperature must be at most 2"),)))
        error = _raises(shape_caller, model=f"only-{model}")
        _no_litellm_in(error)
        assert isinstance(error, openai.APIStatusError) and error.body == {
            "message": "temperature must be at most 2",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        shapes[model] = _shape(error)
    assert set(shapes.values()) == {(openai.BadRequestError, 400, None, "invalid_request_error", None)}


def test_a_context_length_error_reads_the_same_from_every_provider(
    shape_caller: Caller, fake: FakeProviders
) -> None:
    shapes = {}
    for model in MODELS:
        fake.script(ModelScript(model, context_limit=5))
        error = _raises(shape_caller, model=f"only-{model}")
        _no_litellm_in(error)
        shapes[model] = _shape(error)
    expected = (openai.BadRequestError, 400, "context_length_exceeded", "invalid_request_error", "messages")
    assert set(shapes.values()) == {expected}


def test_a_500_reads_the_same_from_every_provider(shape_caller: Caller, fake: FakeProviders) -> None:
    shapes = {}
    for model in MODELS:
        fake.script(ModelScript(model, faults=(status(500),)))
        error = _raises(shape_caller, model=f"only-{model}")
        _no_litellm_in(error)
        shapes[model] = _shape(error)
    assert set(shapes.values()) == {(openai.InternalServerError, 500, None, "server_error", None)}


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviders]:
    """Fake providers that accept only another key than the one the policy sends."""
    monkeypatch.setenv(KEY_ENV, "fake-key")
    keys = {"openai": "right", "gemini": "right", "anthropic": "right"}
    with FakeProviders(api_keys=keys) as server:
        yield server


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_wrong_api_key_is_a_401_invalid_api_key_from_every_provider(
    guarded: FakeProviders, mode: str
) -> None:
    # Gemini answers a wrong key with 400 API_KEY_INVALID: still an auth error, not a bad request.
    policy = build_policy(guarded, routes={f"only-{m}": {"candidates": [m]} for m in MODELS})
    errors: list[BaseException] = []
    if mode == "sync":
        with router.OpenAI(policy=policy) as client:
            for model in MODELS:
                with pytest.raises(openai.AuthenticationError) as caught:
                    client.chat.completions.create(model=f"only-{model}", messages=QUESTION)
                errors.append(caught.value)
    else:

        async def run() -> None:
            async with router.AsyncOpenAI(policy=policy) as client:
                for model in MODELS:
                    with pytest.raises(openai.AuthenticationError) as caught:
                        await client.chat.completions.create(model=f"only-{model}", messages=QUESTION)
                    errors.append(caught.value)

        asyncio.run(run())
    for error in errors:
        _no_litellm_in(error)
    assert {_shape(e) for e in errors} == {
        (openai.AuthenticationError, 401, "invalid_api_key", "invalid_request_error", None)
    }
    assert len(errors) == len(MODELS)


# --------------------------------------------------------------------------- one tree, one record


def test_every_router_error_is_a_router_error_and_an_openai_error() -> None:
    errors = [getattr(router, name) for name in router.__all__ if name.endswith("Error")]
    assert {e.__name__ for e in errors} >= {"PolicyError", "LedgerError", "CoolingDownError"}
    for error in errors:
        assert issubclass(error, RouterError) and issubclass(error, openai.OpenAIError), error
        assert "routing" in {
            name for klass in error.__mro__ for name in getattr(klass, "__annotations__", {})
        }


def test_a_bad_policy_raises_a_router_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("models: {gpt-4o-mini: {provider: openai}}\nroutes: {auto: {candidates: [nope]}}\n")
    with pytest.raises(router.PolicyError) as caught:
        router.OpenAI(policy=str(path))
    assert isinstance(caught.value, RouterError) and isinstance(caught.value, ValueError)
    assert "nope" in str(caught.value) and routing_of(caught.value) is None


def test_routing_of_finds_the_record_on_router_and_provider_errors_and_none_elsewhere(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(503),)))
    caller = make_caller(build_policy(fake, **_only("gpt-4o-mini")))
    provider_error = _raises(caller)
    assert type(provider_error) is openai.InternalServerError
    assert attempts(routing_of(provider_error)) == [("gpt-4o-mini", "server", 503)]
    unknown = _raises(caller, model="no-such-route")
    assert isinstance(unknown, router.ModelNotFoundError) and routing_of(unknown) is None
    assert routing_of(ValueError("not routed")) is None
    never_routed = openai.APIConnectionError(request=provider_error.request)  # type: ignore[attr-defined]
    assert routing_of(never_routed) is None


def test_a_missing_api_key_gets_its_own_advice_not_relax_the_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROUTER_TEST_MISSING_KEY", raising=False)
    policy = {
        "models": {"gemini-2.5-flash-lite": {"provider": "gemini", "api_key_env": "ROUTER_TEST_MISSING_KEY"}},
        "routes": {"auto": {"candidates": ["gemini-2.5-flash-lite"]}},
    }
    with (
        router.OpenAI(policy=policy, api_key="unused") as client,
        pytest.raises(router.NoCandidateError) as info,
    ):
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    advice = str(info.value).splitlines()[-1]
    assert advice.startswith("Set ROUTER_TEST_MISSING_KEY or remove the model from the policy")
    assert "router fake --env" in advice
    assert "Relax the route's requirements" not in str(info.value)
