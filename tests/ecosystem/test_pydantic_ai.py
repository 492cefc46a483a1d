"""pydantic-ai over router's AsyncOpenAI (OpenAIProvider(openai_client=...)): chat and Responses
models, tools, output types, run_stream, and errors as pydantic-ai's ModelHTTPError."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from router_fakes import FakeProviders, ModelScript

from router import AsyncOpenAI

from .conftest import SOLO, Route, answered, bad_request, rate_limited

pydantic_ai = pytest.importorskip("pydantic_ai")
openai_models = pytest.importorskip("pydantic_ai.models.openai")
openai_provider = pytest.importorskip("pydantic_ai.providers.openai")
exceptions = pytest.importorskip("pydantic_ai.exceptions")

QUESTION = "What is the weather in Paris?"
MODEL_KINDS = pytest.mark.parametrize("kind", ["chat", "responses"])


class Weather(BaseModel):
    city: str
    degrees: int


def model(kind: str, route: str, client: AsyncOpenAI) -> Any:
    provider = openai_provider.OpenAIProvider(openai_client=client)
    if kind == "chat":
        return openai_models.OpenAIChatModel(route, provider=provider)
    return openai_models.OpenAIResponsesModel(route, provider=provider)


def weather_agent(kind: str, route: str, client: AsyncOpenAI, asked: list[str], **options: Any) -> Any:
    def get_weather(city: str) -> str:
        """Look up the weather in a city."""
        asked.append(city)
        return f"sunny in {city}"

    return pydantic_ai.Agent(model(kind, route, client), tools=[get_weather], **options)


@MODEL_KINDS
async def test_agent_calls_its_tool_then_answers_on_every_route(
    aclient: AsyncOpenAI, fake: FakeProviders, route: Route, kind: str
) -> None:
    asked: list[str] = []
    result = await weather_agent(kind, route.name, aclient, asked).run(QUESTION)
    assert asked == ["example"]
    assert route.answered_by in result.output
    usage = result.usage() if callable(result.usage) else result.usage  # a property since pydantic-ai 2
    assert usage.requests == 2
    answered(fake, route)


@MODEL_KINDS
async def test_output_type_is_filled_after_the_tool_call(
    aclient: AsyncOpenAI, fake: FakeProviders, route: Route, kind: str
) -> None:
    asked: list[str] = []
    agent = weather_agent(kind, route.name, aclient, asked, output_type=Weather)
    result = await agent.run(QUESTION)
    assert asked == ["example"]
    assert result.output == Weather(city="example", degrees=1)
    answered(fake, route)


@MODEL_KINDS
@pytest.mark.parametrize("output", ["native", "prompted"])
async def test_native_and_prompted_output_types(
    aclient: AsyncOpenAI, fake: FakeProviders, route: Route, kind: str, output: str
) -> None:
    if output == "native":  # a json_schema response format: the fake answers a minimal instance
        wrapper, expected = pydantic_ai.NativeOutput, Weather(city="example", degrees=1)
    else:  # the schema is only in the instructions: the model is scripted to follow them
        wrapper, expected = pydantic_ai.PromptedOutput, Weather(city="Paris", degrees=21)
        fake.script(ModelScript(route.answered_by, replies=(expected.model_dump_json(),)))
    agent = pydantic_ai.Agent(model(kind, route.name, aclient), output_type=wrapper(Weather))
    result = await agent.run(QUESTION)
    assert result.output == expected
    answered(fake, route)


@MODEL_KINDS
async def test_run_stream_streams_the_text_after_the_tool_call(
    aclient: AsyncOpenAI, fake: FakeProviders, route: Route, kind: str
) -> None:
    asked: list[str] = []
    agent = weather_agent(kind, route.name, aclient, asked)
    async with agent.run_stream(QUESTION) as result:
        pieces = [piece async for piece in result.stream_text(delta=True, debounce_by=None)]
    assert asked == ["example"]
    assert len(pieces) > 1
    assert route.answered_by in "".join(pieces)
    assert all(request.stream for request in fake.requests_for(route.answered_by))


@MODEL_KINDS
async def test_run_stream_of_an_output_type(
    aclient: AsyncOpenAI, fake: FakeProviders, route: Route, kind: str
) -> None:
    agent = pydantic_ai.Agent(model(kind, route.name, aclient), output_type=Weather)
    async with agent.run_stream(QUESTION) as result:
        outputs = [output async for output in result.stream_output()]
    assert outputs[-1] == Weather(city="example", degrees=1)


@MODEL_KINDS
async def test_rate_limit_is_a_model_http_error_429(
    aclient: AsyncOpenAI, fake: FakeProviders, kind: str
) -> None:
    rate_limited(fake)
    agent = pydantic_ai.Agent(model(kind, SOLO, aclient))
    with pytest.raises(exceptions.ModelHTTPError) as caught:
        await agent.run(QUESTION)
    assert caught.value.status_code == 429


@MODEL_KINDS
async def test_bad_request_is_a_model_http_error_400(
    aclient: AsyncOpenAI, fake: FakeProviders, kind: str
) -> None:
    bad_request(fake)
    agent = pydantic_ai.Agent(model(kind, SOLO, aclient))
    with pytest.raises(exceptions.ModelHTTPError) as caught:
        await agent.run(QUESTION)
    assert caught.value.status_code == 400
    assert len(fake.requests_for("gpt-4o-mini")) == 1
