"""Faults on the raw wire (httpx, so nothing hides what the server sent), the request log and the controls."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from router_fakes import (
    FakeProviders,
    FakeProvidersClient,
    ModelScript,
    malformed,
    reset,
    status,
    stream_cut,
    stream_stall,
)

# What reaches the caller when a stream is cut: the SDK's HTTP library's own error (httpx before
# openai 3.x, httpx2 since), which recent 3.x releases wrap in openai.APIConnectionError.
_CUT_STREAM_ERRORS: tuple[type[Exception], ...] = (httpx.RemoteProtocolError, openai.APIConnectionError)
try:
    import httpx2

    _CUT_STREAM_ERRORS = (*_CUT_STREAM_ERRORS, httpx2.RemoteProtocolError)
except ImportError:
    pass

MODEL = "m"
QUESTION = (
    "one two three four five six seven"  # a 7-word question: "[m] Answer to a 7-word question." = 6 chunks
)


def stream_request(protocol: str) -> tuple[str, dict[str, Any]]:
    """Path and body of a streamed request in ``protocol``'s own format."""
    if protocol == "openai":
        return "/openai/v1/chat/completions", {
            "model": MODEL,
            "stream": True,
            "messages": [{"role": "user", "content": QUESTION}],
        }
    if protocol == "gemini":
        path = f"/gemini/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
        return path, {"contents": [{"role": "user", "parts": [{"text": QUESTION}]}]}
    return "/anthropic/v1/messages", {
        "model": MODEL,
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": QUESTION}],
    }


def is_content(protocol: str, line: str) -> bool:
    if not line.startswith("data: ") or line == "data: [DONE]":
        return False
    event = json.loads(line[6:])
    if protocol == "openai":
        return bool(event["choices"] and event["choices"][0]["delta"].get("content"))
    if protocol == "gemini":
        parts = event["candidates"][0].get("content", {}).get("parts", [])
        return any(p.get("text") for p in parts)
    return bool(event["type"] == "content_block_delta")


def is_terminal(protocol: str, line: str) -> bool:
    marker = {"openai": "data: [DONE]", "gemini": '"finishReason"', "anthropic": '"message_stop"'}[protocol]
    return marker in line


def read_sse(fake: FakeProviders, protocol: str) -> Iterator[tuple[float, str]]:
    """(seconds since the request, line) for every SSE line, until the stream ends or breaks."""
    path, body = stream_request(protocol)
    started = time.perf_counter()
    with httpx.Client(base_url=fake.url) as http, http.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line:
                yield time.perf_counter() - started, line


PROTOCOLS = pytest.mark.parametrize("protocol", ["openai", "gemini", "anthropic"])


@PROTOCOLS
def test_complete_stream_has_six_content_events_and_a_terminal_event(
    fake: FakeProviders, protocol: str
) -> None:
    lines = [line for _, line in read_sse(fake, protocol)]
    assert sum(is_content(protocol, line) for line in lines) == 6
    assert is_terminal(protocol, lines[-1])


@PROTOCOLS
def test_stream_cut_sends_exactly_n_content_events_then_breaks_the_connection(
    fake: FakeProviders, protocol: str
) -> None:
    fake.script(ModelScript(MODEL, faults=(stream_cut(3),)))
    lines: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        for _, line in read_sse(fake, protocol):
            lines.append(line)
    assert sum(is_content(protocol, line) for line in lines) == 3
    assert not any(is_terminal(protocol, line) for line in lines)


@PROTOCOLS
def test_stream_stall_pauses_after_n_content_events_then_finishes(fake: FakeProviders, protocol: str) -> None:
    fake.script(ModelScript(MODEL, faults=(stream_stall(2, 0.3),)))
    content = []
    last = ""
    for at, line in read_sse(fake, protocol):
        if is_content(protocol, line):
            content.append(at)
        last = line
    assert len(content) == 6
    # The third content event was written only after the pause: it cannot have been read sooner.
    # (Only this lower bound holds on a busy machine; any upper bound on a gap would be a benchmark.)
    assert content[2] >= 0.3 - 0.01
    assert is_terminal(protocol, last)


def test_openai_sdk_sees_the_chunks_before_a_cut_then_a_connection_error(fake: FakeProviders) -> None:
    """Every chunk written before the cut reaches the openai SDK; then an error, not a silent end."""
    fake.script(ModelScript(MODEL, faults=(stream_cut(2),)))
    client = openai.OpenAI(base_url=fake.openai_base, api_key="x", max_retries=0)
    received = []
    with pytest.raises(_CUT_STREAM_ERRORS):
        for chunk in client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == ["[m] ", "Answer "]


@PROTOCOLS
def test_reset_closes_the_connection_without_a_response(fake: FakeProviders, protocol: str) -> None:
    fake.script(ModelScript(MODEL, faults=(reset(),)))
    path, body = stream_request(protocol)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.post(fake.url + path, json=body)


@PROTOCOLS
def test_malformed_answers_200_with_a_body_that_is_not_json(fake: FakeProviders, protocol: str) -> None:
    fake.script(ModelScript(MODEL, faults=(malformed(),)))
    path, body = stream_request(protocol)
    body.pop("stream", None)
    path = path.replace("streamGenerateContent?alt=sse", "generateContent")
    response = httpx.post(fake.url + path, json=body)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_malformed_body_raises_a_raw_decode_error_in_the_openai_sdk(fake: FakeProviders) -> None:
    """The openai SDK lets json.JSONDecodeError through: callers must map it themselves."""
    fake.script(ModelScript(MODEL, faults=(malformed(),)))
    client = openai.OpenAI(base_url=fake.openai_base, api_key="x", max_retries=0)
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])


