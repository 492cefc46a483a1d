"""The settings in force per route (top level + route overrides) and the backoff they imply."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.loader import parse_policy
from policies.schema import CooldownSpec, Policy, RetrySpec
from router._engine import Engine
from router._resilience import RETRYABLE, Resilience, resilience_for


def _policy(**top: Any) -> Policy:
    routes = top.pop("routes", {})
    return Policy.model_validate(
        {
            "models": {"a": {"provider": "openai_compatible", "api_base": "http://a.test/v1"}},
            "routes": {"plain": {"candidates": ["a"]}, **routes},
            **top,
        }
    )


def _settings(retry: RetrySpec) -> Resilience:
    return Resilience(
        retry=retry,
        timeout_s=60,
        max_attempts=6,
        max_retry_after_s=10,
        stream_idle_timeout_s=30,
        cooldown=CooldownSpec(),
    )


def test_the_defaults_are_the_documented_ones() -> None:
    settings = resilience_for(_policy(), None)
    assert settings.retry == RetrySpec(attempts=2, backoff_initial_s=0.5, backoff_max_s=8.0, jitter=True)
    assert (settings.timeout_s, settings.max_attempts, settings.max_retry_after_s) == (600.0, 6, 10.0)
    assert settings.stream_idle_timeout_s == 60.0
    assert settings.cooldown == CooldownSpec(failures=3, window_s=60.0, cooldown_s=30.0)


def test_a_route_without_overrides_takes_the_top_level_settings() -> None:
    policy = _policy(timeout_s=20, max_attempts=3, retry={"attempts": 4}, cooldown={"failures": 5})
    assert resilience_for(policy, "plain") == resilience_for(policy, None)
    assert resilience_for(policy, "plain").retry.attempts == 4


def test_a_routes_own_keys_win_over_the_top_level() -> None:
    policy = _policy(
        timeout_s=20,
        max_attempts=3,
        max_retry_after_s=5,
        stream_idle_timeout_s=15,
        routes={
            "strict": {
                "candidates": ["a"],
                "timeout_s": 2,
                "max_attempts": 1,
                "max_retry_after_s": 0,
                "stream_idle_timeout_s": 1,
                "retry": {"attempts": 1},
                "cooldown": {"failures": 1, "cooldown_s": 5},
            }
        },
    )
    strict = resilience_for(policy, "strict")
    assert (strict.timeout_s, strict.max_attempts, strict.max_retry_after_s) == (2.0, 1, 0.0)
    assert strict.stream_idle_timeout_s == 1.0
    assert strict.retry.attempts == 1 and strict.cooldown.failures == 1
    assert resilience_for(policy, "plain").timeout_s == 20.0  # other routes keep the top level


def test_a_route_unknown_to_the_policy_gets_the_top_level_settings() -> None:
    policy = _policy(timeout_s=7)
    assert resilience_for(policy, "nope").timeout_s == 7.0
    assert Engine(policy, env={}).resilience_for("nope").timeout_s == 7.0


def test_the_engine_merges_each_route_once() -> None:
    engine = Engine(_policy(routes={"fast": {"candidates": ["a"], "timeout_s": 3}}), env={})
    assert engine.resilience_for("fast") is engine.resilience_for("fast")
    assert engine.resilience_for("fast").timeout_s == 3.0
    assert engine.resilience_for(None).timeout_s == 600.0


def test_settings_are_frozen() -> None:
    settings = resilience_for(_policy(), None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.timeout_s = 1  # type: ignore[misc]


def test_a_route_retry_block_overrides_only_the_keys_it_sets() -> None:
    policy = _policy(
        retry={"attempts": 4, "backoff_max_s": 2, "jitter": False},
        routes={"more": {"candidates": ["a"], "retry": {"attempts": 6}}},
    )
    retry = resilience_for(policy, "more").retry
    assert retry == RetrySpec(attempts=6, backoff_initial_s=0.5, backoff_max_s=2.0, jitter=False)


def test_only_failures_a_second_call_may_cure_are_retried() -> None:
    assert {"rate_limited", "server", "timeout", "connection"} == RETRYABLE


# --------------------------------------------------------------------------- backoff


def test_without_jitter_the_wait_doubles_from_backoff_initial_s_up_to_backoff_max_s() -> None:
    settings = _settings(RetrySpec(backoff_initial_s=0.5, backoff_max_s=3, jitter=False))
    assert [settings.backoff_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_with_full_jitter_each_wait_is_uniform_between_zero_and_the_exponential_bound() -> None:
    settings = _settings(RetrySpec(backoff_initial_s=1, backoff_max_s=8, jitter=True))
    for failures, bound in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)):
        waits = [settings.backoff_s(failures) for _ in range(300)]
        assert all(0.0 <= w <= bound for w in waits)
        # Spread over the range rather than pinned to the bound (300 draws: chance of failure ~2^-300).
        assert min(waits) < bound / 2 < max(waits)


def test_a_zero_backoff_means_retrying_at_once() -> None:
    assert _settings(RetrySpec(backoff_initial_s=0, backoff_max_s=8)).backoff_s(3) == 0.0
    assert _settings(RetrySpec(backoff_initial_s=1, backoff_max_s=0)).backoff_s(3) == 0.0


def test_a_huge_failure_count_waits_the_cap_without_overflowing() -> None:
    assert _settings(RetrySpec(backoff_initial_s=0.5, backoff_max_s=8, jitter=False)).backoff_s(10_000) == 8.0
    assert 0.0 <= _settings(RetrySpec(backoff_initial_s=0.5, backoff_max_s=8)).backoff_s(10_000) <= 8.0


def test_failure_counts_below_one_are_treated_as_the_first_failure() -> None:
    settings = _settings(RetrySpec(backoff_initial_s=0.5, backoff_max_s=8, jitter=False))
    assert settings.backoff_s(0) == settings.backoff_s(1) == 0.5


@given(
    initial=st.floats(min_value=0.001, max_value=10),
    cap=st.floats(min_value=0.001, max_value=120),
    failures=st.integers(min_value=1, max_value=80),
    jitter=st.booleans(),
)
def test_backoff_follows_tenacitys_exponential_curve_capped_and_full_jittered(
    initial: float, cap: float, failures: int, jitter: bool
) -> None:
    settings = _settings(RetrySpec(backoff_initial_s=initial, backoff_max_s=cap, jitter=jitter))
    bound = min(initial * 2 ** (failures - 1), cap)
    wait = settings.backoff_s(failures)
    if jitter:
        assert 0.0 <= wait <= bound
    else:
        assert wait == pytest.approx(bound)


def test_the_example_in_the_resilience_docs_loads_with_its_route_overrides() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "resilience.md").read_text(encoding="utf-8")
    (block,) = [b.split("```", 1)[0] for b in docs.split("<!-- loads -->\n```yaml\n")[1:]]
    policy = parse_policy(block, source="docs/resilience.md")
    top, chat, batch = (resilience_for(policy, route) for route in (None, "chat", "batch"))
    assert (top.timeout_s, top.stream_idle_timeout_s, top.retry.attempts) == (30.0, 20.0, 2)
    assert (chat.timeout_s, chat.max_retry_after_s, chat.retry.attempts) == (8.0, 2.0, 1)
    assert (batch.timeout_s, batch.max_attempts, batch.retry.backoff_max_s) == (300.0, 10, 30.0)
    assert batch.cooldown == CooldownSpec(failures=5, window_s=120, cooldown_s=60)
    assert chat.cooldown == top.cooldown


def test_conduct_defaults_fail_over_on_a_timeout_and_raise_a_content_policy_rejection() -> None:
    settings = resilience_for(_policy(), None)
    assert (settings.retry_on_timeout, settings.on_content_policy, settings.first_token_timeout_s) == (
        False,
        "raise",
        None,
    )
    assert settings.first_content_s == 60.0  # the idle timeout, when no first-token limit is set
    assert not settings.retries("timeout") and settings.retries("server") and settings.retries("connection")


def test_a_route_sets_its_own_first_token_limit_timeout_retries_and_content_policy_conduct() -> None:
    policy = _policy(
        first_token_timeout_s=20,
        routes={
            "chat": {
                "candidates": ["a"],
                "first_token_timeout_s": 8,
                "retry_on_timeout": True,
                "on_content_policy": "fallback",
            }
        },
    )
    chat, plain = resilience_for(policy, "chat"), resilience_for(policy, "plain")
    assert (chat.first_token_timeout_s, chat.first_content_s) == (8.0, 8.0)
    assert chat.retries("timeout") and chat.on_content_policy == "fallback"
    assert (plain.first_token_timeout_s, plain.retries("timeout"), plain.on_content_policy) == (
        20.0,
        False,
        "raise",
    )


def test_a_first_token_limit_longer_than_the_idle_timeout_changes_nothing() -> None:
    settings = resilience_for(_policy(first_token_timeout_s=90, stream_idle_timeout_s=30), None)
    assert settings.first_content_s == 30.0
