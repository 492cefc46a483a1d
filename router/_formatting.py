"""The formatter behind ``router.logging.configure``: structlog's ``ProcessorFormatter``, a short chain.

Kept apart from ``router.logging`` so that importing that module (or exporting ``configure`` from
``router``) does not import structlog, which costs tens of milliseconds; it is loaded on the
first ``configure``.
"""

from __future__ import annotations

import json
import json.encoder
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

from structlog.dev import ConsoleRenderer
from structlog.processors import format_exc_info
from structlog.stdlib import ProcessorFormatter
from structlog.typing import EventDict, WrappedLogger

from providers._json import dumps
from router._events import CONTENT_FIELDS, LOGGER_NAME, Event

_logger: Final = logging.getLogger(LOGGER_NAME)


def formatter(*, json_lines: bool = True, log_content: bool = True) -> logging.Formatter:
    processors: list[Callable[[WrappedLogger, str, EventDict], Any]] = [_header, format_exc_info]
    if not log_content:
        processors.append(_drop_content)
    processors.append(_render_json if json_lines else ConsoleRenderer(colors=False, sort_keys=False))
    if json_lines:
        return _JsonFormatter(processors=processors, log_content=log_content)
    return _Formatter(processors=processors)


class _Formatter(ProcessorFormatter):
    """``ProcessorFormatter`` without its per-record copy for the router's own events.

    The copy protects the record from processors that change it; ours only read the record, and
    an event's dict is copied anyway. It halves the cost of a line. Other records take the
    ordinary way.
    """

    def format(self, record: logging.LogRecord) -> str:
        msg = record.msg
        if type(msg) is not Event:
            return super().format(record)
        event_dict: Any = dict(msg)
        event_dict["_record"] = record
        event_dict["_from_structlog"] = True
        method = record.__dict__.get("_name", "info")
        for processor in self.processors:
            event_dict = processor(_logger, method, event_dict)
        return cast(str, event_dict)


def _header(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Timestamp, level and logger first, then the event: read from the record, not the clock now."""
    record: logging.LogRecord = event_dict.pop("_record")
    event_dict.pop("_from_structlog", None)
    header: EventDict = {
        "timestamp": timestamp(record.created),
        "level": record.levelname.lower(),
        "logger": record.name,
    }
    header.update(event_dict)
    return header


def timestamp(created: float) -> str:
    """ISO 8601 in UTC, to the microsecond."""
    seconds, micros = divmod(round(created * 1_000_000), 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


class _JsonFormatter(_Formatter):
    """The JSON lines of the router's own events without the processor chain: the same line, built in
    one dict and encoded once, with the date part of the timestamp made once per second.

    Every request writes three of these lines, so the chain's per-line calls and the ``strftime``
    showed in the throughput profile. Other records (plain ``logging`` calls, exceptions) still take
    the chain, which renders them the same way.
    """

    def __init__(self, *, processors: Any, log_content: bool) -> None:
        super().__init__(processors=processors)
        self._drop = None if log_content else CONTENT_FIELDS
        # (whole second, "YYYY-MM-DDTHH:MM:SS"): replaced as a whole, so threads never see half of it.
        self._second: tuple[int, str] = (-1, "")
        # The encoded level and logger fields by (level name, logger name).
        self._heads: dict[tuple[str, str], str] = {}

    def format(self, record: logging.LogRecord) -> str:
        msg = record.msg
        if type(msg) is not Event or record.exc_info:
            return super().format(record)
        return self.event_line(record.created, record.levelname, record.name, msg)

    def event_line(self, created: float, levelname: str, name: str, msg: Mapping[str, Any]) -> str:
        """The line of an event's record, from the three record fields it reads: ``format`` for the
        router's events, and what ``router.logging``'s handlers write without a record (``write_event``)."""
        seconds, micros = divmod(round(created * 1_000_000), 1_000_000)
        cached = self._second
        if cached[0] != seconds:
            cached = self._second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
        timestamp = f"{cached[1]}.{micros:06d}Z"
        drop = self._drop
        if msg and _HEADER.isdisjoint(msg) and (drop is None or drop.isdisjoint(msg)):
            # The header as text, then the event's own encoding spliced in after its "{": the same
            # line as the dict below, without copying the event into it.
            head = self._heads.get((levelname, name)) or self._head(levelname, name)
            return f'{{"timestamp":"{timestamp}",{head}{_line(msg)[1:]}'
        line: dict[str, Any] = {"timestamp": timestamp, "level": levelname.lower(), "logger": name}
        line.update(msg)
        if drop is not None:
            for key in drop & msg.keys():
                del line[key]
        return _line(line)

    def _head(self, levelname: str, name: str) -> str:
        """``"level":...,"logger":...,`` as the encoder writes them (the timestamp needs no escaping)."""
        head = f'"level":{_encode(levelname.lower())},"logger":{_encode(name)},'
        if len(self._heads) < 64:  # levels and logger names are few; never let the cache grow unbounded
            self._heads[levelname, name] = head
        return head


def _drop_content(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in CONTENT_FIELDS & event_dict.keys():
        del event_dict[key]
    return event_dict


# One encoder, built once: json.dumps with a `default=` would build a new one for every line.
_ENCODER: Final = json.JSONEncoder(default=repr, ensure_ascii=False, separators=(",", ":"))
# The keys a line starts with (``event_line``).
_HEADER: Final = frozenset({"timestamp", "level", "logger"})
# The C encoder ``JSONEncoder.iterencode`` builds for ``_ENCODER`` (None without the C accelerator).
_C_ENCODER: Final[Any] = getattr(json.encoder, "c_make_encoder", None)
_ENCODE_STR: Final = json.encoder.encode_basestring


def _encode(value: object) -> str:
    """``_ENCODER.encode(value)``, without what ``JSONEncoder.encode`` sets up in Python on every call
    (a closure, then a list to join): the same C encoder with the same arguments, a fresh cycle check."""
    if _C_ENCODER is None or not isinstance(value, dict):
        return _ENCODER.encode(value)
    make = _C_ENCODER({}, repr, _ENCODE_STR, None, ":", ",", False, False, True)
    return "".join(make(value, 0))


def _line(event: Mapping[str, Any]) -> str:
    """An event's JSON text, for the fast path (``event_line``) and the processor chain (``_render_json``)
    alike, so both write the same line: orjson's when the event holds only plain JSON values
    (providers/_json.py: the stdlib's values, floats written shorter); otherwise ``_encode``'s, as
    before: content fields (the caller's messages, the answer, with the encoder's cycle check), a NaN
    or an infinity, an int beyond 64 bits, a key that is not a string, any other type (its ``repr``)."""
    kind = type(event)
    if (kind is dict or kind is Event) and CONTENT_FIELDS.isdisjoint(event):
        encoded = dumps(cast(dict[str, Any], event))
        if encoded is not None:
            return encoded.decode()
    return _encode(event)


def _render_json(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    return _line(event_dict)