def test_faults_are_consumed_in_order_then_the_model_answers_normally(fake: FakeProviders) -> None:
    fake.script(ModelScript(MODEL, faults=(status(500), status(429, retry_after=1))))
    path, body = stream_request("openai")
    body["stream"] = False
    codes = [httpx.post(fake.url + path, json=body).status_code for _ in range(3)]
    assert codes == [500, 429, 200]


def test_repeat_faults_cycles_through_the_faults(fake: FakeProviders) -> None:
    fake.script(ModelScript(MODEL, faults=(status(503), status(429)), repeat_faults=True))
    path, body = stream_request("openai")
    body["stream"] = False
    assert [httpx.post(fake.url + path, json=body).status_code for _ in range(5)] == [503, 429, 503, 429, 503]


def test_fail_rate_fails_a_seeded_reproducible_share_of_requests(fake: FakeProviders) -> None:
    path, body = stream_request("openai")
    body["stream"] = False

    def run() -> list[int]:
        fake.script(ModelScript(MODEL, fail_rate=0.5, seed=7, fail_status=502))
        with httpx.Client(base_url=fake.url) as http:
            return [http.post(path, json=body).status_code for _ in range(40)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 502}
    assert 10 <= first.count(502) <= 30


def test_latency_delays_every_answer(fake: FakeProviders) -> None:
    fake.script(ModelScript(MODEL, latency_s=0.15))
    path, body = stream_request("openai")
    body["stream"] = False
    started = time.perf_counter()
    assert httpx.post(fake.url + path, json=body).status_code == 200
    assert time.perf_counter() - started >= 0.15


@PROTOCOLS
def test_invalid_json_body_answers_the_providers_400(fake: FakeProviders, protocol: str) -> None:
    path, _ = stream_request(protocol)
    response = httpx.post(fake.url + path, content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["type" if protocol != "gemini" else "status"] in (
        "invalid_request_error",
        "INVALID_ARGUMENT",
    )


def test_gemini_rejects_a_bad_key_with_api_key_invalid_and_a_missing_key_with_403() -> None:
    with FakeProviders(api_keys={"gemini": "right"}) as guarded:
        path, body = stream_request("gemini")
        path = path.replace("streamGenerateContent?alt=sse", "generateContent")
        wrong = httpx.post(guarded.url + path, json=body, headers={"x-goog-api-key": "wrong"})
        assert wrong.status_code == 400
        assert wrong.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        assert httpx.post(guarded.url + path, json=body).status_code == 403
        assert httpx.post(guarded.url + path + "?key=right", json=body).status_code == 200


def test_anthropic_rejects_a_missing_key_with_authentication_error() -> None:
    with FakeProviders(api_keys={"anthropic": "right"}) as guarded:
        path, body = stream_request("anthropic")
        response = httpx.post(guarded.url + path, json=body)
        assert response.status_code == 401
        assert response.json() == {
            "type": "error",
            "error": {"type": "authentication_error", "message": "x-api-key header is required"},
        }


def test_request_log_records_requests_with_credentials_redacted(fake: FakeProviders) -> None:
    client = openai.OpenAI(base_url=fake.openai_base, api_key="sk-very-secret", max_retries=0)
    client.chat.completions.create(model="a", messages=[{"role": "user", "content": "hi"}])
    client.chat.completions.create(
        model="b", messages=[{"role": "user", "content": "yo"}], stream=True
    ).close()
    first, second = fake.requests
    assert (first.protocol, first.model, first.stream, second.model, second.stream) == (
        "openai",
        "a",
        False,
        "b",
        True,
    )
    assert first.path == "/openai/v1/chat/completions"
    assert first.body["messages"] == [{"role": "user", "content": "hi"}]
    assert first.headers["authorization"] == "<redacted>"
    assert "sk-very-secret" not in repr(fake.requests)
    assert fake.requests_for("b") == [second]


def test_reset_forgets_scripts_and_the_log(fake: FakeProviders) -> None:
    fake.script(ModelScript(MODEL, faults=(status(500),)))
    fake.reset()
    path, body = stream_request("openai")
    body["stream"] = False
    assert httpx.post(fake.url + path, json=body).status_code == 200
    assert len(fake.requests) == 1


def test_client_scripts_resets_and_reads_the_log_over_http(fake: FakeProviders) -> None:
    path, body = stream_request("openai")
    body["stream"] = False
    with FakeProvidersClient(fake.url) as control:
        control.script(
            ModelScript(MODEL, faults=(status(429, retry_after=2),)), ModelScript("other", reply="x")
        )
        response = httpx.post(fake.url + path, json=body, headers={"authorization": "Bearer sk-secret"})
        assert (response.status_code, response.headers["retry-after"]) == (429, "2")
        (logged,) = control.requests(MODEL)
        assert logged == fake.requests[0]
        assert logged.headers["authorization"] == "<redacted>"
        control.reset()
        assert control.requests() == []


def test_control_endpoint_rejects_an_invalid_script(fake: FakeProviders) -> None:
    response = httpx.post(fake.url + "/_fake/script", json={"model": "x", "faults": [{"kind": "explode"}]})
    assert response.status_code == 400


def test_module_runs_a_standalone_server_that_prints_its_url() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "router_fakes", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2] / "fakes",  # a checkout's fakes/, as pip install ./fakes
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        prefix = "fake providers listening on "
        assert line.startswith(prefix + "http://127.0.0.1:")
        url = line.removeprefix(prefix)
        with FakeProvidersClient(url) as control:
            control.script(ModelScript("gpt-4o-mini", reply="from another process"))
            client = openai.OpenAI(base_url=url + "/openai/v1", api_key="x", max_retries=0)
            response = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "?"}]
            )
            assert response.choices[0].message.content == "from another process"
            assert [r.model for r in control.requests()] == ["gpt-4o-mini"]
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0
