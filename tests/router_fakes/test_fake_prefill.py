"""Prefill on the fakes: Anthropic continues a final assistant message; the OpenAI endpoint serves
vLLM's ``continue_final_message`` only for a model scripted with ``prefill`` (else a 400, as a server
that does not know the argument answers)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from router_fakes import FakeProviders, ModelScript, text_tokens
from router_fakes._answer import continuation

REPLY = "Paris is the capital of France."
QUESTION: list[dict[str, Any]] = [{"role": "user", "content": "What is the capital of France?"}]
VLLM: dict[str, Any] = {"continue_final_message": True, "add_generation_prompt": False}


def _anthropic(fake: FakeProviders, messages: list[dict[str, Any]], stream: bool = False) -> httpx.Response:
    body = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": messages, "stream": stream}
    return httpx.post(fake.anthropic_base + "/v1/messages", json=body)


def _sse_text(response: httpx.Response) -> str:
    text = ""
    for line in response.text.splitlines():
        if line.startswith("data: "):
            event = json.loads(line[6:])
            if event.get("type") == "content_block_delta":
                text += event["delta"]["text"]
    return text


def test_continuation_is_the_rest_of_the_answer_after_the_prefix_or_the_whole_answer() -> None:
    assert continuation(REPLY, "Paris is") == " the capital of France."
    assert continuation(REPLY, "Lyon is") == REPLY


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_continues_a_final_assistant_message_with_only_the_rest(
    fake: FakeProviders, stream: bool
) -> None:
    fake.script(ModelScript("claude-haiku-4-5", reply=REPLY))
    response = _anthropic(fake, [*QUESTION, {"role": "assistant", "content": "Paris is"}], stream)
    assert response.status_code == 200
    if stream:
        assert _sse_text(response) == " the capital of France."
    else:
        body = response.json()
        assert body["content"] == [{"type": "text", "text": " the capital of France."}]
        assert body["usage"]["output_tokens"] == text_tokens(" the capital of France.")


def test_anthropic_refuses_a_prefill_that_ends_with_whitespace(fake: FakeProviders) -> None:
    fake.script(ModelScript("claude-haiku-4-5", reply=REPLY))
    response = _anthropic(fake, [*QUESTION, {"role": "assistant", "content": "Paris is "}])
    assert response.status_code == 400
    assert "trailing whitespace" in response.json()["error"]["message"]


@pytest.fixture
def client(fake: FakeProviders) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base, api_key="sk-test", max_retries=0)


def test_openai_refuses_continue_final_message_unless_the_model_serves_it(
    fake: FakeProviders, client: openai.OpenAI
) -> None:
    fake.script(ModelScript("gpt-4o-mini", reply=REPLY))
    messages: Any = [*QUESTION, {"role": "assistant", "content": "Paris is"}]
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied"):
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, extra_body=VLLM)


def test_a_vllm_model_continues_the_final_assistant_message(
    fake: FakeProviders, client: openai.OpenAI
) -> None:
    fake.script(ModelScript("vllm-chat", reply=REPLY, prefill=True))
    messages: Any = [*QUESTION, {"role": "assistant", "content": "Paris is"}]
    answer = client.chat.completions.create(model="vllm-chat", messages=messages, extra_body=VLLM)
    assert answer.choices[0].message.content == " the capital of France."
    pieces = client.chat.completions.create(
        model="vllm-chat", messages=messages, extra_body=VLLM, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in pieces if c.choices) == " the capital of France."
    # Without continue_final_message the final assistant message is answered, not continued.
    assert (
        client.chat.completions.create(model="vllm-chat", messages=messages).choices[0].message.content
        == REPLY
    )


@pytest.mark.parametrize(
    ("extra", "last", "match"),
    [
        ({"continue_final_message": True}, "assistant", "add_generation_prompt"),
        (VLLM, "user", "final assistant message"),
    ],
)
def test_a_vllm_model_refuses_what_vllm_refuses(
    fake: FakeProviders, client: openai.OpenAI, extra: dict[str, Any], last: str, match: str
) -> None:
    fake.script(ModelScript("vllm-chat", reply=REPLY, prefill=True))
    messages: Any = [*QUESTION, {"role": last, "content": "Paris is"}]
    with pytest.raises(openai.BadRequestError, match=match):
        client.chat.completions.create(model="vllm-chat", messages=messages, extra_body=extra)


def test_prefill_survives_the_scripts_json_form() -> None:
    script = ModelScript("vllm-chat", prefill=True)
    assert ModelScript.from_json(json.loads(json.dumps(script.to_json()))) == script
