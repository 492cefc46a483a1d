"""Budgets through the public client against the fake providers: no overspend under concurrency
(SQLite across 4 processes, Redis across 2), a SIGKILLed process leaks nothing once its reservation
expires, windows roll over at the UTC boundary, downgrade before reject, warnings once per window and
threshold, and costs exact to the nano-dollar against figures computed here by hand.

Token counts used below (see fakes/router_fakes/tokens.py and policies/tokens.py):

- QUESTION ("What is the capital of France?", 30 characters): the fake reports 4 per message +
  ceil(30 / 4) = 12 prompt tokens; the router's estimate is 3 (reply priming) + 3 per message +
  ceil(30 / 4) = 14, and the worst case a reservation holds prices the prompt at the estimate's
  upper bound, int(14 * 2) + 1 = 29 (TRUST_FACTOR 2; no exact count is made this far from any
  limit).
- The fake's replies to QUESTION: gpt-4o-mini "[gpt-4o-mini] Answer to a 6-word question." is 42
  characters, ceil(42 / 4) = 11 completion tokens; gpt-4o's is 37 characters, 10 tokens.
- LONG (one message of 3,984 characters): the fake reports 4 + 996 = 1,000 prompt tokens; the
  router's estimate is 6 + 996 = 1,002, its upper bound int(1,002 * 2) + 1 = 2,005. A stream cut
  or closed early settles at the estimate (a cost, not a reservation), plus what arrived.
- Output tokens in a worst case: max_tokens, else the model's maximum output, else its context
  window less the prompt's bound, else the policy's expected_output_tokens.

Prices per million tokens (DESIGN.md, litellm's map): gpt-4o-mini $0.15 in, $0.075 cached in, $0.60
out; gpt-4o $2.50 / $10.00; gemini-2.5-flash-lite $0.10 in, $0.01 cached in, $0.40 out;
claude-haiku-4-5 $1.00 in, $0.10 cached in, $5.00 out. Money is compared in integer nano-dollars.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import respx
from openai.types.chat import ChatCompletionMessageParam
from router_fakes import FakeProviders, ModelScript, hang, status, stream_cut
from typer.testing import CliRunner

import router
from router.cli import app
from router.ledger import Totals, open_ledger
from tests.processes import run_released_together
from tests.router import budget_workers
from tests.router.budget_workers import KEY_ENV, QUESTION

REPO = Path(__file__).resolve().parents[2]
NANOS = 1_000_000_000
LONG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "x" * 3984}]
# 2026-11-21 15:30 UTC: a fixed "now" for the tests that inject the wall clock.
NOW = datetime(2026, 11, 21, 15, 30, tzinfo=UTC).timestamp()
PROVIDERS = {
    "gpt-4o-mini": "openai",
    "gpt-4o": "openai",
    "gemini-2.5-flash-lite": "gemini",
    "claude-haiku-4-5": "anthropic",
}


def nanos(usd: float | None) -> int:
    assert usd is not None
    return round(usd * NANOS)


def micro(usd_millionths: float) -> int:
    """Nano-dollars of an amount written in millionths of a dollar (the unit of prices per M tokens)."""
    return round(usd_millionths * 1000)


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def policy_for(
    fake: FakeProviders,
    route: list[str],
    features: Mapping[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """The fake's models, one ordered route ``auto`` over ``route``, budgets per ``features``."""
    bases = {"openai": fake.openai_base, "gemini": fake.gemini_base, "anthropic": fake.anthropic_base}
    return {
        "retry": {"attempts": 1},
        **top,
        "models": {
            name: {"provider": provider, "api_base": bases[provider], "api_key_env": KEY_ENV}
            for name, provider in PROVIDERS.items()
        },
        "routes": {"auto": {"strategy": "ordered", "candidates": route}},
        "features": {name: {"budget": budget} for name, budget in (features or {}).items()},
    }


def ledger_figures(url: str, now: float) -> list[tuple[str, str, float, Totals]]:
    """Every period the ledger holds with spend or live reservations: (scope, window, start, totals)."""
    ledger = open_ledger(url)
    try:
        return ledger.report(now=now)
    finally:
        ledger.close()


class WallClock:
    """Unix seconds that move only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Monotonic:
    """A monotonic clock advanced by the client's own (injected) sleeps: waits take no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@pytest.fixture(autouse=True)
