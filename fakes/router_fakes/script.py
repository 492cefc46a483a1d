"""Per-model scripts: how a fake model behaves and which faults it injects.

Scripts are small frozen values so a test can build one, hand it to the server in this process or
another (as JSON), and read it back unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Fault",
    "FaultKind",
    "ModelScript",
    "RecordedRequest",
    "content_filter",
    "content_policy",
    "flex_unavailable",
    "hang",
    "malformed",
    "malformed_event",
    "reset",
    "status",
    "stream_cut",
    "stream_stall",
    "unterminated",
]

FaultKind = Literal[
    "status",
    "hang",
    "reset",
    "malformed",
    "stream_cut",
    "stream_stall",
    "content_filter",
    "content_policy",
    "malformed_event",
    "unterminated",
]
_FAULT_KINDS: frozenset[str] = frozenset(
    (
        "status",
        "hang",
        "reset",
        "malformed",
        "stream_cut",
        "stream_stall",
        "content_filter",
        "content_policy",
        "malformed_event",
        "unterminated",
    )
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected failure, consumed by one request.

    A single class with a ``kind`` (rather than a class per kind) keeps the JSON form flat and the
    dispatch in the server a plain ``match``. Build faults with the module functions (``status(429)``).
    """

    kind: FaultKind
    status: int | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    message: str | None = None
    seconds: float = 0.0
    after_chunks: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(_FAULT_KINDS)}")
        if self.kind == "status" and (self.status is None or not 400 <= self.status <= 599):
            raise ValueError(f"a status fault needs an HTTP error code (400-599), got {self.status!r}")
        if self.after_chunks < 0 or self.seconds < 0:
            raise ValueError("after_chunks and seconds must not be negative")

    def to_json(self) -> dict[str, Any]:
        """The JSON form sent to ``POST /_fake/script``: only the fields that differ from the defaults."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "kind" and value != f.default:
                out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**dict(data))


def status(
    code: int,
    *,
    retry_after: float | None = None,
    retry_after_ms: int | None = None,
    message: str | None = None,
) -> Fault:
    """Answer ``code`` with the provider's own error body; ``retry_after(_ms)`` set the retry headers."""
    return Fault(
        "status", status=code, retry_after=retry_after, retry_after_ms=retry_after_ms, message=message
    )


def flex_unavailable(retry_after: float | None = None) -> Fault:
    """OpenAI's answer to a flex request when flex capacity is short: a 429 "Resource Unavailable" (not
    billed). Put it in ``ModelScript.flex_faults``."""
    message = "Resource Unavailable: flex processing has no capacity for this request right now."
    return status(429, retry_after=retry_after, message=message)


def hang(seconds: float) -> Fault:
    """Wait ``seconds`` before answering normally (a long wait is a request that never answers)."""
    return Fault("hang", seconds=seconds)


def reset() -> Fault:
    """Drop the TCP connection without any response."""
    return Fault("reset")


def malformed() -> Fault:
    """Answer 200 with a body that is not valid JSON."""
    return Fault("malformed")


def stream_cut(after_chunks: int) -> Fault:
    """On a stream, send ``after_chunks`` content chunks, then close without the terminal event."""
    return Fault("stream_cut", after_chunks=after_chunks)


def stream_stall(after_chunks: int, seconds: float) -> Fault:
    """On a stream, send ``after_chunks`` content chunks, pause ``seconds``, then finish normally."""
    return Fault("stream_stall", after_chunks=after_chunks, seconds=seconds)


def content_filter() -> Fault:
    """Answer as if the provider's safety filter stopped the output."""
    return Fault("content_filter")


def content_policy(message: str | None = None) -> Fault:
    """Refuse the request for its content with the provider's 400 (OpenAI: ``content_policy_violation``)."""
    return Fault("content_policy", message=message)


def malformed_event(after_chunks: int) -> Fault:
    """On a stream, send one unreadable event after ``after_chunks`` content chunks, then the rest."""
    return Fault("malformed_event", after_chunks=after_chunks)


def unterminated() -> Fault:
    """On a stream, send the whole answer (finish reason, usage) but close before the protocol's terminal
    event (OpenAI's ``[DONE]``, Anthropic's ``message_stop``; Gemini has none)."""
    return Fault("unterminated")


