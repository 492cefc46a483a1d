"""The decision core on its own: scripted outcomes in, the actions it asks for out. No I/O at all:
no provider, no ledger, no sleeping; the clock is a number the test moves."""

from __future__ import annotations

import random
from typing import Any

import httpx
import openai
import pytest

from policies.schema import Policy
from providers.errors import status_error_from_response
from router._budgets import BudgetBook
from router._continuation import Prefix, Resumed
from router._decide import (
    Action,
    Call,
    Cancelled,
    Close,
    Decider,
    DowngradeCheck,
    Failed,
    Fetch,
    Opened,
    OpenStream,
    Publish,
    Raise,
    ReadTotals,
    Release,
    Reserve,
    Return,
    Settle,
    Sleep,
    Unchecked,
    Warn,
    Wrap,
)
from router._deployments import ORDER_SLACK_S, Balancer, Bookkeep, ClaimRate, Finished, Started
from router._engine import Engine
from router._exceptions import BudgetExceededError, DeadlineExceededError
from router._health import Breakers, BreakerWrite, SharedBreakers
from router._request import Request, normalize
from router._response import RoutedChatCompletion
from router._session import Session
from router.ledger import Hold, LedgerError, Line, Refusal, Totals
from router.ledger._rates import Claim, MemoryRates
from tests.router.helpers import OK_BODY, two_model_policy

HI = [{"role": "user", "content": "hi"}]
NOW = 1_800_000_000.0