def _provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "fake-key")


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    """A fresh SQLite ledger, by its absolute (four-slash) URL; read back with ``ledger_figures``."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert url.startswith("sqlite:////")
    return url


# --------------------------------------------------------------------------- 1, 2: no overspend under a burst

# max_tokens 30 on gpt-4o-mini: worst case 29 * 0.15 + 30 * 0.60 = $22.35e-6; actual cost
# 12 * 0.15 + 11 * 0.60 = $8.4e-6, so the worst case is about 2.7x what a request really costs.
BURST_MAX_TOKENS = 30
BURST_WORST = micro(29 * 0.15 + 30 * 0.60)
BURST_COST = micro(12 * 0.15 + 11 * 0.60)
BURST_CAP_USD = 0.001  # about 44.7 worst cases; about 119 actual costs
# A request blocked only by reservations in flight waits at most this long. The burst itself takes
# a few seconds; refusals come as soon as settled spend leaves no room, not at this deadline.
BURST_POLICY_TOP = {"timeout_s": 20}


def burst_policy(fake: FakeProviders) -> dict[str, Any]:
    fake.script(ModelScript("gpt-4o-mini", latency_s=0.05))  # calls overlap: reservations pile up
    budget = {"limit_usd": BURST_CAP_USD, "window": "total", "warn_at": [0.5]}
    return policy_for(fake, ["gpt-4o-mini"], {"burst": budget}, **BURST_POLICY_TOP)


def run_burst(policy: Mapping[str, Any], ledger: str, processes: int, each: int) -> list[dict[str, Any]]:
    """``processes`` processes, each with its own router.AsyncOpenAI and ``each`` concurrent requests,
    all released at once."""
    args = (dict(policy), ledger, each, "burst", BURST_MAX_TOKENS)
    return run_released_together(budget_workers.burst, [args] * processes)


def check_burst(ledger: str, outcomes: list[dict[str, Any]], requests: int) -> float:
    """The burst's promises; returns the settled spend as a share of the cap."""
    assert 44 * BURST_WORST < nanos(BURST_CAP_USD) < 45 * BURST_WORST < 0.5 * requests * BURST_COST
    costs = [cost for outcome in outcomes for cost in outcome["costs_nanos"]]
    refused = sum(outcome["refused"] for outcome in outcomes)
    assert [other for outcome in outcomes for other in outcome["other"]] == []
    assert len(costs) + refused == requests  # every request was served or got BudgetExceededError
    assert set(costs) == {BURST_COST}  # each priced exactly
    (row,) = ledger_figures(ledger, time.time())
    assert row[:3] == ("burst", "total", 0.0)
    spent, cap = nanos(row[3].spent_usd), nanos(BURST_CAP_USD)
    assert spent == sum(costs)  # every settle landed, to the nano-dollar
    assert spent <= cap  # never overspent
    assert spent >= 0.9 * cap  # and not starved by reservations in flight
    assert row[3].reserved_usd == 0.0  # no reservation left behind
    assert refused > 0
    # One warning at half the cap, whichever process settled past it first.
    assert [t for outcome in outcomes for t in outcome["warnings"]] == [0.5]
    return spent / cap


@pytest.mark.slow
def test_500_concurrent_requests_over_4_processes_on_one_sqlite_file_fill_the_cap_but_never_pass_it(
    fake: FakeProviders, ledger: str
) -> None:
    open_ledger(ledger).close()  # the schema exists before the burst
    outcomes = run_burst(burst_policy(fake), ledger, processes=4, each=125)
    share = check_burst(ledger, outcomes, requests=500)
    print(f"sqlite: settled {share:.2%} of the cap")
    assert len(fake.requests_for("gpt-4o-mini")) == sum(len(o["costs_nanos"]) for o in outcomes)


@pytest.mark.slow
def test_500_concurrent_requests_over_2_processes_on_one_redis_fill_the_cap_but_never_pass_it(
    fake: FakeProviders, redis_url: str
) -> None:
    outcomes = run_burst(burst_policy(fake), redis_url, processes=2, each=250)
    share = check_burst(redis_url, outcomes, requests=500)
    print(f"redis: settled {share:.2%} of the cap")
    assert len(fake.requests_for("gpt-4o-mini")) == sum(len(o["costs_nanos"]) for o in outcomes)


# --------------------------------------------------------------------------- 3: SIGKILL mid-call

# The child calls with max_tokens 100: worst case 29 * 0.15 + 100 * 0.60 = $64.35e-6. The $100e-6 cap
# fits one such reservation but not two; a request with max_tokens 159 (worst 29 * 0.15 + 159 * 0.60
# = $99.75e-6; 160 would be $100.35e-6) needs 99.75% of the cap.
CRASH_TIMEOUT_S = 20.0  # reservation TTL = timeout_s + 120 s
CRASH_TTL_S = CRASH_TIMEOUT_S + 120
CRASH_CHILD_WORST = micro(29 * 0.15 + 100 * 0.60)
CRASH_CAP_USD = 0.0001
NEARLY_ALL_OF_IT = 159