@dataclass(frozen=True, slots=True)
class ModelScript:
    """How one model answers.

    Faults are consumed one per request, in order; then the model behaves normally, or starts over
    when ``repeat_faults`` is set. Past the scripted faults, ``fail_rate`` fails a seeded-random share
    of requests with ``fail_status`` so that random failure is still reproducible.

    ``replies`` script a conversation: each answered request (one that meets no fault) takes the next
    one, in order, as its message text or, when it gets a tool call, as the call's arguments (JSON
    text). Past them, ``reply`` or the usual answer. This is how a test makes a model answer wrongly
    once and then rightly (a structured-output library's validation retry).
    """

    model: str
    latency_s: float = 0.0
    reply: str | None = None
    replies: tuple[str, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    context_limit: int | None = None
    unknown: bool = False
    # Reported as the usage object verbatim (OpenAI protocol), for tests of what a provider may claim.
    usage: Any = None  # any JSON value
    faults: tuple[Fault, ...] = ()
    repeat_faults: bool = False
    fail_rate: float = 0.0
    fail_status: int = 500
    seed: int = 0
    # OpenAI protocol: serve vLLM's continue_final_message (a server that declares prefill); without it
    # such a request is refused with a 400, as OpenAI refuses an argument it does not know. Anthropic
    # always continues a final assistant message (its prefill).
    prefill: bool = False
    # Requests per minute this model (each Azure deployment: resource/deployment) takes on the fake's
    # clock; one more within any 60 s is answered 429 with Retry-After, as the provider would.
    rpm: int | None = None
    # Tokens per minute (prompt + completion of the answers) likewise: a request while the window is
    # spent is answered 429. With ``rpm``/``tpm``, every answer carries OpenAI's (and Azure's)
    # x-ratelimit-limit/-remaining/-reset-requests and -tokens headers for what is left.
    tpm: int | None = None
    # OpenAI protocol, requests with ``service_tier: "flex"`` only: their faults (when given, flex
    # requests consume these in order and leave ``faults`` to the others; ``repeat_faults`` applies),
    # the extra time they take, and the tier the answer reports ("default" = served at standard).
    flex_faults: tuple[Fault, ...] = ()
    flex_latency_s: float = 0.0
    flex_answers_as: str = "flex"

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("a script needs a model name")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail_rate must be within [0, 1], got {self.fail_rate}")
        if self.latency_s < 0 or self.cached_tokens < 0:
            raise ValueError("latency_s and cached_tokens must not be negative")
        # Accept any iterable of faults (a list from JSON) but store a tuple: frozen means frozen.
        object.__setattr__(self, "faults", tuple(self.faults))
        object.__setattr__(self, "flex_faults", tuple(self.flex_faults))
        if self.flex_latency_s < 0:
            raise ValueError("flex_latency_s must not be negative")
        object.__setattr__(self, "replies", tuple(self.replies))

    def to_json(self) -> dict[str, Any]:
        """The JSON form accepted by ``POST /_fake/script``: only the fields that differ from the defaults."""
        out: dict[str, Any] = {"model": self.model}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("faults", "flex_faults"):
                if value:
                    out[f.name] = [fault.to_json() for fault in value]
            elif f.name == "replies":
                if value:
                    out["replies"] = list(value)
            elif f.name != "model" and value != f.default:
                out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelScript:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown script fields: {sorted(unknown)}")
        fields = dict(data)
        fields["faults"] = tuple(Fault.from_json(f) for f in data.get("faults", ()))
        fields["flex_faults"] = tuple(Fault.from_json(f) for f in data.get("flex_faults", ()))
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it, with credentials redacted so logs can be printed safely."""

    protocol: Literal["openai", "gemini", "anthropic", "azure"]
    model: str
    path: str
    stream: bool
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "model": self.model,
            "path": self.path,
            "stream": self.stream,
            "body": self.body,
            "headers": dict(self.headers),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecordedRequest:
        return cls(
            protocol=data["protocol"],
            model=data["model"],
            path=data["path"],
            stream=bool(data["stream"]),
            body=data["body"],
            headers=dict(data.get("headers", {})),
        )
