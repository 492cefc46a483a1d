"""How many tokens a request's prompt holds: a cheap estimate always, an exact count only near a limit.

The estimate is UTF-8 bytes / 4 per text (about 1.1x the true count for English, 0.75x for
CJK and code), plus OpenAI's per-message overhead and image tiles. It is trusted when it is
further than a factor of two from the limit in question; between the two, tiktoken counts
exactly. tiktoken downloads its encodings on first use, which fails offline, so its cache is
pointed at the copies litellm ships (found without importing litellm) unless the user set one.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import math
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

PER_MESSAGE_TOKENS: Final = 3
REPLY_PRIMING_TOKENS: Final = 3
BYTES_PER_TOKEN: Final = 4
# The estimate is trusted when it is at most half, or at least twice, the limit.
TRUST_FACTOR: Final = 2.0
EXACT_ENCODING: Final = "o200k_base"


def image_tokens(width: int | None = None, height: int | None = None, detail: str | None = None) -> int:
    """OpenAI's count for one image: 85 base + 170 per 512-px tile (high detail); 85 at low detail.

    The image is scaled to fit 2048x2048, then its short side to 768; unknown sizes count as
    1024x1024 (765 tokens), since images behind URLs are never downloaded to plan a request.
    """
    if detail == "low":
        return 85
    w, h = float(width or 1024), float(height or 1024)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def png_size(url: str) -> tuple[int, int] | None:
    """Width and height of a PNG data URL, read from its header; None for anything else."""
    if not url.startswith("data:image/png;base64,"):
        return None
    try:
        head = base64.b64decode(url[22:54] + "=" * (-len(url[22:54]) % 4))
    except ValueError:
        return None
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def _image_part_tokens(part: Mapping[str, Any]) -> int:
    image = part.get("image_url") or {}
    url = image.get("url", "") if isinstance(image, Mapping) else str(image)
    detail = image.get("detail") if isinstance(image, Mapping) else None
    size = png_size(url) if url else None
    width, height = size if size is not None else (None, None)
    return image_tokens(width, height, detail=detail)


def _utf8_len(text: str) -> int:
    # surrogatepass: a lone surrogate (sent \u-escaped) counts as the 3 bytes it would take, not an error.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _tokens(encoding: Any, text: str) -> int:
    try:
        return len(encoding.encode(text, disallowed_special=()))
    except UnicodeEncodeError:  # a lone surrogate: count it as the replacement character
        return len(encoding.encode(text.encode("utf-8", "replace").decode("utf-8"), disallowed_special=()))


def _content_parts(content: Any) -> tuple[list[str], int]:
    """The texts of a message's content and the tokens of its images."""
    if isinstance(content, str):
        return [content], 0
    texts: list[str] = []
    images = 0
    if isinstance(content, Sequence):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image_url":
                images += _image_part_tokens(part)
    return texts, images


def _message_texts(message: Mapping[str, Any]) -> tuple[list[str], int]:
    texts, images = _content_parts(message.get("content"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        texts.append(str(function.get("name", "")))
        texts.append(str(function.get("arguments", "")))
    return texts, images


def has_images(messages: Sequence[Mapping[str, Any]]) -> bool:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(p, Mapping) and p.get("type") == "image_url" for p in content
        ):
            return True
    return False


def estimate_prompt_tokens(messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None = None) -> int:
    """A cheap estimate: no tokenizer, one pass over the texts' lengths."""
    total_bytes = 0
    fixed = REPLY_PRIMING_TOKENS + PER_MESSAGE_TOKENS * len(messages)
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) and not message.get("tool_calls"):
            total_bytes += _utf8_len(content)  # the common case, without building lists
            continue
        texts, images = _message_texts(message)
        total_bytes += sum(_utf8_len(t) for t in texts)
        fixed += images
    if tools:
        total_bytes += len(json.dumps(tools, separators=(",", ":")))
    return fixed + math.ceil(total_bytes / BYTES_PER_TOKEN)


def _offline_tiktoken_cache() -> None:
    if "TIKTOKEN_CACHE_DIR" in os.environ or "DATA_GYM_CACHE_DIR" in os.environ:
        return
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return
    folder = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    if folder.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)


def count_prompt_tokens(messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None = None) -> int:
    """An exact count with tiktoken's o200k_base (the GPT-4o family's encoding).

    Other providers' tokenizers differ by a few percent; this is the count the context filter
    relies on when the estimate is too close to call.
    """
    _offline_tiktoken_cache()
    import tiktoken

    encoding = tiktoken.get_encoding(EXACT_ENCODING)
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        texts, images = _message_texts(message)
        total += PER_MESSAGE_TOKENS + images
        total += sum(_tokens(encoding, t) for t in texts if t)
    if tools:
        total += _tokens(encoding, json.dumps(tools, separators=(",", ":")))
    return total


class PromptSize:
    """A request's prompt tokens: the estimate at once, the exact count the first time it matters."""

    __slots__ = ("_exact", "_messages", "_tools", "estimate")

    def __init__(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None = None) -> None:
        self._messages = messages
        self._tools = tools
        self._exact: int | None = None
        self.estimate = estimate_prompt_tokens(messages, tools)

    @property
    def messages(self) -> Sequence[Mapping[str, Any]]:
        """The request's messages (learned adequacy reads their text)."""
        return self._messages

    @property
    def best(self) -> int:
        """The exact count if one was made, else the estimate (for expected cost)."""
        return self._exact if self._exact is not None else self.estimate

    @property
    def upper_bound(self) -> int:
        """No fewer tokens than the provider will count: the exact count, or the estimate's trust limit.

        For budget reservations, which must not be exceeded by the real cost.
        """
        return self._exact if self._exact is not None else int(self.estimate * TRUST_FACTOR) + 1

    @property
    def counted(self) -> bool:
        return self._exact is not None

    def tokens_against(self, limit: int) -> int:
        """Prompt tokens as precise as needed to compare with ``limit``."""
        if self._exact is not None:
            return self._exact
        if self.estimate * TRUST_FACTOR <= limit or self.estimate >= limit * TRUST_FACTOR:
            return self.estimate
        self._exact = count_prompt_tokens(self._messages, self._tools)
        return self._exact
