"""``router.testing.capture_events``: the router's events as dicts, whatever the app's logging setup."""

from __future__ import annotations

import logging
import threading

from router._events import Events
from router.testing import capture_events
from tests.router.event_helpers import (
    WARNING,
    fallback_record,
    router_logger_fixture,  # noqa: F401 - the fixture router_logger
)

EVENTS = Events(policy_hash="0123456789ab")


def test_each_event_is_captured_as_a_dict_with_its_name_and_level() -> None:
    with capture_events() as captured:
        EVENTS.completed(fallback_record())
        EVENTS.budget("req_1", "support-bot", WARNING)
    assert [(e["event"], e["log_level"]) for e in captured] == [
        ("route.completed", "info"),
        ("budget.warning", "warning"),
    ]
    assert captured[0]["model"] == "gpt-4o" and captured[1]["spent_usd"] == 8.25


def test_capture_works_when_the_app_silenced_or_disabled_the_router_logger(
    router_logger: logging.Logger,
) -> None:
    # What logging.config.dictConfig does to loggers it was not told about.
    router_logger.disabled = True
    router_logger.setLevel(logging.CRITICAL)
    with capture_events() as captured:
        EVENTS.completed(fallback_record())
    assert [e["event"] for e in captured] == ["route.completed"]
    assert router_logger.disabled and router_logger.level == logging.CRITICAL


def test_the_logger_is_put_back_as_it_was(router_logger: logging.Logger) -> None:
    router_logger.setLevel(logging.WARNING)
    handlers = list(router_logger.handlers)
    with capture_events():
        assert router_logger.level == logging.DEBUG
    assert router_logger.level == logging.WARNING and router_logger.handlers == handlers


def test_nothing_is_captured_after_the_block() -> None:
    with capture_events() as captured:
        pass
    EVENTS.completed(fallback_record())
    assert captured == []


def test_captures_nest() -> None:
    with capture_events() as outer:
        EVENTS.completed(fallback_record())
        with capture_events() as inner:
            EVENTS.budget("req_1", "support-bot", WARNING)
        EVENTS.completed(fallback_record(request_id="req_last"))
    assert [e["event"] for e in inner] == ["budget.warning"]
    assert [e["event"] for e in outer] == ["route.completed", "budget.warning", "route.completed"]


def test_events_from_other_threads_are_captured() -> None:
    with capture_events() as captured:
        worker = threading.Thread(target=EVENTS.completed, args=(fallback_record(request_id="req_thread"),))
        worker.start()
        worker.join()
    assert [e["request_id"] for e in captured] == ["req_thread"]


def test_plain_logging_calls_on_router_loggers_are_captured_with_their_message() -> None:
    with capture_events() as captured:
        logging.getLogger("router.ledger").debug("ledger %s opened", "sqlite")
    assert captured == [{"event": "ledger sqlite opened", "log_level": "debug"}]


def test_a_captured_event_is_a_plain_dict_the_test_may_change() -> None:
    with capture_events() as captured:
        EVENTS.completed(fallback_record())
    assert type(captured[0]) is dict
