"""Nothing lost, nothing twice: a process SIGKILLed after planning, after a partial submit and while
polling; a fresh client resumes the job and every line is answered exactly once (the fake counts
what each provider was handed) and charged once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from router_fakes import FakeProviders

from router import OpenAI
from router.batch._resources import service_for

from .helpers import HAIKU, KEY_ENV, LITE, MINI, batch_policy, jsonl, mixed_lines, read_jsonl

LINES = 40


def _policy(fake: FakeProviders) -> dict[str, Any]:
    policy = batch_policy(fake, budget={"limit_usd": 5.0, "window": "total"})
    return policy.model_dump(mode="json", by_alias=True, exclude_none=True)


def _child(policy: dict[str, Any], ledger: str, kill_at: str, job_id: str | None) -> None:
    """Create a job (or move ``job_id`` on), dying by SIGKILL at the step ``kill_at``."""
    os.environ[KEY_ENV] = "test-key"
    client = OpenAI(policy=policy, api_key="k", ledger=ledger)

    def step(name: str) -> None:
        if name == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    service_for(client, on_step=step)
    if job_id is None:
        uploaded = client.files.create(file=("in.jsonl", jsonl(mixed_lines(LINES))), purpose="batch")
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    else:
        client.batches.retrieve(job_id)


def _run_killed(*args: Any) -> None:
    process = multiprocessing.get_context("spawn").Process(target=_child, args=args)
    process.start()
    process.join(timeout=120)
    assert process.exitcode == -signal.SIGKILL, (
        f"the child was to die at {args[2]!r}, exit code {process.exitcode}"
    )


def _resume_to_the_end(fake: FakeProviders, client: OpenAI, job_id: str) -> list[dict[str, Any]]:
    for _ in range(4):
        fake.batches.advance(3600)
        batch = client.batches.retrieve(job_id)
        if batch.status == "completed":
            assert batch.output_file_id is not None and batch.error_file_id is None
            return read_jsonl(client.files.content(batch.output_file_id).text)
    raise AssertionError(f"the job did not complete: {batch}")


def _assert_each_line_once(fake: FakeProviders, client: OpenAI, out: list[dict[str, Any]]) -> None:
    assert sorted(x["custom_id"] for x in out) == sorted(f"req-{i}" for i in range(LINES))
    assert sum(fake.batches.submitted.values()) == LINES and set(fake.batches.submitted.values()) == {1}
    report = client._router._ledger().report(now=time.time())
    (totals,) = [r[3] for r in report if r[0] == "*"]
    assert abs(totals.spent_usd - sum(x["routing"]["cost_usd"] for x in out)) < 1e-9
    assert totals.reserved_usd == 0.0


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "test-key")


@pytest.mark.parametrize("kill_at", ["planned", f"submitting:{LITE}", f"submitted:{LITE}"])
def test_a_job_killed_while_being_submitted_resumes_without_sending_anything_twice(
    fake: FakeProviders, tmp_path: Path, kill_at: str
) -> None:
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite3"
    _run_killed(_policy(fake), ledger, kill_at, None)
    sent_before = fake.batches.lines_submitted()
    assert sent_before == (LINES // 4 if kill_at.startswith("submitted") else 0)
    client = OpenAI(
        policy=batch_policy(fake, budget={"limit_usd": 5.0, "window": "total"}), api_key="k", ledger=ledger
    )
    (job,) = list(client.batches.list())
    assert job.status == "in_progress"
    out = _resume_to_the_end(fake, client, job.id)
    _assert_each_line_once(fake, client, out)


def test_a_job_killed_while_polling_resumes_and_records_each_answer_once(
    fake: FakeProviders, tmp_path: Path
) -> None:
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite3"
    policy = batch_policy(fake, budget={"limit_usd": 5.0, "window": "total"})
    first = OpenAI(policy=policy, api_key="k", ledger=ledger)
    uploaded = first.files.create(file=("in.jsonl", jsonl(mixed_lines(LINES))), purpose="batch")
    job = first.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    first.close()
    fake.batches.advance(3600)
    # Gemini's answers are recorded, gpt-4o-mini's are read but not yet recorded when the process dies.
    _run_killed(_policy(fake), ledger, f"polling:{MINI}", job.id)
    client = OpenAI(policy=policy, api_key="k", ledger=ledger)
    out = _resume_to_the_end(fake, client, job.id)
    _assert_each_line_once(fake, client, out)


def test_two_clients_moving_the_same_job_on_at_once_submit_each_line_once(
    fake: FakeProviders, tmp_path: Path
) -> None:
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite3"
    _run_killed(_policy(fake), ledger, "planned", None)  # every line planned, none sent
    policy = batch_policy(fake, budget={"limit_usd": 5.0, "window": "total"})
    clients = [OpenAI(policy=policy, api_key="k", ledger=ledger) for _ in range(2)]
    (job,) = list(clients[0].batches.list())
    barrier = threading.Barrier(2)

    def move_on(client: OpenAI) -> None:
        barrier.wait()
        client.batches.retrieve(job.id)

    threads = [threading.Thread(target=move_on, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake.batches.lines_submitted() == LINES
    out = _resume_to_the_end(fake, clients[1], job.id)
    _assert_each_line_once(fake, clients[1], out)


@pytest.mark.parametrize("model", [LITE, MINI])
def test_a_batch_the_provider_accepted_just_before_the_crash_is_found_not_sent_again(
    fake: FakeProviders, tmp_path: Path, model: str
) -> None:
    """Killed after OpenAI or Gemini accepted a group but before the store knew: resume finds the
    batch by the group id it carries (metadata, display name) and polls it."""
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite3"
    _run_killed(_policy(fake), ledger, f"accepted:{model}", None)
    client = OpenAI(
        policy=batch_policy(fake, budget={"limit_usd": 5.0, "window": "total"}), api_key="k", ledger=ledger
    )
    (job,) = list(client.batches.list())
    out = _resume_to_the_end(fake, client, job.id)
    _assert_each_line_once(fake, client, out)


def test_an_anthropic_batch_accepted_just_before_the_crash_is_sent_again_the_known_limit(
    fake: FakeProviders, tmp_path: Path
) -> None:
    """Anthropic's batches carry nothing of ours to look them up by: that group is sent twice (the
    one window docs/batch.md names), yet each line is in the output, and charged, once."""
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite3"
    _run_killed(_policy(fake), ledger, f"accepted:{HAIKU}", None)
    client = OpenAI(
        policy=batch_policy(fake, budget={"limit_usd": 5.0, "window": "total"}), api_key="k", ledger=ledger
    )
    (job,) = list(client.batches.list())
    out = _resume_to_the_end(fake, client, job.id)
    assert sorted(x["custom_id"] for x in out) == sorted(f"req-{i}" for i in range(LINES))
    twice = {key for key, count in fake.batches.submitted.items() if count == 2}
    assert len(twice) == LINES // 4 and set(fake.batches.submitted.values()) == {1, 2}
    assert fake.batches.lines_submitted("anthropic") == 2 * LINES // 4
    (totals,) = [r[3] for r in client._router._ledger().report(now=time.time()) if r[0] == "*"]
    assert abs(totals.spent_usd - sum(x["routing"]["cost_usd"] for x in out)) < 1e-9
