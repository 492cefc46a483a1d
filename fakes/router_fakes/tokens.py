"""The fake's token arithmetic and reply text, public so tests can compute the exact usage to expect.

Deliberately cheap and simple (a quarter of the characters, rounded up) rather than a real tokenizer: the
fake must answer fast, and a cost test must be able to predict every number it reports. The same rule
applies to all three protocols, so the same OpenAI-style messages cost the same on every provider.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "DEFAULT_IMAGE_TOKENS",
    "PER_MESSAGE_TOKENS",
    "count_openai_prompt_tokens",
    "image_tokens",
    "reply_text",
    "split_chunks",
    "text_tokens",
    "tool_call_tokens",
    "word_count",
]

PER_MESSAGE_TOKENS = 4
"""Added for every message (and once for a system instruction given outside the messages)."""

DEFAULT_IMAGE_TOKENS = 765
"""A 1024x1024 image at high detail, counted the OpenAI way: the fake never decodes images."""

_WORD = re.compile(r"\S+")
_CHUNK = re.compile(r"\s*\S+\s*|\s+")


def text_tokens(text: str) -> int:
    """Tokens for a text: ``ceil(len(text) / 4)``."""
    return math.ceil(len(text) / 4)


def image_tokens(width: int | None = None, height: int | None = None, detail: str | None = None) -> int:
    """OpenAI's image rule: 85 at low detail, else 85 + 170 per 512px tile after scaling.

    Images fit within 2048x2048, then their short side is scaled to 768. Without a size the image is
    taken as 1024x1024 (765 tokens).
    """
    if detail == "low":
        return 85
    if width is None or height is None:
        return DEFAULT_IMAGE_TOKENS
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def canonical_json(value: Any) -> str:
    """Compact, key-sorted JSON: each protocol serializes arguments its own way, the count must not care."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def tool_call_tokens(name: str, arguments: Any) -> int:
    """Tokens for a tool call: its name plus its arguments as canonical JSON (JSON text is parsed first)."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return text_tokens(name + arguments)
    return text_tokens(name + canonical_json(arguments))


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def reply_text(model: str, question: str, *, after_tool_result: bool = False) -> str:
    """The fake's answer: names the model and measures the question, without echoing the prompt."""
    suffix = ", using the tool result" if after_tool_result else ""
    return f"[{model}] Answer to a {word_count(question)}-word question{suffix}."


def split_chunks(text: str) -> tuple[str, ...]:
    """Stream pieces: one per word (with its trailing space), so tests can cut after N chunks."""
    return tuple(_CHUNK.findall(text)) or ("",)


def _openai_content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return text_tokens(content)
    if not isinstance(content, Iterable):
        return 0
    total = 0
    for part in content:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            total += text_tokens(part["text"])
        elif kind == "image_url":
            image = part.get("image_url")
            detail = image.get("detail") if isinstance(image, Mapping) else None
            total += image_tokens(detail=detail if isinstance(detail, str) else None)
    return total


def count_openai_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Prompt tokens the fake reports for OpenAI-style ``messages`` (tool definitions are not counted).

    Per message: 4, plus each text part, image part and tool call. Through litellm, the same messages
    sent to the fake Gemini or Anthropic endpoints count the same.
    """
    total = 0
    for message in messages:
        total += PER_MESSAGE_TOKENS + _openai_content_tokens(message.get("content"))
        for call in message.get("tool_calls") or ():
            function = call.get("function", {}) if isinstance(call, Mapping) else {}
            total += tool_call_tokens(str(function.get("name", "")), function.get("arguments", ""))
    return total
