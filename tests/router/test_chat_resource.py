"""The whole routed ``chat.completions`` resource, sync and async, against the fake providers:
``create``, ``parse`` (response formats and pydantic function tools), ``stream()`` with openai's
events, ``with_raw_response``, ``with_streaming_response``, ``beta.chat`` and openai-compatible
streams."""

from __future__ import annotations

import gc
import json
import warnings
from typing import Any

import httpx
import openai
import pytest
from openai.lib.streaming.chat import AsyncChatCompletionStreamManager, ChatCompletionStreamManager
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ParsedChatCompletion
from pydantic import BaseModel
from router_fakes import FakeProviders, reply_text

import router
from policies.schema import Policy

KEY_ENV = "ROUTER_CHAT_FAKE_KEY"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
PROVIDERS = {"gpt-4o-mini": "openai", "gemini-2.5-flash-lite": "gemini", "claude-haiku-4-5": "anthropic"}
# One model over our fast path, one through litellm.
MODELS = ("gpt-4o-mini", "gemini-2.5-flash-lite")


class City(BaseModel):
    city: str
    population: int


class LookupOrder(BaseModel):
    order_id: str
    express: bool


def _policy(fake: FakeProviders) -> Policy:
    bases = {"openai": fake.openai_base, "gemini": fake.gemini_base, "anthropic": fake.anthropic_base}
    return Policy.model_validate(
        {
            "retry": {"attempts": 1},
            "models": {
                name: {"provider": provider, "api_base": bases[provider], "api_key_env": KEY_ENV}
                for name, provider in PROVIDERS.items()
            },
            "routes": {"auto": {"candidates": ["gemini-2.5-flash-lite"], "fallbacks": ["gpt-4o-mini"]}},
        }
    )


