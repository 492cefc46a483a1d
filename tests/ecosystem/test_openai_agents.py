"""The OpenAI Agents SDK over router's AsyncOpenAI: chat-completions and Responses models with a
function tool, Runner.run and run_streamed, output_type, the SDK-wide default client, and errors.

Tracing is off in every run (RunConfig(tracing_disabled=True)): it would export to OpenAI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel
from router_fakes import FakeProviders

from router import AsyncOpenAI

from .conftest import SOLO, Route, answered, bad_request, rate_limited

agents = pytest.importorskip("agents")
_openai_shared = pytest.importorskip("agents.models._openai_shared")

QUESTION = "What is the weather in Paris?"
NO_TRACING = agents.RunConfig(tracing_disabled=True)
MODEL_KINDS = pytest.mark.parametrize("kind", ["chat_completions", "responses"])


class Weather(BaseModel):
    city: str
    degrees: int


@pytest.fixture
def asked() -> list[str]:
    """The cities the agent's tool was called with."""
    return []


def weather_tool(asked: list[str]) -> Any:
    @agents.function_tool
    def get_weather(city: str) -> str:
        """Look up the weather in a city."""
        asked.append(city)
        return f"sunny in {city}"

    return get_weather


def model(kind: str, route: str, client: AsyncOpenAI) -> Any:
    if kind == "chat_completions":
        return agents.OpenAIChatCompletionsModel(model=route, openai_client=client)
    return agents.OpenAIResponsesModel(model=route, openai_client=client)


@pytest.fixture
def default_client_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """set_default_openai_client/api are process-wide: put the SDK's defaults back afterwards."""
    monkeypatch.setattr(_openai_shared, "_default_openai_client", None)
    monkeypatch.setattr(_openai_shared, "_use_responses_by_default", True)
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    yield


@MODEL_KINDS
async def test_agent_calls_its_tool_then_answers_on_every_route(
    aclient: AsyncOpenAI, fake: FakeProviders, route: Route, kind: str, asked: list[str]
) -> None:
    agent = agents.Agent(name="weather", model=model(kind, route.name, aclient), tools=[weather_tool(asked)])
    result = await agents.Runner.run(agent, QUESTION, run_config=NO_TRACING)
    assert asked == ["example"]
    assert route.answered_by in result.final_output
    assert len(fake.requests_for(route.answered_by)) >= 2  # the tool call, then the answer
    answered(fake, route)


@MODEL_KINDS
async def test_run_streamed_emits_events_and_the_final_output(
    aclient: AsyncOpenAI, fake: FakeProviders, route: Route, kind: str, asked: list[str]
) -> None:
    agent = agents.Agent(name="weather", model=model(kind, route.name, aclient), tools=[weather_tool(asked)])
    result = agents.Runner.run_streamed(agent, QUESTION, run_config=NO_TRACING)
    kinds = [event.type async for event in result.stream_events()]
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert asked == ["example"]
    assert route.answered_by in result.final_output
    assert all(request.stream for request in fake.requests_for(route.answered_by))


@MODEL_KINDS
async def test_output_type_is_filled_after_the_tool_call(
    aclient: AsyncOpenAI, fake: FakeProviders, route: Route, kind: str, asked: list[str]
) -> None:
    agent = agents.Agent(
        name="weather",
        model=model(kind, route.name, aclient),
        tools=[weather_tool(asked)],
        output_type=Weather,
    )
    result = await agents.Runner.run(agent, QUESTION, run_config=NO_TRACING)
    assert asked == ["example"]
    assert result.final_output == Weather(city="example", degrees=1)
    answered(fake, route)


@pytest.mark.usefixtures("default_client_restored")
@MODEL_KINDS
async def test_default_client_serves_agents_named_by_route(
    aclient: AsyncOpenAI, fake: FakeProviders, kind: str, asked: list[str]
) -> None:
    agents.set_default_openai_client(aclient, use_for_tracing=False)
    agents.set_default_openai_api(kind)
    agent = agents.Agent(name="weather", model="via-anthropic", tools=[weather_tool(asked)])
    result = await agents.Runner.run(agent, QUESTION)
    assert asked == ["example"]
    assert "claude-haiku-4-5" in result.final_output


@MODEL_KINDS
async def test_rate_limit_reaches_the_runner_as_openais_error(
    aclient: AsyncOpenAI, fake: FakeProviders, kind: str
) -> None:
    rate_limited(fake)
    agent = agents.Agent(name="weather", model=model(kind, SOLO, aclient))
    with pytest.raises(openai.RateLimitError) as caught:
        await agents.Runner.run(agent, QUESTION, run_config=NO_TRACING)
    assert caught.value.status_code == 429


@MODEL_KINDS
async def test_bad_request_reaches_the_runner_as_openais_error(
    aclient: AsyncOpenAI, fake: FakeProviders, kind: str
) -> None:
    bad_request(fake)
    agent = agents.Agent(name="weather", model=model(kind, SOLO, aclient))
    with pytest.raises(openai.BadRequestError) as caught:
        await agents.Runner.run(agent, QUESTION, run_config=NO_TRACING)
    assert caught.value.status_code == 400


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
async def test_responses_model_runs_natively_against_openais_responses_endpoint(
    aclient: AsyncOpenAI, fake: FakeProviders, asked: list[str], streamed: bool
) -> None:
    agent = agents.Agent(
        name="weather",
        model=agents.OpenAIResponsesModel(model=SOLO, openai_client=aclient),
        tools=[weather_tool(asked)],
    )
    if streamed:
        result: Any = agents.Runner.run_streamed(agent, QUESTION, run_config=NO_TRACING)
        kinds = [event.type async for event in result.stream_events()]
        assert "raw_response_event" in kinds
    else:
        result = await agents.Runner.run(agent, QUESTION, run_config=NO_TRACING)
    assert asked == ["example"] and "gpt-4o-mini" in result.final_output
    # Both turns went to /responses as the SDK wrote them: the tool call, then its output handed back.
    requests = fake.requests_for("gpt-4o-mini")
    assert [request.path for request in requests] == ["/openai/v1/responses"] * 2
    assert all(request.stream is streamed for request in requests)
    handed_back = [item.get("type") for item in requests[1].body["input"]]
    assert "function_call" in handed_back and "function_call_output" in handed_back
    assert requests[0].body["tools"][0]["name"] == "get_weather"
