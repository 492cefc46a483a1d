"""The done-when of issue 16: 1,000 mixed lines split across the three batch protocols, one output
line per custom_id, each line charged usage x batch price, the ledger's spend their sum, under the cap."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from router_fakes import FakeProviders

from router import OpenAI

from .helpers import (
    BATCH_PRICES,
    EXPECTED_MODEL,
    KEY_ENV,
    KINDS,
    PROTOCOL,
    batch_policy,
    jsonl,
    mixed_lines,
    read_jsonl,
)

CAP = 2.0


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "test-key")


def test_a_thousand_mixed_lines_are_split_answered_once_each_and_charged_at_batch_prices(
    fake: FakeProviders, tmp_path: Path
) -> None:
    client = OpenAI(
        policy=batch_policy(fake, budget={"limit_usd": CAP, "window": "total"}),
        api_key="k",
        ledger=f"sqlite:///{tmp_path}/ledger.sqlite3",
    )
    lines = mixed_lines(1000)
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    expected_models = Counter(EXPECTED_MODEL[KINDS[i % 4]] for i in range(1000))
    for model, count in expected_models.items():
        assert fake.batches.lines_submitted(PROTOCOL[model]) == count
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (
        1000,
        1000,
        0,
    )
    assert done.output_file_id is not None and done.error_file_id is None
    out = read_jsonl(client.files.content(done.output_file_id).text)
    assert sorted(x["custom_id"] for x in out) == sorted(x["custom_id"] for x in lines)
    assert len(out) == 1000
    total = 0.0
    for n, entry in enumerate(out):
        body = entry["response"]["body"]
        assert body["model"] == EXPECTED_MODEL[KINDS[n % 4]]
        price_in, price_out = BATCH_PRICES[body["model"]]
        usage = body["usage"]
        exact = (usage["prompt_tokens"] * price_in + usage["completion_tokens"] * price_out) / 1e6
        assert abs(entry["routing"]["cost_usd"] - exact) < 1e-9
        total += entry["routing"]["cost_usd"]
    (row,) = [r for r in client._router._ledger().report(now=time.time()) if r[0] == "*"]
    assert abs(row[3].spent_usd - total) < 1e-9 and row[3].reserved_usd == 0.0
    assert row[3].spent_usd <= CAP
    assert sum(fake.batches.submitted.values()) == 1000 and set(fake.batches.submitted.values()) == {1}
