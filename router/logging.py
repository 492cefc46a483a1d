"""Send the router's events somewhere: JSON lines or readable console lines, for apps that want it.

The library itself configures nothing: its events go to the stdlib logger ``"router"``, which has
only a ``NullHandler`` of its own. Constructing a client never changes logging: a policy's
``logging:`` section applies only when the application asks (``configure_from_policy``, the
clients' ``configure_logging=True``, or the ``router`` command). ``configure`` attaches one
handler there (and replaces it when called again), rendered by structlog's
``ProcessorFormatter``; it touches neither the root logger nor structlog's global configuration,
and leaves ``propagate`` as it is.
"""

from __future__ import annotations

import asyncio
import logging  # absolute: the stdlib's, not this module
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TextIO

from router._events import LOGGER_NAME, Event, _record

if TYPE_CHECKING:
    from policies.schema import LoggingSpec, Policy

__all__ = ["configure", "configure_from_policy", "configure_from_spec", "formatter"]

# Marks the handler ``configure`` attached, so that a second call replaces it instead of stacking.
HANDLER_NAME: Final = "router.logging"
_logger: Final = logging.getLogger(LOGGER_NAME)
_LEVELS: Final = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
}


def configure(
    *,
    json: bool = True,
    level: str | int = "INFO",
    stream: TextIO | None = None,
    file: str | os.PathLike[str] | None = None,
    log_content: bool | None = None,
) -> logging.Handler:
    """Write the ``router`` logger's events to ``stream`` (default: stderr) or append them to ``file``.

    ``json``: one JSON object per line (timestamp in ISO 8601 UTC, level, logger, event, the
    fields); false: aligned ``key=value`` console lines without colors. ``level`` is set on the
    ``router`` logger, so events below it cost nothing, and on the handler, so it writes nothing
    below it even while ``router.testing.capture_events`` opens the logger. ``log_content=False``
    strips message content from what this handler writes even when a client's policy opted in to
    logging it; None or True writes what each client's policy (``logging.log_content``) allows.

    Returns the handler, already attached.
    """
    if stream is not None and file is not None:
        raise ValueError("configure() takes a stream or a file, not both")
    numeric = _level(level)
    handler: logging.Handler
    if file is not None:
        handler = _FileHandler(os.fspath(file), mode="a", encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setLevel(numeric)
    handler.setFormatter(formatter(json=json, log_content=log_content is not False))
    for old in [h for h in _logger.handlers if h.get_name() == HANDLER_NAME]:
        _logger.removeHandler(old)
        old.close()
    _logger.addHandler(handler)
    _logger.setLevel(numeric)
    return handler


def configure_from_policy(policy: Policy | str | os.PathLike[str]) -> logging.Handler | None:
    """Apply a policy's ``logging:`` section (a loaded ``Policy`` or a policy file's path).

    Returns the handler attached, or None when the policy has no ``logging:`` section (then
    nothing changes). A library must not rewire the process's logging by itself, so clients never
    call this unless built with ``configure_logging=True``.
    """
    if isinstance(policy, str | os.PathLike):
        from policies.loader import load_policy

        policy = load_policy(policy)
    if policy.logging is None:
        return None
    return configure_from_spec(policy.logging, source=policy.source)


def configure_from_spec(spec: LoggingSpec, *, source: str | None = None) -> logging.Handler:
    """``configure`` with a policy's ``logging:`` section (read from ``source``, for errors).

    Content is left to each client: the client built from this policy logs it only when the
    section says ``log_content: true``, and another client's choice is not overridden. A log file
    that cannot be opened is a PolicyError naming ``logging.file``, not a bare OSError.
    """
    try:
        return configure(json=spec.json_lines, level=spec.level, file=spec.file)
    except OSError as exc:
        from policies.loader import PolicyError, Problem

        reason = exc.strerror or type(exc).__name__
        raise PolicyError(
            [
                Problem(
                    source or "",
                    None,
                    "logging.file",
                    f"cannot open the log file {spec.file}: {reason} — create its directory or fix the path"
                    " (router validate checks this)",
                )
            ]
        ) from None


def formatter(*, json: bool = True, log_content: bool = True) -> logging.Formatter:
    """The formatter ``configure`` uses, for apps that attach it to a handler of their own.

    Records that do not come from the router's events (plain ``logging`` calls) are rendered too,
    with their message as the event. ``log_content=False`` drops content fields.
    """
    from router._formatting import formatter as make

    return make(json_lines=json, log_content=log_content)


class _FileHandler(logging.FileHandler):
    """A ``FileHandler`` that, inside a running event loop, flushes once per loop turn, not per line.

    A request logs three lines; a flush each (a ``write`` system call) was a fifth of what logging
    cost per request at 64 in flight. Lines written while a loop runs callbacks are flushed by one
    callback of that loop, which runs right after the callbacks that were ready (the next turn,
    before the loop waits on I/O): nothing waits longer than that. Outside a loop (the sync client,
    threads) every line is flushed at once, as before; ``close`` and ``logging.shutdown`` (atexit)
    flush what is left, and so does any later flush.
    """

    def __init__(self, filename: str, mode: str = "a", encoding: str | None = None) -> None:
        super().__init__(filename, mode=mode, encoding=encoding)
        self._emitting_on: asyncio.AbstractEventLoop | None = None
        # The loop a flush is scheduled on; a loop closed before running it is replaced by the next.
        self._flush_on: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self._emitting_on = _running_loop()  # emit runs under the handler's lock
        try:
            super().emit(record)
        finally:
            self._emitting_on = None

    @property
    def writes_events(self) -> bool:
        """Whether ``write_event`` writes what ``handle`` would: its formatter is ``configure``'s JSON one."""
        formatting = sys.modules.get("router._formatting")
        return formatting is not None and type(self.formatter) is formatting._JsonFormatter

    def write_event(self, level: int, event: dict[str, Any]) -> None:
        """``handle`` of the router event's record (``router._events``), without making the record:
        the same line, written the way ``emit`` writes it. Only when ``writes_events`` and nothing
        else would see the record (no filter, no other handler: ``router._events._sink``)."""
        created = time.time()
        with self.lock:  # type: ignore[union-attr]  # always made by Handler.__init__
            stream = self.stream
            if stream is None and (self.mode != "w" or not getattr(self, "_closed", False)):
                stream = self.stream = self._open()
            if not stream:
                return
            try:
                formatter: Any = self.formatter
                line = formatter.event_line(created, logging.getLevelName(level), LOGGER_NAME, event)
                stream.write(line + self.terminator)
                self._flush_for(_running_loop())
            except RecursionError:
                raise
            except Exception:
                self.handleError(_record(level, Event(event)))

    def flush(self) -> None:
        self.acquire()  # reentrant: another thread's flush waits for an emit to end, then flushes
        try:
            self._flush_for(self._emitting_on)
        finally:
            self.release()

    def _flush_for(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Under the lock: flush now outside a running loop, else once per turn of ``loop``."""
        if loop is None:
            super().flush()
        elif self._flush_on is not loop:
            self._flush_on = loop
            loop.call_soon(self._flush_turn)

    def _flush_turn(self) -> None:
        self.acquire()
        try:
            self._flush_on = None
            super().flush()
        finally:
            self.release()


# get_running_loop's answer, None instead of raising; the C function itself (a wrapper's call was a
# measurable part of each line).
_running_loop: Final[Callable[[], asyncio.AbstractEventLoop | None]] = asyncio._get_running_loop


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    try:
        return _LEVELS[level.upper()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}") from None
