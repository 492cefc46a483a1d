"""``router.OpenAI`` / ``router.AsyncOpenAI`` are openai's clients: construction, what passes through
to OpenAI as openai's client would send it, and copies that share the router."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
from typing import Any, ClassVar

import httpx
import openai
import pytest
import respx
from router_fakes import FakeProviders

import router
from policies.schema import Policy
from tests.router.helpers import OK_BODY, two_model_policy

MESSAGES = [{"role": "user", "content": "hi"}]
API = "http://openai.test/v1"
A = "http://a.test/v1/chat/completions"


def gemini_only(fake: FakeProviders) -> Policy:
    return Policy.model_validate(
        {
            "models": {"gemini-2.5-flash-lite": {"provider": "gemini", "api_base": fake.gemini_base}},
            "routes": {"auto": {"candidates": ["gemini-2.5-flash-lite"]}},
        }
    )


@pytest.fixture
def no_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_BASE_URL", "OPENAI_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)


def test_the_clients_are_openais_clients() -> None:
    policy = two_model_policy()
    assert isinstance(router.OpenAI(policy=policy, api_key="sk-x"), openai.OpenAI)
    assert isinstance(router.AsyncOpenAI(policy=policy, api_key="sk-x"), openai.AsyncOpenAI)


def test_without_an_openai_key_routed_calls_work_and_openai_calls_raise_openais_missing_key_error(
    fake: FakeProviders, no_openai_key: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "fake")
    with pytest.raises(openai.OpenAIError):
        openai.OpenAI()  # what openai itself does: refuse at construction
    client = router.OpenAI(policy=gemini_only(fake))
    response = client.chat.completions.create(model="auto", messages=MESSAGES)
    assert response.model == "gemini-2.5-flash-lite"
    with pytest.raises(openai.OpenAIError, match="OPENAI_API_KEY") as caught:
        client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert not isinstance(caught.value, openai.APIError)  # raised before any request was sent


async def test_async_without_an_openai_key_routed_calls_work_and_openai_calls_raise(
    fake: FakeProviders, no_openai_key: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "fake")
    client = router.AsyncOpenAI(policy=gemini_only(fake))
    response = await client.chat.completions.create(model="auto", messages=MESSAGES)
    assert response.model == "gemini-2.5-flash-lite"
    with pytest.raises(openai.OpenAIError, match="OPENAI_API_KEY"):
        await client.files.list()
    await client.close()


def test_enforce_credentials_false_keeps_openais_own_behaviour(no_openai_key: None) -> None:
    if "_enforce_credentials" not in inspect.signature(openai.OpenAI).parameters:
        # Older openai (2.20) has no such option: refused as any option the installed openai lacks.
        with pytest.raises(TypeError, match="needs a newer openai package"):
            router.OpenAI(policy=two_model_policy(), _enforce_credentials=False)
        return
    client = router.OpenAI(policy=two_model_policy(), _enforce_credentials=False)
    assert client.api_key == ""


EMBEDDING = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 1, "total_tokens": 1},
}
FILES = {"object": "list", "data": [], "has_more": False}
BATCH = {
    "id": "batch_1",
    "object": "batch",
    "endpoint": "/v1/chat/completions",
    "input_file_id": "file_1",
    "completion_window": "24h",
    "status": "validating",
    "created_at": 1,
}
MODERATION = {"id": "modr-1", "model": "omni-moderation-latest", "results": []}


class OpenAIEndpoint:
    """OpenAI's API as a transport for openai's own HTTP client, whichever httpx package that
    client uses (openai 2: httpx; openai 3: httpx2), so these tests hold for both."""

    ANSWERS: ClassVar[dict[tuple[str, str], dict[str, Any]]] = {
        ("POST", "/embeddings"): EMBEDDING,
        ("GET", "/files"): FILES,
        ("GET", "/batches/batch_1"): BATCH,
        ("POST", "/moderations"): MODERATION,
        ("POST", "/chat/completions"): OK_BODY,
    }

    def __init__(self) -> None:
        self.requests: list[Any] = []
        # openai.DefaultHttpxClient subclasses the Client of the httpx package openai uses.
        self._httpx = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])

    def _handle(self, request: Any) -> Any:
        self.requests.append(request)
        answer = self.ANSWERS.get((request.method, request.url.path.removeprefix("/v1")))
        return self._httpx.Response(200 if answer else 404, json=answer or {"error": {"message": "no"}})

    def client(self) -> Any:
        return openai.DefaultHttpxClient(transport=self._httpx.MockTransport(self._handle))

    def async_client(self) -> Any:
        return openai.DefaultAsyncHttpxClient(transport=self._httpx.MockTransport(self._handle))

    def last(self, path: str) -> Any:
        return next(r for r in reversed(self.requests) if r.url.path.endswith(path))


def test_what_is_not_routed_goes_to_openai_as_openais_client_sends_it(no_openai_key: None) -> None:
    endpoint = OpenAIEndpoint()
    client = router.OpenAI(
        policy=two_model_policy(),
        api_key="sk-passthrough",
        base_url=API,
        organization="org-1",
        default_headers={"X-App": "shop"},
        max_retries=0,
        http_client=endpoint.client(),
    )
    vector = client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert vector.data[0].embedding == [0.1, 0.2]
    assert client.files.list().data == []
    assert client.batches.retrieve("batch_1").status == "validating"
    assert client.moderations.create(input="hi").id == "modr-1"
    paths = ["/v1/embeddings", "/v1/files", "/v1/batches/batch_1", "/v1/moderations"]
    assert [(r.url.host, r.url.path) for r in endpoint.requests] == [("openai.test", p) for p in paths]
    for sent in endpoint.requests:
        assert sent.headers["authorization"] == "Bearer sk-passthrough"
        assert sent.headers["openai-organization"] == "org-1" and sent.headers["x-app"] == "shop"
    assert json.loads(endpoint.last("/embeddings").content)["model"] == "text-embedding-3-small"


async def test_async_what_is_not_routed_goes_to_openai(no_openai_key: None) -> None:
    endpoint = OpenAIEndpoint()
    client = router.AsyncOpenAI(
        policy=two_model_policy(), api_key="sk-passthrough", base_url=API, http_client=endpoint.async_client()
    )
    vector = await client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert vector.data[0].embedding == [0.1, 0.2]
    assert (await client.files.list()).data == []
    assert (await client.batches.retrieve("batch_1")).status == "validating"
    assert (await client.moderations.create(input="hi")).id == "modr-1"
    assert len(endpoint.requests) == 4
    assert endpoint.last("/files").headers["authorization"] == "Bearer sk-passthrough"
    await client.close()


def test_the_environment_names_the_openai_endpoint_and_key_as_for_openai(
    no_openai_key: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.test/v1")
    endpoint = OpenAIEndpoint()
    client = router.OpenAI(policy=two_model_policy(), http_client=endpoint.client())
    assert client.api_key == "sk-env" and str(client.base_url) == "http://env.test/v1/"
    client.embeddings.create(model="text-embedding-3-small", input="hi")
    sent = endpoint.last("/embeddings")
    assert sent.url.host == "env.test" and sent.headers["authorization"] == "Bearer sk-env"


@respx.mock
def test_routed_openai_models_use_the_clients_key_base_url_and_headers(no_openai_key: None) -> None:
    route = respx.post(f"{API}/chat/completions").mock(return_value=httpx.Response(200, json=OK_BODY))
    policy = Policy.model_validate({"models": {"gpt-4o-mini": {"provider": "openai"}}})
    client = router.OpenAI(
        policy=policy, api_key="sk-routed", base_url=API, default_headers={"X-App": "shop"}
    )
    response = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert response.model == "gpt-4o-mini"
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer sk-routed" and sent.headers["x-app"] == "shop"


def test_openais_options_read_as_in_openai() -> None:
    client = router.OpenAI(
        policy=two_model_policy(), api_key="sk-x", base_url=API, timeout=12.5, max_retries=4
    )
    assert client.api_key == "sk-x" and str(client.base_url) == API + "/"
    assert client.timeout == 12.5 and client.max_retries == 4
    assert router.OpenAI(policy=two_model_policy(), api_key="sk-x").max_retries == openai.DEFAULT_MAX_RETRIES


def test_an_option_the_installed_openai_lacks_is_refused_only_when_given() -> None:
    # data_residency= is openai 3's; with openai 2 it must say so rather than vanish silently.
    import inspect

    if "data_residency" in inspect.signature(openai.OpenAI).parameters:
        pytest.skip("the installed openai has data_residency")
    with pytest.raises(TypeError, match="data_residency= needs a newer openai"):
        router.OpenAI(policy=two_model_policy(), api_key="sk-x", data_residency="eu")


@respx.mock
def test_copies_share_the_router_and_take_openais_options() -> None:
    route = respx.post(A).mock(return_value=httpx.Response(200, json=OK_BODY))
    client = router.OpenAI(policy=two_model_policy(), api_key="sk-x", base_url=API)
    copy = client.with_options(timeout=2.0, default_headers={"X-Tenant": "t1"}, max_retries=0)
    assert isinstance(copy, router.OpenAI) and copy is not client
    assert copy.timeout == 2.0 and client.timeout != 2.0 and copy.max_retries == 0
    assert copy.policy is client.policy
    # New headers reach routed OpenAI models too: a new engine, the same breakers and connections.
    assert copy._router._engine is not client._router._engine
    assert client.with_options(timeout=1.0)._router._engine is client._router._engine
    assert copy._router._breakers is client._router._breakers
    assert copy._router._adapters is client._router._adapters
    assert copy._router._retry_attempts == 1 and client._router._retry_attempts is None
    copy.chat.completions.create(model="a", messages=MESSAGES)
    assert route.calls.last.request.extensions["timeout"]["read"] == 2.0
    assert client.copy(api_key="sk-other").api_key == "sk-other"


def test_a_copy_passes_through_with_its_own_headers(no_openai_key: None) -> None:
    endpoint = OpenAIEndpoint()
    client = router.OpenAI(
        policy=two_model_policy(), api_key="sk-x", base_url=API, http_client=endpoint.client()
    )
    client.with_options(default_headers={"X-Tenant": "t1"}).embeddings.create(
        model="text-embedding-3-small", input="hi"
    )
    assert endpoint.last("/embeddings").headers["x-tenant"] == "t1"


def test_a_copy_keeps_the_retry_setting_unless_it_sets_one() -> None:
    client = router.OpenAI(policy=two_model_policy(), api_key="sk-x", max_retries=3)
    assert client.with_options(timeout=1.0)._router._retry_attempts == 4
    assert router.OpenAI(policy=two_model_policy(), api_key="sk-x").copy()._router._retry_attempts is None


@respx.mock
def test_a_copy_with_another_openai_key_routes_openai_models_with_it_and_shares_the_breakers(
    no_openai_key: None,
) -> None:
    route = respx.post(f"{API}/chat/completions").mock(return_value=httpx.Response(200, json=OK_BODY))
    policy = Policy.model_validate({"models": {"gpt-4o-mini": {"provider": "openai"}}})
    client = router.OpenAI(policy=policy, api_key="sk-one", base_url=API)
    other = client.with_options(api_key="sk-two")
    assert other._router._engine is not client._router._engine
    assert other._router._breakers is client._router._breakers
    other.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-two"
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-one"


async def test_async_copies_share_the_router() -> None:
    client = router.AsyncOpenAI(policy=two_model_policy(), api_key="sk-x")
    copy = client.with_options(timeout=3.0)
    assert isinstance(copy, router.AsyncOpenAI) and copy.timeout == 3.0
    assert copy._router._engine is client._router._engine
    assert copy._router._breakers is client._router._breakers
    await client.close()


def test_the_clients_close_as_context_managers() -> None:
    with router.OpenAI(policy=two_model_policy(), api_key="sk-x") as client:
        assert isinstance(client, router.OpenAI)
    assert client.is_closed()


async def test_the_async_client_closes_as_an_async_context_manager() -> None:
    async with router.AsyncOpenAI(policy=two_model_policy(), api_key="sk-x") as client:
        assert isinstance(client, router.AsyncOpenAI)
    assert client.is_closed()
    asyncio.get_running_loop()  # closed inside the loop that used it


def test_a_copy_keeps_the_routers_settings_and_refuses_to_change_them() -> None:
    client = router.OpenAI(policy=two_model_policy(), api_key="sk-x")
    with pytest.raises(TypeError, match="policy"):
        client.with_options(policy=two_model_policy())  # type: ignore[call-arg]


def test_a_misspelt_option_is_a_type_error_at_run_time_too() -> None:
    with pytest.raises(TypeError, match="api_kee"):
        router.OpenAI(policy=two_model_policy(), api_kee="sk-x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="max_retrys"):
        router.AsyncOpenAI(policy=two_model_policy(), max_retrys=1)  # type: ignore[call-arg]


def test_the_responses_resource_is_a_routed_subclass_of_openais(no_openai_key: None) -> None:
    client = router.OpenAI(policy=two_model_policy(), api_key="sk-x", base_url=API)
    # Routed (tests/router/test_responses_end_to_end.py); retrieve, delete, ... stay openai's.
    assert isinstance(client.responses, openai.resources.responses.Responses)
    assert type(client.responses) is not openai.resources.responses.Responses
    assert client.responses is client.responses  # one instance per client, like openai's


def test_with_options_takes_every_openai_option_and_passed_through_calls_use_them(
    no_openai_key: None,
) -> None:
    endpoint = OpenAIEndpoint()
    client = router.OpenAI(policy=two_model_policy(), api_key="sk-x", base_url="http://first.test/v1")
    copy = client.with_options(
        api_key="sk-copy",
        organization="org-2",
        project="proj-2",
        webhook_secret="whsec",
        websocket_base_url="ws://ws.test/v1",
        base_url=API,
        timeout=7.0,
        http_client=endpoint.client(),
        max_retries=1,
        default_headers={"X-A": "1"},
        default_query={"q": "1"},
    )
    assert (copy.webhook_secret, str(copy.websocket_base_url), copy.max_retries) == (
        "whsec",
        "ws://ws.test/v1",
        1,
    )
    assert copy.with_options(set_default_headers={"X-B": "2"}).default_headers.get("X-A") is None
    copy.embeddings.create(model="text-embedding-3-small", input="hi")
    sent = endpoint.last("/embeddings")
    assert sent.url.host == "openai.test" and sent.url.params["q"] == "1"
    assert sent.extensions["timeout"]["read"] == 7.0
    assert sent.headers["authorization"] == "Bearer sk-copy"
    assert (sent.headers["openai-organization"], sent.headers["openai-project"]) == ("org-2", "proj-2")
    assert sent.headers["x-a"] == "1"


@respx.mock
def test_a_copy_made_before_any_request_spends_from_the_same_budget_ledger() -> None:
    respx.post(A).mock(return_value=httpx.Response(200, json=OK_BODY))  # costs $0.002
    policy = Policy.model_validate(
        {
            **two_model_policy().model_dump(exclude_unset=True),
            "budget": {"limit_usd": 0.001, "window": "total"},
        }
    )
    client = router.OpenAI(policy=policy, api_key="sk-x", ledger="memory://")
    copy = client.with_options(timeout=5.0)
    client.chat.completions.create(model="a", messages=MESSAGES, max_tokens=10)
    with pytest.raises(router.BudgetExceededError):
        copy.chat.completions.create(model="a", messages=MESSAGES, max_tokens=10)
