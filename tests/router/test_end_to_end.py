"""Through the public client, sync and async, against the fake providers, for each wire protocol.

OpenAI goes through our httpx fast path; Gemini and Anthropic through litellm's real translation
code. Each test names the behaviour; the protocol is a parameter.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from router_fakes import FakeProviders, ModelScript, count_openai_prompt_tokens, reply_text, status

from policies.schema import Policy
from router import AsyncOpenAI, OpenAI

KEY_ENV = "ROUTER_E2E_FAKE_KEY"
MODELS = ("gpt-4o-mini", "gemini-2.5-flash-lite", "claude-haiku-4-5")
PROVIDERS = {"gpt-4o-mini": "openai", "gemini-2.5-flash-lite": "gemini", "claude-haiku-4-5": "anthropic"}
# Catalog prices per million tokens (input, output), as DESIGN.md lists them.
PRICES = {"gpt-4o-mini": (0.15, 0.60), "gemini-2.5-flash-lite": (0.10, 0.40), "claude-haiku-4-5": (1.0, 5.0)}
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "express": {"type": "boolean"}},
                "required": ["order_id"],
            },
        },
    }
]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "city",
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
            "required": ["city", "population"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


def _policy(fake: FakeProviders) -> Policy:
    bases = {"openai": fake.openai_base, "gemini": fake.gemini_base, "anthropic": fake.anthropic_base}
    return Policy.model_validate(
        {
            "retry": {"attempts": 1},  # fallbacks, not retries, are under test here
            "models": {
                name: {"provider": provider, "api_base": bases[provider], "api_key_env": KEY_ENV}
                for name, provider in PROVIDERS.items()
            },
            "routes": {
                f"first-{name}": {"candidates": [name], "fallbacks": [m for m in MODELS if m != name]}
                for name in MODELS
            },
        }
    )


@pytest.fixture
def client(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> OpenAI:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    return OpenAI(policy=_policy(fake))


@pytest.fixture
def aclient(fake: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> AsyncOpenAI:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    return AsyncOpenAI(policy=_policy(fake))


def _expected_cost(model: str, prompt: int, completion: int) -> float:
    price_in, price_out = PRICES[model]
    return (prompt * price_in + completion * price_out) / 1e6


@pytest.mark.parametrize("model", MODELS)
def test_plain_completion_is_an_openai_chat_completion_with_tokens_and_cost(
    client: OpenAI, model: str
) -> None:
    response = client.chat.completions.create(model=model, messages=QUESTION)
    assert isinstance(response, openai.types.chat.ChatCompletion)
    assert response.model == model
    assert response.choices[0].message.content == reply_text(model, QUESTION[0]["content"])
    assert response.choices[0].finish_reason == "stop"
    usage = response.routing.usage
    assert usage is not None and usage.prompt_tokens == count_openai_prompt_tokens(QUESTION)
    assert response.usage is not None and usage.completion_tokens == response.usage.completion_tokens > 0
    assert response.routing.cost_usd == pytest.approx(
        _expected_cost(model, usage.prompt_tokens, usage.completion_tokens)
    )
    assert [(a.model, a.error) for a in response.routing.attempts] == [(model, None)]


@pytest.mark.parametrize("model", MODELS)
def test_streamed_completion_yields_chunks_and_prices_the_stream(client: OpenAI, model: str) -> None:
    stream = client.chat.completions.create(model=model, messages=QUESTION, stream=True)
    chunks = list(stream)
    assert len(chunks) > 2
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) and c.model == model for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply_text(model, QUESTION[0]["content"])
    usage = stream.routing.usage
    assert usage is not None and usage.prompt_tokens == count_openai_prompt_tokens(QUESTION)
    assert stream.routing.cost_usd == pytest.approx(
        _expected_cost(model, usage.prompt_tokens, usage.completion_tokens)
    )


@pytest.mark.parametrize("model", MODELS)
def test_tool_call_comes_back_as_openai_tool_calls(client: OpenAI, model: str) -> None:
    response = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Where is order 42?"}], tools=TOOLS
    )
    message = response.choices[0].message
    assert response.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.function.name == "lookup_order"  # type: ignore[union-attr]
    assert "order_id" in json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert response.routing.cost_usd is not None and response.routing.cost_usd > 0


@pytest.mark.parametrize("model", MODELS)
def test_tools_survive_the_call_unchanged(client: OpenAI, model: str) -> None:
    tools = json.loads(json.dumps(TOOLS))
    client.chat.completions.create(model=model, messages=QUESTION, tools=tools)
    assert tools == TOOLS


@pytest.mark.parametrize("model", MODELS)
def test_json_schema_response_is_valid_json_for_the_schema(client: OpenAI, model: str) -> None:
    response = client.chat.completions.create(model=model, messages=QUESTION, response_format=SCHEMA)
    content = response.choices[0].message.content
    assert content is not None
    data = json.loads(content)
    assert isinstance(data["city"], str) and isinstance(data["population"], int)


@pytest.mark.parametrize("model", MODELS)
def test_ordered_route_whose_first_model_returns_500_is_answered_by_the_second(
    client: OpenAI, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(status(500),)))
    response = client.chat.completions.create(model=f"first-{model}", messages=QUESTION)
    second = next(m for m in MODELS if m != model)
    assert response.model == second
    assert [(a.model, a.error) for a in response.routing.attempts] == [(model, "server"), (second, None)]
    assert len(fake.requests_for(model)) == 1 and len(fake.requests_for(second)) == 1


@pytest.mark.parametrize("model", MODELS)
def test_a_stream_that_fails_before_its_first_chunk_is_answered_by_the_fallback_in_chunks(
    client: OpenAI, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(status(503),)))
    stream = client.chat.completions.create(model=f"first-{model}", messages=QUESTION, stream=True)
    chunks = list(stream)
    second = next(m for m in MODELS if m != model)
    assert len(chunks) > 2 and {c.model for c in chunks} == {second}
    assert [a.error for a in stream.routing.attempts] == ["server", None]


@pytest.mark.parametrize("model", MODELS)
def test_a_bad_request_reaches_the_provider_exactly_once(
    client: OpenAI, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(status(400, message="messages: invalid role"),)))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=f"first-{model}", messages=QUESTION)
    assert len(fake.requests) == 1


def test_provider_sees_the_providers_model_id_and_no_routing_metadata(
    client: OpenAI, fake: FakeProviders
) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, metadata={"feature": "faq"})
    (sent,) = fake.requests
    assert sent.body["model"] == "gpt-4o-mini"
    assert "metadata" not in sent.body


@pytest.mark.parametrize("model", MODELS)
async def test_async_client_completes_streams_and_falls_back(
    aclient: AsyncOpenAI, fake: FakeProviders, model: str
) -> None:
    async with aclient:
        response = await aclient.chat.completions.create(model=model, messages=QUESTION)
        assert response.model == model and response.routing.cost_usd
        stream = await aclient.chat.completions.create(model=model, messages=QUESTION, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == reply_text(model, QUESTION[0]["content"])
        assert stream.routing.usage is not None
        fake.script(ModelScript(model, faults=(status(500),)))
        fallback = await aclient.chat.completions.create(model=f"first-{model}", messages=QUESTION)
        assert fallback.model != model
        assert [a.error for a in fallback.routing.attempts] == ["server", None]


async def test_async_tool_call_and_json_schema(aclient: AsyncOpenAI) -> None:
    tools = await aclient.chat.completions.create(model="claude-haiku-4-5", messages=QUESTION, tools=TOOLS)
    assert tools.choices[0].message.tool_calls
    structured = await aclient.chat.completions.create(
        model="gemini-2.5-flash-lite", messages=QUESTION, response_format=SCHEMA
    )
    assert set(json.loads(structured.choices[0].message.content or "{}")) == {"city", "population"}
