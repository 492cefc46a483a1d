"""What a stream has delivered so far (and whether it committed to its model), and what its wrapper
does when it ends or breaks (``Delivery``). No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import httpx
import openai

from providers.base import MALFORMED_EVENT, Deployment
from providers.errors import connection_failed, error_class, timeout_error
from router._exceptions import StreamInterruptedError
from router._request import usage_of
from router._routing import RoutingRecord, Usage

if TYPE_CHECKING:
    from router._session import Session


class StreamTracker:
    """What a stream has delivered so far, and whether it has committed to its model.

    A stream commits at its first chunk that carries content (text, a tool call, or usage):
    before that a failure can still move to the next model unseen by the caller; after it, a
    failure can only be reported. A finish reason alone does not commit: an answer that ends
    before saying anything is not worth keeping if the stream then fails.
    """

    __slots__ = (
        "characters",
        "chunks",
        "committed",
        "finish_reason",
        "finished",
        "malformed",
        "tool_calls",
        "usage",
    )

    def __init__(self) -> None:
        self.chunks = 0
        # Unreadable events the adapter skipped; the stream still has to end properly to count.
        self.malformed = 0
        self.characters = 0
        self.committed = False
        self.finished = False
        self.finish_reason: str | None = None
        self.tool_calls = False
        self.usage: Usage | None = None

    def observe(self, data: Mapping[str, Any]) -> bool:
        """Account for one chunk; True when it is a usage-only chunk (no choices)."""
        if MALFORMED_EVENT in data:
            self.malformed += 1
            return False
        usage = data.get("usage")
        if usage:
            self.usage = usage_of(usage, data.get("service_tier"))
            self.committed = True
        choices = data.get("choices") or ()
        for choice in choices:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.characters += len(content)
                self.committed = True
            if delta.get("tool_calls") or delta.get("function_call"):
                self.tool_calls = True
                self.committed = True
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                self.finished = True
                self.finish_reason = finish_reason
        if choices:
            self.chunks += 1
        return not choices

    @property
    def content_filtered(self) -> bool:
        """The provider's filter ended the answer before it said anything."""
        return self.finish_reason == "content_filter" and not self.characters and not self.tool_calls


def content_filtered(data: Mapping[str, Any]) -> bool:
    """A completion the provider's content filter emptied (finish_reason content_filter, no content)."""
    choices = data.get("choices") or ()
    if not choices:
        return False
    choice = choices[0]
    message = choice.get("message") or {}
    return (
        choice.get("finish_reason") == "content_filter"
        and not message.get("content")
        and not message.get("tool_calls")
    )


def first_content_timeout(seconds: float) -> openai.APITimeoutError:
    """A stream attempt whose first content did not come in time (classed ``timeout``: fail over)."""
    error = openai.APITimeoutError(request=httpx.Request("POST", "router://chat/completions"))
    error.message = f"no content within {seconds:g}s (first_token_timeout_s / stream_idle_timeout_s)"
    return error


# Errors we raise ourselves; their messages hold no provider text, so they may be quoted.
_OWN_MESSAGE: Final = "router-own-message"


class Delivery:
    """What a committed stream's wrapper asks as the rest of it arrives (router._streaming): how
    long a read may wait, whether its end is complete, what a failure is charged and raised as.

    Pure: the wrapper reads and settles; the record and the breaker hear it through the session.
    """

    __slots__ = ("deployment", "session", "tracker", "ttft_ms")

    def __init__(
        self, session: Session, deployment: Deployment, tracker: StreamTracker, ttft_ms: float | None
    ) -> None:
        self.session = session
        self.deployment = deployment
        self.tracker = tracker
        self.ttft_ms = ttft_ms

    @property
    def idle_s(self) -> float:
        """The longest wait for the next chunk (a hard stop where the driver can put one)."""
        return self.session.resilience.stream_idle_timeout_s

    def idle(self) -> openai.APITimeoutError:
        """The error for a stream silent for ``idle_s``."""
        error = timeout_error(f"no chunk for {self.idle_s:g}s (stream_idle_timeout_s)")
        setattr(error, _OWN_MESSAGE, True)
        return error

    def ended(self) -> None:
        """The provider's stream ended: raise the cut unless the answer is complete.

        Every OpenAI-shaped stream closes its choice with a finish_reason; without one the answer
        was cut, however politely the connection closed.
        """
        if not self.tracker.finished:
            error = connection_failed("the stream ended without a finish reason")
            setattr(error, _OWN_MESSAGE, True)
            raise error

    def completed(self, continued_from_usd: float | None = None) -> RoutingRecord:
        """The complete stream's record (after its settle, so that the record has its budget events).

        ``continued_from_usd``: it continued cut streams that cost that much (router._continuation).
        """
        tracker = self.tracker
        return self.session.succeeded(
            self.deployment,
            tracker.usage,
            ttft_ms=self.ttft_ms,
            malformed_events=tracker.malformed,
            continued_from_usd=continued_from_usd,
        )

    @staticmethod
    def charged_as_cancelled(exc: BaseException) -> bool:
        """Cut by the provider: charged what arrived. Stopped by a timeout: it may still be billing,
        so at least the reserved worst case."""
        return isinstance(exc, openai.APITimeoutError)

    def interrupted(self, exc: BaseException) -> StreamInterruptedError:
        """The stream broke after content reached the caller: recorded (attempt, breaker, event), and
        the error to raise, carrying the record."""
        tracker = self.tracker
        record = self.session.interrupted(self.deployment, exc, self.ttft_ms, tracker.malformed)
        error = interruption(self.deployment, exc, tracker.chunks, tracker.characters)
        error.routing = record
        self.session.stream_failed(error, record)
        return error


def interruption(
    deployment: Deployment, exc: BaseException, chunks: int, characters: int
) -> StreamInterruptedError:
    """The error for a stream on ``deployment`` broken by ``exc`` after ``chunks`` chunks (``characters``
    characters) reached the caller."""
    if getattr(exc, _OWN_MESSAGE, False):
        reason = str(getattr(exc, "message", exc))
    else:
        # The provider's own text may quote the prompt: name the failure, not its words.
        status = getattr(exc, "status_code", None)
        reason = f"{error_class(exc)} error ({type(exc).__name__}{f', status {status}' if status else ''})"
    return StreamInterruptedError(model=deployment.name, chunks=chunks, characters=characters, reason=reason)
