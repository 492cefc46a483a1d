"""The fake's batch protocols: OpenAI Files + Batches (through the openai SDK), Anthropic Message
Batches and Gemini batch mode (over HTTP, as their APIs document), on a clock tests fast-forward."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import openai
import pytest
from router_fakes import FakeProviders, ModelScript, status

QUESTION: Any = [{"role": "user", "content": "Classify: the parcel arrived broken."}]


def _openai_file(n: int, model: str = "gpt-4o-mini") -> bytes:
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": QUESTION},
        }
        for i in range(n)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def test_an_openai_batch_runs_through_the_sdk_and_ends_only_when_the_clock_is_advanced(
    fake: FakeProviders,
) -> None:
    client = openai.OpenAI(api_key="k", base_url=fake.openai_base, max_retries=0)
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_openai_file(3))), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "in_progress" and batch.request_counts.total == 3
    assert client.batches.retrieve(batch.id).status == "in_progress"
    fake.batches.advance(fake.batches.latency_s)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts.completed == 3
    assert done.output_file_id is not None and done.error_file_id is None
    lines = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert [x["custom_id"] for x in lines] == ["r0", "r1", "r2"]
    assert lines[0]["response"]["body"]["object"] == "chat.completion"
    assert lines[0]["response"]["body"]["usage"]["prompt_tokens"] > 0
    assert fake.batches.submitted == {"r0": 1, "r1": 1, "r2": 1}
    assert [b.id for b in client.batches.list()] == [batch.id]


def test_a_scripted_fault_fails_one_line_into_the_error_file(fake: FakeProviders) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(500),)))
    client = openai.OpenAI(api_key="k", base_url=fake.openai_base, max_retries=0)
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_openai_file(2))), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 1)
    assert done.error_file_id is not None
    error = json.loads(client.files.content(done.error_file_id).text)
    assert error["custom_id"] == "r0" and error["response"]["status_code"] == 500


def test_an_expired_openai_batch_lists_every_line_as_batch_expired(fake: FakeProviders) -> None:
    fake.batches.expire.add("openai")
    client = openai.OpenAI(api_key="k", base_url=fake.openai_base, max_retries=0)
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_openai_file(2))), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.status == "expired" and done.output_file_id is None
    assert done.error_file_id is not None
    errors = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert {e["error"]["code"] for e in errors} == {"batch_expired"}


def test_a_cancelled_openai_batch_answers_nothing(fake: FakeProviders) -> None:
    client = openai.OpenAI(api_key="k", base_url=fake.openai_base, max_retries=0)
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_openai_file(2))), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert client.batches.cancel(batch.id).status == "cancelled"
    fake.batches.advance(3600)
    assert client.batches.retrieve(batch.id).output_file_id is None
    assert fake.requests_for("gpt-4o-mini") == []


def test_an_anthropic_message_batch_ends_with_jsonl_results_per_custom_id(fake: FakeProviders) -> None:
    fake.batches.fail_ids.add("b")
    params = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": QUESTION}
    with httpx.Client(base_url=fake.anthropic_base, headers={"x-api-key": "k"}) as http:
        created = http.post(
            "/v1/messages/batches",
            json={"requests": [{"custom_id": "a", "params": params}, {"custom_id": "b", "params": params}]},
        ).json()
        assert created["processing_status"] == "in_progress" and created["results_url"] is None
        assert created["request_counts"]["processing"] == 2
        assert http.get(f"/v1/messages/batches/{created['id']}/results").status_code == 400
        fake.batches.advance(fake.batches.latency_s)
        ended = http.get(f"/v1/messages/batches/{created['id']}").json()
        assert ended["processing_status"] == "ended"
        assert ended["request_counts"] | {} == {
            "processing": 0,
            "succeeded": 1,
            "errored": 1,
            "canceled": 0,
            "expired": 0,
        }
        results = [json.loads(x) for x in http.get(ended["results_url"]).text.splitlines()]
    assert results[0]["custom_id"] == "a" and results[0]["result"]["type"] == "succeeded"
    assert results[0]["result"]["message"]["usage"]["input_tokens"] > 0
    assert results[1]["result"]["type"] == "errored"
    assert results[1]["result"]["error"]["error"]["type"] == "api_error"


def test_a_gemini_inline_batch_is_an_operation_polled_until_done(fake: FakeProviders) -> None:
    request = {"contents": [{"role": "user", "parts": [{"text": "Classify: broken parcel."}]}]}
    body = {
        "batch": {
            "display_name": "job",
            "input_config": {
                "requests": {
                    "requests": [
                        {"request": request, "metadata": {"key": "k1"}},
                        {"request": request, "metadata": {"key": "k2"}},
                    ]
                }
            },
        }
    }
    with httpx.Client(base_url=fake.gemini_base + "/v1beta", headers={"x-goog-api-key": "k"}) as http:
        operation = http.post("/models/gemini-2.5-flash-lite:batchGenerateContent", json=body).json()
        name = operation["name"]
        assert name.startswith("batches/") and operation["metadata"]["state"] == "BATCH_STATE_RUNNING"
        assert "done" not in http.get(f"/{name}").json()
        fake.batches.advance(fake.batches.latency_s)
        done = http.get(f"/{name}").json()
    assert done["done"] is True and done["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    inlined = done["response"]["inlinedResponses"]["inlinedResponses"]
    assert [r["metadata"]["key"] for r in inlined] == ["k1", "k2"]
    assert inlined[0]["response"]["usageMetadata"]["promptTokenCount"] > 0
    assert fake.batches.lines_submitted("gemini") == 2 and fake.batches.lines_submitted("openai") == 0


@pytest.mark.parametrize("protocol", ["anthropic", "gemini"])
def test_an_expired_batch_answers_no_line(fake: FakeProviders, protocol: str) -> None:
    fake.batches.expire.add(protocol)
    request = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    params = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": QUESTION}
    with httpx.Client(base_url=fake.url) as http:
        if protocol == "anthropic":
            job = http.post(
                "/anthropic/v1/messages/batches", json={"requests": [{"custom_id": "a", "params": params}]}
            ).json()
            fake.batches.advance(86_400)
            results = http.get(f"/anthropic/v1/messages/batches/{job['id']}/results").text
            assert json.loads(results)["result"] == {"type": "expired"}
        else:
            body = {"batch": {"input_config": {"requests": {"requests": [{"request": request}]}}}}
            job = http.post(
                "/gemini/v1beta/models/gemini-2.5-flash-lite:batchGenerateContent", json=body
            ).json()
            fake.batches.advance(86_400)
            done = http.get(f"/gemini/v1beta/{job['name']}").json()
            assert done["metadata"]["state"] == "BATCH_STATE_EXPIRED" and "response" not in done
