"""Azure's Responses API on the fake: each resource keeps its own responses, apart from OpenAI's and
from other resources', and serves them back at ``/openai/v1/responses/{id}`` (GET, DELETE,
``/input_items``) with the key in ``api-key``, as Azure's v1 API does."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from router_fakes import FakeProviders

QUESTION = "What is the capital of France?"


@pytest.fixture
def keyed() -> Iterator[FakeProviders]:
    with FakeProviders(api_keys={"azure": "azure-key", "openai": "openai-key"}) as server:
        yield server


def _create(fake: FakeProviders, resource: str, **body: object) -> httpx.Response:
    return httpx.post(
        f"{fake.azure_base(resource)}/openai/v1/responses",
        json={"model": "dep", "input": QUESTION, **body},
        headers={"api-key": "azure-key"},
        timeout=10,
    )


def _stored(
    fake: FakeProviders, resource: str, path: str, method: str = "GET", **headers: str
) -> httpx.Response:
    url = f"{fake.azure_base(resource)}/openai/v1/responses/{path}"
    return httpx.request(method, url, headers=headers or {"api-key": "azure-key"}, timeout=10)


def test_a_resource_serves_back_the_responses_it_made(keyed: FakeProviders) -> None:
    made = _create(keyed, "east").json()
    retrieved = _stored(keyed, "east", made["id"])
    assert retrieved.status_code == 200 and retrieved.json() == made
    items = _stored(keyed, "east", f"{made['id']}/input_items").json()
    assert items["object"] == "list"
    assert [part["text"] for item in items["data"] for part in item["content"]] == [QUESTION]
    deleted = _stored(keyed, "east", made["id"], "DELETE")
    assert deleted.json() == {"id": made["id"], "object": "response.deleted", "deleted": True}
    assert _stored(keyed, "east", made["id"]).status_code == 404


def test_another_resource_and_openai_do_not_know_a_resources_responses(keyed: FakeProviders) -> None:
    made = _create(keyed, "east").json()
    assert _stored(keyed, "west", made["id"]).status_code == 404
    at_openai = httpx.get(
        f"{keyed.openai_base}/responses/{made['id']}",
        headers={"authorization": "Bearer openai-key"},
        timeout=10,
    )
    assert at_openai.status_code == 404
    # Nor can a follow-up elsewhere continue it by id.
    follow_up = _create(keyed, "west", previous_response_id=made["id"])
    assert follow_up.status_code == 400 and "not found" in follow_up.json()["error"]["message"]
    assert _create(keyed, "east", previous_response_id=made["id"]).status_code == 200


def test_stored_responses_take_the_key_in_api_key_as_azure_does(keyed: FakeProviders) -> None:
    made = _create(keyed, "east").json()
    bearer = _stored(keyed, "east", made["id"], authorization="Bearer azure-key")
    wrong = _stored(keyed, "east", made["id"], **{"api-key": "other"})
    assert bearer.status_code == wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "401"


def test_the_reset_endpoint_forgets_every_resources_responses(keyed: FakeProviders) -> None:
    made = _create(keyed, "east").json()
    assert httpx.post(f"{keyed.url}/_fake/reset", timeout=10).status_code == 200
    assert _stored(keyed, "east", made["id"]).status_code == 404