@pytest.fixture
def killed_mid_call(fake: FakeProviders, ledger: str, tmp_path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    """A process that was SIGKILLed while its call hung, holding a reservation made at NOW."""
    fake.script(ModelScript("gpt-4o-mini", faults=(hang(60),)))
    policy = policy_for(
        fake,
        ["gpt-4o-mini"],
        {"crash": {"limit_usd": CRASH_CAP_USD, "window": "day"}},
        timeout_s=CRASH_TIMEOUT_S,
    )
    open_ledger(ledger).close()
    log = tmp_path / "child.log"
    with log.open("wb") as out:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.router.budget_workers",
                "hang",
                json.dumps(policy),
                ledger,
                repr(NOW),
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        give_up = time.monotonic() + 60  # a safety net for a broken client, not a measurement
        # Reserved first, then the call: wait until the provider has the request.
        while not (ledger_figures(ledger, NOW) and fake.requests_for("gpt-4o-mini")):
            assert child.poll() is None, f"the child exited early: {log.read_text()}"
            assert time.monotonic() < give_up, f"the call was not made: {log.read_text()}"
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    yield policy, ledger


@pytest.mark.slow
def test_a_process_killed_mid_call_holds_its_reservation_only_until_the_expiry(
    killed_mid_call: tuple[dict[str, Any], str],
) -> None:
    policy, ledger = killed_mid_call
    day = ts(2026, 11, 21)
    leaked = Totals(0.0, CRASH_CHILD_WORST / NANOS)
    assert ledger_figures(ledger, NOW + CRASH_TTL_S - 1) == [("crash", "day", day, leaked)]
    assert ledger_figures(ledger, NOW + CRASH_TTL_S) == []  # expired: nothing reserved, nothing spent

    # Just before the expiry, a new client's request that needs 99.75% of the cap waits for the dead
    # process's reservation (the deadline bounds the wait), then is refused naming it.
    clock = Monotonic()
    before = router.OpenAI(
        policy=policy, ledger=ledger, wall_clock=lambda: NOW + CRASH_TTL_S - 1, clock=clock, sleep=clock.sleep
    )
    with pytest.raises(router.BudgetExceededError) as refused:
        before.chat.completions.create(
            model="auto", messages=QUESTION, max_tokens=NEARLY_ALL_OF_IT, metadata={"feature": "crash"}
        )
    assert nanos(refused.value.reserved_usd) == CRASH_CHILD_WORST and refused.value.spent_usd == 0.0
    assert 0 < clock.slept <= CRASH_TIMEOUT_S
    before.close()

    # Once it has expired, the whole cap is there for a new client.
    after = router.OpenAI(policy=policy, ledger=ledger, wall_clock=lambda: NOW + CRASH_TTL_S)
    response = after.chat.completions.create(
        model="auto", messages=QUESTION, max_tokens=NEARLY_ALL_OF_IT, metadata={"feature": "crash"}
    )
    after.close()
    assert nanos(response.routing.cost_usd) == BURST_COST
    assert ledger_figures(ledger, NOW + CRASH_TTL_S) == [
        ("crash", "day", day, Totals(BURST_COST / NANOS, 0.0))
    ]


# --------------------------------------------------------------------------- 4: window rollover


def test_a_day_budget_refuses_before_midnight_utc_and_serves_again_just_after(
    fake: FakeProviders, ledger: str
) -> None:
    # Each request: worst $22.35e-6, cost $8.4e-6. Cap $50e-6: four are served (the fourth reserves
    # 3 * 8.4 + 22.35 = 47.55; then spent 4 * 8.4 = 33.6, and 33.6 + 22.35 = 55.95 does not fit), the
    # fifth is refused.
    policy = policy_for(fake, ["gpt-4o-mini"], {"support": {"limit_usd": 0.00005, "window": "day"}})
    clock = WallClock(ts(2026, 11, 30, 23, 59, 58))
    client = router.OpenAI(policy=policy, ledger=ledger, wall_clock=clock)

    def ask() -> router.RoutedChatCompletion:
        return client.chat.completions.create(
            model="auto", messages=QUESTION, max_tokens=BURST_MAX_TOKENS, metadata={"feature": "support"}
        )

    assert [nanos(ask().routing.cost_usd) for _ in range(4)] == [BURST_COST] * 4
    with pytest.raises(router.BudgetExceededError) as refused:
        ask()
    error = refused.value
    midnight = ts(2026, 12, 1)
    assert (error.scope, error.window, error.resets_at) == ("support", "day", midnight)
    assert nanos(error.spent_usd) == 4 * BURST_COST and error.reserved_usd == 0.0
    assert "The day window resets at 2026-12-01T00:00:00Z." in str(error)
    assert "$0.0000336 is spent" in str(error) and "may cost up to $0.00002235" in str(error)

    clock.now = midnight - 0.001  # a hair before midnight is still the old day
    with pytest.raises(router.BudgetExceededError):
        ask()
    clock.now = midnight + 1
    assert nanos(ask().routing.cost_usd) == BURST_COST  # a new day, a new budget
    client.close()
    assert ledger_figures(ledger, midnight + 1) == [
        ("support", "day", ts(2026, 11, 30), Totals(4 * BURST_COST / NANOS, 0.0)),
        ("support", "day", midnight, Totals(BURST_COST / NANOS, 0.0)),
    ]
    assert len(fake.requests_for("gpt-4o-mini")) == 5  # refused requests never reached the provider


# --------------------------------------------------------------------------- 5: downgrade


def test_downgrade_moves_to_the_cheaper_model_once_the_first_no_longer_fits_then_rejects(
    fake: FakeProviders, ledger: str
) -> None:
    # Both models answer 90 completion tokens; max_tokens 100.
    #   gpt-4o:      worst 29 * 2.50 + 100 * 10.00 = $1072.5e-6, cost 12 * 2.50 + 90 * 10.00 = $930e-6
    #   gpt-4o-mini: worst 29 * 0.15 + 100 * 0.60  = $64.35e-6,  cost 12 * 0.15 + 90 * 0.60  = $55.8e-6
    # Cap $1500e-6, judged against settled spend: gpt-4o once (930 + 1072.5 > 1500 after it); then
    # gpt-4o-mini ten times (the tenth: 930 + 9 * 55.8 + 64.35 = 1496.55 fits; then 930 + 10 * 55.8 =
    # 1488, and 1488 + 64.35 > 1500); then nothing fits.
    fake.script(ModelScript("gpt-4o", completion_tokens=90), ModelScript("gpt-4o-mini", completion_tokens=90))
    budget = {"limit_usd": 0.0015, "window": "total", "on_exceed": "downgrade"}
    policy = policy_for(fake, ["gpt-4o", "gpt-4o-mini"], {"summarizer": budget})
    client = router.OpenAI(policy=policy, ledger=ledger)

    def ask() -> router.RoutedChatCompletion:
        return client.chat.completions.create(
            model="auto", messages=QUESTION, max_tokens=100, metadata={"feature": "summarizer"}
        )

    first = ask()
    assert first.model == "gpt-4o" and nanos(first.routing.cost_usd) == micro(930)
    assert first.routing.budget_events == () and "gpt-4o" not in first.routing.rejected

    downgraded = ask()
    assert downgraded.model == "gpt-4o-mini" and nanos(downgraded.routing.cost_usd) == micro(55.8)
    assert downgraded.routing.rejected["gpt-4o"] == (
        "worst case $0.0010725 does not fit the total budget of feature 'summarizer' "
        "($0.00093 spent, $0.00 reserved, of $0.0015)"
    )
    assert downgraded.routing.budget_events == (
        router.BudgetEvent(
            kind="downgraded",
            scope="summarizer",
            window="total",
            limit_usd=0.0015,
            spent_usd=0.00093,
            reserved_usd=0.0,
            model="gpt-4o",
        ),
    )
    assert [ask().model for _ in range(9)] == ["gpt-4o-mini"] * 9

    with pytest.raises(router.BudgetExceededError) as refused:
        ask()
    error = refused.value
    assert (error.scope, nanos(error.spent_usd), nanos(error.amount_usd)) == (
        "summarizer",
        micro(930 + 10 * 55.8),
        micro(64.35),  # the smallest worst case: the cheapest model did not fit either
    )
    assert error.routing is not None
    assert set(error.routing.rejected) == {"gpt-4o", "gpt-4o-mini"}
    assert [(e.kind, e.model) for e in error.routing.budget_events] == [
        ("downgraded", "gpt-4o"),
        ("downgraded", "gpt-4o-mini"),
        ("exceeded", None),
    ]
    assert len(fake.requests_for("gpt-4o")) == 1 and len(fake.requests_for("gpt-4o-mini")) == 10
    client.close()
    assert ledger_figures(ledger, time.time()) == [
        ("summarizer", "total", 0.0, Totals(micro(1488) / NANOS, 0.0))
    ]


# --------------------------------------------------------------------------- 6: warnings


def test_each_warn_at_threshold_is_reported_once_per_window_by_the_request_that_crossed_it(
    fake: FakeProviders, ledger: str
) -> None:
    # Cap $100e-6, cost $8.4e-6 a request, worst $22.35e-6: the 6th request crosses 50% (50.4), the
    # 10th crosses 80% (84.0; it reserved 75.6 + 22.35 = 97.95, which fits), the 11th no longer fits
    # (84 + 22.35 > 100).
    budget = {"limit_usd": 0.0001, "window": "day", "warn_at": [0.5, 0.8]}
    policy = policy_for(fake, ["gpt-4o-mini"], {"faq": budget})
    clock = WallClock(NOW)
    client = router.OpenAI(policy=policy, ledger=ledger, wall_clock=clock)

    def warnings_of_a_window() -> list[tuple[int, router.BudgetEvent]]:
        events = []
        for number in range(1, 11):
            response = client.chat.completions.create(
                model="auto", messages=QUESTION, max_tokens=BURST_MAX_TOKENS, metadata={"feature": "faq"}
            )
            events += [(number, event) for event in response.routing.budget_events]
        with pytest.raises(router.BudgetExceededError):
            client.chat.completions.create(
                model="auto", messages=QUESTION, max_tokens=BURST_MAX_TOKENS, metadata={"feature": "faq"}
            )
        return events

    def warning(threshold: float, spent_micro: float, resets_at: float) -> router.BudgetEvent:
        return router.BudgetEvent(
            kind="warning",
            scope="faq",
            window="day",
            limit_usd=0.0001,
            spent_usd=micro(spent_micro) / NANOS,
            reserved_usd=0.0,
            threshold=threshold,
            resets_at=resets_at,
        )

    tomorrow = ts(2026, 11, 22)
    assert warnings_of_a_window() == [(6, warning(0.5, 50.4, tomorrow)), (10, warning(0.8, 84.0, tomorrow))]
    clock.now = tomorrow + 60  # the next day warns afresh, once per threshold again
    assert warnings_of_a_window() == [
        (6, warning(0.5, 50.4, tomorrow + 86_400)),
        (10, warning(0.8, 84.0, tomorrow + 86_400)),
    ]


# --------------------------------------------------------------------------- 7: exact cost

# LONG: 1,000 prompt tokens of which 600 cached, 250 completion tokens (max_tokens 250).
EXACT = {
    #                      uncached in      cached in        out
    "gpt-4o-mini": micro(400 * 0.15 + 600 * 0.075 + 250 * 0.60),  # $255e-6
    "gemini-2.5-flash-lite": micro(400 * 0.10 + 600 * 0.01 + 250 * 0.40),  # $146e-6
    "claude-haiku-4-5": micro(400 * 1.00 + 600 * 0.10 + 250 * 5.00),  # $1710e-6
}
MINI_UNCACHED = micro(1000 * 0.15 + 250 * 0.60)  # $300e-6


@pytest.fixture
def cached_answers(fake: FakeProviders) -> None:
    fake.script(*(ModelScript(model, cached_tokens=600, completion_tokens=250) for model in EXACT))


def exact_policy(fake: FakeProviders, ledger: str) -> dict[str, Any]:
    return {
        **policy_for(fake, ["gpt-4o-mini"], {"costs": {"limit_usd": 1, "window": "day"}}),
        "ledger": ledger,
    }


def test_costs_are_exact_for_gpt_4o_mini_gemini_flash_lite_and_claude_haiku_with_cached_input(
    fake: FakeProviders, cached_answers: None, ledger: str
) -> None:
    assert (EXACT, MINI_UNCACHED) == (
        {"gpt-4o-mini": 255_000, "gemini-2.5-flash-lite": 146_000, "claude-haiku-4-5": 1_710_000},
        300_000,
    )
    client = router.OpenAI(policy=exact_policy(fake, ledger), wall_clock=lambda: NOW)
    costs = []
    for model, expected in EXACT.items():
        response = client.chat.completions.create(
            model=model, messages=LONG, max_tokens=250, metadata={"feature": "costs"}
        )
        assert response.routing.usage == router.Usage(1000, 250, cached_tokens=600), model
        assert nanos(response.routing.cost_usd) == expected, model
        costs.append(response.routing.cost_usd)
    fake.script(ModelScript("gpt-4o-mini", completion_tokens=250))  # no cache hit this time
    uncached = client.chat.completions.create(
        model="gpt-4o-mini", messages=LONG, max_tokens=250, metadata={"feature": "costs"}
    )
    assert nanos(uncached.routing.cost_usd) == MINI_UNCACHED
    costs.append(uncached.routing.cost_usd)
    client.close()

    # The ledger's settled spend is the sum of the responses' costs, to the nano-dollar.
    total = sum(EXACT.values()) + MINI_UNCACHED  # $2411e-6
    assert sum(nanos(cost) for cost in costs) == total
    day = ts(2026, 11, 21)
    assert ledger_figures(ledger, NOW) == [("costs", "day", day, Totals(total / NANOS, 0.0))]


def test_router_spend_reports_what_a_client_run_settled(
    fake: FakeProviders, cached_answers: None, ledger: str, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(json.dumps(exact_policy(fake, ledger)))  # JSON is YAML
    client = router.OpenAI(policy=policy_file, wall_clock=lambda: NOW)
    for model in EXACT:
        client.chat.completions.create(
            model=model, messages=LONG, max_tokens=250, metadata={"feature": "costs"}
        )
    client.close()

    result = CliRunner().invoke(app, ["spend", "--policy", str(policy_file), "--json", "--at", str(NOW)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ledger"] == ledger
    (row,) = report["budgets"]
    spent = sum(EXACT.values())  # $2111e-6 of the $1 day budget
    assert row == {
        "feature": "costs",
        "window": "day",
        "period_start": "2026-11-21T00:00:00Z",
        "resets_at": "2026-11-22T00:00:00Z",
        "spent_usd": spent / NANOS,
        "reserved_usd": 0.0,
        "estimated_usd": 0.0,
        "limit_usd": 1.0,
        "percent": round(100 * spent / NANOS, 4),
        "current": True,
    }


# gpt-4o-mini at a host respx answers, under a policy-wide budget.
MINI_ON_RESPX = {
    "models": {
        "gpt-4o-mini": {"provider": "openai", "api_base": "http://mini.test/v1", "api_key_env": KEY_ENV}
    },
    "budget": {"limit_usd": 1, "window": "total"},
}


@respx.mock
def test_reasoning_tokens_are_priced_once_as_the_output_tokens_they_are_part_of(ledger: str) -> None:
    # OpenAI counts reasoning tokens inside completion_tokens: 300 output tokens, of them 200
    # reasoning, cost 300 * 0.60, not 500 * 0.60. And 200 of the 1,000 prompt tokens were cached.
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "42"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 300,
            "total_tokens": 1300,
            "prompt_tokens_details": {"cached_tokens": 200},
            "completion_tokens_details": {"reasoning_tokens": 200},
        },
    }
    respx.post("http://mini.test/v1/chat/completions").mock(return_value=httpx.Response(200, json=body))
    client = router.OpenAI(policy=MINI_ON_RESPX, ledger=ledger)
    response = client.chat.completions.create(model="gpt-4o-mini", messages=LONG, max_tokens=300)
    client.close()
    assert response.routing.usage == router.Usage(1000, 300, cached_tokens=200, reasoning_tokens=200)
    assert nanos(response.routing.cost_usd) == micro(800 * 0.15 + 200 * 0.075 + 300 * 0.60)  # $315e-6
    assert ledger_figures(ledger, time.time()) == [("*", "total", 0.0, Totals(315e-6, 0.0))]


@respx.mock
def test_a_response_without_usage_settles_at_the_reserved_worst_case(ledger: str) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "42"}, "finish_reason": "stop"}],
    }
    respx.post("http://mini.test/v1/chat/completions").mock(return_value=httpx.Response(200, json=body))
    with router.OpenAI(policy=MINI_ON_RESPX, ledger=ledger) as client:
        response = client.chat.completions.create(model="gpt-4o-mini", messages=LONG, max_tokens=300)
    assert response.routing.usage is None and response.routing.cost_usd is None
    # $480.75e-6: the prompt's upper bound (int(1,002 * 2) + 1 = 2,005) and every output token
    worst = micro(2005 * 0.15 + 300 * 0.60)
    assert ledger_figures(ledger, time.time()) == [("*", "total", 0.0, Totals(worst / NANOS, 0.0))]


