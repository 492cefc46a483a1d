"""Lines a provider fails or expires are answered in real time when the policy (or, with ``auto``, the
job's deadline) says so: through the client's routed chat path, at real-time prices, marked
``routing.tier: "standard"``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from router_fakes import FakeProviders, ModelScript, status

from router import OpenAI
from router.batch._service import retry_tier

from .helpers import HAIKU, KEY_ENV, LITE, MINI, STANDARD_PRICES, batch_policy, jsonl, line, read_jsonl


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "test-key")


def _client(fake: FakeProviders, tmp_path: Path, batch: dict[str, Any]) -> OpenAI:
    """A client on the fake batch clock, so the job's deadline moves with ``fake.batches.advance``."""
    return OpenAI(
        policy=batch_policy(fake, batch=batch, budget={"limit_usd": 5.0, "window": "total"}),
        api_key="k",
        ledger=f"sqlite:///{tmp_path}/ledger.sqlite3",
        wall_clock=fake.batches.now,
    )


def _realtime_requests(fake: FakeProviders) -> list[str]:
    return [r.model for r in fake.requests if not r.path.startswith("batch:")]


def _spent_and_reserved(client: OpenAI, now: float) -> tuple[float, float]:
    rows = [r[3] for r in client._router._ledger().report(now=now) if r[0] == "*"]
    return (rows[0].spent_usd, rows[0].reserved_usd) if rows else (0.0, 0.0)


@pytest.mark.parametrize(
    ("retry", "now", "deadline", "round_s", "tier"),
    [
        ("batch", 100.0, 150.0, 3600.0, "batch"),  # the policy never leaves batch
        ("realtime", 0.0, 1e9, 3600.0, "realtime"),  # always real time
        ("auto", 100.0, 3800.0, 3600.0, "batch"),  # one more round ends before the deadline
        ("auto", 100.0, 3600.0, 3600.0, "realtime"),  # it would end after it
    ],
)
def test_retry_tier_follows_the_policy_and_the_deadline(
    retry: str, now: float, deadline: float, round_s: float, tier: str
) -> None:
    assert retry_tier(retry, now, deadline, round_s) == tier


def test_an_expired_line_is_answered_in_real_time_when_another_round_would_miss_the_deadline(
    fake: FakeProviders, tmp_path: Path
) -> None:
    fake.batches.expire.add("gemini")
    client = _client(fake, tmp_path, {"retry": "auto"})
    uploaded = client.files.create(
        file=("in.jsonl", jsonl([line("a", "plain"), line("b", "tools")])), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"deadline_s": "7200"},  # two hours: a second 24h batch round cannot make it
    )
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 0)
    assert fake.batches.lines_submitted() == 2  # no second batch round
    assert _realtime_requests(fake) == [LITE]  # the expired line, once, on the chat path's cheapest
    assert done.output_file_id is not None
    out = {x["custom_id"]: x for x in read_jsonl(client.files.content(done.output_file_id).text)}
    a, b = out["a"], out["b"]
    assert b["routing"]["tier"] == "batch" and b["response"]["body"]["model"] == MINI
    assert a["routing"]["tier"] == "standard" and a["routing"]["model"] == LITE
    assert [(x["model"], x.get("code"), x.get("tier")) for x in a["routing"]["attempts"]] == [
        (LITE, "batch_expired", None),
        (LITE, None, "standard"),
    ]
    usage = a["response"]["body"]["usage"]
    price_in, price_out = STANDARD_PRICES[LITE]
    standard = (usage["prompt_tokens"] * price_in + usage["completion_tokens"] * price_out) / 1e6
    assert a["routing"]["cost_usd"] == pytest.approx(standard, abs=1e-9)  # real-time price, not half
    spent, reserved = _spent_and_reserved(client, fake.batches.now())
    assert reserved == 0.0
    assert spent == pytest.approx(a["routing"]["cost_usd"] + b["routing"]["cost_usd"], abs=1e-9)


def test_with_time_for_another_round_auto_retries_in_batch(fake: FakeProviders, tmp_path: Path) -> None:
    fake.batches.expire.add("gemini")
    client = _client(fake, tmp_path, {"retry": "auto", "round_s": 3600, "deadline_s": 86_400})
    uploaded = client.files.create(file=("in.jsonl", jsonl([line("a", "plain")])), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake.batches.advance(3600)
    retried = client.batches.retrieve(batch.id)
    assert retried.status == "in_progress" and fake.batches.lines_submitted("openai") == 1
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.output_file_id is not None and _realtime_requests(fake) == []
    (entry,) = read_jsonl(client.files.content(done.output_file_id).text)
    assert entry["routing"]["tier"] == "batch" and entry["routing"]["model"] == MINI


def test_retry_realtime_answers_a_failed_line_at_once_even_without_a_deadline(
    fake: FakeProviders, tmp_path: Path
) -> None:
    fake.batches.fail_ids.add("l0")  # the provider fails the first line of its batch
    client = _client(fake, tmp_path, {"retry": "realtime"})
    uploaded = client.files.create(file=("in.jsonl", jsonl([line("a", "tools")])), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.output_file_id is not None
    (entry,) = read_jsonl(client.files.content(done.output_file_id).text)
    assert entry["routing"]["tier"] == "standard" and _realtime_requests(fake) == [MINI]
    assert fake.batches.lines_submitted() == 1


def test_a_line_the_chat_path_cannot_answer_either_is_in_the_error_file(
    fake: FakeProviders, tmp_path: Path
) -> None:
    fake.batches.expire.add("gemini")
    for model in (LITE, MINI, HAIKU):
        fake.script(ModelScript(model, faults=(status(500),), repeat_faults=True))
    client = _client(fake, tmp_path, {"retry": "realtime"})
    uploaded = client.files.create(file=("in.jsonl", jsonl([line("a", "plain")])), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.error_file_id is not None
    (entry,) = read_jsonl(client.files.content(done.error_file_id).text)
    assert entry["custom_id"] == "a" and entry["routing"]["attempts"][-1]["tier"] == "standard"
    assert _spent_and_reserved(client, fake.batches.now())[1] == 0.0
