"""What a stream has delivered so far (and whether it committed to its model). No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import openai

from providers.base import MALFORMED_EVENT
from router._request import usage_of
from router._routing import Usage


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
            self.usage = usage_of(usage)
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
