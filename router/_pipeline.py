"""Compatibility: the pieces that lived here are now in ``router._request`` (Request, normalize,
usage_of, capped_timeout), ``router._session`` (Session) and ``router._stream_state``
(StreamTracker); the decisions are in ``router._decide``."""

from router._request import Request, capped_timeout, normalize, usage_of
from router._session import BudgetAsk, Session, Step
from router._stream_state import StreamTracker, content_filtered, first_content_timeout

__all__ = [
    "BudgetAsk",
    "Request",
    "Session",
    "Step",
    "StreamTracker",
    "capped_timeout",
    "content_filtered",
    "first_content_timeout",
    "normalize",
    "usage_of",
]
