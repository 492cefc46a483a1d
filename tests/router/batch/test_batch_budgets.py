"""A batch job's worst case is reserved at batch prices before anything is sent; each line settles at
its own cost; a job that does not fit the cap is refused whole."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest
from router_fakes import FakeProviders

from router import BudgetExceededError, OpenAI

from .helpers import KEY_ENV, STANDARD_PRICES, batch_policy, jsonl, mixed_lines, read_jsonl


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "test-key")


def _spent_and_reserved(client: OpenAI) -> tuple[float, float]:
    """The policy-wide line's figures; the report lists only periods with spend or reservations."""
    report = client._router._ledger().report(now=time.time())
    rows = [r[3] for r in report if r[0] == "*"]
    return (rows[0].spent_usd, rows[0].reserved_usd) if rows else (0.0, 0.0)


def test_a_job_that_does_not_fit_the_cap_is_refused_before_anything_is_sent(
    fake: FakeProviders, tmp_path: Path
) -> None:
    client = OpenAI(
        policy=batch_policy(fake, budget={"limit_usd": 0.001, "window": "total"}),
        api_key="k",
        ledger=f"sqlite:///{tmp_path}/ledger.sqlite3",
    )
    uploaded = client.files.create(file=("in.jsonl", jsonl(mixed_lines(40))), purpose="batch")
    with pytest.raises(BudgetExceededError) as caught:
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert isinstance(caught.value, openai.RateLimitError)
    assert caught.value.amount_usd > 0.001  # the whole job's worst case, not one line's
    assert fake.batches.lines_submitted() == 0
    assert _spent_and_reserved(client) == (0.0, 0.0)
    assert list(client.batches.list()) == []


def test_the_job_reserves_its_worst_case_then_settles_each_line_at_its_cost(
    fake: FakeProviders, tmp_path: Path
) -> None:
    client = OpenAI(
        policy=batch_policy(fake, budget={"limit_usd": 5.0, "window": "total"}),
        api_key="k",
        ledger=f"sqlite:///{tmp_path}/ledger.sqlite3",
    )
    uploaded = client.files.create(file=("in.jsonl", jsonl(mixed_lines(20))), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    spent, reserved = _spent_and_reserved(client)
    assert spent == 0.0 and reserved > 0.0
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.output_file_id is not None
    out = read_jsonl(client.files.content(done.output_file_id).text)
    costs = [x["routing"]["cost_usd"] for x in out]
    spent, reserved = _spent_and_reserved(client)
    assert reserved == 0.0
    assert abs(spent - sum(costs)) < 1e-9 and spent <= 5.0
    standard = 0.0
    for entry in out:
        body = entry["response"]["body"]
        price_in, price_out = STANDARD_PRICES[body["model"]]
        standard += (
            body["usage"]["prompt_tokens"] * price_in + body["usage"]["completion_tokens"] * price_out
        ) / 1e6
    assert abs(spent - standard / 2) < 1e-9  # every provider here sells batch at exactly half