class Clock:
    """The monotonic clock the decider reads; the test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _policy(**top: Any) -> Policy:
    data = two_model_policy().model_dump(exclude_unset=True, by_alias=True)
    data.update(top)
    return Policy.model_validate(data)


def _decider(
    policy: Policy,
    clock: Clock,
    *,
    stream: bool = False,
    feature: str | None = None,
    shared: SharedBreakers | None = None,
    pooled: bool = False,
) -> tuple[Decider, list[Session]]:
    """A decider planned the way the clients plan (``_BaseClient._plan``), with in-process breakers
    (``shared``: breakers a fleet shares through Redis)."""
    engine = Engine(policy, env={})
    breakers = shared or Breakers(clock)
    # Counters the test answers for (ClaimRate outcomes): never read by the decision itself.
    balancer = (
        Balancer(engine, MemoryRates(), wall_clock=lambda: NOW, rng=random.Random(0)) if pooled else None
    )
    budgets = BudgetBook(policy) if BudgetBook(policy).has_budgets else None
    kwargs: dict[str, Any] = {"model": "auto", "messages": HI, "stream": stream}
    if feature is not None:
        kwargs["metadata"] = {"feature": feature}
    request = normalize(kwargs, None)
    lines = budgets.lines_for(request.route.feature, NOW) if budgets is not None else ()
    sessions: list[Session] = []

    def plan(request: Request, lines: tuple[Line, ...], check: DowngradeCheck | None) -> Session:
        planned = engine.planner.plan(request.route, health=breakers.snapshot(), budget=check)
        session = Session(
            engine,
            request,
            planned,
            clock=clock,
            breakers=breakers,
            budgets=budgets,
            budget_lines=lines,
            wall_clock=lambda: NOW,
            balancer=balancer,
        )
        sessions.append(session)
        return session

    decider = Decider(request, plan, lines=lines, budgets=budgets, wall_clock=lambda: NOW, shared=shared)
    return decider, sessions


def _then(decider: Decider, outcome: Any) -> Action:
    decider.report(outcome)
    return decider.next_action()


def _error(status: int, body: object, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://x.test/v1/chat/completions")
    return status_error_from_response(httpx.Response(status, json=body, headers=headers, request=request))


def _timeout() -> openai.APITimeoutError:
    return openai.APITimeoutError(request=httpx.Request("POST", "http://x.test/v1/chat/completions"))


def _is(action: Action, expected: Action) -> bool:
    """The same action: actions are named tuples, so equal fields alone would not say which."""
    return type(action) is type(expected) and action == expected


def _model(action: Action) -> str:
    assert isinstance(action, Call | OpenStream), action
    return action.deployment.name


def test_an_answer_is_returned_with_the_models_name_and_one_attempt() -> None:
    decider, _ = _decider(_policy(), Clock())
    first = decider.next_action()
    assert _model(first) == "a"
    done = _then(decider, OK_BODY)
    assert isinstance(done, Return) and isinstance(done.answer, RoutedChatCompletion)
    assert done.answer.routing.model == "a" and len(done.answer.routing.attempts) == 1


def test_a_429_with_retry_after_sleeps_that_long_then_calls_the_same_model() -> None:
    decider, _ = _decider(_policy(retry={"attempts": 3, "jitter": False}), Clock())
    assert _model(decider.next_action()) == "a"
    wait = _then(decider, Failed(_error(429, {"error": {"message": "slow down"}}, {"retry-after": "2"})))
    assert _is(wait, Sleep(2.0))
    again = _then(decider, None)
    assert _model(again) == "a"
    done = _then(decider, OK_BODY)
    assert isinstance(done, Return)
    assert [(a.model, a.error, a.wait_s) for a in done.answer.routing.attempts] == [
        ("a", "rate_limited", 0.0),
        ("a", None, 2.0),
    ]


def test_a_persistent_429_without_retry_after_backs_off_exponentially_then_fails_over() -> None:
    policy = _policy(retry={"attempts": 3, "jitter": False, "backoff_initial_s": 0.5})
    decider, _ = _decider(policy, Clock())
    decider.next_action()
    limited = Failed(_error(429, {"error": {"message": "slow down"}}))
    assert _is(_then(decider, limited), Sleep(0.5))
    assert _model(_then(decider, None)) == "a"
    assert _is(_then(decider, limited), Sleep(1.0))
    assert _model(_then(decider, None)) == "a"
    assert _model(_then(decider, limited)) == "b"  # three tries on a: fail over, no more waiting


def test_a_500_is_retried_once_on_the_same_model_when_the_policy_allows_two_tries() -> None:
    decider, _ = _decider(_policy(retry={"attempts": 2, "jitter": False, "backoff_initial_s": 0.25}), Clock())
    decider.next_action()
    assert _is(_then(decider, Failed(_error(500, {"error": {"message": "x"}}))), Sleep(0.25))
    assert _model(_then(decider, None)) == "a"
    assert _model(_then(decider, Failed(_error(500, {"error": {"message": "x"}})))) == "b"


def test_a_429_asking_to_wait_past_max_retry_after_fails_over_at_once() -> None:
    decider, _ = _decider(_policy(retry={"attempts": 3}, max_retry_after_s=5), Clock())
    decider.next_action()
    nxt = _then(decider, Failed(_error(429, {"error": {"message": "x"}}, {"retry-after": "60"})))
    assert _model(nxt) == "b"


def test_a_timeout_calls_the_next_model_at_once_without_retrying_or_sleeping() -> None:
    decider, _ = _decider(_policy(retry={"attempts": 3}), Clock())
    decider.next_action()
    assert _model(_then(decider, Failed(_timeout()))) == "b"


def test_the_async_hard_stop_counts_as_a_timeout_and_fails_over() -> None:
    decider, _ = _decider(_policy(), Clock())
    decider.next_action()
    assert _model(_then(decider, Failed(TimeoutError()))) == "b"
    done = _then(decider, OK_BODY)
    assert isinstance(done, Return)
    assert [a.error for a in done.answer.routing.attempts] == ["timeout", None]


def test_a_content_policy_rejection_is_raised_at_once_with_the_record() -> None:
    decider, _ = _decider(_policy(), Clock())
    decider.next_action()
    body = {"error": {"message": "flagged", "code": "content_policy_violation"}}
    raised = _then(decider, Failed(_error(400, body)))
    assert isinstance(raised, Raise) and isinstance(raised.error, openai.BadRequestError)
    assert [a.model for a in raised.error.routing.attempts] == ["a"]  # type: ignore[attr-defined]


def test_every_model_failing_raises_the_last_providers_error() -> None:
    decider, _ = _decider(_policy(), Clock())
    decider.next_action()
    _then(decider, Failed(_error(503, {"error": {"message": "down"}})))
    raised = _then(decider, Failed(_error(503, {"error": {"message": "down too"}})))
    assert isinstance(raised, Raise) and isinstance(raised.error, openai.InternalServerError)


def test_a_retry_wait_that_would_pass_the_deadline_fails_over_instead() -> None:
    clock = Clock()
    decider, _ = _decider(_policy(retry={"attempts": 3}, timeout_s=10), clock)
    decider.next_action()
    clock.now += 9
    nxt = _then(decider, Failed(_error(429, {"error": {"message": "x"}}, {"retry-after": "3"})))
    assert _model(nxt) == "b"


def test_a_deadline_passed_during_a_call_raises_deadline_exceeded() -> None:
    clock = Clock()
    decider, _ = _decider(_policy(timeout_s=10), clock)
    decider.next_action()
    clock.now += 11
    raised = _then(decider, Failed(_error(500, {"error": {"message": "late"}})))
    assert isinstance(raised, Raise) and isinstance(raised.error, DeadlineExceededError)


class SlowClock(Clock):
    """A clock that moves a second on every read: a deadline passes before anything is tried."""

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_a_deadline_passed_before_the_first_attempt_raises_deadline_exceeded_not_a_400() -> None:
    decider, _ = _decider(_policy(timeout_s=0.5), SlowClock())
    raised = decider.next_action()
    assert isinstance(raised, Raise) and isinstance(raised.error, DeadlineExceededError)
    assert raised.error.routing.attempts == ()  # type: ignore[attr-defined]


def test_the_call_carries_the_time_left_as_its_hard_limit() -> None:
    clock = Clock()
    decider, _ = _decider(_policy(timeout_s=10), clock)
    decider.next_action()
    clock.now += 4
    second = _then(decider, Failed(_error(500, {"error": {"message": "x"}})))
    assert isinstance(second, Call) and second.limit_s == pytest.approx(6.0)


def test_an_interrupted_call_raises_the_interruption_itself() -> None:
    decider, _ = _decider(_policy(), Clock())
    decider.next_action()
    interrupt = KeyboardInterrupt()
    raised = _then(decider, Cancelled(interrupt))
    assert isinstance(raised, Raise) and raised.error is interrupt


def test_a_content_filtered_answer_is_kept_and_returned_when_no_model_does_better() -> None:
    filtered = {
        **OK_BODY,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "content_filter"}
        ],
    }
    decider, _ = _decider(_policy(), Clock())
    decider.next_action()
    assert _model(_then(decider, filtered)) == "b"
    done = _then(decider, Failed(_error(500, {"error": {"message": "x"}})))
    assert isinstance(done, Return) and done.answer.choices[0].finish_reason == "content_filter"
    assert [a.error for a in done.answer.routing.attempts] == ["content_filter", "server"]


# --------------------------------------------------------------------------- streams

_ROLE = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
_TEXT = {"choices": [{"index": 0, "delta": {"content": "Hello"}}]}


def test_a_stream_is_read_up_to_its_first_content_then_wrapped_and_returned() -> None:
    decider, _ = _decider(_policy(), Clock(), stream=True)
    opening = decider.next_action()
    assert isinstance(opening, OpenStream) and opening.deployment.name == "a"
    assert decider.take(_ROLE) is False
    assert decider.take(_TEXT) is True
    wrap = _then(decider, Opened("chunks-of-a"))
    assert isinstance(wrap, Wrap) and wrap.buffered == [_ROLE, _TEXT] and wrap.chunks == "chunks-of-a"
    assert wrap.hold is None
    done = _then(decider, "the caller's stream")
    assert _is(done, Return("the caller's stream"))


def test_a_stream_whose_first_content_is_late_is_closed_and_the_next_model_opened() -> None:
    clock = Clock()
    decider, _ = _decider(_policy(first_token_timeout_s=8), clock, stream=True)
    opening = decider.next_action()
    assert isinstance(opening, OpenStream) and opening.limit_s == pytest.approx(8.0)
    assert decider.take(_ROLE) is False
    clock.now += 9
    assert decider.take(_ROLE) is True  # late: stop reading
    close = _then(decider, Opened("chunks-of-a"))
    assert _is(close, Close("chunks-of-a"))
    nxt = _then(decider, None)
    assert isinstance(nxt, OpenStream) and nxt.deployment.name == "b"


def test_a_stream_stopped_by_the_hard_limit_is_closed_and_counted_a_timeout() -> None:
    decider, sessions = _decider(_policy(), Clock(), stream=True)
    decider.next_action()
    assert _is(_then(decider, Failed(TimeoutError(), "chunks-of-a")), Close("chunks-of-a"))
    assert _model(_then(decider, None)) == "b"
    assert [a.error for a in sessions[0].record(None).attempts] == ["timeout"]


def test_a_providers_error_before_content_fails_over_without_closing_what_it_ended() -> None:
    decider, _ = _decider(_policy(), Clock(), stream=True)
    decider.next_action()
    assert _model(_then(decider, Failed(_error(503, {"error": {"message": "x"}}), "chunks-of-a"))) == "b"


# --------------------------------------------------------------------------- budgets


def _budget(**spec: Any) -> Policy:
    return _policy(budget={"limit_usd": 1.0, "window": "month", **spec})


def _hold(amount: float = 0.02) -> Hold:
    return Hold("h1", (), amount, NOW + 300)


def test_a_budgeted_call_is_reserved_first_then_settled_at_its_cost() -> None:
    decider, _ = _decider(_budget(), Clock())
    reserve = decider.next_action()
    assert isinstance(reserve, Reserve) and reserve.amount_usd > 0
    hold = Hold("h1", reserve.lines, reserve.amount_usd, NOW + 300)
    assert _model(_then(decider, hold)) == "a"
    settle = _then(decider, OK_BODY)
    # OK_BODY's usage: 1000 prompt + 500 completion tokens at $1/$2 per M.
    assert isinstance(settle, Settle) and settle.amount_usd == pytest.approx(0.002) and not settle.estimated
    assert isinstance(_then(decider, {}), Return)


def test_a_failed_call_releases_its_reservation_and_fails_over() -> None:
    decider, _ = _decider(_budget(), Clock())
    reserve = decider.next_action()
    assert isinstance(reserve, Reserve)
    hold = Hold("h1", reserve.lines, reserve.amount_usd, NOW + 300)
    _then(decider, hold)
    assert _is(_then(decider, Failed(_error(500, {"error": {"message": "x"}}))), Release(hold))
    assert isinstance(_then(decider, None), Reserve)


def test_a_timed_out_call_is_charged_its_worst_case_as_estimated() -> None:
    decider, _ = _decider(_budget(), Clock())
    reserve = decider.next_action()
    assert isinstance(reserve, Reserve)
    hold = Hold("h1", reserve.lines, reserve.amount_usd, NOW + 300)
    _then(decider, hold)
    settle = _then(decider, Failed(_timeout()))
    assert isinstance(settle, Settle) and settle.estimated and settle.amount_usd == hold.amount_usd


def test_a_refusal_under_a_reject_budget_raises_budget_exceeded() -> None:
    decider, _ = _decider(_budget(on_exceed="reject"), Clock())
    reserve = decider.next_action()
    assert isinstance(reserve, Reserve)
    refusal = Refusal(reserve.lines[0], spent_usd=1.0, reserved_usd=0.0, amount_usd=reserve.amount_usd)
    raised = _then(decider, refusal)
    assert isinstance(raised, Raise) and isinstance(raised.error, BudgetExceededError)


def test_a_refusal_only_from_reservations_in_flight_waits_and_asks_again() -> None:
    decider, _ = _decider(_budget(on_exceed="reject"), Clock())
    reserve = decider.next_action()
    assert isinstance(reserve, Reserve)
    refusal = Refusal(reserve.lines[0], spent_usd=0.0, reserved_usd=1.0, amount_usd=reserve.amount_usd)
    assert _is(_then(decider, refusal), Sleep(0.05))
    assert isinstance(_then(decider, None), Reserve)
    assert _is(_then(decider, refusal), Sleep(0.1))  # doubling


def test_a_refusal_under_a_downgrade_budget_skips_to_the_next_model() -> None:
    decider, _ = _decider(_budget(on_exceed="downgrade"), Clock())
    read = decider.next_action()
    assert isinstance(read, ReadTotals) and [line.scope for line in read.lines] == ["*"]
    reserve = _then(decider, {})
    assert isinstance(reserve, Reserve)
    refusal = Refusal(reserve.lines[0], spent_usd=0.999, reserved_usd=0.0, amount_usd=reserve.amount_usd)
    second = _then(decider, refusal)
    assert isinstance(second, Reserve)
    hold = Hold("h1", second.lines, second.amount_usd, NOW + 300)
    assert _model(_then(decider, hold)) == "b"


def test_a_ledger_failure_fails_closed_by_default_and_open_when_the_budget_says_so() -> None:
    closed, _ = _decider(_budget(), Clock())
    closed.next_action()
    down = LedgerError("the ledger is down")
    raised = _then(closed, Failed(down))
    assert isinstance(raised, Raise) and raised.error is down

    opened, _ = _decider(_budget(on_ledger_error="fail_open"), Clock())
    reserve = opened.next_action()
    assert isinstance(reserve, Reserve)
    unchecked = _then(opened, Failed(LedgerError("the ledger is down")))
    assert isinstance(unchecked, Unchecked) and unchecked.ask == reserve
    assert _model(_then(opened, _hold())) == "a"


def test_a_settle_crossing_a_warning_threshold_claims_the_warning() -> None:
    decider, _ = _decider(_budget(warn_at=[0.5]), Clock())
    reserve = decider.next_action()
    assert isinstance(reserve, Reserve)
    hold = Hold("h1", reserve.lines, reserve.amount_usd, NOW + 300)
    _then(decider, hold)
    settle = _then(decider, OK_BODY)
    assert isinstance(settle, Settle)
    line = reserve.lines[0]
    warn = _then(decider, {line.key: Totals(spent_usd=0.5005, reserved_usd=0.0)})
    assert _is(warn, Warn(line, 0.5))
    done = _then(decider, True)
    assert isinstance(done, Return)
    assert [e.kind for e in done.answer.routing.budget_events] == ["warning"]


def test_a_streams_settle_later_is_a_settle_then_a_return() -> None:
    decider, _ = _decider(_budget(), Clock(), stream=True)
    reserve = decider.next_action()
    assert isinstance(reserve, Reserve)
    hold = Hold("h1", reserve.lines, reserve.amount_usd, NOW + 300)
    _then(decider, hold)
    decider.take(_TEXT)
    wrap = _then(decider, Opened("chunks"))
    assert isinstance(wrap, Wrap) and wrap.hold == hold
    assert _is(_then(decider, "stream"), Return("stream"))
    settling = decider.settling(hold, 0.001, False)
    settle = settling.next_action()
    assert isinstance(settle, Settle) and settle.amount_usd == pytest.approx(0.001)
    assert _is(_then(settling, {}), Return(None))


# --------------------------------------------------------------------------- continuation


def _prefill_policy(**top: Any) -> Policy:
    """a, then b (no prefill), then c and d (which declare prefill), with ``stream_recovery: continue``."""
    data = two_model_policy().model_dump(exclude_unset=True, by_alias=True)
    b = data["models"]["b"]
    for name in ("c", "d"):
        data["models"][name] = {
            **b,
            "api_base": f"http://{name}.test/v1",
            "model": f"m-{name}",
            "supports": [*b["supports"], "prefill"],
        }
    data["routes"]["auto"]["fallbacks"] = ["b", "c", "d"]
    return Policy.model_validate({**data, "stream_recovery": "continue", **top})


def _committed(decider: Decider) -> Wrap:
    """Open the first stream up to its first content; the Wrap it asks for (returned at once)."""
    decider.next_action()
    decider.take(_TEXT)
    wrap = _then(decider, Opened("chunks-of-a"))
    assert isinstance(wrap, Wrap)
    assert isinstance(_then(decider, "stream"), Return)
    return wrap


def test_a_stream_is_wrapped_resumable_only_when_continuation_is_on() -> None:
    assert _committed(_decider(_prefill_policy(), Clock(), stream=True)[0]).resumable
    assert not _committed(_decider(_policy(), Clock(), stream=True)[0]).resumable


def test_a_continuation_is_a_stream_attempt_on_the_next_prefill_candidate_with_the_prefix() -> None:
    decider, sessions = _decider(_prefill_policy(), Clock(), stream=True)
    _committed(decider)
    continuing = decider.continuing(Prefix.of("Hello "))
    opening = continuing.next_action()
    assert isinstance(opening, OpenStream) and opening.deployment.name == "c"  # b has no prefill
    assert opening.body["messages"][-1] == {"role": "assistant", "content": "Hello"}
    assert opening.body["continue_final_message"] is True
    assert decider.take(_TEXT) is True
    done = _then(continuing, Opened("chunks-of-c"))
    assert isinstance(done, Return) and isinstance(done.answer, Resumed)
    resumed = done.answer
    assert resumed.deployment.name == "c" and resumed.buffered == [_TEXT] and resumed.rest == "chunks-of-c"
    assert resumed.hold is None and resumed.settle is None  # the driver makes the settle of a hold
    assert sessions[0].record(None).attempts == ()  # its success is recorded when the stream ends


def test_a_failed_continuation_is_recorded_and_the_next_prefill_candidate_tried() -> None:
    decider, sessions = _decider(_prefill_policy(), Clock(), stream=True)
    _committed(decider)
    continuing = decider.continuing(Prefix.of("Hello"))
    assert _model(continuing.next_action()) == "c"
    refused = _error(400, {"error": {"message": "assistant prefill is not supported"}})
    assert _model(_then(continuing, Failed(refused, "chunks-of-c"))) == "d"
    assert _is(
        _then(continuing, Failed(_error(503, {"error": {"message": "x"}}))), Return(None)
    )  # the cut stands
    assert [(a.model, a.status) for a in sessions[0].record(None).attempts] == [("c", 400), ("d", 503)]


def test_a_late_continuation_is_closed_and_passed_over() -> None:
    clock = Clock()
    decider, sessions = _decider(_prefill_policy(first_token_timeout_s=8), clock, stream=True)
    _committed(decider)
    continuing = decider.continuing(Prefix.of("Hello"))
    opening = continuing.next_action()
    assert isinstance(opening, OpenStream) and opening.limit_s == pytest.approx(8.0)
    clock.now += 9
    assert decider.take(_ROLE) is True  # late: stop reading
    assert _is(_then(continuing, Opened("chunks-of-c")), Close("chunks-of-c"))
    assert _model(_then(continuing, None)) == "d"
    assert [(a.model, a.error) for a in sessions[0].record(None).attempts] == [("c", "timeout")]


def _budgeted_and_cut(**budget: Any) -> Decider:
    """A budgeted stream on a, reserved, opened and wrapped; the caller now reads it (and it is cut)."""
    decider, _ = _decider(
        _prefill_policy(budget={"limit_usd": 1.0, "window": "month", **budget}), Clock(), stream=True
    )
    reserve = decider.next_action()
    assert isinstance(reserve, Reserve)
    decider.report(Hold("h1", reserve.lines, reserve.amount_usd, NOW + 300))
    assert _model(decider.next_action()) == "a"
    decider.take(_TEXT)
    assert isinstance(_then(decider, Opened("chunks-of-a")), Wrap)
    assert isinstance(_then(decider, "stream"), Return)
    return decider


def test_a_budgeted_continuation_is_reserved_and_its_hold_handed_to_the_stream() -> None:
    decider = _budgeted_and_cut()
    continuing = decider.continuing(Prefix.of("Hello"))
    again = continuing.next_action()
    assert isinstance(again, Reserve)
    hold = Hold("h2", again.lines, again.amount_usd, NOW + 300)
    assert _model(_then(continuing, hold)) == "c"
    decider.take(_TEXT)
    done = _then(continuing, Opened("chunks-of-c"))
    assert isinstance(done, Return) and done.answer.hold == hold


def test_a_budget_refusing_the_continuation_ends_it_and_the_cut_stands() -> None:
    continuing = _budgeted_and_cut(on_exceed="reject").continuing(Prefix.of("Hello"))
    again = continuing.next_action()
    assert isinstance(again, Reserve)
    refusal = Refusal(again.lines[0], spent_usd=1.0, reserved_usd=0.0, amount_usd=again.amount_usd)
    assert _is(_then(continuing, refusal), Return(None))  # never a BudgetExceededError


def test_a_ledger_failing_on_the_continuations_reservation_ends_it_and_the_cut_stands() -> None:
    continuing = _budgeted_and_cut().continuing(Prefix.of("Hello"))
    assert isinstance(continuing.next_action(), Reserve)
    assert _is(_then(continuing, Failed(LedgerError("the ledger is down"))), Return(None))


# --------------------------------------------------------------------------- shared breakers


def _shared(clock: Clock) -> SharedBreakers:
    return SharedBreakers(clock, ("a", "b"), wall_clock=lambda: NOW + clock.now, refresh_s=1.0)


def test_shared_breakers_are_fetched_before_planning_and_what_the_fleet_opened_is_skipped() -> None:
    clock = Clock()
    shared = _shared(clock)
    decider, _ = _decider(_policy(), clock, shared=shared)
    fetch = decider.next_action()
    assert isinstance(fetch, Fetch) and fetch.keys == ("router:breaker:a", "router:breaker:b")
    fetch.done([f"{NOW + clock.now + 20}|server|2 failures in 60s".encode(), None])  # what Redis holds
    call = _then(decider, None)
    assert _model(call) == "b"
    done = _then(decider, OK_BODY)
    assert isinstance(done, Return) and "another instance" in done.answer.routing.rejected["a"]


def test_shared_breakers_are_fetched_at_most_once_per_refresh() -> None:
    clock = Clock()
    shared = _shared(clock)
    first, _ = _decider(_policy(), clock, shared=shared)
    fetch = first.next_action()
    assert isinstance(fetch, Fetch)
    second, _ = _decider(_policy(), clock, shared=shared)
    assert _model(second.next_action()) == "a"  # a read is in flight (async): plan on what is known
    fetch.done(None)  # Redis out of reach: the local state decides
    clock.now += 0.5
    third, _ = _decider(_policy(), clock, shared=shared)
    assert _model(third.next_action()) == "a"
    clock.now += 0.6
    fourth, _ = _decider(_policy(), clock, shared=shared)
    assert isinstance(fourth.next_action(), Fetch)


def test_a_breaker_opened_by_a_failure_is_published_before_the_next_decision() -> None:
    clock = Clock()
    shared = _shared(clock)
    decider, _ = _decider(_policy(), clock, shared=shared)
    assert isinstance(decider.next_action(), Fetch)
    assert _model(_then(decider, None)) == "a"
    publish = _then(decider, Failed(_error(401, {"error": {"message": "bad key"}})))
    assert isinstance(publish, Publish)
    (write,) = publish.writes
    assert write.key == "router:breaker:a" and write.value is not None and "|auth|" in write.value
    assert write.px == 30_000  # the default cooldown, as the key's TTL
    assert _model(_then(decider, None)) == "b"  # the decision held back behind the publish
    assert not shared.pending


def test_a_successful_trial_publishes_the_breakers_deletion_before_returning() -> None:
    clock = Clock()
    shared = _shared(clock)
    shared.failed("a", "auth", _policy().cooldown)
    shared.drain()
    clock.now += 31  # the cooldown is over: the next call of "a" is its trial
    decider, _ = _decider(_policy(), clock, shared=shared)
    assert isinstance(decider.next_action(), Fetch)
    assert _model(_then(decider, None)) == "a"
    publish = _then(decider, OK_BODY)
    assert _is(publish, Publish((BreakerWrite("router:breaker:a", None),)))
    assert isinstance(_then(decider, None), Return)


def test_a_raise_is_held_back_until_the_breaker_it_opened_is_published() -> None:
    clock = Clock()
    shared = _shared(clock)
    decider, _ = _decider(_policy(routes={"auto": {"candidates": ["a"]}}), clock, shared=shared)
    assert isinstance(decider.next_action(), Fetch)
    assert _model(_then(decider, None)) == "a"
    publish = _then(decider, Failed(_error(404, {"error": {"message": "no such model"}})))
    assert isinstance(publish, Publish) and publish.writes[0].key == "router:breaker:a"
    assert isinstance(_then(decider, None), Raise)


def test_in_process_breakers_ask_for_no_redis_action() -> None:
    decider, _ = _decider(_policy(), Clock())
    assert _model(decider.next_action()) == "a"
    assert _model(_then(decider, Failed(_error(401, {"error": {"message": "bad key"}})))) == "b"


# --------------------------------------------------------------------------- deployments' rate claims


def _pooled_policy(**model: Any) -> Policy:
    deployments = [
        {"name": name, "api_base": f"http://{name}.test/v1", "rpm": 2, "weight": weight}
        for name, weight in (("d1", 100), ("d2", 1))
    ]
    return Policy.model_validate(
        {
            "retry": {"attempts": 1},
            "models": {
                "a": {
                    "provider": "openai_compatible",
                    "model": "m-a",
                    "input_cost_per_mtok": 1,
                    "output_cost_per_mtok": 2,
                    "deployments": deployments,
                    **model,
                },
                "b": {
                    "provider": "openai_compatible",
                    "model": "m-b",
                    "api_base": "http://b.test/v1",
                    "input_cost_per_mtok": 1,
                    "output_cost_per_mtok": 2,
                },
            },
            "routes": {"auto": {"candidates": ["a"], "fallbacks": ["b"]}},
        }
    )


def test_a_pooled_model_claims_its_rate_slot_as_an_action_and_skips_a_full_deployment() -> None:
    decider, _ = _decider(_pooled_policy(), Clock(), pooled=True)
    first = decider.next_action()
    assert isinstance(first, ClaimRate) and first.key == "a/d1" and first.rpm == 2
    assert first.max_wait_s == ORDER_SLACK_S  # its turn behind another claim, not a full deployment
    second = _then(decider, Claim(granted=False, wait_s=30.0))  # d1 is at its rpm
    assert isinstance(second, ClaimRate) and second.key == "a/d2"
    began = _then(decider, Claim(granted=True, wait_s=0.0, entry="e1"))
    assert isinstance(began, Bookkeep) and [type(n) for n in began.notes] == [Started]
    call = _then(decider, None)
    assert isinstance(call, Call) and call.deployment.key == "a/d2"
    ended = _then(decider, OK_BODY)
    assert isinstance(ended, Bookkeep)
    (note,) = ended.notes
    assert isinstance(note, Finished) and note.claim == ("a/d2", "e1") and note.error is None
    done = _then(decider, None)
    assert isinstance(done, Return)
    assert done.answer.routing.rejected["a/d1"].startswith("at its limit (2 rpm); a slot frees in 30.0s")


def test_a_pooled_calls_failure_is_booked_for_the_balancer_by_the_driver_before_the_next_try() -> None:
    decider, sessions = _decider(_pooled_policy(), Clock(), pooled=True)
    assert isinstance(decider.next_action(), ClaimRate)
    assert isinstance(_then(decider, Claim(granted=True, wait_s=0.0, entry="e1")), Bookkeep)
    assert isinstance(_then(decider, None), Call)
    failed = _then(decider, Failed(_error(500, {"error": {"message": "boom"}})))
    assert isinstance(failed, Bookkeep)
    (note,) = failed.notes
    assert isinstance(note, Finished) and note.error is not None and note.latency_ms is None
    assert sessions[0].notes == []  # handed over: the session keeps none
    assert isinstance(_then(decider, None), ClaimRate)  # then the next deployment


def test_counters_out_of_reach_serve_the_pick_unchecked() -> None:
    decider, _ = _decider(_pooled_policy(), Clock(), pooled=True)
    assert isinstance(decider.next_action(), ClaimRate)
    began = _then(decider, OSError("counters down"))  # the driver reports the counters' error
    assert isinstance(began, Bookkeep)
    call = _then(decider, None)
    assert isinstance(call, Call) and call.deployment.key == "a/d1"


def test_every_deployment_full_waits_for_the_soonest_slot_when_the_policy_says_wait() -> None:
    decider, _ = _decider(_pooled_policy(when_all_limited="wait"), Clock(), pooled=True)
    assert isinstance(decider.next_action(), ClaimRate)
    assert isinstance(_then(decider, Claim(granted=False, wait_s=20.0)), ClaimRate)
    retry = _then(decider, Claim(granted=False, wait_s=5.0))
    assert isinstance(retry, ClaimRate) and retry.key == "a/d2" and retry.max_wait_s > 5.0
    assert _is(_then(decider, Claim(granted=True, wait_s=5.0, entry="e2")), Sleep(5.0))
    assert isinstance(_then(decider, None), Bookkeep)
    call = _then(decider, None)
    assert isinstance(call, Call) and call.deployment.key == "a/d2"