# --------------------------------------------------------------------------- 8: streams, failures


def test_a_streamed_request_settles_its_exact_cost_at_its_end(
    fake: FakeProviders, cached_answers: None, ledger: str
) -> None:
    client = router.OpenAI(policy=exact_policy(fake, ledger), wall_clock=lambda: NOW)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=LONG, max_tokens=250, metadata={"feature": "costs"}, stream=True
    )
    day = ts(2026, 11, 21)
    worst = micro(2005 * 0.15 + 250 * 0.60)  # $450.75e-6, held while the stream is open
    assert ledger_figures(ledger, NOW) == [("costs", "day", day, Totals(0.0, worst / NANOS))]
    chunks = list(stream)
    assert chunks and stream.routing.usage == router.Usage(1000, 250, cached_tokens=600)
    assert nanos(stream.routing.cost_usd) == EXACT["gpt-4o-mini"]
    client.close()
    assert ledger_figures(ledger, NOW) == [("costs", "day", day, Totals(EXACT["gpt-4o-mini"] / NANOS, 0.0))]


async def test_an_async_stream_settles_its_exact_cost_at_its_end(
    fake: FakeProviders, cached_answers: None, ledger: str
) -> None:
    async with router.AsyncOpenAI(policy=exact_policy(fake, ledger), wall_clock=lambda: NOW) as client:
        for model, expected in EXACT.items():
            stream = await client.chat.completions.create(
                model=model, messages=LONG, max_tokens=250, metadata={"feature": "costs"}, stream=True
            )
            assert [chunk async for chunk in stream]
            assert nanos(stream.routing.cost_usd) == expected, model
    assert ledger_figures(ledger, NOW) == [
        ("costs", "day", ts(2026, 11, 21), Totals(sum(EXACT.values()) / NANOS, 0.0))
    ]