@pytest.fixture
def client(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> router.OpenAI:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    return router.OpenAI(policy=_policy(fake))


@pytest.fixture
def aclient(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> router.AsyncOpenAI:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    return router.AsyncOpenAI(policy=_policy(fake))


def _text(model: str) -> str:
    return reply_text(model, QUESTION[0]["content"])


def test_the_resource_is_openais_with_every_attribute(client: router.OpenAI) -> None:
    completions = client.chat.completions
    assert isinstance(client.chat, openai.resources.chat.Chat)
    assert isinstance(completions, openai.resources.chat.Completions)
    for name in ("create", "parse", "stream", "with_raw_response", "with_streaming_response", "messages"):
        assert hasattr(completions, name), name
    assert client.beta.chat is client.chat


# --------------------------------------------------------------------------- arguments openai lacks

_TYPO_CALLS = {
    "chat.completions.create": lambda c: c.chat.completions.create(
        model="auto", messages=QUESTION, max_token=5
    ),
    "chat.completions.parse": lambda c: c.chat.completions.parse(
        model="auto", messages=QUESTION, stream=True
    ),
    "chat.completions.stream": lambda c: c.chat.completions.stream(
        model="auto", messages=QUESTION, max_token=5
    ),
    "responses.create": lambda c: c.responses.create(model="auto", input="hi", max_tokens=5),
    "responses.parse": lambda c: c.responses.parse(model="auto", input="hi", max_tokens=5),
    "responses.stream": lambda c: c.responses.stream(model="auto", input="hi", max_tokens=5),
}


@pytest.mark.parametrize("call", list(_TYPO_CALLS))
def test_an_argument_openai_lacks_is_the_same_type_error_and_nothing_is_sent(
    client: router.OpenAI, fake: FakeProviders, call: str
) -> None:
    sdk = openai.OpenAI(api_key="fake-key", base_url=fake.openai_base, max_retries=0)
    with pytest.raises(TypeError) as theirs:
        _TYPO_CALLS[call](sdk)
    with pytest.raises(TypeError) as ours:
        _TYPO_CALLS[call](client)
    assert str(ours.value) == str(theirs.value)  # e.g. "Completions.create() got an unexpected keyword ..."
    assert "unexpected keyword argument" in str(ours.value)
    assert fake.requests == []


@pytest.mark.parametrize("call", list(_TYPO_CALLS))
async def test_the_async_client_raises_it_too(
    aclient: router.AsyncOpenAI, fake: FakeProviders, call: str
) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        made = _TYPO_CALLS[call](aclient)
        if not call.endswith("stream"):
            await made
    assert fake.requests == []


# --------------------------------------------------------------------------- n


def test_several_choices_or_logprobs_skip_a_model_whose_api_cannot_give_them(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    policy = _policy(fake).model_dump(exclude_unset=True, by_alias=True)
    policy["routes"] = {
        "auto": {"strategy": "ordered", "candidates": ["claude-haiku-4-5"], "fallbacks": ["gpt-4o-mini"]}
    }
    client = router.OpenAI(policy=Policy.model_validate(policy))
    answer = client.chat.completions.create(model="auto", messages=QUESTION, n=2)
    assert answer.routing.model == "gpt-4o-mini" and [c.index for c in answer.choices] == [0, 1]
    assert answer.routing.rejected == {"claude-haiku-4-5": "answers one choice per call, n=2 asked"}
    scored = client.chat.completions.create(model="auto", messages=QUESTION, logprobs=True, top_logprobs=2)
    assert scored.routing.rejected == {"claude-haiku-4-5": "returns no logprobs"}
    assert client.chat.completions.create(model="auto", messages=QUESTION).routing.model == "claude-haiku-4-5"
    assert [r.protocol for r in fake.requests] == ["openai", "openai", "anthropic"]


# --------------------------------------------------------------------------- create


@pytest.mark.parametrize("model", MODELS)
def test_create_carries_the_request_id_of_the_routing_record(client: router.OpenAI, model: str) -> None:
    response = client.chat.completions.create(model=model, messages=QUESTION)
    assert response._request_id == response.routing.request_id
    assert response._request_id is not None and response._request_id.startswith("req_")


async def test_async_create_carries_the_request_id(aclient: router.AsyncOpenAI) -> None:
    response = await aclient.chat.completions.create(model="auto", messages=QUESTION)
    assert response._request_id == response.routing.request_id


# --------------------------------------------------------------------------- parse


@pytest.mark.parametrize("model", MODELS)
def test_parse_with_a_pydantic_response_format_returns_parsed_objects(
    client: router.OpenAI, fake: FakeProviders, model: str
) -> None:
    parsed = client.chat.completions.parse(model=model, messages=QUESTION, response_format=City)
    assert isinstance(parsed, ParsedChatCompletion)
    assert isinstance(parsed.choices[0].message.parsed, City)
    assert parsed.routing.model == model  # type: ignore[attr-defined]
    assert parsed._request_id == parsed.routing.request_id  # type: ignore[attr-defined]
    assert "routing" not in parsed.model_dump(warnings=False)


@pytest.mark.parametrize("model", MODELS)
def test_parse_with_pydantic_function_tools_and_no_response_format_parses_the_arguments(
    client: router.OpenAI, model: str
) -> None:
    parsed = client.chat.completions.parse(
        model=model,
        messages=[{"role": "user", "content": "Where is order 42?"}],
        tools=[openai.pydantic_function_tool(LookupOrder)],
    )
    call = parsed.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "LookupOrder"  # type: ignore[union-attr]
    assert isinstance(call.function.parsed_arguments, LookupOrder)  # type: ignore[union-attr]
    assert parsed.choices[0].message.parsed is None


def test_parse_without_any_format_is_a_plain_parsed_completion(client: router.OpenAI) -> None:
    parsed = client.chat.completions.parse(model="gpt-4o-mini", messages=QUESTION)
    assert parsed.choices[0].message.content == _text("gpt-4o-mini")


async def test_async_parse_with_response_format_and_with_function_tools(aclient: router.AsyncOpenAI) -> None:
    parsed = await aclient.chat.completions.parse(model="auto", messages=QUESTION, response_format=City)
    assert isinstance(parsed.choices[0].message.parsed, City)
    tools = await aclient.chat.completions.parse(
        model="auto",
        messages=[{"role": "user", "content": "Where is order 42?"}],
        tools=[openai.pydantic_function_tool(LookupOrder)],
    )
    call = tools.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert isinstance(call.function.parsed_arguments, LookupOrder)  # type: ignore[union-attr]


def test_beta_chat_completions_parse_is_the_routed_parse(client: router.OpenAI) -> None:
    parsed = client.beta.chat.completions.parse(model="auto", messages=QUESTION, response_format=City)
    assert isinstance(parsed.choices[0].message.parsed, City)
    assert parsed.routing.model == "gemini-2.5-flash-lite"  # type: ignore[attr-defined]


async def test_async_beta_chat_completions_is_the_routed_resource(aclient: router.AsyncOpenAI) -> None:
    assert aclient.beta.chat is aclient.chat
    response = await aclient.beta.chat.completions.create(model="auto", messages=QUESTION)
    assert response.routing.model == "gemini-2.5-flash-lite"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- stream()


@pytest.mark.parametrize("model", MODELS)
def test_stream_helper_gives_openais_events_and_the_final_completion(
    client: router.OpenAI, model: str
) -> None:
    manager = client.chat.completions.stream(model=model, messages=QUESTION)
    assert isinstance(manager, ChatCompletionStreamManager)
    with manager as stream:
        events = list(stream)
        final = stream.get_final_completion()
    kinds = {event.type for event in events}
    assert {"chunk", "content.delta", "content.done"} <= kinds
    deltas = "".join(e.delta for e in events if e.type == "content.delta")  # type: ignore[union-attr]
    assert deltas == _text(model) == final.choices[0].message.content
    assert final.model == model


def test_stream_helper_parses_a_response_format(client: router.OpenAI) -> None:
    with client.chat.completions.stream(model="auto", messages=QUESTION, response_format=City) as stream:
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, City)


async def test_async_stream_helper_gives_events_and_the_final_completion(aclient: router.AsyncOpenAI) -> None:
    manager = aclient.chat.completions.stream(model="auto", messages=QUESTION, response_format=City)
    assert isinstance(manager, AsyncChatCompletionStreamManager)
    async with manager as stream:
        kinds = {event.type async for event in stream}
        final = await stream.get_final_completion()
    assert {"chunk", "content.delta", "content.done"} <= kinds
    assert isinstance(final.choices[0].message.parsed, City)
    assert final.model == "gemini-2.5-flash-lite"


def test_stream_helper_tells_the_routing_on_the_stream_and_the_final_completion(
    client: router.OpenAI,
) -> None:
    with client.beta.chat.completions.stream(model="auto", messages=QUESTION, response_format=City) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.routing is stream.routing
    assert final.routing.model == "gemini-2.5-flash-lite" and final.routing.route == "auto"
    # complete once the stream is read: usage and cost, as create(stream=True)'s record
    assert final.routing.usage is not None
    assert final.routing.cost_usd is not None and final.routing.cost_usd > 0
    assert "routing" not in final.model_dump(warnings=False)


def test_stream_helper_left_unread_still_tells_where_it_went(client: router.OpenAI) -> None:
    with client.chat.completions.stream(model="auto", messages=QUESTION) as stream:
        pass
    assert stream.routing.model == "gemini-2.5-flash-lite"


async def test_async_stream_helper_tells_the_routing(aclient: router.AsyncOpenAI) -> None:
    async with aclient.chat.completions.stream(model="auto", messages=QUESTION) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    assert final.routing is stream.routing
    assert final.routing.model == "gemini-2.5-flash-lite" and final.routing.cost_usd is not None


async def test_async_stream_helper_never_entered_sends_nothing_and_leaves_no_coroutine_unawaited(
    aclient: router.AsyncOpenAI, fake: FakeProviders
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manager = aclient.chat.completions.stream(model="auto", messages=QUESTION)
        del manager
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert fake.requests == []


# --------------------------------------------------------------------------- streams as openai's


def test_a_routed_stream_is_an_openai_stream_with_a_response(client: router.OpenAI) -> None:
    with client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True) as stream:
        assert isinstance(stream, openai.Stream)
        headers = stream.response.headers
        assert headers["x-router-model"] == "gpt-4o-mini"
        assert headers["x-request-id"] == stream.routing.request_id
        first = next(iter(stream))
        assert isinstance(first, ChatCompletionChunk)
    assert stream.response.is_closed


def test_closing_a_routed_stream_early_settles_it(client: router.OpenAI) -> None:
    stream = client.chat.completions.create(model="gemini-2.5-flash-lite", messages=QUESTION, stream=True)
    next(iter(stream))
    stream.response.close()  # how openai's helpers close a stream
    with pytest.raises(StopIteration):
        next(stream)


async def test_an_async_routed_stream_is_an_openai_async_stream(aclient: router.AsyncOpenAI) -> None:
    stream = await aclient.chat.completions.create(model="auto", messages=QUESTION, stream=True)
    assert isinstance(stream, openai.AsyncStream)
    async with stream:
        assert stream.response.headers["x-router-model"] == "gemini-2.5-flash-lite"
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == _text("gemini-2.5-flash-lite")


# --------------------------------------------------------------------------- raw responses


@pytest.mark.parametrize("model", MODELS)
def test_with_raw_response_has_router_headers_and_parses_to_the_routed_completion(
    client: router.OpenAI, fake: FakeProviders, model: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=QUESTION)
    completion = raw.parse()
    assert isinstance(completion, ChatCompletion) and completion.routing.model == model  # type: ignore[attr-defined]
    assert raw.headers["x-router-model"] == model
    assert raw.headers["x-request-id"] == completion._request_id == raw.request_id
    assert raw.http_response.status_code == 200
    assert raw.http_response.json()["choices"][0]["message"]["content"] == _text(model)
    assert raw.retries_taken == 0
    # openai's private marker never reaches a provider.
    assert all("x-stainless-raw-response" not in r.headers for r in fake.requests)


def test_with_raw_response_parse_and_stream(client: router.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.parse(
        model="auto", messages=QUESTION, response_format=City
    )
    assert isinstance(raw.parse().choices[0].message.parsed, City)
    assert raw.headers["x-router-model"] == "gemini-2.5-flash-lite"
    raw_stream = client.chat.completions.with_raw_response.create(
        model="auto", messages=QUESTION, stream=True
    )
    assert raw_stream.headers["content-type"] == "text/event-stream"
    chunks = list(raw_stream.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == _text(
        "gemini-2.5-flash-lite"
    )


def test_client_level_with_raw_response_reaches_the_routed_resource(client: router.OpenAI) -> None:
    raw = client.with_raw_response.chat.completions.create(model="auto", messages=QUESTION)
    assert raw.headers["x-router-model"] == "gemini-2.5-flash-lite"
    assert raw.parse().routing.model == "gemini-2.5-flash-lite"  # type: ignore[attr-defined]


async def test_async_with_raw_response(aclient: router.AsyncOpenAI) -> None:
    raw = await aclient.chat.completions.with_raw_response.create(model="auto", messages=QUESTION)
    assert raw.headers["x-router-model"] == "gemini-2.5-flash-lite"
    completion = raw.parse()
    assert completion.routing.model == "gemini-2.5-flash-lite"  # type: ignore[attr-defined]
    assert raw.headers["x-request-id"] == completion._request_id
    parsed = await aclient.chat.completions.with_raw_response.parse(
        model="auto", messages=QUESTION, response_format=City
    )
    assert isinstance(parsed.parse().choices[0].message.parsed, City)


def test_with_streaming_response_reads_like_openais(client: router.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(model="auto", messages=QUESTION) as response:
        assert response.headers["x-router-model"] == "gemini-2.5-flash-lite"
        completion = response.parse()
        assert json.loads(response.read())["id"] == completion.id
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    pieces: list[Any] = [json.loads(line[len("data: ") :]) for line in lines[:-1]]
    text = "".join(p["choices"][0]["delta"].get("content") or "" for p in pieces if p["choices"])
    assert text == _text("gpt-4o-mini")


async def test_async_with_streaming_response_reads_like_openais(aclient: router.AsyncOpenAI) -> None:
    async with aclient.chat.completions.with_streaming_response.create(
        model="auto", messages=QUESTION
    ) as response:
        assert response.headers["x-router-model"] == "gemini-2.5-flash-lite"
        completion = await response.parse()
        assert completion.routing.model == "gemini-2.5-flash-lite"  # type: ignore[attr-defined]
    async with aclient.chat.completions.with_streaming_response.create(
        model="auto", messages=QUESTION, stream=True
    ) as response:
        lines = [line async for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"


def test_parse_to_a_type_reads_the_body_as_openais_raw_responses_do(client: router.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=QUESTION)
    assert json.loads(raw.parse(to=str))["id"] == raw.parse().id
    assert raw.parse(to=httpx.Response) is raw.http_response
    with client.chat.completions.with_streaming_response.create(model="auto", messages=QUESTION) as response:
        body = json.loads(response.parse(to=str))
        assert body["id"] == response.parse().id and body["model"] == "gemini-2.5-flash-lite"


async def test_async_parse_to_a_type_reads_the_body_as_openais_streamed_responses_do(
    aclient: router.AsyncOpenAI,
) -> None:
    async with aclient.chat.completions.with_streaming_response.create(
        model="auto", messages=QUESTION
    ) as response:
        body = json.loads(await response.parse(to=str))
        assert body["id"] == (await response.parse()).id and body["model"] == "gemini-2.5-flash-lite"


def test_errors_in_raw_mode_are_raised_as_openai_raises_them(client: router.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.with_raw_response.create(model="no-such-model", messages=QUESTION)


def test_openais_raw_response_markers_are_the_ones_the_router_reads() -> None:
    """Pins the private openai behaviour router/_raw.py relies on."""
    from openai._constants import RAW_RESPONSE_HEADER
    from openai._legacy_response import to_raw_response_wrapper
    from openai._response import to_streamed_response_wrapper

    seen: list[Any] = []

    class Response:
        def close(self) -> None:
            seen.append("closed")

    def method(**kwargs: Any) -> Any:
        seen.append(kwargs["extra_headers"])
        return Response()

    to_raw_response_wrapper(method)(extra_headers={"X-A": "1"})
    with to_streamed_response_wrapper(method)():
        pass
    assert seen == [{"X-A": "1", RAW_RESPONSE_HEADER: "true"}, {RAW_RESPONSE_HEADER: "stream"}, "closed"]
    assert RAW_RESPONSE_HEADER.lower() == "x-stainless-raw-response"


# --------------------------------------------------------------------------- models


def test_models_list_the_policy_also_through_raw_responses(client: router.OpenAI) -> None:
    names = {model.id for model in client.models.list()}
    assert {"auto", "gpt-4o-mini", "gemini-2.5-flash-lite"} <= names
    raw = client.models.with_raw_response.retrieve("auto")
    assert raw.parse().owned_by == "router" and raw.http_response.json()["id"] == "auto"
    assert {m.id for m in client.with_raw_response.models.list().parse()} == names


async def test_async_models_list_the_policy_also_through_raw_responses(aclient: router.AsyncOpenAI) -> None:
    names = {model.id async for model in aclient.models.list()}
    assert names == {model.id for model in (await aclient.models.list()).data}
    assert (await aclient.models.retrieve("auto")).owned_by == "router"
    raw = await aclient.models.with_raw_response.list()
    assert {m.id for m in raw.parse()} == names


# --------------------------------------------------------------------------- same as openai's


def _helpers_app(client: Any) -> dict[str, Any]:
    """Application code using openai's helpers; it never mentions the router."""
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=QUESTION, response_format=City
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_completion()
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=QUESTION)
    tools = client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Where is order 42?"}],
        tools=[openai.pydantic_function_tool(LookupOrder)],
    )
    return {
        "events": events,
        "parsed": final.choices[0].message.parsed,
        "raw_text": raw.parse().choices[0].message.content,
        "has_request_id": bool(raw.headers.get("x-request-id")),
        "arguments": tools.choices[0].message.tool_calls[0].function.parsed_arguments,
    }


def test_openais_helpers_give_the_same_results_on_openai_and_on_router(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    policy = Policy.model_validate(
        {"models": {"gpt-4o-mini": {"provider": "openai", "api_base": fake.openai_base}}}
    )
    with_openai = _helpers_app(openai.OpenAI(base_url=fake.openai_base, max_retries=0))
    with_router = _helpers_app(router.OpenAI(policy=policy, max_retries=0))
    assert with_router == with_openai
    assert isinstance(with_router["arguments"], LookupOrder) and "content.done" in with_router["events"]


async def test_closing_an_async_routed_stream_early_ends_it(aclient: router.AsyncOpenAI) -> None:
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True)
    await stream.__anext__()
    await stream.response.aclose()  # how openai's async helpers close a stream
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    assert stream.response.is_closed
