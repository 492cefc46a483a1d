"""The fake's quotas (a script's rpm/tpm): what is left, reported on every answer as OpenAI and Azure
report it, and the 429 once it is spent."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from router_fakes import FakeProviders, ModelScript

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


class Clock:
    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeProviders]:
    with FakeProviders(clock=clock) as server:
        yield server


def _openai(fake: FakeProviders, model: str) -> httpx.Response:
    body = {"model": model, "messages": QUESTION}
    return httpx.post(f"{fake.openai_base}/chat/completions", json=body, timeout=10)


def test_successes_report_requests_left_and_when_the_window_frees(fake: FakeProviders, clock: Clock) -> None:
    fake.script(ModelScript("m", rpm=2))
    first = _openai(fake, "m")
    clock.now += 10
    second = _openai(fake, "m")
    assert first.status_code == second.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert second.headers["x-ratelimit-reset-requests"] == "50.000s"  # the first leaves the window then
    refused = _openai(fake, "m")
    assert refused.status_code == 429 and refused.headers["x-ratelimit-reset-requests"] == "50.000s"


def test_a_tpm_quota_reports_tokens_left_and_refuses_once_spent(fake: FakeProviders, clock: Clock) -> None:
    fake.script(ModelScript("m", tpm=30, prompt_tokens=10, completion_tokens=15))
    first = _openai(fake, "m")
    assert first.headers["x-ratelimit-limit-tokens"] == "30"
    assert first.headers["x-ratelimit-remaining-tokens"] == "5"
    assert first.headers["x-ratelimit-reset-tokens"] == "60.000s"
    assert _openai(fake, "m").status_code == 200  # 5 left: not yet spent
    refused = _openai(fake, "m")
    assert refused.status_code == 429 and refused.headers["x-ratelimit-remaining-tokens"] == "0"
    clock.now += 60.0
    assert _openai(fake, "m").status_code == 200


def test_azure_answers_report_their_quota_per_resource_and_deployment(fake: FakeProviders) -> None:
    fake.script(ModelScript("dep", rpm=5))
    url = f"{fake.azure_base('res')}/openai/deployments/dep/chat/completions?api-version=2024-10-21"
    answer = httpx.post(url, json={"messages": QUESTION}, timeout=10)
    other = f"{fake.azure_base('other')}/openai/deployments/dep/chat/completions?api-version=2024-10-21"
    elsewhere = httpx.post(other, json={"messages": QUESTION}, timeout=10)
    assert answer.headers["x-ratelimit-remaining-requests"] == "4"
    assert elsewhere.headers["x-ratelimit-remaining-requests"] == "4"  # another resource's own quota
    assert "x-ms-region" in answer.headers


def test_azure_speaks_the_responses_api_at_openai_v1_responses(fake: FakeProviders) -> None:
    body = {"model": "dep", "input": "What is the capital of France?"}
    v1 = httpx.post(f"{fake.azure_base('res')}/openai/v1/responses", json=body, timeout=10)
    preview = httpx.post(
        f"{fake.azure_base('res')}/openai/responses?api-version=2025-03-01-preview", json=body, timeout=10
    )
    unversioned = httpx.post(f"{fake.azure_base('res')}/openai/responses", json=body, timeout=10)
    assert v1.status_code == preview.status_code == 200
    assert v1.json()["object"] == "response" and v1.json()["model"] == "dep"
    assert unversioned.status_code == 404 and unversioned.json()["error"]["code"] == "404"
    assert fake.requests[0].protocol == "azure"


def test_anthropic_answers_report_the_quota_under_anthropics_header_names(fake: FakeProviders) -> None:
    fake.script(ModelScript("claude-x", rpm=3))
    body = {"model": "claude-x", "max_tokens": 50, "messages": QUESTION}
    answer = httpx.post(f"{fake.anthropic_base}/v1/messages", json=body, timeout=10)
    assert answer.headers["anthropic-ratelimit-requests-limit"] == "3"
    assert answer.headers["anthropic-ratelimit-requests-remaining"] == "2"
    assert "x-ratelimit-remaining-requests" not in answer.headers
