"""Routed batches through router.OpenAI's own files/batches calls, against the three fake batch APIs."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from router_fakes import FakeProviders, ModelScript, status

from router import OpenAI

from .helpers import (
    BATCH_PRICES,
    EXPECTED_MODEL,
    HAIKU,
    KEY_ENV,
    LITE,
    MINI,
    batch_policy,
    jsonl,
    line,
    mixed_lines,
    read_jsonl,
)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "test-key")


def _client(fake: FakeProviders, tmp_path: Path, **top: object) -> OpenAI:
    return OpenAI(
        policy=batch_policy(fake, **top), api_key="k", ledger=f"sqlite:///{tmp_path}/ledger.sqlite3"
    )


def test_each_line_goes_to_its_cheapest_adequate_model_through_that_providers_batch_api(
    fake: FakeProviders, tmp_path: Path
) -> None:
    client = _client(fake, tmp_path)
    uploaded = client.files.create(file=("in.jsonl", jsonl(mixed_lines(8))), purpose="batch")
    assert uploaded.id.startswith("file-rtr-") and uploaded.purpose == "batch"
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.id.startswith("batch_rtr_") and batch.status == "in_progress"
    assert batch.request_counts is not None and batch.request_counts.total == 8
    assert (fake.batches.lines_submitted("gemini"), fake.batches.lines_submitted("openai")) == (2, 4)
    assert fake.batches.lines_submitted("anthropic") == 2
    assert client.batches.retrieve(batch.id).status == "in_progress"
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.output_file_id is not None and done.error_file_id is None
    out = read_jsonl(client.files.content(done.output_file_id).text)
    assert [x["custom_id"] for x in out] == [f"req-{i}" for i in range(8)]
    for i, entry in enumerate(out):
        body = entry["response"]["body"]
        assert body["object"] == "chat.completion"
        assert body["model"] == EXPECTED_MODEL[("plain", "tools", "long_tools", "careful")[i % 4]]
    tool_line = out[1]["response"]["body"]["choices"][0]
    assert tool_line["finish_reason"] == "tool_calls" and tool_line["message"]["tool_calls"]
    claude_line = out[2]["response"]["body"]["choices"][0]
    assert claude_line["message"]["tool_calls"][0]["function"]["name"] == "label"
    assert [b.id for b in client.batches.list()] == [batch.id]


def test_a_line_that_fails_is_retried_on_its_next_candidate_and_answered_once(
    fake: FakeProviders, tmp_path: Path
) -> None:
    fake.script(ModelScript(LITE, faults=(status(500),)))
    client = _client(fake, tmp_path)
    uploaded = client.files.create(
        file=("in.jsonl", jsonl([line("a", "plain"), line("b", "plain")])), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake.batches.advance(3600)
    retried = client.batches.retrieve(batch.id)  # a: failed on Gemini, now sent to gpt-4o-mini
    assert retried.status == "in_progress" and fake.batches.lines_submitted("openai") == 1
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 0)
    assert done.output_file_id is not None
    out = {x["custom_id"]: x for x in read_jsonl(client.files.content(done.output_file_id).text)}
    assert out["a"]["response"]["body"]["model"] == MINI and out["b"]["response"]["body"]["model"] == LITE
    assert [a["model"] for a in out["a"]["routing"]["attempts"]] == [LITE, MINI]


def test_lines_a_provider_expires_are_retried_elsewhere(fake: FakeProviders, tmp_path: Path) -> None:
    fake.batches.expire.add("gemini")
    client = _client(fake, tmp_path)
    uploaded = client.files.create(file=("in.jsonl", jsonl([line("a", "plain")])), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake.batches.advance(86_400)
    client.batches.retrieve(batch.id)
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.output_file_id is not None
    (entry,) = read_jsonl(client.files.content(done.output_file_id).text)
    assert entry["response"]["body"]["model"] == MINI
    assert entry["routing"]["attempts"][0]["code"] == "batch_expired"


def test_a_line_no_candidate_can_serve_is_in_the_error_file(fake: FakeProviders, tmp_path: Path) -> None:
    client = _client(fake, tmp_path)
    lines = [line("ok", "plain"), line("unknown", "plain", model="no-such-model")]
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.error_file_id is not None
    (error,) = read_jsonl(client.files.content(done.error_file_id).text)
    assert error["custom_id"] == "unknown" and error["error"]["code"] == "no_candidate"
    assert "no-such-model" in error["error"]["message"]


def test_cancel_stops_the_providers_batches_and_answers_nothing_more(
    fake: FakeProviders, tmp_path: Path
) -> None:
    client = _client(fake, tmp_path)
    uploaded = client.files.create(file=("in.jsonl", jsonl(mixed_lines(4))), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status == "cancelled" and cancelled.request_counts is not None
    assert cancelled.request_counts.failed == 4 and cancelled.output_file_id is None
    fake.batches.advance(3600)
    assert client.batches.retrieve(batch.id).status == "cancelled"
    assert fake.requests_for(LITE) == [] and fake.requests_for(HAIKU) == []


def test_a_malformed_input_file_is_refused_at_upload_with_what_to_fix(
    fake: FakeProviders, tmp_path: Path
) -> None:
    client = _client(fake, tmp_path)
    with pytest.raises(openai.BadRequestError, match="custom_id 'a' is used twice"):
        client.files.create(
            file=("in.jsonl", jsonl([line("a", "plain"), line("a", "plain")])), purpose="batch"
        )


def test_ids_router_does_not_own_go_to_openai_as_before(fake: FakeProviders) -> None:
    client = OpenAI(policy=batch_policy(fake), api_key="k", base_url=fake.openai_base, ledger="memory://")
    remote = openai.OpenAI(api_key="k", base_url=fake.openai_base).files.create(
        file=("x.jsonl", jsonl([line("a", "plain", model=MINI)])), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=remote.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.id.startswith("batch_fake")  # OpenAI's own batch, untouched by routing
    assert client.batches.retrieve(batch.id).status == "in_progress"
    assert client.files.retrieve(remote.id).filename == "x.jsonl"
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.output_file_id is not None
    (entry,) = read_jsonl(client.files.content(done.output_file_id).text)
    assert entry["response"]["body"]["model"] == MINI and "routing" not in entry


def test_per_line_cost_is_usage_times_the_batch_price(fake: FakeProviders, tmp_path: Path) -> None:
    client = _client(fake, tmp_path)
    uploaded = client.files.create(file=("in.jsonl", jsonl(mixed_lines(4))), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.output_file_id is not None
    for entry in read_jsonl(client.files.content(done.output_file_id).text):
        body = entry["response"]["body"]
        price_in, price_out = BATCH_PRICES[body["model"]]
        usage = body["usage"]
        expected = (usage["prompt_tokens"] * price_in + usage["completion_tokens"] * price_out) / 1e6
        assert abs(entry["routing"]["cost_usd"] - expected) < 1e-9


def test_a_line_with_an_image_goes_only_to_a_model_behind_openais_batch_api(
    fake: FakeProviders, tmp_path: Path
) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    content = [{"type": "text", "text": "What is on the label?"}, image]
    client = _client(fake, tmp_path)
    lines = [line("img", "plain", messages=[{"role": "user", "content": content}]), line("txt", "plain")]
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.output_file_id is not None
    out = {x["custom_id"]: x for x in read_jsonl(client.files.content(done.output_file_id).text)}
    # Gemini is cheaper and sees images, but the line would reach it without its image.
    assert out["img"]["response"]["body"]["model"] == MINI and out["txt"]["response"]["body"]["model"] == LITE
