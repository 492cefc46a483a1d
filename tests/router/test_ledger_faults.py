"""Money never leaks (issue 12, items 3-6 and 10): through the public clients against the fake
providers, real SQLite files and real redis-servers that are killed and restarted.

- Cancelled after sending = charged: a task cancel, ``wait_for``, ``KeyboardInterrupt`` or our
  deadline after the provider got the request charges the worst case, marked estimated; the
  ledger is never below the provider's bill (requests the fake saw x their price).
- Streams dropped unread, closed or collected settle at once, not at the reservation's expiry.
- Ledger faults: LedgerError with the URL redacted; fail_closed / fail_open; an answer the provider
  served is returned when the ledger fails at settle time, its charge journaled and replayed once.
- Async never waits on the ledger: the event loop keeps its heartbeat while another process holds
  the SQLite write lock.

Figures (see tests/router/test_budgets_end_to_end.py for the token counts): QUESTION with
max_tokens=100 on gpt-4o-mini reserves 29 * 0.15 + 100 * 0.60 = $64.35e-6; the fake bills it
12 * 0.15 + 11 * 0.60 = $8.4e-6.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import openai
import pytest
from router_fakes import FakeProviders, ModelScript, hang, status
from typer.testing import CliRunner

import router
from router.cli import app
from router.ledger import Hold, Totals, open_ledger
from tests.router.budget_workers import KEY_ENV, QUESTION
from tests.router.ledger_faults_helpers import RedisProcess, figures, free_port, hold_write_lock, spent_nanos

WORST = 64_350  # nano-dollars: 29 * 0.15 + 100 * 0.60 millionths
BILL = 8_400  # nano-dollars: 12 * 0.15 + 11 * 0.60 millionths
FEATURE = {"feature": "faq"}
CANARY = "CANARY-s3cr3t-9f2e"
SAFETY_S = 30.0  # safety nets for waits on other processes and tasks, never measurements


@pytest.fixture(autouse=True)
def _provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "fake-key")


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def policy(fake: FakeProviders, budget: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    return {
        "retry": {"attempts": 1},
        **top,
        "models": {
            "gpt-4o-mini": {"provider": "openai", "api_base": fake.openai_base, "api_key_env": KEY_ENV}
        },
        "routes": {"auto": {"strategy": "ordered", "candidates": ["gpt-4o-mini"]}},
        "features": {"faq": {"budget": {"limit_usd": 1, "window": "total", **(budget or {})}}},
    }


def ask(client: router.OpenAI, **extra: Any) -> Any:
    return client.chat.completions.create(
        model="auto", messages=QUESTION, max_tokens=100, metadata=FEATURE, **extra
    )


async def aask(client: router.AsyncOpenAI, **extra: Any) -> Any:
    return await client.chat.completions.create(
        model="auto", messages=QUESTION, max_tokens=100, metadata=FEATURE, **extra
    )


def hung(fake: FakeProviders) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(hang(60),), repeat_faults=True))


async def until(condition: Any) -> None:
    give_up = time.monotonic() + SAFETY_S
    while not condition():
        assert time.monotonic() < give_up
        await asyncio.sleep(0.01)


def wait_until(condition: Any) -> None:
    give_up = time.monotonic() + SAFETY_S
    while not condition():
        assert time.monotonic() < give_up
        time.sleep(0.01)


def only_row(url: str) -> Totals:
    (row,) = figures(url, time.time())
    return row[3]


# --------------------------------------------------------------------------- 3: cancelled after sending


async def test_40_tasks_cancelled_after_the_provider_got_them_are_each_charged_the_worst_case(
    fake: FakeProviders, ledger: str
) -> None:
    hung(fake)
    cap = {"limit_usd": 40 * WORST / 1e9}  # exactly 40 worst cases: the cancelled calls fill it
    async with router.AsyncOpenAI(policy=policy(fake, cap), ledger=ledger) as client:
        calls = [asyncio.create_task(aask(client)) for _ in range(40)]
        await until(lambda: len(fake.requests_for("gpt-4o-mini")) == 40)
        for call in calls:
            call.cancel()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        with pytest.raises(router.BudgetExceededError):  # charged, so the cap is full: nothing sent
            await aask(client)
    assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
    seen = len(fake.requests_for("gpt-4o-mini"))
    totals = only_row(ledger)
    assert round(totals.spent_usd * 1e9) == seen * WORST >= seen * BILL  # never below the bill
    assert totals.estimated_usd == totals.spent_usd and totals.reserved_usd == 0
    assert totals.spent_usd <= cap["limit_usd"] and seen == 40


async def test_wait_for_timeouts_charge_every_request_the_provider_saw_and_no_more_than_were_sent(
    fake: FakeProviders, ledger: str
) -> None:
    hung(fake)
    async with router.AsyncOpenAI(policy=policy(fake), ledger=ledger) as client:

        async def one() -> BaseException | None:
            try:
                await asyncio.wait_for(aask(client), timeout=1.0)
            except TimeoutError as exc:
                return exc
            return None

        outcomes = await asyncio.gather(*(one() for _ in range(40)))
    assert all(isinstance(outcome, TimeoutError) for outcome in outcomes)
    seen = len(fake.requests_for("gpt-4o-mini"))
    spent = round(only_row(ledger).spent_usd * 1e9)
    # Each call is charged once it began, which is at or before the moment the provider saw it.
    assert spent % WORST == 0 and seen * WORST <= spent <= 40 * WORST
    assert spent >= seen * BILL


def test_a_sync_call_cut_by_the_read_timeout_after_sending_is_charged_as_estimated(
    fake: FakeProviders, ledger: str
) -> None:
    hung(fake)
    with (
        router.OpenAI(policy=policy(fake, timeout_s=0.5), ledger=ledger) as client,
        pytest.raises((openai.APITimeoutError, router.DeadlineExceededError)),
    ):
        ask(client)
    assert len(fake.requests_for("gpt-4o-mini")) == 1
    assert only_row(ledger) == Totals(WORST / 1e9, 0.0, WORST / 1e9)


def test_a_connection_refused_before_sending_releases_the_reservation(ledger: str) -> None:
    spec = {
        "retry": {"attempts": 1},
        "models": {
            "gpt-4o-mini": {
                "provider": "openai",
                "api_base": f"http://127.0.0.1:{free_port()}/v1",
                "api_key_env": KEY_ENV,
            }
        },
        "features": {"faq": {"budget": {"limit_usd": 1, "window": "total"}}},
    }
    with router.OpenAI(policy=spec, ledger=ledger) as client, pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=QUESTION, max_tokens=100, metadata=FEATURE
        )
    assert figures(ledger, time.time()) == []


async def test_our_own_deadline_cutting_a_call_in_flight_charges_it_as_estimated(
    fake: FakeProviders, ledger: str
) -> None:
    hung(fake)
    async with router.AsyncOpenAI(policy=policy(fake, timeout_s=0.5), ledger=ledger) as client:
        with pytest.raises((openai.APITimeoutError, router.DeadlineExceededError)) as raised:
            await aask(client)
    assert len(fake.requests_for("gpt-4o-mini")) == 1
    assert only_row(ledger) == Totals(WORST / 1e9, 0.0, WORST / 1e9)
    kinds = [event.kind for event in raised.value.routing.budget_events]  # type: ignore[union-attr,attr-defined]
    assert kinds == ["estimated"]


def test_keyboard_interrupts_after_the_provider_got_the_request_are_each_charged_the_worst_case(
    fake: FakeProviders, ledger: str
) -> None:
    hung(fake)
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread() is threading.main_thread()
    with router.OpenAI(policy=policy(fake), ledger=ledger) as client:
        for n in range(1, 11):

            def interrupt(expected: int = n) -> None:
                wait_until(lambda: len(fake.requests_for("gpt-4o-mini")) >= expected)
                signal.pthread_kill(main, signal.SIGINT)  # a real Ctrl-C: it interrupts the blocked read

            helper = threading.Thread(target=interrupt)
            helper.start()
            with pytest.raises(KeyboardInterrupt):
                ask(client)
            helper.join()
    seen = len(fake.requests_for("gpt-4o-mini"))
    assert seen == 10
    assert only_row(ledger) == Totals(10 * WORST / 1e9, 0.0, 10 * WORST / 1e9)


def test_an_interrupt_storm_never_leaves_the_ledger_below_the_providers_bill(
    fake: FakeProviders, ledger: str
) -> None:
    # Ctrl-C at random moments: before sending (released), in flight (worst case), after the answer
    # (exact cost, or the worst case if it lands mid-settle). Whatever happens, never below the bill.
    fake.script(ModelScript("gpt-4o-mini", latency_s=0.02))
    main = threading.main_thread().ident
    assert main is not None
    rng = random.Random(12)
    served = 0
    with router.OpenAI(policy=policy(fake), ledger=ledger) as client:
        ask(client)  # warm: openai's response models are built on first use, and must not be interrupted
        started = time.perf_counter()
        ask(client)
        # Interrupts spread over about twice a call's length on this machine now, so that some calls
        # finish and some are cut at every stage, however loaded the machine is.
        window = 0.05 + 2 * (time.perf_counter() - started)
        for _ in range(60):
            timer = threading.Timer(rng.uniform(0, window), signal.pthread_kill, (main, signal.SIGINT))
            try:
                try:
                    timer.start()  # inside: a short timer may fire before start() returns
                    ask(client)
                    served += 1
                finally:
                    timer.join()
                    time.sleep(0.001)  # an interrupt after the call lands here, not in the next one
            except KeyboardInterrupt:
                pass
    # A settle interrupted mid-way was journaled; `router spend` (like the next request) replays it.
    assert CliRunner().invoke(app, ["spend", "--ledger", ledger]).exit_code == 0
    seen = len(fake.requests_for("gpt-4o-mini")) - 2
    totals = only_row(ledger)
    spent, estimated = round(totals.spent_usd * 1e9) - 2 * BILL, round(totals.estimated_usd * 1e9)
    assert 0 < served < 60 and served <= seen
    assert spent >= seen * BILL and totals.reserved_usd == 0
    # Exact costs for the answers that arrived (an interrupt may land after the settle but before the
    # caller gets the answer), the worst case for the calls cut in flight.
    exact = spent - estimated
    assert exact % BILL == 0 and served * BILL <= exact and estimated % WORST == 0


def test_a_request_refused_by_its_budget_before_sending_charges_nothing(
    fake: FakeProviders, ledger: str
) -> None:
    with (
        router.OpenAI(policy=policy(fake, {"limit_usd": 0.00001}), ledger=ledger) as client,
        pytest.raises(router.BudgetExceededError),
    ):
        ask(client)
    assert fake.requests_for("gpt-4o-mini") == [] and figures(ledger, time.time()) == []


# --------------------------------------------------------------------------- 4: streams settle at once


def test_streams_dropped_unread_settle_at_once_and_do_not_hold_the_budget_until_expiry(
    fake: FakeProviders, ledger: str
) -> None:
    # Each stream's worst case is charged as it is dropped (no gc.collect): reserved goes to 0 at once.
    with router.OpenAI(policy=policy(fake), ledger=ledger) as client:
        for dropped in range(1, 3):
            stream = client.chat.completions.create(
                model="auto", messages=QUESTION, max_tokens=100, metadata=FEATURE, stream=True
            )
            assert only_row(ledger).reserved_usd == WORST / 1e9  # held while it is open
            del stream
            assert only_row(ledger) == Totals(dropped * WORST / 1e9, 0.0, dropped * WORST / 1e9)


def test_a_stream_in_a_with_block_left_early_settles_on_exit(fake: FakeProviders, ledger: str) -> None:
    with router.OpenAI(policy=policy(fake), ledger=ledger) as client:
        with client.chat.completions.create(
            model="auto", messages=QUESTION, max_tokens=100, metadata=FEATURE, stream=True
        ) as stream:
            next(iter(stream))
        assert only_row(ledger) == Totals(WORST / 1e9, 0.0, WORST / 1e9)


def test_a_stream_read_to_its_end_is_charged_its_exact_cost_not_an_estimate(
    fake: FakeProviders, ledger: str
) -> None:
    with router.OpenAI(policy=policy(fake), ledger=ledger) as client:
        stream = client.chat.completions.create(
            model="auto",
            messages=QUESTION,
            max_tokens=100,
            metadata=FEATURE,
            stream=True,
            stream_options={"include_usage": True},
        )
        list(stream)
        del stream
        gc.collect()
    assert only_row(ledger) == Totals(BILL / 1e9, 0.0, 0.0)


async def test_an_async_stream_dropped_unread_settles_without_waiting_for_its_expiry(
    fake: FakeProviders, ledger: str
) -> None:
    async with router.AsyncOpenAI(policy=policy(fake), ledger=ledger) as client:
        stream = await client.chat.completions.create(
            model="auto", messages=QUESTION, max_tokens=100, metadata=FEATURE, stream=True
        )
        assert only_row(ledger).reserved_usd == WORST / 1e9
        del stream
        await until(lambda: only_row(ledger).reserved_usd == 0)
    assert only_row(ledger) == Totals(WORST / 1e9, 0.0, WORST / 1e9)


# --------------------------------------------------------------------------- 5: ledger faults


def test_a_redis_ledger_that_is_down_fails_a_budgeted_request_closed_with_a_ledger_error(
    fake: FakeProviders, tmp_path: Path
) -> None:
    down = f"redis://:{CANARY}@127.0.0.1:{free_port()}/0"
    with router.OpenAI(policy=policy(fake, ledger_journal=str(tmp_path / "j")), ledger=down) as client:
        with pytest.raises(router.LedgerError) as raised:
            ask(client)
        # Unbudgeted requests never touch the ledger.
        client.chat.completions.create(model="auto", messages=QUESTION, max_tokens=100)
        shown = repr(client._router._ledger())
    error = raised.value
    assert isinstance(error, openai.OpenAIError) and isinstance(error.__cause__, Exception)
    assert "redis://:***@127.0.0.1" in str(error) and "running and reachable" in str(error)
    assert error.routing.budget_events[0].kind == "ledger_error"  # type: ignore[attr-defined]
    for text in (str(error), repr(error), shown, repr(error.routing)):  # type: ignore[attr-defined]
        assert CANARY not in text
    assert len(fake.requests_for("gpt-4o-mini")) == 1  # only the unbudgeted one was sent


def test_a_wrong_redis_password_is_a_ledger_error_that_never_shows_the_password(
    fake: FakeProviders, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisProcess(tmp_path, password="right-password")
    server.start()
    try:
        wrong = f"redis://:{CANARY}@127.0.0.1:{server.port}/0"
        with (
            router.OpenAI(policy=policy(fake), ledger=wrong) as client,
            pytest.raises(router.LedgerError) as raised,
        ):
            ask(client)
    finally:
        server.stop()
    assert "password in the ledger URL" in str(raised.value)
    assert CANARY not in str(raised.value) + repr(raised.value) + caplog.text


def test_a_request_goes_on_unchecked_only_if_every_budget_it_counts_against_says_fail_open(
    fake: FakeProviders, tmp_path: Path
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    spec = policy(fake, {"on_ledger_error": "fail_open"}, ledger_journal=str(tmp_path / "j"))
    closed = {**spec, "budget": {"limit_usd": 10}}  # the policy-wide budget fails closed (the default)
    with router.OpenAI(policy=closed, ledger=down) as client, pytest.raises(router.LedgerError):
        ask(client)
    both_open = {**spec, "budget": {"limit_usd": 10, "on_ledger_error": "fail_open"}}
    with router.OpenAI(policy=both_open, ledger=down) as client:
        kinds = [event.kind for event in ask(client).routing.budget_events]
    assert kinds == ["ledger_error", "ledger_error", "journaled", "journaled"]  # one per budget line
    assert len(fake.requests_for("gpt-4o-mini")) == 1


def test_fail_open_serves_while_redis_is_down_and_the_charge_is_replayed_once_it_is_back(
    fake: FakeProviders, tmp_path: Path
) -> None:
    server = RedisProcess(tmp_path)
    journal = tmp_path / "journal.jsonl"
    spec = policy(fake, {"on_ledger_error": "fail_open"}, ledger_journal=str(journal))
    try:
        with router.OpenAI(policy=spec, ledger=server.url) as client:
            response = ask(client)
            kinds = [event.kind for event in response.routing.budget_events]
            assert kinds == ["ledger_error", "journaled"] and response.choices[0].message.content
            assert len(journal.read_text().splitlines()) == 1
            server.start()
            client._router._ledger()._next_replay = float("-inf")  # the next call looks at the journal now
            ask(client)
        assert journal.read_text() == ""
        assert (
            spent_nanos(server.url, time.time()) == 2 * BILL == len(fake.requests_for("gpt-4o-mini")) * BILL
        )
    finally:
        server.stop()


async def test_redis_killed_mid_flight_loses_no_answer_and_no_charge_once_restarted(
    fake: FakeProviders, tmp_path: Path
) -> None:
    # 50 requests in flight when Redis dies: every answer is returned; after a restart (which lost
    # all data: no persistence), the journal puts every charge back, once.
    fake.script(ModelScript("gpt-4o-mini", latency_s=1.0))
    server = RedisProcess(tmp_path)
    server.start()
    journal = tmp_path / "journal.jsonl"
    try:
        spec = policy(fake, ledger_journal=str(journal))
        async with router.AsyncOpenAI(policy=spec, ledger=server.url) as client:

            async def one() -> Any:
                return await aask(client)

            calls = [asyncio.create_task(one()) for _ in range(50)]
            await until(lambda: len(fake.requests_for("gpt-4o-mini")) == 50)
            server.kill()
            responses = await asyncio.gather(*calls)
            assert all(r.choices[0].message.content for r in responses)
            assert all([e.kind for e in r.routing.budget_events] == ["journaled"] for r in responses)
            assert len(journal.read_text().splitlines()) == 50
            server.start()
            client._router._ledger()._next_replay = float("-inf")
            await one()
        billed = len(fake.requests_for("gpt-4o-mini")) * BILL
        assert spent_nanos(server.url, time.time()) == billed == 51 * BILL
        assert journal.read_text() == ""
    finally:
        server.stop()


def _same(ledger: Any) -> Any:
    return ledger


def _settle_into(guarded: Any, charge: Any) -> None:
    guarded.backend.settle(charge.hold, charge.cost_usd, now=charge.at)


def test_a_replayed_charge_that_had_already_landed_is_counted_once(tmp_path: Path, redis_url: str) -> None:
    from router.ledger._guard import Guarded
    from router.ledger._journal import Charge, Journal

    for url in ("memory://", f"sqlite:///{tmp_path / 'l.db'}", redis_url):
        backend = open_ledger(url)
        journal = Journal(tmp_path / f"{len(url)}.jsonl")
        guarded = Guarded(partial(_same, backend), url, journal)
        line = router.ledger.Line("faq", "total", 0.0, None, 1.0)
        hold = guarded.reserve([line], 0.5, ttl_s=60, now=100.0)
        assert isinstance(hold, Hold)
        guarded.settle(hold, 0.25, now=100.0)
        journal.append(Charge(hold, 0.25, False, 100.0))  # as if its reply had been lost
        assert journal.replay(partial(_settle_into, guarded)) == 1
        assert guarded.totals([line], now=100.0)[line.key] == Totals(0.25, 0.0), url
        backend.close()


def test_a_settle_from_inside_a_transaction_of_the_same_thread_is_journaled_not_a_deadlock(
    tmp_path: Path,
) -> None:
    # What a stream's finalizer does when the garbage collector runs it in the middle of a reserve.
    from router.ledger import open_guarded_ledger
    from router.ledger.sqlite import SqliteLedger

    url = f"sqlite:///{tmp_path / 'l.db'}"
    guarded = open_guarded_ledger(url)
    line = router.ledger.Line("faq", "total", 0.0, None, 1.0)
    hold = guarded.reserve([line], 0.5, ttl_s=60, now=100.0)
    assert isinstance(hold, Hold) and isinstance(guarded.backend, SqliteLedger)
    with guarded.backend._write():
        outcome = guarded.settle(hold, 0.25, now=100.0)
    assert isinstance(outcome, router.LedgerError) and "journaled" in str(outcome)
    guarded._next_replay = float("-inf")
    assert guarded.totals([line], now=100.0)[line.key] == Totals(0.25, 0.0)
    guarded.close()


def test_a_locked_sqlite_ledger_is_a_ledger_error_after_the_bounded_wait_not_a_raw_sqlite_error(
    fake: FakeProviders, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}?busy_timeout_s=0.2"
    open_ledger(url).close()  # the file exists, with its tables
    locker = hold_write_lock(path, 30)
    try:
        with (
            router.OpenAI(policy=policy(fake), ledger=url) as client,
            pytest.raises(router.LedgerError, match="holds the SQLite write lock") as raised,
        ):
            ask(client)
    finally:
        locker.kill()
        locker.wait()
    assert type(raised.value.__cause__).__module__ == "sqlite3"
    assert fake.requests_for("gpt-4o-mini") == []


def test_a_sqlite_lock_at_settle_time_journals_the_charge_and_returns_the_answer(
    fake: FakeProviders, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}?busy_timeout_s=0.2"
    fake.script(ModelScript("gpt-4o-mini", latency_s=0.5))
    lockers = []
    with router.OpenAI(policy=policy(fake), ledger=url) as client:

        def lock_once_sent() -> None:
            wait_until(lambda: fake.requests_for("gpt-4o-mini"))
            lockers.append(hold_write_lock(path, 30))

        helper = threading.Thread(target=lock_once_sent)
        helper.start()
        response = ask(client)
        helper.join()
        lockers[0].kill()
        lockers[0].wait()
        assert [e.kind for e in response.routing.budget_events] == ["journaled"]
        assert Path(f"{path}.router-journal").read_text().count("\n") == 1
        client._router._ledger()._next_replay = float("-inf")
        ask(client)
    assert spent_nanos(url, time.time()) == 2 * BILL == len(fake.requests_for("gpt-4o-mini")) * BILL


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_sqlite_ledger_deleted_or_replaced_in_use_raises_instead_of_writing_into_the_void(
    fake: FakeProviders, tmp_path: Path, how: str
) -> None:
    path = tmp_path / "ledger.db"
    with router.OpenAI(policy=policy(fake), ledger=f"sqlite:///{path}") as client:
        ask(client)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")
        if how == "replaced":
            open_ledger(f"sqlite:///{path}").close()
        with pytest.raises(router.LedgerError, match=f"was {how}"):
            ask(client)
    assert len(fake.requests_for("gpt-4o-mini")) == 1


# --------------------------------------------------------------------------- 6: the loop never waits


LOCK_S = 2.0  # the attack held the lock 10 s; 2 s is 20 x the stall allowed, and quicker


async def test_the_event_loop_keeps_its_heartbeat_while_another_process_holds_the_sqlite_lock(
    fake: FakeProviders, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    open_ledger(url).close()
    async with router.AsyncOpenAI(policy=policy(fake), ledger=url) as client:
        await aask(client)
        locker = await asyncio.to_thread(hold_write_lock, path, LOCK_S)
        beats: list[float] = []
        done = asyncio.Event()

        async def heartbeat() -> None:
            while not done.is_set():
                beats.append(time.monotonic())
                await asyncio.sleep(0.005)

        beating = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        responses = await asyncio.gather(*(aask(client) for _ in range(5)))
        waited = time.monotonic() - started
        done.set()
        await beating
        await asyncio.to_thread(locker.wait)
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    # Compared within this run: the requests waited out most of the lock, the loop did not (a ledger
    # on the loop stalls it for the whole lock, ~LOCK_S; a quarter of that leaves room for a busy CI).
    assert waited > LOCK_S / 2 and max(gaps) < LOCK_S / 4, (waited, max(gaps))
    assert all(r.routing.cost_usd for r in responses)
    assert spent_nanos(url, time.time()) == 6 * BILL


async def test_the_event_loop_keeps_its_heartbeat_while_the_shared_breakers_redis_is_paused(
    fake: FakeProviders, tmp_path: Path
) -> None:
    # A paused (SIGSTOP) server accepts connections and never answers: each Redis call waits out its
    # 0.5 s socket timeout. Breakers read it while planning and write it when a breaker opens.
    server = RedisProcess(tmp_path)
    server.start()
    fake.script(ModelScript("gpt-4o-mini", faults=(status(503),) * 3))
    spec = policy(fake, cooldown={"failures": 2, "window_s": 60, "cooldown_s": 30})
    assert server.process is not None
    server.process.send_signal(signal.SIGSTOP)
    try:
        async with router.AsyncOpenAI(policy=spec, ledger=server.url) as client:
            beats: list[float] = []
            done = asyncio.Event()

            async def heartbeat() -> None:
                while not done.is_set():
                    beats.append(time.monotonic())
                    await asyncio.sleep(0.005)

            beating = asyncio.create_task(heartbeat())
            await asyncio.sleep(0.05)
            outcomes = []
            for _ in range(4):  # unbudgeted: only the breakers touch Redis
                await asyncio.sleep(0.6)  # past refresh_s (1 s) every other request: planning reads Redis
                try:
                    response = await client.chat.completions.create(model="auto", messages=QUESTION)
                    outcomes.append(response.routing.model)
                except (openai.InternalServerError, router.NoCandidateError) as exc:
                    outcomes.append(type(exc).__name__)
            done.set()
            await beating
    finally:
        server.process.send_signal(signal.SIGCONT)
        server.stop()
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    # Two 503s opened the breaker (a publish), every plan asked for a refresh: none of it on the loop.
    assert outcomes[:2] == ["InternalServerError", "InternalServerError"], outcomes
    # A Redis call on the loop would stall it for the whole 0.5 s socket timeout; half that is the bound.
    assert max(gaps) < 0.25, (max(gaps), outcomes)


# --------------------------------------------------------------------------- 10: no password printed


def test_router_spend_never_prints_a_redis_password(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path, password=CANARY)
    server.start()
    runner = CliRunner()
    try:
        table = runner.invoke(app, ["spend", "--ledger", server.url])
        as_json = runner.invoke(app, ["spend", "--ledger", server.url, "--json"])
        wrong = runner.invoke(app, ["spend", "--ledger", server.url.replace(CANARY, CANARY + "x")])
    finally:
        server.stop()
    down = runner.invoke(app, ["spend", "--ledger", server.url])
    assert table.exit_code == 0 and as_json.exit_code == 0, table.output + as_json.output
    assert json.loads(as_json.output)["ledger"] == f"redis://:***@127.0.0.1:{server.port}/0"
    assert wrong.exit_code == 2 and down.exit_code == 2
    for result in (table, as_json, wrong, down):
        assert CANARY not in result.output + (result.stderr if result.stderr_bytes else "")


def test_ledger_reprs_never_show_the_password(tmp_path: Path, fake: FakeProviders) -> None:
    url = f"redis://user:{CANARY}@127.0.0.1:{free_port()}/0?socket_timeout=1"
    client = router.OpenAI(policy={**policy(fake), "ledger": url})
    assert CANARY not in repr(client.policy) + repr(client._router._ledger()) + repr(client._router._breakers)
    client.close()
    assert CANARY not in repr(router.ledger.parse_ledger_url(url))
    assert CANARY not in repr(open_ledger(url))
    with pytest.raises(ValueError) as raised:
        router.ledger.parse_ledger_url(f"redis+bad://:{CANARY}@host")
    assert CANARY not in str(raised.value)


@pytest.fixture(autouse=True)
def _no_leftover_journals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # a default Redis journal lands here
    yield


# --------------------------------------------------------------------------- interrupted between actions


def _interrupt_once(monkeypatch: pytest.MonkeyPatch, method: str, error: BaseException) -> list[int]:
    """Make the Session's ``method`` raise ``error`` once: an interrupt landing in decision code
    between two of the driver's actions (after the reserve, or after the answer and before its settle)."""
    from router._session import Session

    original = getattr(Session, method)
    raised: list[int] = []

    def interrupted(self: Session, *args: Any, **kwargs: Any) -> Any:
        if not raised:
            raised.append(1)
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Session, method, interrupted)
    return raised


