"""The fleet-wide tpm/rpm counters: the same claims in memory, SQLite and Redis, no window over its limits."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.ledger._rates import (
    WINDOW_S,
    MemoryRates,
    Rates,
    RedisRates,
    SqliteRates,
    duration_s,
    open_rates,
    provider_usage,
    schedule,
)

T0 = 1_700_000_000.0
_EXAMPLES = itertools.count()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def rates(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rates]:
    made: Rates
    if request.param == "memory":
        made = MemoryRates()
    elif request.param == "sqlite":
        made = SqliteRates(tmp_path / "ledger.sqlite3.rates")
    else:
        made = RedisRates(request.getfixturevalue("redis_url"))
    yield made
    made.close()


def max_in_any_window(times: list[float], tokens: list[int] | None = None) -> tuple[int, int]:
    """The most requests, and tokens, any 60-s window (t - 60, t] holds."""
    pairs = sorted(zip(times, tokens or [0] * len(times), strict=True))
    most_requests = most_tokens = 0
    for end, _ in pairs:
        inside = [used for at, used in pairs if end - WINDOW_S < at <= end]
        most_requests = max(most_requests, len(inside))
        most_tokens = max(most_tokens, sum(inside))
    return most_requests, most_tokens


def test_a_full_window_refuses_with_when_the_oldest_claim_leaves(rates: Rates) -> None:
    for offset in (0.0, 10.0):
        assert rates.claim("d", rpm=2, tpm=None, tokens=1, now=T0 + offset, max_wait_s=0).granted
    refused = rates.claim("d", rpm=2, tpm=None, tokens=1, now=T0 + 20, max_wait_s=0)
    assert not refused.granted and refused.wait_s == pytest.approx(40.0)
    assert rates.claim("d", rpm=2, tpm=None, tokens=1, now=T0 + 60, max_wait_s=0).granted


def test_a_claim_allowed_to_wait_is_scheduled_when_a_slot_frees(rates: Rates) -> None:
    rates.claim("d", rpm=1, tpm=None, tokens=1, now=T0, max_wait_s=0)
    waiting = rates.claim("d", rpm=1, tpm=None, tokens=1, now=T0 + 5, max_wait_s=100)
    assert waiting.granted and waiting.wait_s == pytest.approx(55.0)
    # Claims are handed out in order: the next one queues behind the scheduled one.
    later = rates.claim("d", rpm=1, tpm=None, tokens=1, now=T0 + 6, max_wait_s=200)
    assert later.granted and later.wait_s == pytest.approx(114.0)


def test_tokens_per_minute_count_each_claims_tokens_and_settle_corrects_them(rates: Rates) -> None:
    first = rates.claim("d", rpm=None, tpm=1000, tokens=800, now=T0, max_wait_s=0)
    assert first.granted
    assert not rates.claim("d", rpm=None, tpm=1000, tokens=300, now=T0 + 1, max_wait_s=0).granted
    rates.settle("d", first.entry, 100)  # the call used far fewer tokens than its estimate
    assert rates.claim("d", rpm=None, tpm=1000, tokens=300, now=T0 + 2, max_wait_s=0).granted
    assert rates.usage(["d", "other"], T0 + 3) == {"d": (2, 400), "other": (0, 0)}


def test_a_request_larger_than_the_tpm_waits_for_an_empty_window(rates: Rates) -> None:
    assert rates.claim("d", rpm=None, tpm=100, tokens=10, now=T0, max_wait_s=0).granted
    big = rates.claim("d", rpm=None, tpm=100, tokens=5000, now=T0 + 1, max_wait_s=120)
    assert big.granted and big.wait_s == pytest.approx(59.0)


def test_deployments_are_counted_apart(rates: Rates) -> None:
    assert rates.claim("m/a", rpm=1, tpm=None, tokens=1, now=T0, max_wait_s=0).granted
    assert rates.claim("m/b", rpm=1, tpm=None, tokens=1, now=T0, max_wait_s=0).granted
    assert not rates.claim("m/a", rpm=1, tpm=None, tokens=1, now=T0, max_wait_s=0).granted


def test_what_the_provider_reports_used_fills_the_window_until_its_reset(rates: Rates) -> None:
    rates.observe("d", used_requests=3, used_tokens=0, until=T0 + 10, now=T0)
    assert not rates.claim("d", rpm=3, tpm=None, tokens=1, now=T0 + 5, max_wait_s=0).granted
    assert rates.claim("d", rpm=3, tpm=None, tokens=1, now=T0 + 10, max_wait_s=0).granted


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0, max_value=20), min_size=1, max_size=60),
    sizes=st.lists(st.integers(min_value=1, max_value=400), min_size=60, max_size=60),
    rpm=st.integers(min_value=1, max_value=8),
    tpm=st.integers(min_value=100, max_value=1500),
    wait=st.booleans(),
)
def test_no_window_ever_holds_more_than_the_limits_whatever_the_arrivals(
    gaps: list[float], sizes: list[int], rpm: int, tpm: int, wait: bool
) -> None:
    rates = MemoryRates()
    now = T0
    granted: list[float] = []
    used: list[int] = []
    for gap, size in zip(gaps, sizes, strict=False):
        now += gap
        claim = rates.claim("d", rpm=rpm, tpm=tpm, tokens=size, now=now, max_wait_s=600 if wait else 0)
        if claim.granted:
            granted.append(now + claim.wait_s)
            used.append(min(size, tpm))
    requests, tokens = max_in_any_window(granted, used)
    assert requests <= rpm and tokens <= tpm


@given(entries=st.lists(st.tuples(st.floats(0, 59), st.integers(0, 50)), max_size=20))
def test_schedule_never_answers_before_now_or_before_the_latest_claim(
    entries: list[tuple[float, int]],
) -> None:
    ordered = sorted((T0 + at, used) for at, used in entries)
    at = schedule(ordered, T0 + 59, 5, 200, 30)
    assert at >= T0 + 59
    assert all(at >= e[0] for e in ordered)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    arrivals=st.lists(
        st.tuples(st.floats(min_value=0, max_value=10), st.floats(min_value=-30, max_value=30)),
        min_size=1,
        max_size=60,
    ),
    sizes=st.lists(st.integers(min_value=1, max_value=400), min_size=60, max_size=60),
    rpm=st.integers(min_value=1, max_value=8),
    tpm=st.integers(min_value=100, max_value=1500),
    wait=st.booleans(),
)
def test_no_window_ever_holds_more_than_the_limits_whatever_the_clocks(
    rates: Rates, arrivals: list[tuple[float, float]], sizes: list[int], rpm: int, tpm: int, wait: bool
) -> None:
    # Several hosts share the counters, their clocks up to 30 s apart either way: the claims' `now`s
    # come in any order. Every 60-s window still holds at most rpm requests and tpm tokens, in each
    # backend (one key per example: the fixture's counters outlive it). What keeps it so: no claim is
    # dated before the latest one, so a host whose clock lags never slips a claim into a window whose
    # older claims a host ahead of it has already pruned.
    key = f"d{next(_EXAMPLES)}"
    base = T0
    granted: list[float] = []
    used: list[int] = []
    for (gap, skew), size in zip(arrivals, sizes, strict=False):
        base += gap
        claim = rates.claim(
            key, rpm=rpm, tpm=tpm, tokens=size, now=base + skew, max_wait_s=600 if wait else 0
        )
        if claim.granted:
            granted.append(base + skew + claim.wait_s)
            used.append(min(size, tpm))
    requests, tokens = max_in_any_window(granted, used)
    assert requests <= rpm and tokens <= tpm


def test_sqlite_counters_are_shared_by_two_handles_on_one_file(tmp_path: Path) -> None:
    one, two = SqliteRates(tmp_path / "r"), SqliteRates(tmp_path / "r")
    assert one.claim("d", rpm=1, tpm=None, tokens=1, now=T0, max_wait_s=0).granted
    assert not two.claim("d", rpm=1, tpm=None, tokens=1, now=T0 + 1, max_wait_s=0).granted
    one.close()
    two.close()


def test_counters_live_beside_the_ledger_the_client_names(tmp_path: Path, redis_url: str) -> None:
    assert isinstance(open_rates(None), MemoryRates)
    assert isinstance(open_rates("memory://"), MemoryRates)
    sqlite = open_rates(f"sqlite:///{tmp_path}/ledger.db")
    assert isinstance(sqlite, SqliteRates) and sqlite.path == tmp_path / "ledger.db.rates"
    sqlite.close()
    redis = open_rates(redis_url)
    assert isinstance(redis, RedisRates)
    redis.close()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m", 3720.0), ("2.5", 2.5), ("soon", None)],
)
def test_reset_durations_read_as_openai_and_azure_write_them(text: str, seconds: float | None) -> None:
    assert duration_s(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_provider_headers_count_what_others_used_beyond_our_own_claims() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "50",
        "x-ratelimit-reset-requests": "6s",
        "x-ratelimit-remaining-tokens": "9000",
        "x-ratelimit-reset-tokens": "30s",
    }
    usage = provider_usage(headers, rpm=60, tpm=10_000, counted=(4, 200))
    assert usage is not None
    assert (usage.requests, usage.tokens, usage.reset_s) == (6, 800, 30.0)
    assert provider_usage({"x-ratelimit-remaining-requests": "56"}, rpm=60, tpm=None, counted=(4, 0)) is None


def test_sqlite_counters_written_before_the_totals_existed_are_counted_once_opened(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.rates"
    with sqlite3.connect(path) as db:  # the schema before per-key totals: claims only
        db.execute(
            "CREATE TABLE rate_claims (key TEXT NOT NULL, at REAL NOT NULL, tokens INTEGER NOT NULL,"
            " entry TEXT PRIMARY KEY)"
        )
        db.executemany("INSERT INTO rate_claims VALUES ('d', ?, 10, ?)", [(T0, "a"), (T0 + 1, "b")])
    db.close()
    rates = SqliteRates(path)
    try:
        assert rates.usage(["d"], T0 + 2) == {"d": (2, 20)}
        assert not rates.claim("d", rpm=2, tpm=None, tokens=1, now=T0 + 2, max_wait_s=0).granted
        assert rates.claim("d", rpm=3, tpm=None, tokens=1, now=T0 + 2, max_wait_s=0).granted
        again = SqliteRates(path)  # a second handle neither adds the triggers twice nor recounts
        assert again.usage(["d"], T0 + 2) == {"d": (3, 21)}
        again.close()
    finally:
        rates.close()


def test_sqlite_claims_ignore_expired_claims_not_yet_deleted(tmp_path: Path) -> None:
    rates = SqliteRates(tmp_path / "x.rates")
    try:
        for i in range(3):
            assert rates.claim("d", rpm=3, tpm=30, tokens=10, now=T0 + i, max_wait_s=0).granted
        # 60.5 s on, the first claim has expired: still stored until this handle's next prune (none
        # due), yet not counted.
        rates._pruned["d"] = T0 + 60.2
        assert len(rates.claims("d")) == 3
        assert rates.usage(["d"], T0 + 60.5) == {"d": (2, 20)}
        assert rates.claim("d", rpm=3, tpm=30, tokens=10, now=T0 + 60.5, max_wait_s=0).granted
        assert len(rates.claims("d")) == 4
        assert not rates.claim("d", rpm=3, tpm=None, tokens=1, now=T0 + 60.6, max_wait_s=0).granted
    finally:
        rates.close()


def test_a_window_of_ten_thousand_claims_is_still_claimed_read_and_settled(rates: Rates) -> None:
    # A busy deployment's minute: reading every claim on each request made Redis claims fail past
    # ~8,000 (one script cannot unpack more) and cost the client milliseconds a request long before.
    rates.observe("d", used_requests=9_999, used_tokens=0, until=T0 + 30, now=T0)
    claim = rates.claim("d", rpm=20_000, tpm=1_000_000, tokens=500, now=T0 + 1, max_wait_s=0)
    assert claim.granted and claim.wait_s == 0.0
    rates.settle("d", claim.entry, 200)
    assert rates.usage(["d"], T0 + 2) == {"d": (10_000, 200)}
    assert rates.usage(["d"], T0 + 31) == {"d": (1, 200)}  # the placeholders left with the reset


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["claim", "claim", "claim", "settle", "observe", "usage"]),
        st.sampled_from(["a", "b"]),
        st.floats(min_value=0, max_value=25),  # seconds since the previous operation
        st.integers(min_value=0, max_value=400),  # tokens (or requests, for observe)
        st.booleans(),  # a claim may wait (two minutes); an observe reports tokens too
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS, rpm=st.integers(min_value=1, max_value=6), tpm=st.integers(min_value=200, max_value=1200))
def test_sqlite_and_redis_answer_every_operation_as_the_memory_counters_do(
    ops: list[tuple[str, str, float, int, bool]],
    rpm: int,
    tpm: int,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    twins: list[Rates] = [
        MemoryRates(),
        SqliteRates(tmp_path_factory.mktemp("twin") / "r.rates"),
        RedisRates(redis_url),
    ]
    entries: list[list[tuple[str, str]]] = [[] for _ in twins]
    now = T0
    try:
        for op, key, gap, amount, flag in ops:
            now += gap
            if op == "claim":
                claims = [
                    r.claim(
                        key, rpm=rpm, tpm=tpm, tokens=max(amount, 1), now=now, max_wait_s=120 if flag else 0
                    )
                    for r in twins
                ]
                assert {c.granted for c in claims} == {claims[0].granted}, claims
                assert [c.wait_s for c in claims] == pytest.approx([claims[0].wait_s] * 3), claims
                for made, claim in zip(entries, claims, strict=True):
                    if claim.granted:
                        made.append((key, claim.entry))
            elif op == "settle" and entries[0]:
                pick = amount % len(entries[0])
                for rates, made in zip(twins, entries, strict=True):
                    rates.settle(made[pick][0], made[pick][1], amount // 2)
            elif op == "observe":
                for rates in twins:
                    rates.observe(key, amount % 4, amount if flag else 0, until=now + gap, now=now)
            else:
                answers = [r.usage(["a", "b"], now) for r in twins]
                assert answers[1] == answers[0] and answers[2] == answers[0]
        assert twins[2].usage(["a", "b"], now) == twins[0].usage(["a", "b"], now)
    finally:
        for rates in twins:
            rates.close()


def test_sqlite_counters_copy_their_wal_back_on_a_thread_that_ends_with_them(tmp_path: Path) -> None:
    import gc

    rates = SqliteRates(tmp_path / "r.rates")
    assert rates.claim("d", rpm=5, tpm=None, tokens=1, now=T0, max_wait_s=0).granted
    closed = rates._checkpointer._thread
    rates.close()
    closed.join(timeout=10)  # a safety bound: the thread ends at once when told to
    dropped = SqliteRates(tmp_path / "r.rates")
    thread = dropped._checkpointer._thread
    del dropped  # never closed: the handle's finalizer tells its thread to end
    gc.collect()
    thread.join(timeout=10)
    assert not closed.is_alive() and not thread.is_alive()


def test_sqlite_counters_keep_at_most_half_a_second_of_expired_claims(tmp_path: Path) -> None:
    # Every claim and read counts the expired claims still stored, to leave them out: five seconds
    # of them at a busy deployment's rate made each request several times dearer once the window
    # was full.
    rates = SqliteRates(tmp_path / "r.rates")
    try:
        for i in range(750):  # ten claims a second for 75 s
            assert rates.claim("d", rpm=10_000, tpm=None, tokens=1, now=T0 + i / 10, max_wait_s=0).granted
        now = T0 + 74.95
        stored_expired = [at for at in rates.claims("d") if at <= now - WINDOW_S]
        assert len(stored_expired) <= 6
        assert rates.usage(["d"], now) == {"d": (600, 600)}  # and none of them counted
    finally:
        rates.close()
