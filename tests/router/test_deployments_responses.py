"""A pooled model (``deployments:``) with the capability ``responses``: ``client.responses.create`` goes
natively to ``/responses`` on the deployment the balancer picks (OpenAI at ``{base}/responses``, Azure at
``{resource}/openai/v1/responses`` with its ``api-key`` and the deployment's name as the model), and a
failed deployment falls back to the next one of the same model. Sync and async, plain and streamed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from router_fakes import FakeProviders, ModelScript, reply_text, status

from policies.schema import Policy
from router._openai import AsyncOpenAI, OpenAI

from .deployment_helpers import AZURE_KEY_ENV, KEY_ENV
from .test_responses_end_to_end import Api
from .test_responses_native import run

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


# --------------------------------------------------------------------------- where a response lives
# A pool of two deployments on different servers, the answer made on the second listed (it weighs a
# million times more): the response lives there only (each fake server keeps its own responses), so
# retrieve and a follow-up must find that deployment, not the model's first.

_DEPLOYMENTS: dict[str, tuple[dict[str, Any], str, str]] = {
    # name → (its policy entry without weight, the model it is called with, its path prefix)
    "openai": ({"name": "openai"}, "gpt-4o-mini", "/openai/v1"),
    "azure-east": (
        {"name": "azure-east", "provider": "azure", "model": "mini-east", "api_key_env": AZURE_KEY_ENV},
        "mini-east",
        "/azure/east/openai/v1",
    ),
    "azure-west": (
        {"name": "azure-west", "provider": "azure", "model": "mini-west", "api_key_env": AZURE_KEY_ENV},
        "mini-west",
        "/azure/west/openai/v1",
    ),
}


def _entry(fake: FakeProviders, name: str, weight: int) -> dict[str, Any]:
    entry = dict(_DEPLOYMENTS[name][0], weight=weight)
    base = fake.openai_base if name == "openai" else fake.azure_base(name.removeprefix("azure-"))
    return {**entry, "api_base": base}


class Pair:
    """A client on a two-deployment pool whose answers come from ``second``; ``first`` is listed first."""

    def __init__(self, api: Api, first: str, second: str, streamed: bool) -> None:
        self.api, self.first, self.second, self.streamed = api, first, second, streamed

    def model_of(self, name: str) -> str:
        return _DEPLOYMENTS[name][1]

    def path_of(self, name: str) -> str:
        return _DEPLOYMENTS[name][2] + "/responses"

    def make(self, **params: Any) -> Any:
        """A response, made plainly or streamed (then the stream's final response)."""
        if not self.streamed:
            return self.api.create(model="gpt-4o-mini", **params)
        events, _ = self.api.events(model="gpt-4o-mini", **params)
        assert events[-1].type == "response.completed"
        return events[-1].response


@pytest.fixture(
    params=[("openai", "azure-east"), ("azure-east", "openai"), ("azure-east", "azure-west")],
    ids=lambda pair: "+".join(pair),
)
def pair_names(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["plain", "streamed"])
def pair(
    request: pytest.FixtureRequest,
    kind: str,
    pair_names: tuple[str, str],
    fake: FakeProviders,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Pair]:
    monkeypatch.setenv(KEY_ENV, "openai-key")
    monkeypatch.setenv(AZURE_KEY_ENV, "azure-key")
    first, second = pair_names
    policy = Policy.model_validate(
        {
            "retry": {"attempts": 1},
            "models": {
                "gpt-4o-mini": {
                    "provider": "openai",
                    "api_key_env": KEY_ENV,
                    "deployments": [_entry(fake, first, 1), _entry(fake, second, 10**6)],
                }
            },
        }
    )
    made = Api(kind, policy)
    client: OpenAI | AsyncOpenAI = made.client
    client._router._balancer._rng = random.Random(5)
    yield Pair(made, first, second, request.param == "streamed")
    made.close()


def test_retrieve_delete_and_input_items_reach_the_deployment_that_made_the_response(
    pair: Pair, fake: FakeProviders
) -> None:
    made = pair.make(input=QUESTION)
    assert made.routing.deployment == pair.second
    assert made.output_text == reply_text(pair.model_of(pair.second), QUESTION)
    api, responses = pair.api, pair.api.client.responses
    retrieved = run(api, responses.retrieve, made.id)
    assert retrieved.id == made.id and retrieved.output_text == made.output_text
    raw = run(api, responses.with_raw_response.retrieve, made.id)
    assert raw.http_request.url.path == f"{pair.path_of(pair.second)}/{made.id}"
    if pair.second.startswith("azure"):  # Azure's key header, as on its chat and create calls
        assert raw.http_request.headers["api-key"] == "azure-key"
        assert "authorization" not in raw.http_request.headers
    else:
        assert raw.http_request.headers["authorization"] == "Bearer openai-key"
    items = run(api, responses.input_items.list, made.id)
    assert [item.content[0].text for item in items.data] == [QUESTION]
    run(api, responses.delete, made.id)
    with pytest.raises(openai.NotFoundError):
        run(api, responses.retrieve, made.id)


def test_a_follow_up_on_the_deployment_that_made_the_response_sends_its_id(
    pair: Pair, fake: FakeProviders
) -> None:
    made = pair.make(input=QUESTION)
    follow_up = pair.make(input="And of Germany?", previous_response_id=made.id)
    assert follow_up.routing.deployment == pair.second
    sent = fake.requests[-1]
    assert sent.path == pair.path_of(pair.second)
    assert sent.body["previous_response_id"] == made.id and sent.body["input"] == "And of Germany?"


def test_a_follow_up_on_another_deployment_sends_the_conversation_instead_of_the_id(
    pair: Pair, fake: FakeProviders
) -> None:
    made = pair.make(input=QUESTION)
    fake.script(ModelScript(pair.model_of(pair.second), faults=(status(500),)))
    follow_up = pair.make(input="And of Germany?", previous_response_id=made.id)
    assert follow_up.routing.deployment == pair.first
    assert follow_up.output_text == reply_text(pair.model_of(pair.first), "And of Germany?")
    refused, sent = fake.requests[-2:]
    assert refused.path == pair.path_of(pair.second) and refused.body["previous_response_id"] == made.id
    assert sent.path == pair.path_of(pair.first) and "previous_response_id" not in sent.body
    assert [(item["role"], _text(item["content"])) for item in sent.body["input"]] == [
        ("user", QUESTION),
        ("assistant", made.output_text),
        ("user", "And of Germany?"),
    ]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text") or "" for part in content)


OTHER_KEY_ENV = "ROUTER_DEPLOY_OTHER_PROJECT_KEY"


def _one_server_policy(fake: FakeProviders, provider: str) -> Policy:
    """Two deployments on one server: two OpenAI projects (one base, a key each), or two deployments
    of one Azure resource (one base, one key); the answer made on the second."""
    if provider == "openai":
        shared: dict[str, Any] = {"api_base": fake.openai_base}
        keys = [KEY_ENV, OTHER_KEY_ENV]
    else:
        shared = {"provider": "azure", "api_base": fake.azure_base("east")}
        keys = [AZURE_KEY_ENV, AZURE_KEY_ENV]
    deployments = [
        {**shared, "name": name, "model": model, "api_key_env": key, "weight": weight}
        for name, model, key, weight in zip(("a", "b"), ("mini-a", "mini-b"), keys, (1, 10**6), strict=True)
    ]
    return Policy.model_validate(
        {
            "retry": {"attempts": 1},
            "models": {"gpt-4o-mini": {"provider": "openai", "deployments": deployments}},
        }
    )


@pytest.fixture
def one_server(
    kind: str, fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], Api]]:
    monkeypatch.setenv(KEY_ENV, "project-a-key")
    monkeypatch.setenv(OTHER_KEY_ENV, "project-b-key")
    monkeypatch.setenv(AZURE_KEY_ENV, "azure-key")
    made: list[Api] = []

    def make(provider: str) -> Api:
        api = Api(kind, _one_server_policy(fake, provider))
        client: OpenAI | AsyncOpenAI = api.client
        client._router._balancer._rng = random.Random(5)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


