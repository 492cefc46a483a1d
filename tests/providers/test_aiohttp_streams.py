"""The async stream fast path: a plain 200 ``text/event-stream`` is read straight off aiohttp, and its
lines must be exactly the ones httpx's ``aiter_lines`` gives for the same bytes; anything else (a body
in another media type) is read the httpx way, with the same errors as before.

A raw asyncio server sends hand-made bytes in hand-made pieces (a line ending split between two
pieces, a character split between two, undecodable bytes), so both readers see the same chunking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import openai
import pytest

from policies.schema import Policy
from providers._aiohttp import AiohttpTransport, event_lines, plain_event_stream
from router import AsyncOpenAI

KEY_ENV = "STREAM_TEST_KEY"
CHUNK = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[%s]}\n\n'
DELTA = b'{"index":0,"delta":{"content":"%s"},"finish_reason":null}'
FINISH = b'{"index":0,"delta":{},"finish_reason":"stop"}'


def _chunked(pieces: Sequence[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"


async def _serve(content_type: bytes, pieces: Sequence[bytes]) -> tuple[asyncio.Server, str]:
    """A one-route HTTP/1.1 server: every request gets a 200 of ``content_type`` in ``pieces``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ntransfer-encoding: chunked\r\n\r\n"
                    % content_type
                )
                for piece in pieces:
                    writer.write(_chunked([piece])[: -len(b"0\r\n\r\n")])
                    await writer.drain()
                    await asyncio.sleep(0)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


TRICKY: Sequence[bytes] = (
    b"data: one\r",  # a CRLF split between two pieces
    b"\ndata: two\rdata: three\n",  # a lone CR ends a line too
    b"data: caf\xc3",  # a character split between two pieces
    b"\xa9 \xff bad\n\n",  # an undecodable byte: replaced, as httpx does
    b": a comment\n",
    b"data: no newline at the end",
)


async def _httpx_lines(url: str) -> list[str]:
    async with httpx.AsyncClient() as client, client.stream("POST", url, content=b"{}") as response:
        return [line async for line in response.aiter_lines()]


async def _aiohttp_lines(url: str) -> list[str]:
    transport = AiohttpTransport()
    try:
        response = await transport.open_stream(
            url, [("content-type", "application/json")], b"{}", None, _never
        )
        assert plain_event_stream(response)
        lines = [line async for line in event_lines(response, _never)]
        response.release()
        return lines
    finally:
        await transport.aclose()


def _never() -> httpx.Request:
    raise AssertionError("no error was expected, so no httpx.Request should be built")


async def test_event_stream_lines_are_split_and_decoded_exactly_as_httpx_does() -> None:
    server, url = await _serve(b"text/event-stream", TRICKY)
    try:
        expected = await _httpx_lines(url)
        assert await _aiohttp_lines(url) == expected
    finally:
        server.close()
    assert "data: caf\u00e9 \ufffd bad" in expected and "data: no newline at the end" in expected


def _policy(url: str) -> Policy:
    model = {"provider": "openai", "api_base": url, "api_key_env": KEY_ENV}
    return Policy.model_validate(
        {"retry": {"attempts": 1}, "models": {"m": model}, "routes": {"auto": {"candidates": ["m"]}}}
    )


async def _stream_text(url: str) -> str:
    client = AsyncOpenAI(policy=_policy(url))
    try:
        stream = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        parts: list[str] = []
        async for chunk in stream:
            parts.extend(c.delta.content or "" for c in chunk.choices)
        return "".join(parts)
    finally:
        await client.close()


@pytest.mark.parametrize("content_type", [b"text/event-stream", b"text/event-stream; charset=utf-8"])
async def test_a_streamed_answer_split_anywhere_reads_whole(
    content_type: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")
    body = CHUNK % (DELTA % b"Hel") + CHUNK % (DELTA % b"lo") + CHUNK % FINISH + b"data: [DONE]\n\n"
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    server, url = await _serve(content_type, pieces)
    try:
        assert await _stream_text(url) == "Hello"
    finally:
        server.close()


async def test_a_stream_answered_in_another_media_type_is_read_the_httpx_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Same bytes, labelled JSON: the fast path steps aside and httpx reads them, as it always did.
    monkeypatch.setenv(KEY_ENV, "sk-test")
    body = CHUNK % (DELTA % b"Hi") + CHUNK % FINISH + b"data: [DONE]\n\n"
    server, url = await _serve(b"application/json", [body])
    try:
        assert await _stream_text(url) == "Hi"
    finally:
        server.close()


async def test_an_error_event_mid_stream_raises_with_its_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")
    body = CHUNK % (DELTA % b"Hi") + b'data: {"error":{"message":"overloaded"}}\n\n'
    server, url = await _serve(b"text/event-stream", [body])
    try:
        with pytest.raises(openai.APIError) as caught:
            await _stream_text(url)
    finally:
        server.close()
    assert caught.value.request.url.path.endswith("/chat/completions")
