"""Azure OpenAI end to end: OpenAI + two Azure deployments of gpt-4o-mini on the fake's Azure wire shape."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

import httpx
import openai
import pytest
from router_fakes import FakeProviders, ModelScript, content_policy, status

from providers.errors import error_class
from router import AsyncOpenAI, OpenAI

from .deployment_helpers import AZURE_KEY_ENV, KEY_ENV, QUESTION, mini_policy

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
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


@pytest.fixture
def azure_fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fake that accepts only the Azure key on its Azure endpoints (and any key on OpenAI's)."""
    monkeypatch.setenv(KEY_ENV, "openai-key")
    monkeypatch.setenv(AZURE_KEY_ENV, "azure-key")
    with FakeProviders(api_keys={"azure": "azure-key"}) as fake:
        yield fake


def azure_client(fake: FakeProviders, seed: int = 5) -> OpenAI:
    """OpenAI and both Azure deployments, weighted alike, with a seeded draw."""
    client = OpenAI(policy=mini_policy(fake))
    client._router._balancer._rng = random.Random(seed)
    return client


def azure_requests(fake: FakeProviders) -> list[Any]:
    return [r for r in fake.requests if r.protocol == "azure"]


def test_requests_use_azures_url_shape_api_version_and_api_key_header(azure_fake: FakeProviders) -> None:
    with azure_client(azure_fake) as client:
        for _ in range(30):
            client.chat.completions.create(model="auto", messages=QUESTION)
    sent = azure_requests(azure_fake)
    paths = Counter(r.path for r in sent)
    assert set(paths) == {
        "/azure/east/openai/deployments/mini-east/chat/completions?api-version=2024-10-21",
        "/azure/west/openai/deployments/mini-west/chat/completions?api-version=2024-10-21",
    }
    assert all("api-key" in r.headers and "authorization" not in r.headers for r in sent)
    openai_sent = [r for r in azure_fake.requests if r.protocol == "openai"]
    assert len(sent) + len(openai_sent) == 30 and openai_sent  # all three deployments serve


def test_plain_completion_through_azure_carries_its_filter_results(azure_fake: FakeProviders) -> None:
    with OpenAI(policy=_azure_only(azure_fake)) as client:
        response = client.chat.completions.create(model="auto", messages=QUESTION)
    assert response.routing.deployment in ("azure-eastus", "azure-westeurope")
    assert response.routing.attempts[0].provider == "azure"
    assert response.choices[0].message.content
    extra = response.model_dump()
    assert extra["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
    assert response.usage is not None and response.usage.total_tokens > 0


def _azure_only(fake: FakeProviders) -> Any:
    base = mini_policy(fake)
    return mini_policy(fake, model={"deployments": base.models["gpt-4o-mini"].deployments[1:]})


def test_streamed_completion_through_azure_skips_nothing_and_ends_with_usage(
    azure_fake: FakeProviders,
) -> None:
    with OpenAI(policy=_azure_only(azure_fake)) as client:
        stream = client.chat.completions.create(
            model="auto", messages=QUESTION, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[mini-")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert stream.routing.deployment in ("azure-eastus", "azure-westeurope")


def test_tool_call_through_azure(azure_fake: FakeProviders) -> None:
    with OpenAI(policy=_azure_only(azure_fake)) as client:
        response = client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "Where is order 42?"}],
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice={"type": "function", "function": {"name": "lookup_order"}},
        )
    call = response.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "lookup_order"  # type: ignore[union-attr]
    assert "order_id" in json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert azure_requests(azure_fake)[0].body["tools"][0]["function"]["name"] == "lookup_order"


def test_json_schema_through_azure_both_clients(azure_fake: FakeProviders) -> None:
    policy = _azure_only(azure_fake)
    with OpenAI(policy=policy) as client:
        sync_answer = client.chat.completions.create(model="auto", messages=QUESTION, response_format=SCHEMA)  # type: ignore[arg-type]

    async def run() -> Any:
        async with AsyncOpenAI(policy=policy) as client:
            return await client.chat.completions.create(
                model="auto", messages=QUESTION, response_format=SCHEMA
            )  # type: ignore[arg-type]

    async_answer = asyncio.run(run())
    for answer in (sync_answer, async_answer):
        data = json.loads(answer.choices[0].message.content or "")
        assert set(data) == {"city", "population"}
    assert all(r.body["response_format"]["type"] == "json_schema" for r in azure_requests(azure_fake))


