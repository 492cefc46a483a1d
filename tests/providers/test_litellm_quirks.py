"""litellm's quirks, straightened out at the adapter boundary, for Gemini and Anthropic.

Each test drives ``LiteLLMAdapter`` / ``AsyncLiteLLMAdapter`` against the fake providers and checks
that what leaves the adapter is what the provider meant: its real status (litellm reports a Gemini
503 or an Anthropic 529 as 500, a Gemini 403 as a bad request, a reset as a server error, an
unreadable body as a 422), its Retry-After (lost on litellm's Gemini stream errors), a cut stream
(litellm swallows an unreadable event and makes up a finish reason), timeouts (ignored by litellm's
Gemini streams), and OpenAI's stream shape (litellm's usage chunk carries an empty choice).
"""

from __future__ import annotations

import asyncio
import os
import threading
import types
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from router_fakes import FakeProviders, ModelScript, hang, malformed, reset, status, stream_stall

from providers.base import CallOptions, Deployment
from providers.errors import error_class, retry_after_s
from providers.litellm_adapter import AsyncLiteLLMAdapter, LiteLLMAdapter, LiteLLMImport, _longest_phase
from providers.registry import provider_spec

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")

# Calls wait for litellm's import within their own timeout: imported first, it is not what these test.
pytestmark = pytest.mark.usefixtures("litellm_imported")

MODELS = {"gemini": "gemini-2.5-flash-lite", "anthropic": "claude-haiku-4-5"}
BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "What is the capital of France?"}]}
STREAM_BODY: dict[str, Any] = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
SHORT = CallOptions(timeout=0.3)


@pytest.fixture(params=sorted(MODELS))
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def deployment(fake: FakeProviders, provider: str) -> Deployment:
    """The deployment the router's engine would build for this provider (flags from the registry)."""
    spec = provider_spec(provider)
    model = MODELS[provider]
    return Deployment(
        name=model,
        provider=provider,
        model=model,
        adapter="litellm",
        api_base=fake.gemini_base + spec.litellm_base_suffix if provider == "gemini" else fake.anthropic_base,
        api_key="fake-key",
        litellm_model=f"{spec.litellm_prefix}/{model}",
        stream_ends_with_usage=spec.stream_ends_with_usage,
        stream_ignores_timeout=spec.stream_ignores_timeout,
    )


@pytest.fixture
def adapter() -> Iterator[LiteLLMAdapter]:
    adapter = LiteLLMAdapter()
    yield adapter
    adapter.close()


def _stream(adapter: LiteLLMAdapter, deployment: Deployment, options: CallOptions = SHORT) -> list[Any]:
    return list(adapter.stream(deployment, STREAM_BODY, options))


async def _astream(deployment: Deployment, options: CallOptions = SHORT) -> list[Any]:
    adapter = AsyncLiteLLMAdapter()
    try:
        return [chunk async for chunk in adapter.stream(deployment, STREAM_BODY, options)]
    finally:
        await adapter.close()


@pytest.mark.parametrize("code", [500, 502, 503, 504, 529])
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_a_server_error_keeps_the_providers_own_status(
    adapter: LiteLLMAdapter, deployment: Deployment, fake: FakeProviders, code: int, stream: bool
) -> None:
    fake.script(ModelScript(deployment.model, faults=(status(code),)))
    with pytest.raises(openai.InternalServerError) as caught:
        if stream:
            _stream(adapter, deployment)
        else:
            adapter.complete(deployment, BODY, SHORT)
    assert caught.value.status_code == code
    assert error_class(caught.value) == "server"


@pytest.mark.parametrize("code", [401, 403])
def test_an_auth_error_is_an_auth_error(
    adapter: LiteLLMAdapter, deployment: Deployment, fake: FakeProviders, code: int
) -> None:
    fake.script(ModelScript(deployment.model, faults=(status(code),)))
    with pytest.raises(openai.APIStatusError) as caught:
        adapter.complete(deployment, BODY, SHORT)
    assert caught.value.status_code == code and error_class(caught.value) == "auth"


def test_a_connection_reset_is_a_connection_error(
    adapter: LiteLLMAdapter, deployment: Deployment, fake: FakeProviders
) -> None:
    fake.script(ModelScript(deployment.model, faults=(reset(),)))
    with pytest.raises(openai.APIConnectionError) as caught:
        adapter.complete(deployment, BODY, SHORT)
    assert error_class(caught.value) == "connection"


def test_an_unreadable_body_is_the_providers_fault_not_the_callers(
    adapter: LiteLLMAdapter, deployment: Deployment, fake: FakeProviders
) -> None:
    fake.script(ModelScript(deployment.model, faults=(malformed(),)))
    with pytest.raises(openai.APIResponseValidationError) as caught:
        adapter.complete(deployment, BODY, SHORT)
    assert error_class(caught.value) == "server"


def test_a_context_length_error_is_classified_as_context_window(
    adapter: LiteLLMAdapter, deployment: Deployment, fake: FakeProviders
) -> None:
    fake.script(ModelScript(deployment.model, context_limit=5))
    with pytest.raises(openai.BadRequestError) as caught:
        adapter.complete(deployment, BODY, SHORT)
    assert error_class(caught.value) == "context_window"


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_a_429s_retry_after_survives_the_translation(
    adapter: LiteLLMAdapter, deployment: Deployment, fake: FakeProviders, stream: bool
) -> None:
    fake.script(ModelScript(deployment.model, faults=(status(429, retry_after=7),)))
    with pytest.raises(openai.RateLimitError) as caught:
        if stream:
            _stream(adapter, deployment)
        else:
            adapter.complete(deployment, BODY, SHORT)
    assert retry_after_s(caught.value, 0.0) == 7.0


