"""langchain-openai's ChatOpenAI over router's clients: invoke/ainvoke, stream/astream, bind_tools and
every with_structured_output method, on each route, and the errors ChatOpenAI lets through."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel
from router_fakes import FakeProviders, ModelScript

from router import AsyncOpenAI, OpenAI

from .conftest import SOLO, Route, answered, bad_request, rate_limited

langchain_openai = pytest.importorskip("langchain_openai")

QUESTION = "What is the weather in Paris?"
STRUCTURED_METHODS = pytest.mark.parametrize("method", ["function_calling", "json_mode", "json_schema"])


class Weather(BaseModel):
    """The weather in a city."""

    city: str
    degrees: int


def get_weather(city: str) -> str:
    """Look up the weather in a city."""
    return f"sunny in {city}"


@pytest.fixture
async def both(client: OpenAI, aclient: AsyncOpenAI) -> AsyncIterator[tuple[OpenAI, AsyncOpenAI]]:
    yield client, aclient


def chat(clients: tuple[OpenAI, AsyncOpenAI], model: str) -> Any:
    """ChatOpenAI given router's clients, the way langchain documents passing your own."""
    sync, async_ = clients
    return langchain_openai.ChatOpenAI(
        model=model,
        api_key="sk-unused",
        client=sync.chat.completions,
        async_client=async_.chat.completions,
        root_client=sync,
        root_async_client=async_,
    )


def json_mode_reply(fake: FakeProviders, model: str) -> None:
    """json_mode only asks for a JSON object; the model must answer with the schema's fields."""
    fake.script(ModelScript(model, replies=(json.dumps({"city": "Paris", "degrees": 21}),)))


def test_invoke_answers_from_the_routes_model(both: Any, fake: FakeProviders, route: Route) -> None:
    message = chat(both, route.name).invoke(QUESTION)
    assert route.answered_by in message.content
    assert message.response_metadata["model_name"] == route.answered_by
    assert message.usage_metadata["total_tokens"] > 0
    answered(fake, route)


async def test_ainvoke_answers_from_the_routes_model(both: Any, fake: FakeProviders, route: Route) -> None:
    message = await chat(both, route.name).ainvoke(QUESTION)
    assert route.answered_by in message.content
    answered(fake, route)


def test_stream_yields_the_same_text_in_chunks(both: Any, fake: FakeProviders, route: Route) -> None:
    llm = chat(both, route.name)
    chunks = list(llm.stream(QUESTION))
    assert len(chunks) > 1
    assert "".join(str(c.content) for c in chunks) == llm.invoke(QUESTION).content
    assert fake.requests_for(route.answered_by)[0].stream


async def test_astream_yields_the_same_text_in_chunks(both: Any, fake: FakeProviders, route: Route) -> None:
    llm = chat(both, route.name)
    text = "".join([str(chunk.content) async for chunk in llm.astream(QUESTION)])
    assert text == (await llm.ainvoke(QUESTION)).content
    answered(fake, route)


def test_bind_tools_gets_a_tool_call_with_valid_arguments(
    both: Any, fake: FakeProviders, route: Route
) -> None:
    message = chat(both, route.name).bind_tools([get_weather]).invoke(QUESTION)
    assert [(call["name"], call["args"]) for call in message.tool_calls] == [
        ("get_weather", {"city": "example"})
    ]
    answered(fake, route)


async def test_async_bind_tools_with_a_forced_tool(both: Any, fake: FakeProviders, route: Route) -> None:
    llm = chat(both, route.name).bind_tools([get_weather], tool_choice="get_weather")
    message = await llm.ainvoke(QUESTION)
    assert message.tool_calls[0]["name"] == "get_weather"


@STRUCTURED_METHODS
def test_with_structured_output_returns_the_model(
    both: Any, fake: FakeProviders, route: Route, method: str
) -> None:
    if method == "json_mode":
        json_mode_reply(fake, route.answered_by)
    structured = chat(both, route.name).with_structured_output(Weather, method=method, include_raw=True)
    result = structured.invoke(QUESTION)
    assert result["parsing_error"] is None
    expected = (
        {"city": "Paris", "degrees": 21} if method == "json_mode" else {"city": "example", "degrees": 1}
    )
    assert result["parsed"].model_dump() == expected
    answered(fake, route)


@STRUCTURED_METHODS
async def test_async_with_structured_output_returns_the_model(
    both: Any, fake: FakeProviders, route: Route, method: str
) -> None:
    if method == "json_mode":
        json_mode_reply(fake, route.answered_by)
    structured = chat(both, route.name).with_structured_output(Weather, method=method)
    weather = await structured.ainvoke(QUESTION)
    assert isinstance(weather, Weather)
    answered(fake, route)


@STRUCTURED_METHODS
def test_streamed_structured_output_ends_with_the_whole_model(
    both: Any, fake: FakeProviders, route: Route, method: str
) -> None:
    if method == "json_mode":
        json_mode_reply(fake, route.answered_by)
    structured = chat(both, route.name).with_structured_output(Weather, method=method)
    pieces = list(structured.stream(QUESTION))
    assert pieces and isinstance(pieces[-1], Weather | dict)
    last = pieces[-1] if isinstance(pieces[-1], dict) else pieces[-1].model_dump()
    assert set(last) == {"city", "degrees"}
    assert fake.requests_for(route.answered_by)[-1].stream


async def test_async_streamed_json_schema_output(both: Any, fake: FakeProviders, route: Route) -> None:
    structured = chat(both, route.name).with_structured_output(Weather, method="json_schema")
    pieces = [piece async for piece in structured.astream(QUESTION)]
    assert pieces[-1] == Weather(city="example", degrees=1)


def test_rate_limit_reaches_the_caller_as_openais_error(both: Any, fake: FakeProviders) -> None:
    rate_limited(fake)
    with pytest.raises(openai.RateLimitError) as caught:
        chat(both, SOLO).invoke(QUESTION)
    assert caught.value.status_code == 429


async def test_bad_request_reaches_the_caller_as_openais_error(both: Any, fake: FakeProviders) -> None:
    bad_request(fake)
    with pytest.raises(openai.BadRequestError) as caught:
        await chat(both, SOLO).ainvoke(QUESTION)
    assert caught.value.status_code == 400
    assert len(fake.requests_for("gpt-4o-mini")) == 1  # a bad request is not retried
