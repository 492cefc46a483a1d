"""Fake providers: a real HTTP server on loopback speaking the OpenAI, Gemini and Anthropic protocols.

Tests, the demo and the benchmarks run the real clients (the openai SDK, litellm) against it. Models are
scripted per name with latency, usage and faults; see ``docs/fake-providers.md``.
"""

from .client import FakeProvidersClient
from .instance import minimal_instance
from .script import (
    Fault,
    FaultKind,
    ModelScript,
    RecordedRequest,
    content_filter,
    content_policy,
    hang,
    malformed,
    malformed_event,
    reset,
    status,
    stream_cut,
    stream_stall,
    unterminated,
)
from .server import FakeProviders
from .tokens import count_openai_prompt_tokens, image_tokens, reply_text, text_tokens, tool_call_tokens

__all__ = [
    "FakeProviders",
    "FakeProvidersClient",
    "Fault",
    "FaultKind",
    "ModelScript",
    "RecordedRequest",
    "content_filter",
    "content_policy",
    "count_openai_prompt_tokens",
    "hang",
    "image_tokens",
    "malformed",
    "malformed_event",
    "minimal_instance",
    "reply_text",
    "reset",
    "status",
    "stream_cut",
    "stream_stall",
    "text_tokens",
    "tool_call_tokens",
    "unterminated",
]