def test_a_stream_cut_midway_settles_the_prompt_and_what_arrived(fake: FakeProviders, ledger: str) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(stream_cut(after_chunks=3),)))
    client = router.OpenAI(policy=exact_policy(fake, ledger), wall_clock=lambda: NOW)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=LONG, max_tokens=250, metadata={"feature": "costs"}, stream=True
    )
    received = ""
    with pytest.raises(router.StreamInterruptedError):
        for chunk in stream:
            received += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert received == "[gpt-4o-mini] Answer to "  # three words, 24 characters: ceil(24 / 4) = 6 tokens
    # No usage arrived: the router's prompt estimate (1,002, not the reservation's bound of 2,005)
    # plus the characters as tokens.
    settled = micro(1002 * 0.15 + 6 * 0.60)
    client.close()
    day = ts(2026, 11, 21)
    assert ledger_figures(ledger, NOW) == [("costs", "day", day, Totals(settled / NANOS, 0.0))]


def test_a_stream_closed_after_its_first_words_is_charged_its_worst_case_marked_estimated(
    fake: FakeProviders, ledger: str
) -> None:
    # The provider may go on generating (and billing) after we stop reading: charged as cancelled.
    with router.OpenAI(policy=exact_policy(fake, ledger), wall_clock=lambda: NOW) as client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=LONG, max_tokens=250, metadata={"feature": "costs"}, stream=True
        )
        received = ""
        for chunk in stream:
            received += chunk.choices[0].delta.content or "" if chunk.choices else ""
            if received:
                break
        stream.close()
    assert received == "[gpt-4o-mini] "  # 14 characters: what arrived, 1002 * 0.15 + 4 * 0.60, is less
    worst = micro(2005 * 0.15 + 250 * 0.60)
    day = ts(2026, 11, 21)
    figures = Totals(worst / NANOS, 0.0, worst / NANOS)
    assert ledger_figures(ledger, NOW) == [("costs", "day", day, figures)]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_request_every_model_fails_leaves_nothing_spent_and_nothing_reserved(
    fake: FakeProviders, ledger: str, kind: str
) -> None:
    fake.script(*(ModelScript(m, faults=(status(500),)) for m in ("gpt-4o", "gpt-4o-mini")))
    policy = policy_for(fake, ["gpt-4o", "gpt-4o-mini"], {"faq": {"limit_usd": 1, "window": "total"}})
    feature = {"feature": "faq"}
    if kind == "sync":
        with router.OpenAI(policy=policy, ledger=ledger) as client, pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="auto", messages=QUESTION, max_tokens=100, metadata=feature)
    else:

        async def run() -> None:
            async with router.AsyncOpenAI(policy=policy, ledger=ledger) as aclient:
                with pytest.raises(openai.InternalServerError):
                    await aclient.chat.completions.create(
                        model="auto", messages=QUESTION, max_tokens=100, metadata=feature
                    )

        asyncio.run(run())
    assert ledger_figures(ledger, time.time()) == []  # no spend and no reservation, on any line
    assert len(fake.requests_for("gpt-4o")) == 1 and len(fake.requests_for("gpt-4o-mini")) == 1


