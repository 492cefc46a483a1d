"""What every protocol module provides, and the small helpers they share."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

from ._answer import Answer, Conversation

ProtocolName = Literal["openai", "gemini", "anthropic"]


FrameKind = Literal["head", "content", "tail"]
HEAD: FrameKind = "head"
CONTENT: FrameKind = "content"
TAIL: FrameKind = "tail"


class Frame(NamedTuple):
    """One SSE event, already encoded.

    ``kind`` places it in the stream: the head opens it (role chunk, message_start, ping), content events
    carry the answer and are what ``stream_cut``/``stream_stall`` count, the tail closes it (finish reason,
    usage, ``[DONE]``, message_stop).
    """

    data: bytes
    kind: FrameKind


@dataclass(frozen=True, slots=True)
class ErrorReply:
    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class BadRequest(Exception):
    """Raised by a parser for a request the real provider would refuse with a 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class Ids:
    """The per-request identifiers: a counter makes them unique and predictable."""

    number: int
    created: int


class Wire(Protocol):
    """One provider's wire protocol: parse a request, render an answer or an error the provider's way."""

    name: ProtocolName

    def parse(self, body: Mapping[str, Any], model: str, stream: bool) -> Conversation: ...

    def render(self, answer: Answer, conv: Conversation, ids: Ids) -> Mapping[str, Any]: ...

    def render_stream(self, answer: Answer, conv: Conversation, ids: Ids) -> list[Frame]: ...

    def error(
        self, status: int, message: str | None = None, retry_after: float | None = None
    ) -> ErrorReply: ...

    def bad_request(self, message: str, param: str | None = None) -> ErrorReply: ...

    def context_error(self, limit: int, tokens: int) -> ErrorReply: ...

    def not_found(self, model: str) -> ErrorReply: ...

    def auth_error(self, key: str | None) -> ErrorReply: ...


def sse(payload: Mapping[str, Any], event: str | None = None, newline: str = "\n") -> bytes:
    """An SSE event; ``event:`` lines are Anthropic's, Gemini ends events with CRLF."""
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {event}{newline}" if event else ""
    return f"{head}data: {data}{newline}{newline}".encode()


def as_text(value: Any) -> str:
    """The text of a content value that may be a string, a list of text parts, or anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p["text"] for p in value if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""
