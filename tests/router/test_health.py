"""The circuit breaker state machine, on a fake clock: closed → open → half-open → closed (or open)."""

from __future__ import annotations

import threading

import pytest

from policies.schema import CooldownSpec
from router._health import COUNTED, MARK_DOWN, Breakers, Cooldown

from .fault_helpers import FakeClock

COOLDOWN = CooldownSpec(failures=3, window_s=60, cooldown_s=30)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breakers(clock: FakeClock) -> Breakers:
    return Breakers(clock)


def _fail(breakers: Breakers, times: int, kind: str = "server", model: str = "m") -> None:
    for _ in range(times):
        breakers.failed(model, kind, COOLDOWN)


def test_a_closed_breaker_admits_and_reports_nothing(breakers: Breakers) -> None:
    assert breakers.admit("m") is None
    assert dict(breakers.snapshot()) == {}


def test_failures_below_the_threshold_keep_the_breaker_closed(breakers: Breakers) -> None:
    _fail(breakers, 2)
    assert breakers.admit("m") is None
    assert "m" not in breakers.snapshot()


def test_the_thresholds_failure_within_the_window_opens_the_breaker_with_its_reason(
    breakers: Breakers,
) -> None:
    _fail(breakers, 3, "timeout")
    reason = breakers.snapshot()["m"]
    assert reason == "cooling down after 3 failures in 60s (last: timeout) (30.0s left)"
    assert breakers.admit("m") == reason


def test_failures_older_than_the_window_do_not_count(breakers: Breakers, clock: FakeClock) -> None:
    _fail(breakers, 2)
    clock.advance(61)
    _fail(breakers, 2)
    assert "m" not in breakers.snapshot()
    _fail(breakers, 1)
    assert "m" in breakers.snapshot()


def test_a_success_forgets_earlier_failures(breakers: Breakers) -> None:
    _fail(breakers, 2)
    breakers.succeeded("m")
    _fail(breakers, 2)
    assert "m" not in breakers.snapshot()


@pytest.mark.parametrize("kind", sorted(MARK_DOWN))
def test_auth_and_not_found_mark_the_deployment_down_at_once(breakers: Breakers, kind: str) -> None:
    _fail(breakers, 1, kind)
    assert breakers.snapshot()["m"].startswith(f"cooling down after an {kind} error")


@pytest.mark.parametrize("kind", ["bad_request", "context_window", "content_filter", "unknown"])
def test_errors_that_say_nothing_about_health_are_not_counted(breakers: Breakers, kind: str) -> None:
    assert kind not in COUNTED
    _fail(breakers, 10, kind)
    assert "m" not in breakers.snapshot()


def test_the_remaining_cooldown_counts_down_on_the_clock(breakers: Breakers, clock: FakeClock) -> None:
    _fail(breakers, 3)
    clock.advance(20)
    assert breakers.snapshot()["m"].endswith("(10.0s left)")


def test_after_the_cooldown_one_request_gets_the_half_open_trial(
    breakers: Breakers, clock: FakeClock
) -> None:
    _fail(breakers, 3)
    clock.advance(30)
    assert "m" not in breakers.snapshot()  # the planner may pick it again
    assert breakers.admit("m") is None  # the first request claims the trial
    refusal = breakers.admit("m")
    assert refusal is not None and "half-open" in refusal and "trial request is in flight" in refusal
    assert "trial request is in flight" in breakers.snapshot()["m"]


def test_a_successful_trial_closes_the_breaker(breakers: Breakers, clock: FakeClock) -> None:
    _fail(breakers, 3)
    clock.advance(30)
    assert breakers.admit("m") is None
    breakers.succeeded("m")
    assert dict(breakers.snapshot()) == {}
    assert breakers.admit("m") is None and breakers.admit("m") is None
    _fail(breakers, 2)  # counting starts over
    assert "m" not in breakers.snapshot()