def test_a_stream_with_an_unreadable_event_is_a_cut_not_an_empty_answer(
    adapter: LiteLLMAdapter, deployment: Deployment, fake: FakeProviders
) -> None:
    fake.script(ModelScript(deployment.model, faults=(malformed(),)))
    with pytest.raises(openai.APIConnectionError, match="ended before its terminal event"):
        _stream(adapter, deployment)


def test_the_cut_check_needs_the_usage_to_have_been_asked_for(
    adapter: LiteLLMAdapter, deployment: Deployment, fake: FakeProviders
) -> None:
    chunks = list(adapter.stream(deployment, {**BODY, "stream": True}, SHORT))
    assert chunks and not any(c.get("usage") for c in chunks)


def test_a_stream_ends_with_an_openai_shaped_usage_chunk(
    adapter: LiteLLMAdapter, deployment: Deployment
) -> None:
    chunks = _stream(adapter, deployment)
    finishes = [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] > 0


def test_a_sync_stream_that_never_starts_times_out(
    adapter: LiteLLMAdapter, deployment: Deployment, fake: FakeProviders
) -> None:
    fake.script(ModelScript(deployment.model, faults=(hang(30),)))
    with pytest.raises(openai.APITimeoutError):
        _stream(adapter, deployment)


def test_a_sync_stream_that_stalls_times_out(
    adapter: LiteLLMAdapter, deployment: Deployment, fake: FakeProviders
) -> None:
    fake.script(ModelScript(deployment.model, faults=(stream_stall(2, 30),)))
    with pytest.raises(openai.APITimeoutError):
        _stream(adapter, deployment)


def test_an_async_stream_that_never_starts_times_out(deployment: Deployment, fake: FakeProviders) -> None:
    fake.script(ModelScript(deployment.model, faults=(hang(30),)))
    with pytest.raises(openai.APITimeoutError):
        asyncio.run(_astream(deployment))


def test_an_async_stream_that_stalls_times_out(deployment: Deployment, fake: FakeProviders) -> None:
    fake.script(ModelScript(deployment.model, faults=(stream_stall(2, 30),)))
    with pytest.raises(openai.APITimeoutError):
        asyncio.run(_astream(deployment))


def test_an_async_stream_with_an_unreadable_event_is_a_cut(
    deployment: Deployment, fake: FakeProviders
) -> None:
    fake.script(ModelScript(deployment.model, faults=(malformed(),)))
    with pytest.raises(openai.APIConnectionError, match="ended before its terminal event"):
        asyncio.run(_astream(deployment))


def test_the_callers_body_is_not_changed(adapter: LiteLLMAdapter, deployment: Deployment) -> None:
    body = {**STREAM_BODY, "stream_options": {"include_usage": True}}
    before = repr(body)
    list(adapter.stream(deployment, body, SHORT))
    assert repr(body) == before


# --------------------------------------------------------------------------- the import, off the request path


def test_a_call_waits_for_litellms_import_no_longer_than_it_may_take_then_fails_over() -> None:
    release = threading.Event()
    started = threading.Event()

    def slow_import() -> types.ModuleType:
        started.set()
        release.wait()
        return types.ModuleType("litellm")

    loader = LiteLLMImport(slow_import)
    loader.start()
    assert started.wait(10)
    with pytest.raises(openai.APITimeoutError) as caught:
        loader.get(0.01)
    assert "still being imported" in caught.value.message
    release.set()
    assert loader.get(10).__name__ == "litellm"
    assert loader.get(0).__name__ == "litellm"  # once imported, no wait at all


def test_a_failed_import_is_raised_to_the_call_that_needed_litellm() -> None:
    def broken() -> types.ModuleType:
        raise ImportError("No module named 'litellm'")

    loader = LiteLLMImport(broken)
    with pytest.raises(ImportError, match="litellm"):
        loader.get(10)


@pytest.mark.parametrize(
    ("timeout", "longest"),
    [
        (2.5, 2.5),
        (None, None),
        (httpx.Timeout(3.0, connect=1.0), 3.0),
        (httpx.Timeout(None, connect=1.0), None),
    ],
)
def test_the_import_wait_is_the_longest_phase_of_the_calls_timeout(
    timeout: Any, longest: float | None
) -> None:
    assert _longest_phase(timeout) == longest


def test_litellm_asks_openai_for_the_flex_tier_and_drops_a_callers_flex_elsewhere(
    adapter: LiteLLMAdapter, deployment: Deployment, fake: FakeProviders
) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "service_tier": "flex"}
    flex = Deployment(
        name="gpt-5-mini@flex",
        provider="openai",
        model="gpt-5-mini",
        adapter="litellm",
        api_base=fake.openai_base,
        api_key="fake-key",
        litellm_model="openai/gpt-5-mini",
        service_tier="flex",
    )
    answer = adapter.complete(flex, {"messages": body["messages"]}, SHORT)
    assert fake.requests_for("gpt-5-mini")[-1].body["service_tier"] == "flex"
    assert answer["service_tier"] == "flex"
    adapter.complete(deployment, body, SHORT)  # gemini / anthropic: no flex tier through router
    assert "flex" not in str(fake.requests_for(deployment.model)[-1].body)
