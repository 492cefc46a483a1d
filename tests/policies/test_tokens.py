"""Prompt size: a cheap estimate always, an exact count only near a limit; images as OpenAI counts them."""

import base64
import struct
import zlib

import pytest

from policies.tokens import (
    PromptSize,
    count_prompt_tokens,
    estimate_prompt_tokens,
    image_tokens,
    png_size,
)


def _png(width: int, height: int) -> str:
    header = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    )
    header += struct.pack(">I", zlib.crc32(header[12:]))
    return "data:image/png;base64," + base64.b64encode(header).decode()


@pytest.mark.parametrize(
    ("width", "height", "detail", "tokens"),
    [
        (1024, 1024, "high", 765),  # 768x768 after scaling: 4 tiles
        (512, 512, "high", 255),
        (2048, 4096, "high", 1105),  # 1024x2048 → 768x1536: 2x3 tiles
        (4000, 4000, "low", 85),
        (None, None, None, 765),  # unknown size counts as 1024x1024
    ],
)
def test_image_tokens_follow_openais_tile_rule(
    width: int | None, height: int | None, detail: str | None, tokens: int
) -> None:
    assert image_tokens(width, height, detail) == tokens


def test_png_data_url_size_is_read_from_its_header() -> None:
    assert png_size(_png(640, 480)) == (640, 480)
    assert png_size("https://example.com/cat.png") is None


def test_estimate_counts_text_messages_images_and_tools() -> None:
    messages = [
        {"role": "system", "content": "a" * 400},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "b" * 40},
                {"type": "image_url", "image_url": {"url": _png(512, 512)}},
            ],
        },
    ]
    assert estimate_prompt_tokens(messages) == 3 + 2 * 3 + 255 + (400 + 40) // 4


def test_estimate_uses_utf8_bytes_so_cjk_text_is_not_undercounted() -> None:
    cjk = "漢字" * 1000
    assert estimate_prompt_tokens([{"role": "user", "content": cjk}]) >= 1500


def test_exact_count_works_offline_and_is_close_to_the_estimate_for_english() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 200
    exact = count_prompt_tokens([{"role": "user", "content": text}])
    estimate = estimate_prompt_tokens([{"role": "user", "content": text}])
    assert 0.5 < estimate / exact < 2


def test_prompt_size_counts_exactly_only_when_the_estimate_is_too_close_to_call() -> None:
    size = PromptSize([{"role": "user", "content": "word " * 4000}])
    assert size.tokens_against(1_000_000) == size.estimate and not size.counted
    assert size.tokens_against(100) == size.estimate and not size.counted
    exact = size.tokens_against(size.estimate)
    assert size.counted and exact == size.best
