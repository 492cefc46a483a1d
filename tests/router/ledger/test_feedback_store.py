"""The feedback store beside each ledger backend: rows, scores, featurizers, and what is forgotten."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.ledger._feedback import KEEP_UNSCORED_S, Routed, open_feedback

from .conftest import BACKENDS, backend_url


def row(request_id: str, at: float, model: str = "cheap") -> Routed:
    return Routed(request_id, at, "auto", "default", model, 0.001, "f1", "AAAA.AQAAAA==")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_scored_row_comes_back_with_its_score_and_featurizer(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = open_feedback(backend_url(backend, tmp_path, request))
    store.add([row("req_a", 10.0), row("req_b", 11.0, "strong")], {"f1": '{"vocabulary":["x"]}'}, now=11.0)
    assert store.score("req_b", 0.25, now=12.0) and store.score("req_a", 1.0, now=13.0)
    assert not store.score("req_missing", 1.0, now=13.0)
    got = store.scored()
    assert [(r.request_id, r.model, r.score, r.scored_at) for r in got] == [
        ("req_a", "cheap", 1.0, 13.0),
        ("req_b", "strong", 0.25, 12.0),
    ]
    assert got[0] == Routed(
        "req_a", 10.0, "auto", "default", "cheap", 0.001, "f1", "AAAA.AQAAAA==", None, 1.0, 13.0
    )
    assert store.featurizer("f1") == {"vocabulary": ["x"]} and store.featurizer("f2") is None
    store.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_unscored_rows_are_forgotten_after_the_retention_and_scored_ones_stay(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = open_feedback(backend_url(backend, tmp_path, request))
    store.add([row("req_old", 0.0), row("req_kept", 0.0)], {}, now=0.0)
    assert store.score("req_kept", 1.0, now=1.0)
    store.add([row("req_new", KEEP_UNSCORED_S + 10.0)], {}, now=KEEP_UNSCORED_S + 10.0)
    assert not store.score("req_old", 1.0, now=KEEP_UNSCORED_S + 11.0)
    assert store.score("req_new", 0.0, now=KEEP_UNSCORED_S + 11.0)
    assert [r.request_id for r in store.scored()] == ["req_kept", "req_new"]
    store.close()


def test_redis_rows_expire_unless_scored(redis_url: str) -> None:
    import redis

    store = open_feedback(redis_url)
    store.add([row("req_a", 0.0), row("req_b", 0.0)], {}, now=0.0)
    store.score("req_a", 1.0, now=1.0)
    client = redis.Redis.from_url(redis_url)
    assert client.ttl("router:{feedback}:r:req_a") == -1  # scored: kept
    assert 0 < client.ttl("router:{feedback}:r:req_b") <= KEEP_UNSCORED_S
    client.close()
    store.close()
