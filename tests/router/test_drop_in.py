"""Existing openai-style code works after changing only the import and adding ``policy=``."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import openai
import pytest
from router_fakes import FakeProviders, ModelScript, status

import router
from policies.schema import Policy


def support_app(client: Any, model: str) -> dict[str, Any]:
    """Application code written for the openai client; it never mentions the router."""
    first = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "Where is my order 4471?"},
        ],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "lookup_order",
                    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
                },
            }
        ],
        tool_choice="auto",
        parallel_tool_calls=False,
        temperature=0.2,
        top_p=0.9,
        max_tokens=200,
        seed=7,
        n=1,
        stop=["\n\n"],
        user="customer-1",
        metadata={"feature": "support-bot"},
        timeout=30,
    )
    assert isinstance(first, openai.types.chat.ChatCompletion)
    call = first.choices[0].message.tool_calls[0]
    with client.chat.completions.create(
        model=model,
        messages=[
            {"role": "user", "content": "Where is my order 4471?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"status": "shipped"}'},
        ],
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return {"tool": call.function.name, "text": text, "usage_chunk": chunks[-1].usage is not None}


def ask_again(client: Any, model: str) -> int | None:
    """More application code: it handles a rate limit the way openai users do."""
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "again"}])
    except openai.RateLimitError as exc:
        return exc.status_code
    return None


def test_the_same_application_code_runs_on_openai_and_on_router(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    policy = Policy.model_validate(
        {"models": {"gpt-4o-mini": {"provider": "openai", "api_base": fake.openai_base}}}
    )
    results = []
    for client in (
        openai.OpenAI(base_url=fake.openai_base, max_retries=0),
        router.OpenAI(policy=policy, max_retries=0),
    ):
        fake.reset()
        outcome = support_app(client, "gpt-4o-mini")
        fake.script(ModelScript("gpt-4o-mini", faults=(status(429, retry_after=1),)))
        outcome["rate_limit_status"] = ask_again(client, "gpt-4o-mini")
        results.append(outcome)
    with_openai, with_router = results
    assert with_router == with_openai
    assert with_router["tool"] == "lookup_order" and with_router["text"]
    assert with_router["usage_chunk"] is True and with_router["rate_limit_status"] == 429


def test_import_router_does_not_import_litellm() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import router"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {
        line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line
    }
    assert "router" in imported
    assert "litellm" not in imported
    assert "typer" not in imported and "ruamel" not in imported
    assert "tenacity" not in imported  # only a retry's backoff needs it
    modules = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    # The policy machinery (YAML, the schema's pydantic models) comes with the first policy loaded.
    assert "policies.schema" not in modules and "policies.loader" not in modules