# --------------------------------------------------------------------------- found while writing these tests
#
# Each test below states a promise of issue 6 / docs/budgets.md that the client does not keep yet.
# They are strict xfails: when a fix lands they pass, and the marker must go.


async def test_a_downgrade_budget_under_a_burst_also_waits_for_reservations_before_refusing(
    fake: FakeProviders, ledger: str
) -> None:
    fake.script(ModelScript("gpt-4o-mini", latency_s=0.05))
    budget = {"limit_usd": BURST_CAP_USD, "window": "total", "on_exceed": "downgrade"}
    policy = policy_for(fake, ["gpt-4o-mini"], {"burst": budget}, **BURST_POLICY_TOP)
    async with router.AsyncOpenAI(policy=policy, ledger=ledger) as client:

        async def one() -> int | None:
            try:
                response = await client.chat.completions.create(
                    model="auto",
                    messages=QUESTION,
                    max_tokens=BURST_MAX_TOKENS,
                    metadata={"feature": "burst"},
                )
            except router.BudgetExceededError:
                return None
            return nanos(response.routing.cost_usd)

        outcomes = await asyncio.gather(*(one() for _ in range(500)))
    (row,) = ledger_figures(ledger, time.time())
    spent = nanos(row[3].spent_usd)
    assert spent == sum(cost for cost in outcomes if cost is not None) <= nanos(BURST_CAP_USD)
    assert spent >= 0.9 * nanos(BURST_CAP_USD)


