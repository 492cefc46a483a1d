"""The structured events of each request: one when it is routed, one per attempt, one when it ends.

Events go to the stdlib logger ``"router"`` and nowhere else; the library configures no global
logging (``router.logging.configure`` is for apps that want a handler). Each event is a stdlib
``LogRecord`` built the way structlog's ``ProcessorFormatter.wrap_for_formatter`` builds one: its
``msg`` is the event dict (so any ``ProcessorFormatter``, ours or the app's, renders it as a
structlog event) and ``_logger``/``_name`` mark it as such. The fields are also record attributes
(like ``extra=``), and ``str(record.msg)`` is a ``key=value`` line, so plain stdlib handlers and
formatters work too.

The record is made directly (record factory + ``Logger.handle``) rather than through a structlog
``BoundLogger``: that path adds a context copy and the stdlib's caller lookup (a stack walk) to every
event, and neither would tell anything here. An event whose level is off costs one
``isEnabledFor`` check: nothing is built before it.

Redaction: no event carries message content, tool arguments or results, provider error messages,
API keys or headers. Only ``log_content=True`` (a policy's ``logging.log_content``) adds the
request's ``messages`` to ``route.decided`` and the answer's ``content`` to ``route.completed``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Any, Final

from providers.errors import error_class
from providers.tiers import STANDARD
from router._routing import Attempt, BudgetEvent, RoutingRecord

if TYPE_CHECKING:
    from collections.abc import Mapping

    from policies.plan import Plan

LOGGER_NAME: Final = "router"
# Fields that hold the caller's text; only ever present when log_content is on.
CONTENT_FIELDS: Final = frozenset({"messages", "content"})

_INFO: Final = logging.INFO
_WARNING: Final = logging.WARNING
_ERROR: Final = logging.ERROR
# structlog's method name for each level, which ProcessorFormatter passes to its processors.
_METHOD: Final = {_INFO: "info", _WARNING: "warning", _ERROR: "error"}
_BUDGET_LEVEL: Final = {"warning": _WARNING, "exceeded": _WARNING, "downgraded": _INFO}

_logger: Final = logging.getLogger(LOGGER_NAME)
# The stdlib's advice for libraries: without it, an app with no logging set up would get our
# WARNING/ERROR events printed to stderr by logging.lastResort.
if not any(isinstance(h, logging.NullHandler) for h in _logger.handlers):
    _logger.addHandler(logging.NullHandler())


class Event(dict[str, Any]):
    """An event dict whose ``str()`` is a readable ``event key=value ...`` line for plain formatters.

    Rendered only when a handler formats the record, never when the event is emitted.
    """

    __slots__ = ()

    def __str__(self) -> str:
        parts = [str(self.get("event", ""))]
        parts.extend(f"{key}={_plain(value)}" for key, value in self.items() if key != "event")
        return " ".join(parts)


def _plain(value: object) -> str:
    if isinstance(value, str):
        return value if value and " " not in value and "=" not in value else json.dumps(value)
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, default=str, separators=(",", ":"))


class Events:
    """What the request pipeline reports; one per client (the policy hash and ``log_content`` are its own).

    ``tracer_provider`` sends the spans to that OpenTelemetry provider instead of the global one.
    """

    __slots__ = ("_log_content", "_policy_hash", "_tracer", "_tracer_provider")

    def __init__(self, *, policy_hash: str, log_content: bool = False, tracer_provider: Any = None) -> None:
        self._policy_hash = policy_hash
        self._log_content = log_content
        self._tracer_provider = tracer_provider
        # (provider, its tracer for us): made once per provider, remade if the global one changes.
        self._tracer: tuple[Any, Any] | None = None

    @staticmethod
    def deciding() -> bool:
        """Whether ``route.decided`` would be logged: the caller may skip building its record."""
        return _logger.isEnabledFor(_INFO)

    def decided(self, record: RoutingRecord, *, messages: object = None) -> None:
        """``route.decided``: the ranked candidates, the rejected models with reasons, the rules applied."""
        self.planned(record.request_id, record.feature, record.requested, record, messages=messages)

    def planned(
        self, request_id: str, feature: str, requested: str, plan: Plan | RoutingRecord, *, messages: object
    ) -> None:
        """``decided`` from a request's plan (nothing skipped yet): the same event without the routing
        record a session would build only for it. A record carries the plan's fields too."""
        if not _logger.isEnabledFor(_INFO):
            return
        event: dict[str, Any] = {
            "event": "route.decided",
            "request_id": request_id,
            "feature": feature,
            "route": plan.route,
            "requested": requested,
            "strategy": plan.strategy,
            "candidates": [
                {
                    "model": c.model,
                    "provider": c.provider,
                    "expected_cost_usd": c.expected_cost_usd,
                    "fallback": c.fallback,
                }
                for c in plan.candidates
            ],
            "rejected": dict(plan.rejected),
            "rules": list(plan.rules),
            "policy_hash": self._policy_hash,
        }
        if self._log_content and messages is not None:
            event["messages"] = messages
        _emit(_INFO, event)

    def attempt(self, record_request_id: str, feature: str, attempt: Attempt, number: int) -> None:
        """``route.attempt``: one call to one model (INFO when it answered, WARNING when it failed)."""
        level = _INFO if attempt.error is None else _WARNING
        if not _logger.isEnabledFor(level):
            return
        event: dict[str, Any] = {
            "event": "route.attempt",
            "request_id": record_request_id,
            "feature": feature,
            "model": attempt.model,
            "provider": attempt.provider,
            "attempt": number,
            "outcome": "ok" if attempt.error is None else "error",
            "error_class": attempt.error,
            "status": attempt.status,
            "wait_s": attempt.wait_s,
            "latency_ms": attempt.latency_ms,
            "ttft_ms": attempt.ttft_ms,
        }
        if attempt.service_tier != STANDARD:
            event["service_tier"] = attempt.service_tier  # docs/flex.md
        if attempt.malformed_events:
            event["malformed_events"] = attempt.malformed_events
        if attempt.deployment is not None:
            event["deployment"] = attempt.deployment
            event["picked_by"] = attempt.picked_by
        _emit(level, event)

    def completed(
        self,
        record: RoutingRecord,
        *,
        content: str | None = None,
        skipped: Mapping[str, str] | None = None,
    ) -> None:
        """``route.completed``: who answered, the tokens, the cost (failed attempts included), the
        latency; and ``skipped``, what was passed over after the plan and why (a deployment at its
        limit, an open breaker): without it a dearer model's answer would not say why."""
        if _logger.isEnabledFor(_INFO):
            usage = record.usage
            attempts = record.attempts
            event: dict[str, Any] = {
                "event": "route.completed",
                "request_id": record.request_id,
                "feature": record.feature,
                "route": record.route,
                "model": record.model,
                "provider": record.provider,
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
                "cached_tokens": usage.cached_tokens if usage else None,
                "reasoning_tokens": usage.reasoning_tokens if usage else None,
                "cost_usd": record.cost_usd,
                "latency_ms": record.latency_ms,
                "attempts": len(attempts),
                "fallback": bool(attempts) and record.model != attempts[0].model,
                "stream": record.stream,
            }
            if record.deployment is not None:
                event["deployment"] = record.deployment
            if skipped:
                event["skipped"] = dict(skipped)
            tier = record.service_tier
            flex = tier != STANDARD
            if not flex:  # a loop, not any(generator): this runs for every request
                for tried in attempts:
                    if tried.service_tier != STANDARD:
                        flex = True
                        break
            if flex:
                event["service_tier"] = tier  # a flex request: the tier the cost was settled at
            if usage is not None and usage.suspect is not None:
                event["usage_suspect"] = usage.suspect  # charged at the worst case instead
            if self._log_content and content is not None:
                event["content"] = content
            _emit(_INFO, event)
        self._trace(record, None)

    def failed(self, record: RoutingRecord, error: BaseException) -> None:
        """``route.failed`` (ERROR): the request raised ``error`` to the caller.

        The error's text is never logged, not even the router's own: a provider's message may quote
        the request, and the structured fields (type, class, status, the attempts) say what the
        messages of NoCandidateError and ModelNotFoundError say (their reasons are in
        ``route.decided``).
        """
        if _logger.isEnabledFor(_ERROR):
            status = getattr(error, "status_code", None)
            _emit(
                _ERROR,
                Event(
                    event="route.failed",
                    request_id=record.request_id,
                    feature=record.feature,
                    route=record.route,
                    error_type=type(error).__name__,
                    error_class=error_class(error),
                    status=status if isinstance(status, int) else None,
                    attempts=len(record.attempts),
                    latency_ms=record.latency_ms,
                ),
            )
        self._trace(record, error)

    def budget(self, request_id: str, feature: str, event: BudgetEvent) -> None:
        """``budget.warning``/``exceeded``/``overrun`` (WARNING), ``budget.downgraded`` (INFO)."""
        level = _BUDGET_LEVEL.get(event.kind, _WARNING)
        if not _logger.isEnabledFor(level):
            return
        _emit(
            level,
            Event(
                event=f"budget.{event.kind}",
                request_id=request_id,
                feature=feature,
                scope=event.scope,
                window=event.window,
                limit_usd=event.limit_usd,
                spent_usd=event.spent_usd,
                reserved_usd=event.reserved_usd,
                threshold=event.threshold,
                model=event.model,
                resets_at=event.resets_at,
                **({} if event.amount_usd is None else {"amount_usd": event.amount_usd}),
                **({} if event.detail is None else {"detail": event.detail}),
                **({} if event.overrun_usd is None else {"overrun_usd": event.overrun_usd}),
            ),
        )

    def _trace(self, record: RoutingRecord, error: BaseException | None) -> None:
        # Spans only when the app uses OpenTelemetry: we never import it ourselves, so an app
        # without it pays one dict lookup, and one that imports it later is picked up then.
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:
            return
        from router import __version__, _tracing

        provider = _tracing.provider_for(trace, self._tracer_provider)
        if provider is None:
            return
        cached = self._tracer
        if cached is None or cached[0] is not provider:
            cached = self._tracer = (provider, provider.get_tracer(LOGGER_NAME, __version__))
        _tracing.emit(trace, cached[1], record, error, self._policy_hash)