def test_a_follow_up_on_another_account_of_the_same_server_gets_the_conversation(
    one_server: Callable[[str], Api], fake: FakeProviders
) -> None:
    # Two OpenAI projects share a base URL but not their stored responses.
    api = one_server("openai")
    made = api.create(model="gpt-4o-mini", input=QUESTION)
    assert made.routing.deployment == "b"
    fake.script(ModelScript("mini-b", faults=(status(500),)))
    follow_up = api.create(model="gpt-4o-mini", input="And of Germany?", previous_response_id=made.id)
    assert follow_up.routing.deployment == "a"
    sent = fake.requests[-1]
    assert sent.body["model"] == "mini-a" and "previous_response_id" not in sent.body
    assert [_text(item["content"]) for item in sent.body["input"]] == [
        QUESTION,
        made.output_text,
        "And of Germany?",
    ]


def test_a_follow_up_on_another_deployment_of_the_same_azure_resource_sends_the_id(
    one_server: Callable[[str], Api], fake: FakeProviders
) -> None:
    # One resource, one key: its deployments see the same stored responses.
    api = one_server("azure")
    made = api.create(model="gpt-4o-mini", input=QUESTION)
    fake.script(ModelScript("mini-b", faults=(status(500),)))
    follow_up = api.create(model="gpt-4o-mini", input="And of Germany?", previous_response_id=made.id)
    assert follow_up.routing.deployment == "a"
    sent = fake.requests[-1]
    assert sent.body["model"] == "mini-a" and sent.body["previous_response_id"] == made.id
    assert sent.body["input"] == "And of Germany?"
