"""Per-call timeouts under the request deadline: ``capped_timeout`` and the options each step carries."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router import DeadlineExceededError
from router._engine import Engine
from router._request import capped_timeout, normalize
from router._session import Session

from .fault_helpers import FakeClock
from .helpers import two_model_policy


def _phases(timeout: Any) -> tuple[float | None, float | None, float | None, float | None]:
    assert isinstance(timeout, httpx.Timeout)
    return (timeout.connect, timeout.read, timeout.write, timeout.pool)


def test_a_timeout_within_the_time_left_is_returned_as_is() -> None:
    timeout = httpx.Timeout(10.0, connect=2.0)
    assert capped_timeout(timeout, 60.0, None) is timeout
    assert capped_timeout(5.0, 60.0, None) == 5.0


def test_a_number_longer_than_the_time_left_is_capped_in_every_phase() -> None:
    assert _phases(capped_timeout(30.0, 4.0, None)) == (4.0, 4.0, 4.0, 4.0)


def test_no_timeout_at_all_still_ends_with_the_deadline() -> None:
    assert _phases(capped_timeout(None, 4.0, None)) == (4.0, 4.0, 4.0, 4.0)
    assert _phases(capped_timeout(httpx.Timeout(None), 4.0, None)) == (4.0, 4.0, 4.0, 4.0)


def test_only_the_phases_longer_than_the_time_left_are_capped() -> None:
    capped = capped_timeout(httpx.Timeout(600.0, connect=2.0), 30.0, None)
    assert _phases(capped) == (2.0, 30.0, 30.0, 30.0)


def test_a_streams_reads_wait_no_longer_than_the_idle_timeout() -> None:
    capped = capped_timeout(httpx.Timeout(600.0, connect=5.0), 300.0, 20.0)
    assert _phases(capped) == (5.0, 20.0, 300.0, 300.0)


def test_the_deadline_wins_over_a_longer_idle_timeout() -> None:
    assert _phases(capped_timeout(600.0, 3.0, 20.0))[1] == 3.0


def test_a_read_timeout_already_shorter_than_the_idle_timeout_is_kept() -> None:
    timeout = httpx.Timeout(5.0)
    assert capped_timeout(timeout, 300.0, 20.0) is timeout


_SECONDS = st.floats(min_value=0.001, max_value=1000, allow_nan=False)
_TIMEOUTS = st.one_of(
    st.none(),
    _SECONDS,
    st.builds(
        httpx.Timeout,
        connect=st.one_of(st.none(), _SECONDS),
        read=st.one_of(st.none(), _SECONDS),
        write=st.one_of(st.none(), _SECONDS),
        pool=st.one_of(st.none(), _SECONDS),
    ),
)


@given(timeout=_TIMEOUTS, remaining=_SECONDS, idle=st.one_of(st.none(), _SECONDS))
def test_no_phase_outlasts_the_deadline_or_a_read_the_idle_timeout_and_none_grows(
    timeout: Any, remaining: float, idle: float | None
) -> None:
    capped = capped_timeout(timeout, remaining, idle)
    after = _phases(httpx.Timeout(capped))
    before = _phases(httpx.Timeout(timeout))
    for new, old in zip(after, before, strict=True):
        assert new is not None and new <= remaining
        assert old is None or new <= old
    assert idle is None or (after[1] is not None and after[1] <= idle)


@given(timeout=_TIMEOUTS, remaining=_SECONDS, idle=st.one_of(st.none(), _SECONDS))
def test_a_capped_timeout_is_the_object_httpx_would_make_of_its_phases(
    timeout: Any, remaining: float, idle: float | None
) -> None:
    capped = capped_timeout(timeout, remaining, idle)
    if capped is timeout:
        return
    connect, read, write, pool = _phases(capped)
    made = httpx.Timeout(connect=connect, read=read, write=write, pool=pool)
    assert type(capped) is httpx.Timeout
    assert vars(capped) == vars(made) and capped == made and repr(capped) == repr(made)
    assert capped.as_dict() == made.as_dict()


# --------------------------------------------------------------------------- through the session


def _timeout_error() -> openai.APITimeoutError:
    return openai.APITimeoutError(request=httpx.Request("POST", "http://a.test/v1/chat/completions"))


def _session(clock: FakeClock, timeout_s: float, **kwargs: Any) -> Session:
    engine = Engine(two_model_policy(timeout_s=timeout_s, stream_idle_timeout_s=15), env={})
    request = normalize({"model": "auto", "messages": [{"role": "user", "content": "hi"}], **kwargs}, 600.0)
    return Session(engine, request, engine.planner.plan(request.route), clock=clock)


def test_each_step_carries_the_callers_timeout_capped_by_the_time_left() -> None:
    clock = FakeClock()
    session = _session(clock, timeout_s=100, timeout=30.0)
    step = session.next_step()
    assert step is not None and step.options.timeout == 30.0
    clock.advance(80)  # 20 s left of the deadline
    session.begin(step)
    session.failed(step.deployment, _timeout_error())
    later = session.next_step()
    assert later is not None and _phases(later.options.timeout) == (20.0, 20.0, 20.0, 20.0)


def test_a_stream_step_reads_with_the_idle_timeout() -> None:
    session = _session(FakeClock(), timeout_s=100, stream=True)
    step = session.next_step()
    assert step is not None
    assert _phases(step.options.timeout) == (100.0, 15.0, 100.0, 100.0)


def test_no_step_is_offered_once_the_deadline_has_passed() -> None:
    clock = FakeClock()
    session = _session(clock, timeout_s=10)
    step = session.next_step()
    assert step is not None
    session.begin(step)
    clock.advance(11)
    session.failed(step.deployment, _timeout_error())
    assert session.next_step() is None
    assert isinstance(session.exhausted(), DeadlineExceededError)


@pytest.mark.parametrize("timeout", [None, 1e9])
def test_a_huge_or_missing_caller_timeout_becomes_the_deadline(timeout: float | None) -> None:
    assert _phases(capped_timeout(timeout, 12.5, None)) == (12.5, 12.5, 12.5, 12.5)


# --------------------------------------------------------------------------- the first content of a stream


def test_a_streams_reads_wait_no_longer_than_first_token_timeout_when_it_is_shorter() -> None:
    engine = Engine(
        two_model_policy(timeout_s=100, stream_idle_timeout_s=15, first_token_timeout_s=4), env={}
    )
    request = normalize(
        {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": True}, 600.0
    )
    step = Session(engine, request, engine.planner.plan(request.route), clock=FakeClock()).next_step()
    assert step is not None and _phases(step.options.timeout)[1] == 4.0


def test_chunks_without_content_do_not_add_up_past_the_first_content_limit() -> None:
    # What the sync driver asks between chunks: each read was short, but together they are late.
    clock = FakeClock()
    session = _session(clock, timeout_s=100, stream=True)  # stream_idle_timeout_s 15
    step = session.next_step()
    assert step is not None
    session.begin(step)
    clock.advance(14.9)
    assert session.first_content_overdue() is None
    assert session.first_content_wait_s() == pytest.approx(0.1)
    clock.advance(0.1)
    late = session.first_content_overdue()
    assert isinstance(late, openai.APITimeoutError) and "no content within 15s" in late.message


def test_the_first_content_limit_never_outlasts_the_deadline() -> None:
    clock = FakeClock()
    session = _session(clock, timeout_s=10, stream=True)
    step = session.next_step()
    assert step is not None
    session.begin(step)
    assert session.first_content_wait_s() == 10.0
    clock.advance(10)
    assert session.first_content_overdue() is not None
