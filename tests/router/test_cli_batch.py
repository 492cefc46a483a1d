"""``router batch``: submit, status, results, list, cancel and resume, against the fake batch APIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from router_fakes import FakeProviders
from typer.testing import CliRunner

from router.cli import app

from .batch.helpers import EXPECTED_MODEL, KEY_ENV, KINDS, LITE, batch_policy, jsonl, mixed_lines, read_jsonl

runner = CliRunner()


@pytest.fixture
def files(fake: FakeProviders, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Path]:
    """The policy/ledger options and an 8-line input file."""
    monkeypatch.setenv(KEY_ENV, "test-key")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        json.dumps(batch_policy(fake).model_dump(mode="json", by_alias=True, exclude_none=True))
    )
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(mixed_lines(8)))
    return ["--policy", str(policy), "--ledger", f"sqlite:///{tmp_path}/ledger.sqlite3"], source


def test_submit_then_results_writes_one_answer_per_line(
    fake: FakeProviders, tmp_path: Path, files: tuple[list[str], Path]
) -> None:
    options, source = files
    submitted = runner.invoke(app, ["batch", "submit", str(source), *options])
    assert submitted.exit_code == 0, submitted.output
    batch_id = submitted.output.splitlines()[0]
    assert batch_id.startswith("batch_rtr_") and LITE in submitted.output
    early = runner.invoke(app, ["batch", "results", batch_id, "-o", str(tmp_path / "out.jsonl"), *options])
    assert early.exit_code == 1 and "--watch" in early.output
    fake.batches.advance(3600)
    status = runner.invoke(app, ["batch", "status", batch_id, *options])
    assert status.exit_code == 0 and "completed" in status.output and "saved $" in status.output
    done = runner.invoke(app, ["batch", "results", batch_id, "-o", str(tmp_path / "out.jsonl"), *options])
    assert done.exit_code == 0, done.output
    out = read_jsonl((tmp_path / "out.jsonl").read_text())
    assert [x["response"]["body"]["model"] for x in out] == [EXPECTED_MODEL[KINDS[i % 4]] for i in range(8)]
    listed = runner.invoke(app, ["batch", "list", *options])
    assert batch_id in listed.output and "8/8 done" in listed.output


def test_cancel_and_resume_through_the_command_line(
    fake: FakeProviders, files: tuple[list[str], Path]
) -> None:
    options, source = files
    first = runner.invoke(app, ["batch", "submit", str(source), *options]).output.splitlines()[0]
    second = runner.invoke(app, ["batch", "submit", str(source), *options]).output.splitlines()[0]
    cancelled = runner.invoke(app, ["batch", "cancel", first, *options])
    assert cancelled.exit_code == 0 and cancelled.output.strip() == f"{first}: cancelled"
    fake.batches.advance(3600)
    resumed = runner.invoke(app, ["batch", "resume", *options])
    assert resumed.exit_code == 0 and f"{second}: completed" in resumed.output and first not in resumed.output


def test_an_unknown_batch_id_is_one_line_on_stderr(files: tuple[list[str], Path]) -> None:
    options, _ = files
    result = runner.invoke(app, ["batch", "status", "batch_rtr_missing", *options])
    assert result.exit_code == 1 and "No router batch 'batch_rtr_missing'" in result.output


def test_status_watch_polls_until_the_job_ends_sleeping_between_polls(
    fake: FakeProviders, files: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    options, source = files
    batch_id = runner.invoke(app, ["batch", "submit", str(source), *options]).output.splitlines()[0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the wait moves the fake providers' batch clock instead
        slept.append(seconds)
        fake.batches.advance(30)

    monkeypatch.setattr("router._cli_batch._sleep", sleep)
    watched = runner.invoke(app, ["batch", "status", batch_id, "--watch", "--interval", "30", *options])
    assert watched.exit_code == 0, watched.output
    # The fake batches end 60 s after submission: polled at 0 s and 30 s (waiting), done at 60 s.
    assert slept == [30.0, 30.0]
    assert "completed" in watched.output and "saved $" in watched.output
    done = runner.invoke(
        app, ["batch", "results", batch_id, "-o", str(source.with_name("o.jsonl")), *options]
    )
    assert done.exit_code == 0 and "8 answers" in done.output


def test_watch_stops_after_max_polls_on_a_job_that_does_not_end(
    fake: FakeProviders, files: tuple[list[str], Path]
) -> None:
    from router._cli_batch import _client, watch_job

    options, source = files
    batch_id = runner.invoke(app, ["batch", "submit", str(source), *options]).output.splitlines()[0]
    slept: list[float] = []
    client = _client(Path(options[1]), options[3])
    try:
        polls = watch_job(client, batch_id, 5.0, sleep=slept.append, max_polls=3)
        assert client.batches.retrieve(batch_id).status == "in_progress"
    finally:
        client.close()
    assert polls == 3 and slept == [5.0, 5.0]  # the clock never moved: polled three times, slept twice