def _emit(level: int, event: dict[str, Any]) -> None:
    """Hand one event to the ``router`` logger's handlers as a structlog-style record.

    The hot events come as plain dicts (a literal is one allocation; ``Event(**fields)`` was two): a
    sink writes their line as is, a record gets the ``Event`` it needs.
    """
    sink = _sink(level)
    if sink is not None:
        sink.write_event(level, event)
        return
    _logger.handle(_record(level, event if type(event) is Event else Event(event)))


def _record(level: int, event: Event) -> logging.LogRecord:
    """The event's record: what the logger's handlers get (and a sink's ``handleError``)."""
    record = logging.getLogRecordFactory()(LOGGER_NAME, level, __file__, 0, event, (), None)
    fields = record.__dict__
    # The fields as attributes, as `extra=` would set them (none of them is a LogRecord attribute).
    fields.update(event)
    # What ProcessorFormatter.wrap_for_formatter sets: "this msg is a structlog event dict".
    fields["_logger"] = _logger
    fields["_name"] = _METHOD[level]
    return record


def _sink(level: int) -> Any:
    """The one handler that would see this event, when it can write the event's line without a
    ``LogRecord`` (``router.logging``'s JSON file handler: ``write_event``); None otherwise.

    Only when nothing else could tell the difference: no filter on the logger or the handler, no
    other handler on the way up (``NullHandler``s aside), the stdlib's own record factory, and a
    level the handler writes. A record and the stdlib's dispatch were about a third of each line's
    cost, and every request logs three.
    """
    if _logger.filters or logging.getLogRecordFactory() is not _LOG_RECORD:
        return None
    sink: Any = None
    logger: logging.Logger | None = _logger
    while logger is not None:
        for handler in logger.handlers:
            if type(handler) is logging.NullHandler:
                continue
            if sink is not None or handler.filters or level < handler.level:
                return None
            if not getattr(handler, "writes_events", False):
                return None
            sink = handler
        logger = logger.parent if logger.propagate else None
    return sink


_LOG_RECORD: Final = logging.LogRecord