def test_a_failed_trial_opens_the_breaker_again_for_a_full_cooldown(
    breakers: Breakers, clock: FakeClock
) -> None:
    _fail(breakers, 3)
    clock.advance(30)
    assert breakers.admit("m") is None
    _fail(breakers, 1, "connection")
    assert breakers.snapshot()["m"] == "cooling down after a failed trial (connection) (30.0s left)"


def test_a_trial_that_fails_for_the_requests_own_fault_lets_the_next_request_try(
    breakers: Breakers, clock: FakeClock
) -> None:
    _fail(breakers, 3)
    clock.advance(30)
    assert breakers.admit("m") is None
    _fail(breakers, 1, "bad_request")
    assert breakers.admit("m") is None


def test_a_retry_after_beyond_the_cap_opens_the_breaker_for_that_long(
    breakers: Breakers, clock: FakeClock
) -> None:
    breakers.open_for("m", 120, "a 429 asking to wait 120s")
    assert breakers.snapshot()["m"] == "cooling down after a 429 asking to wait 120s (120.0s left)"
    clock.advance(119)
    assert breakers.admit("m") is not None
    clock.advance(1)
    assert breakers.admit("m") is None


def test_a_shorter_opening_never_shortens_a_longer_one(breakers: Breakers, clock: FakeClock) -> None:
    breakers.open_for("m", 120, "a long Retry-After")
    _fail(breakers, 1, "auth")  # 30 s cooldown
    clock.advance(60)
    assert breakers.admit("m") is not None


def test_breakers_are_per_model(breakers: Breakers) -> None:
    _fail(breakers, 3, model="a")
    assert set(breakers.snapshot()) == {"a"}
    assert breakers.admit("b") is None


def test_two_clients_never_share_breaker_state(clock: FakeClock) -> None:
    first, second = Breakers(clock), Breakers(clock)
    _fail(first, 3)
    assert "m" in first.snapshot() and "m" not in second.snapshot()


def test_concurrent_requests_after_the_cooldown_get_exactly_one_trial(
    breakers: Breakers, clock: FakeClock
) -> None:
    _fail(breakers, 3)
    clock.advance(30)
    start = threading.Barrier(16)
    admitted: list[str | None] = []

    def ask() -> None:
        start.wait()
        admitted.append(breakers.admit("m"))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert admitted.count(None) == 1


def test_a_half_open_trial_that_never_reports_back_does_not_wedge_the_breaker(
    breakers: Breakers, clock: FakeClock
) -> None:
    _fail(breakers, 3)
    clock.advance(30)
    assert breakers.admit("m") is None  # the trial's request is abandoned: no outcome ever arrives
    clock.advance(3600)
    assert breakers.admit("m") is None


@pytest.mark.parametrize(
    ("kind", "opens"), [("rate_limited", 3), ("server", 3), ("timeout", 3), ("auth", 1), ("not_found", 1)]
)
def test_the_reason_knows_the_kind_that_opened_the_breaker_and_until_when(
    breakers: Breakers, clock: FakeClock, kind: str, opens: int
) -> None:
    _fail(breakers, opens, kind)
    clock.advance(10)
    reason = breakers.admit("m")
    assert isinstance(reason, Cooldown) and breakers.snapshot()["m"] == reason
    assert (reason.kind, reason.until) == (kind, 1000.0 + 30)


def test_a_long_retry_after_opens_the_breaker_as_a_rate_limit(breakers: Breakers, clock: FakeClock) -> None:
    breakers.open_for("m", 120, "a 429 asking to wait 120s")
    reason = breakers.snapshot()["m"]
    assert isinstance(reason, Cooldown) and (reason.kind, reason.until) == ("rate_limited", 1120.0)


def test_a_model_with_a_trial_in_flight_may_be_free_at_once(breakers: Breakers, clock: FakeClock) -> None:
    _fail(breakers, 3, "rate_limited")
    clock.advance(31)
    assert breakers.admit("m") is None  # this request's trial
    reason = breakers.admit("m")
    assert isinstance(reason, Cooldown) and reason.until == clock.now and reason.kind == "rate_limited"