def hung_policy(fake: FakeProviders) -> dict[str, Any]:
    fake.script(ModelScript("gpt-4o-mini", faults=(hang(30),)))
    return policy_for(fake, ["gpt-4o-mini"], {"faq": {"limit_usd": 1, "window": "total"}}, timeout_s=20)


async def test_a_cancelled_async_request_that_reached_the_provider_is_charged_its_worst_case(
    fake: FakeProviders, ledger: str
) -> None:
    async with router.AsyncOpenAI(policy=hung_policy(fake), ledger=ledger) as client:
        call = asyncio.create_task(
            client.chat.completions.create(
                model="auto", messages=QUESTION, max_tokens=100, metadata={"feature": "faq"}
            )
        )
        give_up = time.monotonic() + 30  # a safety net, not a measurement
        while not fake.requests_for("gpt-4o-mini"):
            assert time.monotonic() < give_up and not call.done()
            await asyncio.sleep(0.01)
        assert ledger_figures(ledger, time.time())[0][3].reserved_usd > 0  # held while in flight
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    # The provider bills what it received: 29 * 0.15 + 100 * 0.60, the worst case, marked estimated.
    worst = micro(29 * 0.15 + 100 * 0.60) / NANOS
    assert [row[3] for row in ledger_figures(ledger, time.time())] == [Totals(worst, 0.0, worst)]


def test_a_stream_the_caller_abandons_settles_what_it_delivered(fake: FakeProviders, ledger: str) -> None:
    policy = policy_for(fake, ["gpt-4o-mini"], {"faq": {"limit_usd": 1, "window": "total"}})
    client = router.OpenAI(policy=policy, ledger=ledger)
    stream = client.chat.completions.create(
        model="auto", messages=QUESTION, max_tokens=30, metadata={"feature": "faq"}, stream=True
    )
    for _ in stream:
        break
    del stream
    gc.collect()
    (row,) = ledger_figures(ledger, time.time())
    assert row[3].reserved_usd == 0.0 and row[3].spent_usd > 0  # settled at what arrived
    client.close()


