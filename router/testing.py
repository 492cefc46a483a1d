"""Helpers for the tests of apps that use the router.

``capture_events`` is to the router's events what structlog's ``capture_logs`` is to structlog's:

    from router.testing import capture_events

    with capture_events() as events:
        client.chat.completions.create(model="auto", messages=[...])
    assert events[-1]["event"] == "route.completed"
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from router._events import LOGGER_NAME, Event

__all__ = ["capture_events"]


class _Capture(logging.Handler):
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        super().__init__(logging.DEBUG)
        self.entries = entries

    def emit(self, record: logging.LogRecord) -> None:
        # Else a plain ``logging`` call on a ``router.*`` logger.
        msg = record.msg
        entry = dict(msg) if isinstance(msg, Event) else {"event": record.getMessage()}
        entry["log_level"] = record.levelname.lower()
        self.entries.append(entry)


@contextmanager
def capture_events() -> Iterator[list[dict[str, Any]]]:
    """Collect every event of the ``router`` logger, at every level, as dicts, while active.

    Each entry is the event's fields plus ``"event"`` (its name) and ``"log_level"``
    (``"info"``, ``"warning"``, ...). Works whatever the app's logging setup: the ``router``
    logger is opened to DEBUG (and re-enabled if a ``dictConfig`` disabled it) for the duration
    and restored after, so captures nest. Events from every thread are captured. The events still
    propagate to the app's own handlers, those below the app's level included while it lasts.
    """
    entries: list[dict[str, Any]] = []
    handler = _Capture(entries)
    logger = logging.getLogger(LOGGER_NAME)
    level, disabled = logger.level, logger.disabled
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.disabled = False
    try:
        yield entries
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled
