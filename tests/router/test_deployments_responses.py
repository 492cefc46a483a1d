"""A pooled model (``deployments:``) with the capability ``responses``: ``client.responses.create`` goes
natively to ``/responses`` on the deployment the balancer picks (OpenAI at ``{base}/responses``, Azure at
``{resource}/openai/v1/responses`` with its ``api-key`` and the deployment's name as the model), and a
failed deployment falls back to the next one of the same model. Sync and async, plain and streamed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from router_fakes import FakeProviders, ModelScript, reply_text, status

from policies.schema import Policy
from router._openai import AsyncOpenAI, OpenAI

from .deployment_helpers import AZURE_KEY_ENV, KEY_ENV
from .test_responses_end_to_end import Api

QUESTION = "What is the capital of France?"


def pooled_policy(fake: FakeProviders, *, mixed: bool = False) -> Policy:
    """gpt-4o-mini on OpenAI (``openai``) and one Azure resource (``azure-east``, drawn first);
    ``mixed``: a third deployment through litellm (Anthropic's wire), which has no Responses API."""
    deployments: list[dict[str, Any]] = [
        {"name": "openai", "api_base": fake.openai_base, "weight": 1},
        {
            "name": "azure-east",
            "provider": "azure",
            "model": "mini-east",
            "api_base": fake.azure_base("east"),
            "api_key_env": AZURE_KEY_ENV,
            "api_version": "2024-10-21",
            "weight": 10**6,
        },
    ]
    if mixed:
        deployments.append(
            {
                "name": "claude",
                "provider": "anthropic",
                "model": "claude-haiku-4-5",
                "api_base": fake.anthropic_base,
            }
        )
    return Policy.model_validate(
        {
            "retry": {"attempts": 1},
            "models": {
                "gpt-4o-mini": {"provider": "openai", "api_key_env": KEY_ENV, "deployments": deployments}
            },
        }
    )


@pytest.fixture(params=["sync", "async"])
def api(
    request: pytest.FixtureRequest, fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Api]:
    monkeypatch.setenv(KEY_ENV, "openai-key")
    monkeypatch.setenv(AZURE_KEY_ENV, "azure-key")
    made = Api(request.param, pooled_policy(fake))
    client: OpenAI | AsyncOpenAI = made.client
    client._router._balancer._rng = random.Random(5)
    yield made
    made.close()


def test_a_pooled_model_is_answered_natively_by_the_azure_deployment_picked(
    api: Api, fake: FakeProviders
) -> None:
    response = api.create(model="gpt-4o-mini", input=QUESTION, reasoning={"effort": "low"})
    (sent,) = fake.requests
    assert sent.protocol == "azure" and sent.path == "/azure/east/openai/v1/responses"
    assert (
        sent.body["model"] == "mini-east" and sent.body["input"] == QUESTION and "messages" not in sent.body
    )
    assert sent.headers.get("api-key") == "<redacted>" and "authorization" not in sent.headers
    assert response.id.startswith("resp_fake") and response.output_text == reply_text("mini-east", QUESTION)
    assert response.model == "gpt-4o-mini" and response.routing.deployment == "azure-east"
    assert response.routing.cost_usd is not None and response.routing.cost_usd > 0


def test_a_failed_deployment_falls_back_natively_to_the_next_one_of_the_model(
    api: Api, fake: FakeProviders
) -> None:
    fake.script(ModelScript("mini-east", faults=(status(500),)))
    response = api.create(model="gpt-4o-mini", input=QUESTION)
    assert [(r.protocol, r.path) for r in fake.requests] == [
        ("azure", "/azure/east/openai/v1/responses"),
        ("openai", "/openai/v1/responses"),
    ]
    assert response.output_text == reply_text("gpt-4o-mini", QUESTION)
    assert [(a.deployment, a.error) for a in response.routing.attempts] == [
        ("azure-east", "server"),
        ("openai", None),
    ]


def test_a_pooled_native_stream_falls_back_between_deployments_before_content(
    api: Api, fake: FakeProviders
) -> None:
    fake.script(ModelScript("mini-east", faults=(status(503),)))
    events, stream = api.events(model="gpt-4o-mini", input=QUESTION)
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert events[-1].response.output_text == reply_text("gpt-4o-mini", QUESTION)
    assert [r.path for r in fake.requests] == ["/azure/east/openai/v1/responses", "/openai/v1/responses"]
    assert all(r.stream for r in fake.requests)
    assert [a.deployment for a in stream.routing.attempts] == ["azure-east", "openai"]


def test_a_pooled_native_stream_from_azure(api: Api, fake: FakeProviders) -> None:
    events, stream = api.events(model="gpt-4o-mini", input=QUESTION)
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert deltas == events[-1].response.output_text == reply_text("mini-east", QUESTION)
    assert stream.routing.deployment == "azure-east" and fake.requests[0].path.endswith(
        "/openai/v1/responses"
    )


def test_a_pool_with_a_deployment_that_has_no_responses_api_is_translated_to_chat(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "openai-key")
    monkeypatch.setenv(AZURE_KEY_ENV, "azure-key")
    with OpenAI(policy=pooled_policy(fake, mixed=True)) as client:
        client._router._balancer._rng = random.Random(5)
        assert "responses" not in client._router._engine.catalog["gpt-4o-mini"].supports
        response = client.responses.create(model="gpt-4o-mini", input=QUESTION)
    assert response.output_text
    assert fake.requests[0].path.endswith("/chat/completions?api-version=2024-10-21")
