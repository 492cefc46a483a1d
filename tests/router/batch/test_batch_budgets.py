"""A batch job's worst case is reserved at batch prices before anything is sent; each line settles at
its own cost; a job that does not fit the cap is refused whole, or (on_exceed: partial) submitted in part."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest
from router_fakes import FakeProviders

from router import BudgetExceededError, OpenAI

from .helpers import KEY_ENV, STANDARD_PRICES, batch_policy, jsonl, line, mixed_lines, read_jsonl


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


def _worst_case_of_one_plain_line(fake: FakeProviders, tmp_path: Path) -> float:
    """What a job of one plain line reserves: every plain line here has the same worst case."""
    client = OpenAI(
        policy=batch_policy(fake, budget={"limit_usd": 5.0, "window": "total"}),
        api_key="k",
        ledger=f"sqlite:///{tmp_path}/probe.sqlite3",
    )
    uploaded = client.files.create(file=("one.jsonl", jsonl([line("probe", "plain")])), purpose="batch")
    client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    reserved = _spent_and_reserved(client)[1]
    assert reserved > 0.0
    return reserved


def test_partial_submits_exactly_the_lines_whose_worst_case_fits_and_fails_the_rest(
    fake: FakeProviders, tmp_path: Path
) -> None:
    worst = _worst_case_of_one_plain_line(fake, tmp_path)
    fake.batches.reset()
    cap = 7.5 * worst  # room for seven lines' worst case, not eight
    client = OpenAI(
        policy=batch_policy(
            fake, budget={"limit_usd": cap, "window": "total"}, batch={"on_exceed": "partial"}
        ),
        api_key="k",
        ledger=f"sqlite:///{tmp_path}/ledger.sqlite3",
    )
    lines = [line(f"req-{i}", "plain") for i in range(20)]
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert fake.batches.lines_submitted() == 7
    spent, reserved = _spent_and_reserved(client)
    assert spent == 0.0 and reserved == pytest.approx(7 * worst, abs=1e-9) and reserved <= cap
    fake.batches.advance(3600)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (7, 13)
    assert done.output_file_id is not None and done.error_file_id is not None
    out = read_jsonl(client.files.content(done.output_file_id).text)
    errors = read_jsonl(client.files.content(done.error_file_id).text)
    assert [x["custom_id"] for x in out] == [f"req-{i}" for i in range(7)]  # file order
    assert [x["custom_id"] for x in errors] == [f"req-{i}" for i in range(7, 20)]
    assert {x["error"]["code"] for x in errors} == {"budget_exceeded"}
    assert "raise the budget" in errors[0]["error"]["message"]
    spent, reserved = _spent_and_reserved(client)
    assert reserved == 0.0 and spent <= cap
    assert spent == pytest.approx(sum(x["routing"]["cost_usd"] for x in out), abs=1e-9)


def test_partial_refuses_the_job_whole_when_not_one_line_fits(fake: FakeProviders, tmp_path: Path) -> None:
    client = OpenAI(
        policy=batch_policy(
            fake, budget={"limit_usd": 1e-9, "window": "total"}, batch={"on_exceed": "partial"}
        ),
        api_key="k",
        ledger=f"sqlite:///{tmp_path}/ledger.sqlite3",
    )
    uploaded = client.files.create(file=("in.jsonl", jsonl(mixed_lines(8))), purpose="batch")
    with pytest.raises(BudgetExceededError):
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert fake.batches.lines_submitted() == 0 and _spent_and_reserved(client) == (0.0, 0.0)
