"""client.feedback(): outcomes of routed requests kept in the ledger's store, through router.OpenAI and
router.AsyncOpenAI on the fake providers, and `router train --from-ledger` learning from them."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest
from router_fakes import FakeProviders
from typer.testing import CliRunner

from policies.adequacy import Adequacy
from router import AsyncOpenAI, LedgerError, OpenAI, UnknownRequestError
from router._feedback import FLUSH_EVERY, decode_counts
from router.cli import app
from router.ledger._feedback import open_feedback
from tests.adequacy_helpers import write_hand_artifact

pytest.importorskip("numpy")


def policy_file(tmp_path: Path, fake: FakeProviders, *, log_content: bool = False) -> Path:
    write_hand_artifact(tmp_path / "adequacy.json")
    path = tmp_path / "policy.yaml"
    logging = "logging: {log_content: true}\n" if log_content else ""
    path.write_text(
        f"""
models:
  cheap:  {{provider: openai_compatible, api_base: "{fake.openai_base}", input_cost_per_mtok: 0.1,
            output_cost_per_mtok: 0.4}}
  strong: {{provider: openai_compatible, api_base: "{fake.openai_base}", input_cost_per_mtok: 2.5,
            output_cost_per_mtok: 10}}
routes:
  auto:
    strategy: cheapest
    candidates: [cheap, strong]
    adequacy: adequacy.json
    min_success: 0.8
{logging}"""
    )
    return path


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_feedback_keeps_the_model_and_the_prompts_term_counts_not_its_text(
    tmp_path: Path, fake: FakeProviders
) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    client = OpenAI(policy=policy_file(tmp_path, fake), ledger=ledger, wall_clock=lambda: 1000.0)
    easy = client.chat.completions.create(model="auto", messages=ask("An easy, easy question"))
    hard = client.chat.completions.create(model="auto", messages=ask("A hard question"))
    client.feedback(easy.routing.request_id, 0)
    client.feedback(hard, True)  # the response itself works too
    client.close()

    store = open_feedback(ledger)
    rows = {r.request_id: r for r in store.scored()}
    assert set(rows) == {easy.routing.request_id, hard.routing.request_id}
    first = rows[easy.routing.request_id]
    assert (first.model, first.route, first.feature, first.score, first.text) == (
        "cheap",
        "auto",
        "default",
        0.0,
        None,
    )
    assert first.cost_usd == easy.routing.cost_usd and first.at == 1000.0
    idx, counts = decode_counts(first.features or "")
    assert (idx.tolist(), counts.tolist()) == ([0], [2])  # "easy" twice: vocabulary index 0
    assert rows[hard.routing.request_id].model == "strong"
    assert store.featurizer(first.featurizer or "")["vocabulary"] == ["easy", "hard"]
    store.close()


def test_with_log_content_on_the_text_is_kept_too(tmp_path: Path, fake: FakeProviders) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    client = OpenAI(policy=policy_file(tmp_path, fake, log_content=True), ledger=ledger)
    answer = client.chat.completions.create(model="auto", messages=ask("An easy one"))
    client.feedback(answer, 0.5)
    client.close()
    (row,) = open_feedback(ledger).scored()
    assert (row.text, row.score) == ("An easy one", 0.5)


def test_feedback_for_an_unknown_request_says_which_requests_are_kept(
    tmp_path: Path, fake: FakeProviders
) -> None:
    client = OpenAI(policy=policy_file(tmp_path, fake), ledger=f"sqlite:///{tmp_path / 'l.db'}")
    with pytest.raises(UnknownRequestError, match=r"no routed request 'req_nope'.*adequacy:"):
        client.feedback("req_nope", 1)
    answer = client.chat.completions.create(model="auto", messages=ask("easy"))
    with pytest.raises(ValueError, match="between 0 and 1"):
        client.feedback(answer, 1.5)
    with pytest.raises(TypeError, match=r"routing\.request_id"):
        client.feedback(42, 1)
    client.close()


def test_a_policy_without_adequacy_keeps_no_feedback(tmp_path: Path, fake: FakeProviders) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(f'models:\n  cheap: {{provider: openai_compatible, api_base: "{fake.openai_base}"}}\n')
    client = OpenAI(policy=path, ledger="memory://")
    answer = client.chat.completions.create(model="cheap", messages=ask("hi"))
    with pytest.raises(UnknownRequestError, match="no route or feature with `adequacy:`"):
        client.feedback(answer, 1)
    client.close()


def test_requests_are_written_in_batches_not_one_write_each(tmp_path: Path, fake: FakeProviders) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    client = OpenAI(policy=policy_file(tmp_path, fake), ledger=ledger)
    ids = [
        client.chat.completions.create(model="auto", messages=ask("easy")).routing.request_id
        for _ in range(FLUSH_EVERY + 1)
    ]
    store = open_feedback(ledger)
    # The first batch is written; the last request waits in the client's buffer until feedback.
    assert store.score(ids[FLUSH_EVERY - 1], 1.0, now=0.0)
    assert not store.score(ids[FLUSH_EVERY], 1.0, now=0.0)
    client.feedback(ids[FLUSH_EVERY], 1)
    assert len(store.scored()) == 2
    client.close()
    store.close()


def test_the_async_client_records_feedback_off_the_event_loop(tmp_path: Path, fake: FakeProviders) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"

    async def run() -> str:
        client = AsyncOpenAI(policy=policy_file(tmp_path, fake), ledger=ledger)
        answer = await client.chat.completions.create(model="auto", messages=ask("hard"))
        await client.feedback(answer.routing.request_id, 1)
        with pytest.raises(UnknownRequestError):
            await client.feedback("req_unknown", 1)
        await client.close()
        return answer.routing.request_id

    request_id = asyncio.run(run())
    (row,) = open_feedback(ledger).scored()
    assert (row.request_id, row.model, row.score) == (request_id, "strong", 1.0)


def test_a_redis_ledger_keeps_the_feedback_in_redis(
    tmp_path: Path, fake: FakeProviders, redis_url: str
) -> None:
    client = OpenAI(policy=policy_file(tmp_path, fake), ledger=redis_url)
    answer = client.chat.completions.create(model="auto", messages=ask("easy easy"))
    client.feedback(answer, 0)
    with pytest.raises(UnknownRequestError):
        client.feedback("req_unknown", 0)
    client.close()
    store = open_feedback(redis_url)
    (row,) = store.scored()
    assert (row.request_id, row.model, row.score) == (answer.routing.request_id, "cheap", 0.0)
    assert decode_counts(row.features or "")[1].tolist() == [2]
    assert store.featurizer(row.featurizer or "")["vocabulary"] == ["easy", "hard"]
    store.close()


def write_labeled(path: Path, rows: list[tuple[str, int, int]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "cheap", "strong", "cheap|total_cost", "strong|total_cost"])
        for prompt, cheap, strong in rows:
            writer.writerow([prompt, cheap, strong, 0.0001, 0.003])
    return path


def test_feedback_then_train_from_the_ledger_makes_a_file_that_changes_the_routes_choices(
    tmp_path: Path, fake: FakeProviders
) -> None:
    ledger = tmp_path / "ledger.db"
    policy = policy_file(tmp_path, fake)
    client = OpenAI(policy=policy, ledger=f"sqlite:///{ledger}")
    # The shipped file sends "easy" prompts to the cheap model; in production it gets them wrong.
    for _ in range(8):
        answer = client.chat.completions.create(model="auto", messages=ask("an easy sum"))
        assert answer.model == "cheap"
        client.feedback(answer.routing.request_id, 0)
    for _ in range(4):
        answer = client.chat.completions.create(model="auto", messages=ask("a hard proof"))
        assert answer.model == "strong"
        client.feedback(answer.routing.request_id, 1)
    client.close()
    data = write_labeled(
        tmp_path / "data.csv",
        [("easy", 1, 1), ("easy one", 1, 1), ("hard", 0, 1), ("hard one", 0, 1), ("easy hard", 0, 0)],
    )

    out = tmp_path / "retrained.json"
    result = CliRunner().invoke(
        app, ["train", str(data), "--from-ledger", str(ledger), "--out", str(out), "--folds", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "12 scored requests (cheap 8, strong 4)" in result.output

    old = Adequacy.load(tmp_path / "adequacy.json")
    new = Adequacy.load(out)
    assert new.featurizer_id == old.featurizer_id  # the ledger's rows stay usable for the next round
    assert json.loads(out.read_text())["training"]["rows"] == 17
    assert old.predict("an easy sum")["cheap"] > 0.8 > new.predict("an easy sum")["cheap"]

    (tmp_path / "adequacy.json").write_bytes(out.read_bytes())
    retrained = OpenAI(policy=policy, ledger=f"sqlite:///{ledger}")
    answer = retrained.chat.completions.create(model="auto", messages=ask("an easy sum"))
    assert answer.model == "strong"
    assert answer.routing.rejected["cheap"].startswith("predicted success 0.")
    retrained.close()


def test_train_from_a_ledger_without_feedback_says_how_to_record_it(tmp_path: Path) -> None:
    open_feedback(f"sqlite:///{tmp_path / 'empty.db'}").close()
    result = CliRunner().invoke(
        app, ["train", "--from-ledger", str(tmp_path / "empty.db"), "--out", str(tmp_path / "a.json")]
    )
    assert result.exit_code == 1
    assert "no scored requests to train on" in result.output and "client.feedback" in result.output
    missing = CliRunner().invoke(
        app, ["train", "--from-ledger", str(tmp_path / "nope.db"), "--out", str(tmp_path / "a.json")]
    )
    assert missing.exit_code == 1 and "no such ledger file" in missing.output
    assert not (tmp_path / "nope.db").exists()


def test_a_ledger_that_cant_be_written_fails_feedback_not_the_requests(
    tmp_path: Path, fake: FakeProviders
) -> None:
    ledger = f"sqlite:///{tmp_path / 'missing-folder' / 'ledger.db'}"
    client = OpenAI(policy=policy_file(tmp_path, fake), ledger=ledger)
    answers = [
        client.chat.completions.create(model="auto", messages=ask("easy")) for _ in range(FLUSH_EVERY + 2)
    ]
    assert {a.model for a in answers} == {"cheap"}  # the failed batch write cost no answer
    with pytest.raises(LedgerError, match="missing-folder"):
        client.feedback(answers[0], 1)
    (tmp_path / "missing-folder").mkdir()
    client.feedback(answers[0], 1)  # the rows waited in memory and are written now
    assert len(open_feedback(ledger).scored()) == 1
    client.close()


def test_a_streamed_answer_takes_feedback_once_it_is_read(tmp_path: Path, fake: FakeProviders) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    client = OpenAI(policy=policy_file(tmp_path, fake), ledger=ledger)
    stream = client.chat.completions.create(model="auto", messages=ask("a hard one"), stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text
    client.feedback(stream.routing.request_id, 1)
    client.close()
    (row,) = open_feedback(ledger).scored()
    assert (row.model, row.score) == ("strong", 1.0)
