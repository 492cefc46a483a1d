"""The async fast path over aiohttp without httpx objects: the same request on the wire, the same answers
and the same openai errors as through httpx, against a real local HTTP server (aiohttp is not respx's)."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

from providers.base import CallOptions, Deployment
from providers.openai_compat import AsyncOpenAICompatible

BODY = {"messages": [{"role": "user", "content": "hi"}]}
ANSWER = {"id": "1", "object": "chat.completion", "created": 1, "model": "served-id", "choices": []}


class Server:
    """Answers each POST with the next scripted (status, headers, body); keeps what it received."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict[str, str], bytes]] = []
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, headers, content = outer.replies.pop(0)
                self.send_response(status)
                for name, value in {**headers, "content-length": str(len(content))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"

    def reply(self, status: int, body: bytes, **headers: str) -> None:
        self.replies.append((status, {"content-type": "application/json", **headers}, body))


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    thread = threading.Thread(target=running.http.serve_forever, daemon=True)
    thread.start()
    yield running
    running.http.shutdown()
    running.http.server_close()
    thread.join(timeout=10)


def deployment(api_base: str) -> Deployment:
    return Deployment(
        name="local",
        provider="openai_compatible",
        model="served-id",
        adapter="openai",
        api_base=api_base,
        api_key="sk-test",
        headers={"x-team": "search"},
    )


async def test_a_plain_answer_is_parsed_from_the_bytes_and_the_request_is_the_same(server: Server) -> None:
    server.reply(200, json.dumps(ANSWER).encode())
    adapter = AsyncOpenAICompatible()
    try:
        answer = await adapter.complete(
            deployment(server.url), BODY, CallOptions(extra_headers={"x-extra": "1"}, timeout=30.0)
        )
    finally:
        await adapter.close()
    assert answer == ANSWER
    path, headers, body = server.received[0]
    assert path == "/v1/chat/completions"
    assert json.loads(body) == {**BODY, "model": "served-id"}
    assert headers["authorization"] == "Bearer sk-test"
    assert headers["x-team"] == "search" and headers["x-extra"] == "1"
    assert headers["content-type"] == "application/json"
    assert "user-agent" not in headers and "accept-encoding" not in headers


@pytest.mark.parametrize(
    "body",
    [
        b"\xef\xbb\xbf" + json.dumps(ANSWER).encode(),  # a UTF-8 byte order mark
        json.dumps(ANSWER).encode("utf-16"),
        b" \n" + json.dumps(ANSWER).encode() + b"\r\n",
        json.dumps(ANSWER, ensure_ascii=False).replace('"1"', '"\u00e9\u4e2d"').encode(),
    ],
)
async def test_an_answer_is_read_as_json_loads_reads_it_whatever_its_encoding_or_whitespace(
    server: Server, body: bytes
) -> None:
    server.reply(200, body)
    adapter = AsyncOpenAICompatible()
    try:
        assert await adapter.complete(deployment(server.url), BODY, CallOptions()) == json.loads(body)
    finally:
        await adapter.close()


async def test_a_compressed_answer_is_decoded(server: Server) -> None:
    server.reply(200, gzip.compress(json.dumps(ANSWER).encode()), **{"content-encoding": "gzip"})
    adapter = AsyncOpenAICompatible()
    try:
        assert await adapter.complete(deployment(server.url), BODY, CallOptions()) == ANSWER
    finally:
        await adapter.close()


async def test_an_error_status_raises_openais_class_with_the_response_attached(server: Server) -> None:
    server.reply(429, json.dumps({"error": {"message": "slow"}}).encode(), **{"retry-after": "2"})
    adapter = AsyncOpenAICompatible()
    try:
        with pytest.raises(openai.RateLimitError) as caught:
            await adapter.complete(deployment(server.url), BODY, CallOptions())
    finally:
        await adapter.close()
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.request.url.path == "/v1/chat/completions"


@pytest.mark.parametrize("body", [b"{not json", b'{"no": "choices"}', json.dumps(ANSWER).encode() + b" {}"])
async def test_a_body_that_is_not_an_answer_is_a_validation_error(server: Server, body: bytes) -> None:
    server.reply(200, body)
    adapter = AsyncOpenAICompatible()
    try:
        with pytest.raises(openai.APIResponseValidationError):
            await adapter.complete(deployment(server.url), BODY, CallOptions())
    finally:
        await adapter.close()


async def test_a_refused_connection_is_an_api_connection_error_naming_its_request() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    adapter = AsyncOpenAICompatible()
    try:
        with pytest.raises(openai.APIConnectionError) as caught:
            await adapter.complete(deployment(f"http://127.0.0.1:{port}/v1"), BODY, CallOptions())
    finally:
        await adapter.close()
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert str(caught.value.request.url) == f"http://127.0.0.1:{port}/v1/chat/completions"
