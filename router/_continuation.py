"""Mid-stream continuation, decided without I/O: whether a cut stream may be continued, on which
model, with which request, and how the continuation's chunks join the stream the caller is reading.

With ``stream_recovery: continue`` a stream cut or stalled after content went out is not lost: the
next candidate that supports ``prefill`` is sent the original messages plus an assistant message
holding the text already delivered, and streams only the rest. Anthropic continues a final
assistant message by design; an OpenAI-compatible server does so when asked with vLLM's
``continue_final_message`` (and ``add_generation_prompt: false``), so only one that declares
``prefill`` is ever sent one. A continuation is one more attempt of the request: the decision core
(``router._decide``, ``Decider.continuing``) plans it with ``continuation_step`` and this module's
request, and the drivers open it like any stream attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import openai

from providers.base import JSON, Deployment
from router._exceptions import StreamInterruptedError
from router._session import Choice, Session, Step
from router._stream_state import StreamTracker, interruption

PREFILL: Final = "prefill"
# vLLM's chat-completions extension: continue the final assistant message instead of answering it.
_VLLM_CONTINUE: Final[Mapping[str, bool]] = {"continue_final_message": True, "add_generation_prompt": False}
_OUTPUT_LIMITS: Final = ("max_tokens", "max_completion_tokens")
# Adapters that speak OpenAI's wire protocol to the server itself (litellm translates for the rest).
_OPENAI_WIRE: Final = frozenset({"openai", "azure"})


def enabled(session: Session) -> bool:
    """``stream_recovery: continue`` for this request: the feature's setting, else the route's."""
    feature = session.engine.policy.features.get(session.request.route.feature)
    mode = feature.stream_recovery if feature is not None else None
    return (mode or session.resilience.stream_recovery) == "continue"


def continuable(text: str, tool_calls: bool, request_body: Mapping[str, Any]) -> bool:
    """Only a plain text answer with one choice can be continued from its prefix: a tool call's
    arguments or several choices have no single assistant message to prefill."""
    choices = request_body.get("n", 1)
    return bool(text.strip()) and not tool_calls and (choices is None or choices == 1)


@dataclass(frozen=True, slots=True)
class Prefix:
    """The delivered text as it is sent: without its trailing whitespace, which Anthropic refuses in a
    final assistant message; ``held`` is that whitespace, already shown to the caller."""

    text: str
    held: str

    @classmethod
    def of(cls, delivered: str) -> Prefix:
        text = delivered.rstrip()
        return cls(text, delivered[len(text) :])


def can_prefill(session: Session, deployment: Deployment) -> bool:
    return PREFILL in session.engine.catalog[deployment.name].supports


def continuation_body(body: Mapping[str, Any], deployment: Deployment, prefix: Prefix) -> JSON:
    """The original request with the delivered text as the assistant's prefix, and the caller's
    output limit less what was already written (about 4 characters a token, as partial costs are
    estimated), so that the whole answer stays within it."""
    messages = [*body["messages"], {"role": "assistant", "content": prefix.text}]
    out: JSON = {**body, "messages": messages}
    written = -(-len(prefix.text + prefix.held) // 4)
    for key in _OUTPUT_LIMITS:
        limit = body.get(key)
        if isinstance(limit, int) and not isinstance(limit, bool):
            out[key] = max(limit - written, 1)
    if deployment.adapter in _OPENAI_WIRE:
        out.update(_VLLM_CONTINUE)
    return out


def continuation_step(session: Session) -> Step | Choice | None:
    """The next call that may continue the stream; None when no candidate can.

    The session's own next step, so the deadline, ``max_attempts`` and the breakers apply as to any
    attempt; a candidate without ``prefill`` is passed over (it is never sent a prefix). A pooled
    model's ``Choice`` is checked once its deployment is picked (``Decider._next_try``).
    """
    while (step := session.next_step()) is not None:
        if isinstance(step, Choice) or can_prefill(session, step.deployment):
            return step
    return None


def next_continuation(session: Session, prefix: Prefix) -> tuple[Step, JSON] | None:
    """The next call that may continue the stream, and its request; None when no candidate can
    (models without deployments: a ``Choice`` needs its counters, which a driver reads)."""
    step = continuation_step(session)
    if step is None or isinstance(step, Choice):
        return None
    return step, continuation_body(session.request.body, step.deployment, prefix)


class Resumed(NamedTuple):
    """A continuation read up to its first content (``Decider.continuing``): what a routed stream
    switches to. ``hold``: its reservation (None: nothing to settle); ``settle``: the driver's settle
    of that hold, filled in by the driver."""

    deployment: Deployment
    buffered: list[JSON]
    tracker: StreamTracker
    rest: Any  # Iterator[JSON] or AsyncIterator[JSON]
    ttft_ms: float
    hold: Any = None
    settle: Any = None


class Splice:
    """Makes a continuation's chunks read as the rest of the first stream.

    They carry the first stream's ``id`` and ``created`` (and, set by the stream, its ``model``), no
    second ``role``, and do not repeat the whitespace the prefix was sent without.
    """

    __slots__ = ("_created", "_held", "_id")

    def __init__(self, first: Mapping[str, Any] | None, prefix: Prefix) -> None:
        self._id = first.get("id") if first is not None else None
        self._created = first.get("created") if first is not None else None
        self._held = prefix.held

    def __call__(self, data: JSON) -> JSON:
        if self._id is not None:
            data["id"] = self._id
        if self._created is not None:
            data["created"] = self._created
        for choice in data.get("choices") or ():
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            delta.pop("role", None)
            content = delta.get("content")
            if self._held and isinstance(content, str) and content:
                delta["content"] = _after_held(content, self._held)
                self._held = ""
        return data


def _after_held(content: str, held: str) -> str:
    """``content`` without the leading whitespace the caller already has (``held``)."""
    same = 0
    while same < len(held) and same < len(content) and content[same] == held[same]:
        same += 1
    return content[same:]


class Continued:
    """What a stream that may be continued keeps: the text the caller has, the first chunk (whose id
    the continuation's chunks take), the cut to raise if nothing continues, and what the cuts cost."""

    __slots__ = ("chunks", "cut_cost", "error", "error_deployment", "first", "parts", "splice", "tool_calls")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.first: JSON | None = None
        self.splice: Splice | None = None
        self.tool_calls = False
        self.chunks = 0
        self.cut_cost = 0.0
        self.error: StreamInterruptedError | None = None
        self.error_deployment: Deployment | None = None

    def text(self) -> str:
        return "".join(self.parts)

    def take(self, data: JSON) -> JSON:
        """Note what the caller is about to get (spliced when it comes from a continuation)."""
        if self.first is None:
            self.first = data
        if self.splice is not None:
            data = self.splice(data)
        choices = data.get("choices") or ()
        if choices:
            self.chunks += 1
            content = (choices[0].get("delta") or {}).get("content")
            if isinstance(content, str):
                self.parts.append(content)
        return data

    def cut(
        self,
        session: Session,
        deployment: Deployment,
        tracker: StreamTracker,
        exc: openai.APIError,
        ttft_ms: float | None,
    ) -> None:
        """Record the cut attempt (its breaker is told) and what it cost, before continuing it; the
        cut, over all the caller has, is what is raised if nothing continues it."""
        session.failed_quietly(deployment, exc, ttft_ms=ttft_ms, malformed_events=tracker.malformed)
        self.cut_cost += session.partial_cost(deployment, tracker) or 0.0
        self.error = interruption(deployment, exc, self.chunks, len(self.text()))
        self.error_deployment = deployment

    def unrecovered(self, session: Session) -> StreamInterruptedError | None:
        """The error to raise once a continuation was tried and the stream broke again: the first cut,
        never a continuation's error (its record attached, its failure logged); None if none was."""
        error = self.error
        if error is None or self.error_deployment is None:
            return None
        error.routing = record = session.record(self.error_deployment)
        session.stream_failed(error, record)
        return error
