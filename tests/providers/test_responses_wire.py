"""The fast path's native Responses API (``POST /responses``): against the fake OpenAI server (sync over
httpx, async over the default aiohttp transport) and, for what the fake does not send, respx."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import httpx
import openai
import pytest
import respx
from router_fakes import FakeProviders, ModelScript, reply_text, status, stream_cut

from providers._responses_wire import NATIVE_EVENT, NATIVE_RESPONSE, request_payload
from providers.base import MALFORMED_EVENT, NATIVE_RESPONSES, CallOptions, Deployment, NativeResponses
from providers.openai_compat import AsyncOpenAICompatible, OpenAICompatible

QUESTION = "What is the capital of France?"
CHAT_BODY = {"messages": [{"role": "user", "content": QUESTION}]}


def deployment(fake_base: str, *, native: bool = True) -> Deployment:
    return Deployment(
        name="gpt-4o-mini",
        provider="openai",
        model="gpt-4o-mini",
        adapter="openai",
        api_base=fake_base,
        api_key="fake-key",
        responses=native,
    )


def body(stream: bool = False, **params: Any) -> dict[str, Any]:
    native = NativeResponses(params={"input": QUESTION, **params})
    extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    return {**CHAT_BODY, **extra, NATIVE_RESPONSES: native}


def complete(kind: str, target: Deployment, data: dict[str, Any]) -> dict[str, Any]:
    if kind == "sync":
        adapter = OpenAICompatible()
        try:
            return adapter.complete(target, data, CallOptions())
        finally:
            adapter.close()

    async def run() -> dict[str, Any]:
        adapter = AsyncOpenAICompatible()
        try:
            return await adapter.complete(target, data, CallOptions())
        finally:
            await adapter.close()

    return asyncio.run(run())


def stream(
    kind: str, target: Deployment, data: dict[str, Any]
) -> tuple[list[dict[str, Any]], Exception | None]:
    """Every chunk the adapter yields, and the error that ended the stream (None: it ended whole)."""
    chunks: list[dict[str, Any]] = []
    if kind == "sync":
        adapter = OpenAICompatible()
        try:
            for chunk in adapter.stream(target, data, CallOptions()):
                chunks.append(chunk)
        except openai.APIError as exc:
            return chunks, exc
        finally:
            adapter.close()
        return chunks, None

    async def run() -> tuple[list[dict[str, Any]], Exception | None]:
        adapter = AsyncOpenAICompatible()
        try:
            async for chunk in adapter.stream(target, data, CallOptions()):
                chunks.append(chunk)
        except openai.APIError as exc:
            return chunks, exc
        finally:
            await adapter.close()
        return chunks, None

    return asyncio.run(run())


KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


@KINDS
def test_a_native_call_posts_to_responses_and_reads_the_answer_as_chat_with_the_response_along(
    fake: FakeProviders, kind: str
) -> None:
    data = complete(kind, deployment(fake.openai_base), body(reasoning={"effort": "low"}))
    (request,) = fake.requests
    assert request.path == "/openai/v1/responses"
    assert request.body == {"input": QUESTION, "reasoning": {"effort": "low"}, "model": "gpt-4o-mini"}
    assert data["choices"][0]["message"]["content"] == reply_text("gpt-4o-mini", QUESTION)
    assert data["choices"][0]["finish_reason"] == "stop"
    raw = data[NATIVE_RESPONSE]
    usage = raw["usage"]
    # Chat's names for the router's cost: input/output tokens, cached and reasoning tokens.
    assert data["usage"] == {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["total_tokens"],
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": usage["output_tokens_details"]["reasoning_tokens"]},
    }
    assert [item["type"] for item in raw["output"]] == ["reasoning", "message"]


@KINDS
def test_a_deployment_without_the_responses_api_gets_the_chat_call_without_the_marker(
    fake: FakeProviders, kind: str
) -> None:
    data = complete(kind, deployment(fake.openai_base, native=False), body())
    (request,) = fake.requests
    assert request.path == "/openai/v1/chat/completions" and request.body == {
        **CHAT_BODY,
        "model": "gpt-4o-mini",
    }
    assert NATIVE_RESPONSE not in data


@KINDS
def test_a_native_stream_yields_a_chunk_per_event_with_content_tool_calls_finish_and_usage(
    fake: FakeProviders, kind: str
) -> None:
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    chunks, error = stream(kind, deployment(fake.openai_base), body(stream=True, tools=[tool]))
    assert error is None and fake.requests[0].body["stream"] is True
    events = [chunk[NATIVE_EVENT]["type"] for chunk in chunks]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    calls = [delta for chunk in chunks for delta in chunk["choices"][0]["delta"].get("tool_calls", ())]
    assert calls[0]["function"]["name"] == "lookup" and calls[0]["id"].startswith("call_fake")
    assert "".join(call["function"]["arguments"] for call in calls) == "{}"
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "tool_calls" and last["usage"]["completion_tokens"] > 0


@KINDS
def test_native_errors_go_through_the_error_table(fake: FakeProviders, kind: str) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(429, retry_after=3), status(500))))
    with pytest.raises(openai.RateLimitError) as limited:
        complete(kind, deployment(fake.openai_base), body())
    assert (
        limited.value.code == "rate_limit_exceeded" and limited.value.response.headers["retry-after"] == "3"
    )
    chunks, error = stream(kind, deployment(fake.openai_base), body(stream=True))
    assert isinstance(error, openai.InternalServerError) and chunks == []


@KINDS
def test_a_native_stream_cut_before_its_terminal_event_is_a_connection_error(
    fake: FakeProviders, kind: str
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(stream_cut(2),)))
    chunks, error = stream(kind, deployment(fake.openai_base), body(stream=True))
    assert isinstance(error, openai.APIConnectionError)
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert text and not any(chunk["choices"][0]["finish_reason"] for chunk in chunks)


def _sse(*events: dict[str, Any]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


BASE = "http://local.test/v1"


@respx.mock
@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "error", "code": "server_error", "message": "boom", "param": None}, "boom"),
        (
            {"type": "response.failed", "response": {"error": {"code": "server_error", "message": "gone"}}},
            "gone",
        ),
    ],
)
def test_error_events_mid_stream_raise_with_the_providers_message(
    event: dict[str, Any], message: str
) -> None:
    created = {"type": "response.created", "response": {"id": "resp_1", "output": []}}
    respx.post(f"{BASE}/responses").mock(return_value=httpx.Response(200, content=_sse(created, event)))
    chunks, error = stream("sync", deployment(BASE), body(stream=True))
    assert isinstance(error, openai.APIError) and message in error.message
    assert error.body["code"] == "server_error" and len(chunks) == 1  # type: ignore[index]


@respx.mock
def test_an_unreadable_event_is_marked_and_the_stream_judged_by_its_end() -> None:
    done = {"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "output": []}}
    content = b"data: {not json\n\n" + _sse(done)
    respx.post(f"{BASE}/responses").mock(return_value=httpx.Response(200, content=content))
    chunks, error = stream("sync", deployment(BASE), body(stream=True))
    assert error is None and chunks[0] == {MALFORMED_EVENT: True}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@respx.mock
def test_a_body_without_output_is_a_malformed_response() -> None:
    respx.post(f"{BASE}/responses").mock(return_value=httpx.Response(200, json={"id": "x"}))
    with pytest.raises(openai.APIResponseValidationError, match="output"):
        complete("sync", deployment(BASE), body())


def test_a_previous_id_made_by_another_server_is_replaced_by_the_held_conversation() -> None:
    expanded = ({"role": "user", "content": "My name is Ada."}, {"role": "user", "content": "Who?"})
    call = NativeResponses(
        params={"input": "Who?", "previous_response_id": "resp_1"},
        previous_base="https://api.openai.com/v1/",
        expanded_input=expanded,
    )
    elsewhere = request_payload(call, deployment("http://local.test/v1"), stream=False)
    assert elsewhere == {"input": [dict(item) for item in expanded], "model": "gpt-4o-mini"}
    there = request_payload(call, deployment("https://api.openai.com/v1"), stream=True)
    assert there == {
        "input": "Who?",
        "previous_response_id": "resp_1",
        "model": "gpt-4o-mini",
        "stream": True,
    }


def test_the_deployments_that_can_see_a_previous_id_decide_over_its_base() -> None:
    # Two accounts on one base: only the one that made the response gets its id.
    expanded = ({"role": "user", "content": "Who?"},)
    call = NativeResponses(
        params={"input": "Who?", "previous_response_id": "resp_1"},
        previous_base="https://api.openai.com/v1",
        previous_keys=frozenset({"gpt-4o-mini/project-a"}),
        expanded_input=expanded,
    )
    base = deployment("https://api.openai.com/v1")
    maker = dataclasses.replace(base, pool_name="project-a")
    other = dataclasses.replace(base, pool_name="project-b", api_key="other-key")
    assert request_payload(call, maker, stream=False)["previous_response_id"] == "resp_1"
    assert request_payload(call, other, stream=False) == {"input": list(expanded), "model": "gpt-4o-mini"}
