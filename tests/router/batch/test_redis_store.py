"""With a Redis ledger, jobs live on the same Redis server: resumable from any process that shares it."""

from __future__ import annotations

import threading

import pytest
from router_fakes import FakeProviders

from router import OpenAI
from router.batch._redis_store import RedisJobStore
from router.batch._resources import service_for

from .helpers import KEY_ENV, LITE, batch_policy
from .test_batch_crash import LINES, _assert_each_line_once, _policy, _resume_to_the_end, _run_killed


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "test-key")


def _client(fake: FakeProviders, redis_url: str) -> OpenAI:
    policy = batch_policy(fake, budget={"limit_usd": 5.0, "window": "total"})
    return OpenAI(policy=policy, api_key="k", ledger=redis_url)


def test_a_job_killed_after_a_partial_submit_resumes_from_the_redis_store(
    fake: FakeProviders, redis_url: str
) -> None:
    _run_killed(_policy(fake), redis_url, f"submitted:{LITE}", None)
    assert fake.batches.lines_submitted() == LINES // 4
    client = _client(fake, redis_url)
    assert isinstance(service_for(client).store, RedisJobStore)
    (job,) = list(client.batches.list())
    assert job.status == "in_progress"
    out = _resume_to_the_end(fake, client, job.id)
    _assert_each_line_once(fake, client, out)


def test_two_processes_sharing_the_redis_store_submit_each_line_once(
    fake: FakeProviders, redis_url: str
) -> None:
    _run_killed(_policy(fake), redis_url, "planned", None)
    clients = [_client(fake, redis_url) for _ in range(2)]
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
    _assert_each_line_once(fake, clients[0], _resume_to_the_end(fake, clients[0], job.id))
