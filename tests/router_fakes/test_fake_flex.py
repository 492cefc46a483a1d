"""The fake OpenAI's flex tier, driven by the real openai SDK: service_tier is checked and echoed, and
flex requests have their own faults, latency and reported tier."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from router_fakes import FakeProviders, ModelScript, flex_unavailable, status

MODEL = "gpt-5-mini"
QUESTION: Any = [{"role": "user", "content": "Summarize the night's logs."}]


@pytest.fixture
def client(fake: FakeProviders) -> openai.OpenAI:
    return openai.OpenAI(api_key="k", base_url=fake.openai_base, max_retries=0)


def test_the_answer_reports_the_tier_it_was_served_at(fake: FakeProviders, client: openai.OpenAI) -> None:
    served = [
        client.chat.completions.create(model=MODEL, messages=QUESTION, **({"service_tier": t} if t else {}))
        for t in (None, "auto", "flex", "priority")
    ]
    assert [r.service_tier for r in served] == ["default", "default", "flex", "priority"]
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=QUESTION, service_tier="flex", stream=True)
    )
    assert {c.service_tier for c in chunks} == {"flex"}


def test_an_unknown_service_tier_is_openais_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=QUESTION, service_tier="cheap")  # type: ignore[arg-type]
    assert caught.value.param == "service_tier"


def test_flex_faults_hit_flex_requests_only_and_leave_the_others_their_faults(
    fake: FakeProviders, client: openai.OpenAI
) -> None:
    fake.script(ModelScript(MODEL, faults=(status(500),), flex_faults=(flex_unavailable(retry_after=3),)))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=QUESTION, service_tier="flex")
    assert "Resource Unavailable" in caught.value.message
    assert caught.value.response.headers["retry-after"] == "3"
    assert (
        client.chat.completions.create(model=MODEL, messages=QUESTION, service_tier="flex").service_tier
        == "flex"
    )
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=MODEL, messages=QUESTION)


def test_a_flex_request_can_be_served_at_another_tier(fake: FakeProviders, client: openai.OpenAI) -> None:
    fake.script(ModelScript(MODEL, flex_answers_as="default"))
    answer = client.chat.completions.create(model=MODEL, messages=QUESTION, service_tier="flex")
    assert answer.service_tier == "default"


def test_flex_scripts_round_trip_through_json() -> None:
    script = ModelScript(MODEL, flex_faults=(flex_unavailable(retry_after=1),), flex_latency_s=2.5)
    assert ModelScript.from_json(script.to_json()) == script