@pytest.mark.xfail(
    strict=True,
    reason=(
        "policies/tokens.py PromptSize.upper_bound: without an exact count the worst case prices "
        "the prompt at int(estimate * TRUST_FACTOR) + 1 = 29 tokens here, a heuristic bound, not a "
        "hard one: a provider that counts more (200 here; up to one token a byte, 36, for a "
        "byte-level BPE) settles more than was reserved, past the cap. Fix: bound by the prompt's "
        "UTF-8 byte count plus overheads, or cap the settle at what was reserved."
    ),
)
def test_a_provider_counting_more_prompt_tokens_than_estimated_cannot_overspend(
    fake: FakeProviders, ledger: str
) -> None:
    # Reserved: 29 * 0.15 + 30 * 0.60 = $22.35e-6 of a $25e-6 cap. The provider bills 200 prompt
    # tokens: 200 * 0.15 + 11 * 0.60 = $36.6e-6.
    fake.script(ModelScript("gpt-4o-mini", prompt_tokens=200))
    policy = policy_for(fake, ["gpt-4o-mini"], {"faq": {"limit_usd": 0.000025, "window": "total"}})
    with router.OpenAI(policy=policy, ledger=ledger) as client:
        client.chat.completions.create(
            model="auto", messages=QUESTION, max_tokens=BURST_MAX_TOKENS, metadata={"feature": "faq"}
        )
    (row,) = ledger_figures(ledger, time.time())
    assert row[3].spent_usd <= 0.000025


@pytest.mark.xfail(
    strict=True,
    reason=(
        "policies/filters.py worst_case_cost: for a priced model with neither a known max output "
        "nor a known context window (self-hosted, openai_compatible, as here) and a request without "
        "max_tokens, the output bound still falls back to expected_output_tokens (256 by default): "
        "a typical size, not a worst case. A 1,000-token answer then settles 2x the cap. Fix: treat "
        "the worst case as unknown (like an unpriced model), or send max_tokens = the bound used."
    ),
)
def test_a_model_without_a_known_max_output_cannot_overspend_a_request_without_max_tokens(
    fake: FakeProviders, ledger: str
) -> None:
    # Reserved: 29 * 1 + 256 * 2 = $541e-6 of a $1000e-6 cap; billed 12 * 1 + 1000 * 2 = $2012e-6.
    fake.script(ModelScript("local-model", completion_tokens=1000))
    local = {
        "provider": "openai_compatible",
        "model": "local-model",
        "api_base": fake.openai_base,
        "api_key_env": KEY_ENV,
        "input_cost_per_mtok": 1,
        "output_cost_per_mtok": 2,
    }
    policy = {
        "models": {"local": local},
        "features": {"faq": {"budget": {"limit_usd": 0.001, "window": "total"}}},
    }
    with router.OpenAI(policy=policy, ledger=ledger) as client:
        client.chat.completions.create(model="local", messages=QUESTION, metadata={"feature": "faq"})
    (row,) = ledger_figures(ledger, time.time())
    assert row[3].spent_usd <= 0.001


@pytest.mark.xfail(
    strict=True,
    reason=(
        "router/_pipeline.py Session.budget_ask: a stream's reservation lives timeout_s + "
        "stream_idle_timeout_s + 120 s, but nothing bounds a stream's total length (only the gap "
        "between chunks), so a long stream's reservation expires while it is still running; others "
        "then reserve that room and both settle: the cap is passed. Fix: extend the hold as chunks "
        "arrive (a ledger 'extend' operation), or end streams at a total deadline the TTL covers."
    ),
)
def test_a_stream_that_outlives_its_reservation_cannot_overspend(fake: FakeProviders, ledger: str) -> None:
    # Each request uses all 30 tokens it may: cost 12 * 0.15 + 30 * 0.60 = $19.8e-6, worst
    # 29 * 0.15 + 30 * 0.60 = $22.35e-6; the $25e-6 cap fits one. The stream's hold expires after
    # 10 + 5 + 120 s.
    fake.script(ModelScript("gpt-4o-mini", completion_tokens=30))
    policy = policy_for(
        fake,
        ["gpt-4o-mini"],
        {"faq": {"limit_usd": 0.000025, "window": "total"}},
        timeout_s=10,
        stream_idle_timeout_s=5,
    )
    clock = WallClock(NOW)
    with router.OpenAI(policy=policy, ledger=ledger, wall_clock=clock) as client:
        stream = client.chat.completions.create(
            model="auto", messages=QUESTION, max_tokens=30, metadata={"feature": "faq"}, stream=True
        )
        clock.now += 136  # the stream is still being read
        with contextlib.suppress(router.BudgetExceededError):  # refused, once the hold is kept alive
            client.chat.completions.create(
                model="auto", messages=QUESTION, max_tokens=30, metadata={"feature": "faq"}
            )
        list(stream)
    (row,) = ledger_figures(ledger, clock.now)
    assert row[3].spent_usd <= 0.000025
