"""router.AsyncOpenAI's files and batches: the same routed jobs, awaited."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from router_fakes import FakeProviders

from router import AsyncOpenAI

from .helpers import EXPECTED_MODEL, KEY_ENV, KINDS, LITE, batch_policy, jsonl, line, mixed_lines, read_jsonl


def test_the_async_client_creates_polls_lists_and_reads_a_routed_batch(
    fake: FakeProviders, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "test-key")

    async def run() -> list[str]:
        client = AsyncOpenAI(policy=batch_policy(fake), api_key="k", ledger=f"sqlite:///{tmp_path}/l.sqlite3")
        try:
            uploaded = await client.files.create(file=("in.jsonl", jsonl(mixed_lines(4))), purpose="batch")
            batch = await client.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            assert [b.id async for b in client.batches.list()] == [batch.id]
            assert [b.id for b in (await client.batches.list()).data] == [batch.id]
            fake.batches.advance(3600)
            done = await client.batches.retrieve(batch.id)
            assert done.status == "completed" and done.output_file_id is not None
            content = await client.files.content(done.output_file_id)
            return [x["response"]["body"]["model"] for x in read_jsonl(content.text)]
        finally:
            await client.close()

    assert asyncio.run(run()) == [EXPECTED_MODEL[KINDS[i]] for i in range(4)]


def test_the_async_client_answers_an_expired_line_in_real_time_on_its_own_loop(
    fake: FakeProviders, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "test-key")
    fake.batches.expire.add("gemini")

    async def run() -> dict[str, object]:
        client = AsyncOpenAI(
            policy=batch_policy(fake, batch={"retry": "realtime"}),
            api_key="k",
            ledger=f"sqlite:///{tmp_path}/l.sqlite3",
        )
        try:
            uploaded = await client.files.create(
                file=("in.jsonl", jsonl([line("a", "plain")])), purpose="batch"
            )
            batch = await client.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            fake.batches.advance(3600)
            done = await client.batches.retrieve(batch.id)
            assert done.status == "completed" and done.output_file_id is not None
            (entry,) = read_jsonl((await client.files.content(done.output_file_id)).text)
            routing: dict[str, object] = entry["routing"]
            return routing
        finally:
            await client.close()

    routing = asyncio.run(run())
    assert routing["tier"] == "standard" and routing["model"] == LITE
    assert [r.model for r in fake.requests if not r.path.startswith("batch:")] == [LITE]