def test_an_azure_content_filter_rejection_surfaces_as_openais_bad_request(azure_fake: FakeProviders) -> None:
    for deployment in ("mini-east", "mini-west"):
        azure_fake.script(ModelScript(deployment, faults=(content_policy(),), repeat_faults=True))
    with OpenAI(policy=_azure_only(azure_fake)) as client, pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=QUESTION)
    error = caught.value
    assert error.status_code == 400
    assert error.code == "content_filter"
    assert error_class(error) == "content_policy"
    assert isinstance(error.body, dict)
    assert error.body["innererror"]["content_filter_result"]["violence"] == {
        "filtered": True,
        "severity": "medium",
    }
    # Raised at once (on_content_policy: raise): the other deployment and the fallback are not asked.
    assert len(azure_fake.requests) == 1
    assert [a.error for a in error.routing.attempts] == ["content_policy"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["sync-stream", "async-plain", "async-stream"])
def test_an_azure_content_filter_rejection_is_openais_bad_request_on_streams_and_async_too(
    azure_fake: FakeProviders, kind: str
) -> None:
    for deployment in ("mini-east", "mini-west"):
        azure_fake.script(ModelScript(deployment, faults=(content_policy(),), repeat_faults=True))
    stream = kind.endswith("stream")
    policy = _azure_only(azure_fake)

    async def on_async() -> None:
        async with AsyncOpenAI(policy=policy) as client:
            answer = await client.chat.completions.create(model="auto", messages=QUESTION, stream=stream)
            if stream:
                async for _ in answer:  # type: ignore[union-attr]
                    pass

    with pytest.raises(openai.BadRequestError) as caught:
        if kind.startswith("async"):
            asyncio.run(on_async())
        else:
            with OpenAI(policy=policy) as client:
                for _ in client.chat.completions.create(model="auto", messages=QUESTION, stream=True):
                    pass
    error = caught.value
    assert error.status_code == 400 and error.code == "content_filter" and error.param == "prompt"
    assert isinstance(error.body, dict) and error.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert len(azure_fake.requests) == 1 and azure_fake.requests[0].stream is stream


def test_an_azure_429_with_its_headers_moves_to_the_other_azure_deployment(azure_fake: FakeProviders) -> None:
    azure_fake.script(ModelScript("mini-east", faults=(status(429, retry_after=1),), repeat_faults=True))
    with OpenAI(policy=_azure_only(azure_fake)) as client:
        records = [client.chat.completions.create(model="auto", messages=QUESTION).routing for _ in range(10)]
    assert {r.deployment for r in records} == {"azure-westeurope"}
    assert all(r.model == "gpt-4o-mini" for r in records)


def test_the_fake_answers_azure_errors_in_azures_shape(azure_fake: FakeProviders) -> None:
    base = azure_fake.azure_base("east") + "/openai/deployments/mini-east/chat/completions"
    body = {"messages": QUESTION}
    no_version = httpx.post(base, json=body, headers={"api-key": "azure-key"})
    assert no_version.status_code == 404 and no_version.json() == {
        "error": {"code": "404", "message": "Resource not found"}
    }
    wrong_key = httpx.post(base, params={"api-version": "2024-10-21"}, json=body, headers={"api-key": "nope"})
    assert wrong_key.status_code == 401 and wrong_key.json()["error"]["code"] == "401"
    azure_fake.script(ModelScript("mini-east", rpm=1))
    ok = httpx.post(base, params={"api-version": "2024-10-21"}, json=body, headers={"api-key": "azure-key"})
    assert ok.headers["x-ms-region"] and ok.headers["apim-request-id"]
    assert ok.headers["x-ratelimit-remaining-requests"] == "0"
    limited = httpx.post(
        base, params={"api-version": "2024-10-21"}, json=body, headers={"api-key": "azure-key"}
    )
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "429"
    assert int(limited.headers["retry-after"]) >= 1
    assert [key for key, _ in azure_fake.rate_limited] == ["east/mini-east"]
