"""The libraries over a route that learns adequacy and counts against a budget: each library's
request is routed by the prompt it carries (easy: Gemini Flash-Lite, hard: GPT-4o), and every call
it makes is settled in a real SQLite ledger at the cost the router reported, nothing left reserved.

The adequacy file is the hand-built one of tests/adequacy_helpers.py: the cheap model is predicted
to succeed on prompts saying "easy" (0.95) and not on ones saying "hard" (0.05); the strong one
everywhere (0.88). A library's own system prompt or schema text says neither word.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from router_fakes import FakeProviders

from router import AsyncOpenAI, OpenAI
from router.ledger import open_ledger
from router.testing import capture_events
from tests.adequacy_helpers import write_hand_artifact

from .conftest import KEY_ENV

pytest.importorskip("numpy")

CHEAP, STRONG = "gemini-2.5-flash-lite", "gpt-4o"
EASY = "An easy question: what is the capital of France?"
HARD = "A hard question: what is the capital of France?"


def learned_policy(tmp_path: Path, fake: FakeProviders) -> dict[str, Any]:
    adequacy = write_hand_artifact(tmp_path / "adequacy.json", cheap=CHEAP, strong=STRONG)
    return {
        "retry": {"attempts": 1},
        "budget": {"limit_usd": 5, "window": "total"},
        "models": {
            CHEAP: {"provider": "gemini", "api_base": fake.gemini_base, "api_key_env": KEY_ENV},
            STRONG: {"provider": "openai", "api_base": fake.openai_base, "api_key_env": KEY_ENV},
        },
        "routes": {
            "learned": {
                "strategy": "cheapest",
                "candidates": [CHEAP, STRONG],
                "adequacy": str(adequacy),
                "min_success": 0.8,
            }
        },
    }


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def clients(
    tmp_path: Path, fake: FakeProviders, ledger: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[OpenAI, AsyncOpenAI]]:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    spec = learned_policy(tmp_path, fake)
    with OpenAI(policy=spec, ledger=ledger, api_key="sk-unused") as sync:
        yield sync, AsyncOpenAI(policy=spec, ledger=ledger, api_key="sk-unused")


@pytest.fixture
async def aclients(clients: tuple[OpenAI, AsyncOpenAI]) -> AsyncIterator[tuple[OpenAI, AsyncOpenAI]]:
    yield clients
    await clients[1].close()


def routed_and_settled(fake: FakeProviders, ledger: str, events: list[dict[str, Any]]) -> None:
    """The easy prompt went to the cheap model and the hard one to the strong one, for the reason
    the adequacy file gives; the ledger holds exactly what the router reported spending."""
    decided = [e for e in events if e["event"] == "route.decided"]
    completed = [e for e in events if e["event"] == "route.completed"]
    assert [e["model"] for e in completed] == [CHEAP, STRONG]
    assert CHEAP not in decided[0]["rejected"]
    assert decided[1]["rejected"][CHEAP] == "predicted success 0.05 < 0.80"
    assert len(fake.requests_for(CHEAP)) == 1 and len(fake.requests_for(STRONG)) == 1
    reader = open_ledger(ledger)
    try:
        ((_, _, _, totals),) = reader.report(now=time.time())
    finally:
        reader.close()
    assert totals.reserved_usd == 0.0
    assert totals.spent_usd == pytest.approx(sum(e["cost_usd"] for e in completed), abs=1e-9)
    assert totals.spent_usd > 0


def run_both(ask: Callable[[str], Any]) -> list[dict[str, Any]]:
    with capture_events() as events:
        ask(EASY)
        ask(HARD)
    return events


async def arun_both(ask: Callable[[str], Awaitable[Any]]) -> list[dict[str, Any]]:
    with capture_events() as events:
        await ask(EASY)
        await ask(HARD)
    return events


class Answer(BaseModel):
    name: str
    age: int


def chat_openai(clients: tuple[OpenAI, AsyncOpenAI]) -> Any:
    """langchain's ChatOpenAI on router's clients, the way langchain documents passing your own."""
    langchain_openai = pytest.importorskip("langchain_openai")
    sync, async_ = clients
    return langchain_openai.ChatOpenAI(
        model="learned",
        api_key="sk-unused",
        client=sync.chat.completions,
        async_client=async_.chat.completions,
        root_client=sync,
        root_async_client=async_,
    )


def test_langchain_invoke_is_routed_by_its_prompt_and_settled(
    clients: tuple[OpenAI, AsyncOpenAI], fake: FakeProviders, ledger: str
) -> None:
    llm = chat_openai(clients)
    routed_and_settled(fake, ledger, run_both(llm.invoke))


async def test_langchain_astream_is_routed_by_its_prompt_and_settled(
    aclients: tuple[OpenAI, AsyncOpenAI], fake: FakeProviders, ledger: str
) -> None:
    llm = chat_openai(aclients)

    async def streamed(text: str) -> str:
        return "".join([str(chunk.content) async for chunk in llm.astream(text)])

    routed_and_settled(fake, ledger, await arun_both(streamed))


@pytest.mark.parametrize("mode", ["TOOLS", "JSON_SCHEMA"])
def test_instructor_structured_output_is_routed_by_its_prompt_and_settled(
    clients: tuple[OpenAI, AsyncOpenAI], fake: FakeProviders, ledger: str, mode: str
) -> None:
    instructor = pytest.importorskip("instructor")
    patched = instructor.from_openai(clients[0], mode=instructor.Mode[mode])

    def extract(text: str) -> Answer:
        answer: Answer = patched.chat.completions.create(
            model="learned", response_model=Answer, messages=[{"role": "user", "content": text}]
        )
        return answer

    routed_and_settled(fake, ledger, run_both(extract))


@pytest.mark.parametrize("kind", ["chat_completions", "responses"])
async def test_openai_agents_runner_is_routed_by_its_prompt_and_settled(
    aclients: tuple[OpenAI, AsyncOpenAI], fake: FakeProviders, ledger: str, kind: str
) -> None:
    agents = pytest.importorskip("agents")
    client = aclients[1]
    if kind == "chat_completions":
        model = agents.OpenAIChatCompletionsModel(model="learned", openai_client=client)
    else:
        model = agents.OpenAIResponsesModel(model="learned", openai_client=client)
    agent = agents.Agent(name="helper", instructions="Answer briefly.", model=model)

    async def run(text: str) -> Any:
        return await agents.Runner.run(agent, text, run_config=agents.RunConfig(tracing_disabled=True))

    routed_and_settled(fake, ledger, await arun_both(run))


@pytest.mark.parametrize("kind", ["chat", "responses"])
async def test_pydantic_ai_agent_is_routed_by_its_prompt_and_settled(
    aclients: tuple[OpenAI, AsyncOpenAI], fake: FakeProviders, ledger: str, kind: str
) -> None:
    pydantic_ai = pytest.importorskip("pydantic_ai")
    openai_models = pytest.importorskip("pydantic_ai.models.openai")
    openai_provider = pytest.importorskip("pydantic_ai.providers.openai")
    provider = openai_provider.OpenAIProvider(openai_client=aclients[1])
    if kind == "chat":
        model = openai_models.OpenAIChatModel("learned", provider=provider)
    else:
        model = openai_models.OpenAIResponsesModel("learned", provider=provider)
    agent = pydantic_ai.Agent(model)
    routed_and_settled(fake, ledger, await arun_both(agent.run))