def test_an_interrupt_after_the_reserve_and_before_the_call_gives_the_hold_back(
    fake: FakeProviders, ledger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with router.OpenAI(policy=policy(fake), ledger=ledger) as client:
        raised = _interrupt_once(monkeypatch, "begin", KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            ask(client)
        assert raised and fake.requests_for("gpt-4o-mini") == []
        # Not held until the reservation expires: released at once (the row goes with it).
        assert figures(ledger, time.time()) == []
        ask(client)  # the next request is routed and charged as usual
    assert only_row(ledger) == Totals(BILL / 1e9, 0.0, 0.0)


def test_an_interrupt_after_the_answer_and_before_its_settle_charges_the_worst_case(
    fake: FakeProviders, ledger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with router.OpenAI(policy=policy(fake), ledger=ledger) as client:
        _interrupt_once(monkeypatch, "cost_of", KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            ask(client)
    assert len(fake.requests_for("gpt-4o-mini")) == 1
    # The provider served it: charged as a call cancelled in flight, nothing left reserved.
    assert only_row(ledger) == Totals(WORST / 1e9, 0.0, WORST / 1e9)


async def test_a_task_cancelled_between_the_reserve_and_the_call_gives_the_hold_back(
    fake: FakeProviders, ledger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with router.AsyncOpenAI(policy=policy(fake), ledger=ledger) as client:
        raised = _interrupt_once(monkeypatch, "begin", asyncio.CancelledError())
        with pytest.raises(asyncio.CancelledError):
            await aask(client)
        assert raised and fake.requests_for("gpt-4o-mini") == []
        await aask(client)
    assert only_row(ledger) == Totals(BILL / 1e9, 0.0, 0.0)


def _interrupt_after_reserving(
    monkeypatch: pytest.MonkeyPatch, ledger_class: type, error: BaseException
) -> list[Hold]:
    """Make ``ledger_class.reserve`` grant the hold and then raise ``error``, once: an interrupt in
    the few bytecodes between the ledger's answer and the Decider hearing of it."""
    original = ledger_class.reserve
    granted: list[Hold] = []

    def interrupted(self: Any, *args: Any, **kwargs: Any) -> Any:
        outcome = original(self, *args, **kwargs)
        if not granted and isinstance(outcome, Hold):
            granted.append(outcome)
            raise error
        return outcome

    async def ainterrupted(self: Any, *args: Any, **kwargs: Any) -> Any:
        outcome = await original(self, *args, **kwargs)
        if not granted and isinstance(outcome, Hold):
            granted.append(outcome)
            raise error
        return outcome

    monkeypatch.setattr(
        ledger_class, "reserve", ainterrupted if asyncio.iscoroutinefunction(original) else interrupted
    )
    return granted


def test_an_interrupt_as_the_ledger_answers_the_reserve_gives_the_hold_back(
    fake: FakeProviders, ledger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.ledger.sqlite import SqliteLedger

    with router.OpenAI(policy=policy(fake), ledger=ledger) as client:
        granted = _interrupt_after_reserving(monkeypatch, SqliteLedger, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            ask(client)
        assert granted and fake.requests_for("gpt-4o-mini") == []
        assert figures(ledger, time.time()) == []  # released at once, not at the hold's expiry
        ask(client)
    assert only_row(ledger) == Totals(BILL / 1e9, 0.0, 0.0)


def test_an_interrupt_as_the_memory_ledger_answers_the_reserve_gives_the_hold_back(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.ledger.memory import MemoryLedger

    with router.OpenAI(policy=policy(fake), ledger="memory://") as client:
        granted = _interrupt_after_reserving(monkeypatch, MemoryLedger, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            ask(client)
        (line,) = granted[0].lines
        assert client._router._ledger().totals([line], now=time.time())[line.key] == Totals(0.0, 0.0, 0.0)


async def test_a_task_cancelled_as_the_ledger_answers_the_reserve_gives_the_hold_back(
    fake: FakeProviders, ledger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.ledger.sqlite import AsyncSqliteLedger

    async with router.AsyncOpenAI(policy=policy(fake), ledger=ledger) as client:
        granted = _interrupt_after_reserving(monkeypatch, AsyncSqliteLedger, asyncio.CancelledError())
        with pytest.raises(asyncio.CancelledError):
            await aask(client)
        assert granted and fake.requests_for("gpt-4o-mini") == []
        assert figures(ledger, time.time()) == []
        await aask(client)
    assert only_row(ledger) == Totals(BILL / 1e9, 0.0, 0.0)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_storm_of_task_cancellations_leaves_nothing_reserved_and_the_bill_covered(
    fake: FakeProviders, ledger: str, request: pytest.FixtureRequest, backend: str
) -> None:
    # 200 requests in flight, each cancelled at a random moment over about one batch's length: while
    # it waits for a connection, mid-reserve, in flight, mid-settle, or after it was served. Redis
    # drops a connection whose reply was not read, so a cancelled script may or may not have run.
    url = ledger if backend == "sqlite" else request.getfixturevalue("redis_url")
    fake.script(ModelScript("gpt-4o-mini", latency_s=0.02))
    rng = random.Random(7)
    async with router.AsyncOpenAI(policy=policy(fake), ledger=url) as client:
        started = time.perf_counter()
        await asyncio.gather(*(aask(client) for _ in range(20)))  # warm, and a measure of this machine
        window = 0.05 + 10 * (time.perf_counter() - started)
        calls = [asyncio.create_task(aask(client)) for _ in range(200)]
        loop = asyncio.get_running_loop()
        for call in calls:
            loop.call_later(rng.uniform(0, window), call.cancel)
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    cancelled = sum(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
    assert cancelled > 0 and all(
        isinstance(outcome, asyncio.CancelledError | openai.types.chat.ChatCompletion) for outcome in outcomes
    )
    # Every settle and release landed before the client closed: nothing held until its expiry or
    # until a journal replay (a settle cut mid-way is journaled too, and counted once on replay).
    assert only_row(url).reserved_usd == 0
    assert CliRunner().invoke(app, ["spend", "--ledger", url]).exit_code == 0
    totals = only_row(url)
    seen = len(fake.requests_for("gpt-4o-mini"))
    assert totals.reserved_usd == 0 and round(totals.spent_usd * 1e9) >= seen * BILL  # the bill covered
