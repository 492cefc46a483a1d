"""The OpenAI-compatible fast path at the HTTP layer (respx)."""

import json
from dataclasses import replace

import httpx
import openai
import pytest
import respx

from providers.base import MALFORMED_EVENT, NATIVE_RESPONSES, CallOptions, Deployment, NativeResponses
from providers.openai_compat import AsyncOpenAICompatible, OpenAICompatible

URL = "http://local.test/v1/chat/completions"
DEPLOYMENT = Deployment(
    name="local",
    provider="openai_compatible",
    model="served-id",
    adapter="openai",
    api_base="http://local.test/v1/",
    api_key="sk-test",
    headers={"x-team": "search"},
)
BODY = {"messages": [{"role": "user", "content": "hi"}]}
OK = {"id": "1", "object": "chat.completion", "created": 1, "model": "served-id", "choices": []}


def _sse(*events: str) -> bytes:
    return "".join(f"data: {e}\n\n" for e in events).encode()


@respx.mock
def test_request_carries_the_providers_model_id_key_and_headers() -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=OK))
    OpenAICompatible().complete(DEPLOYMENT, BODY, CallOptions(extra_headers={"x-extra": "1"}))
    sent = route.calls.last.request
    assert json.loads(sent.content) == {**BODY, "model": "served-id"}
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["x-team"] == "search" and sent.headers["x-extra"] == "1"


@respx.mock
def test_azure_deployments_use_the_deployment_path_api_version_and_api_key_header() -> None:
    azure = Deployment(
        name="az",
        provider="azure",
        model="gpt4o-prod",
        adapter="azure",
        api_base="https://acme.openai.azure.com",
        api_key="azkey",
        api_version="2024-10-21",
    )
    route = respx.post(
        "https://acme.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions",
        params={"api-version": "2024-10-21"},
    ).mock(return_value=httpx.Response(200, json=OK))
    OpenAICompatible().complete(azure, BODY, CallOptions())
    assert route.calls.last.request.headers["api-key"] == "azkey"
    assert "authorization" not in route.calls.last.request.headers


@respx.mock
def test_error_status_raises_openais_class_with_headers() -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(429, json={"error": {"message": "slow"}}, headers={"retry-after": "2"})
    )
    with pytest.raises(openai.RateLimitError) as caught:
        OpenAICompatible().complete(DEPLOYMENT, BODY, CallOptions())
    assert caught.value.response.headers["retry-after"] == "2"


@respx.mock
def test_a_body_that_is_not_json_is_a_response_validation_error() -> None:
    respx.post(URL).mock(return_value=httpx.Response(200, content=b"{not json"))
    with pytest.raises(openai.APIResponseValidationError):
        OpenAICompatible().complete(DEPLOYMENT, BODY, CallOptions())


@respx.mock
def test_a_connection_failure_is_an_api_connection_error() -> None:
    respx.post(URL).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(openai.APIConnectionError):
        OpenAICompatible().complete(DEPLOYMENT, BODY, CallOptions())


@respx.mock
def test_a_timeout_is_an_api_timeout_error() -> None:
    respx.post(URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(openai.APITimeoutError):
        OpenAICompatible().complete(DEPLOYMENT, BODY, CallOptions(timeout=0.5))


@respx.mock
def test_stream_yields_chunks_until_done() -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(200, content=_sse('{"choices":[{"delta":{"content":"a"}}]}', "[DONE]"))
    )
    chunks = list(OpenAICompatible().stream(DEPLOYMENT, {**BODY, "stream": True}, CallOptions()))
    assert chunks == [{"choices": [{"delta": {"content": "a"}}]}]


@respx.mock
def test_a_stream_that_ends_without_done_is_an_error_not_a_short_answer() -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(200, content=_sse('{"choices":[{"delta":{"content":"a"}}]}'))
    )
    stream = OpenAICompatible().stream(DEPLOYMENT, {**BODY, "stream": True}, CallOptions())
    assert next(stream)["choices"][0]["delta"]["content"] == "a"
    with pytest.raises(openai.APIConnectionError, match="terminal event"):
        next(stream)


@respx.mock
def test_an_error_event_inside_a_stream_raises() -> None:
    respx.post(URL).mock(return_value=httpx.Response(200, content=_sse('{"error":{"message":"overloaded"}}')))
    with pytest.raises(openai.APIError, match="overloaded"):
        list(OpenAICompatible().stream(DEPLOYMENT, {**BODY, "stream": True}, CallOptions()))


@respx.mock
async def test_async_driver_over_a_given_httpx_client_sends_the_same_request_and_reads_the_stream() -> None:
    route = respx.post(URL).mock(
        return_value=httpx.Response(200, content=_sse('{"choices":[{"delta":{"content":"a"}}]}', "[DONE]"))
    )
    adapter = AsyncOpenAICompatible(httpx.AsyncClient())
    chunks = [c async for c in adapter.stream(DEPLOYMENT, {**BODY, "stream": True}, CallOptions())]
    assert len(chunks) == 1
    assert json.loads(route.calls.last.request.content)["model"] == "served-id"
    route.mock(return_value=httpx.Response(500, json={"error": {"message": "x"}}))
    with pytest.raises(openai.InternalServerError):
        await adapter.complete(DEPLOYMENT, BODY, CallOptions())
    await adapter.close()


_FINISH = '{"choices":[{"delta":{},"finish_reason":"stop"}]}'
_USAGE = '{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
_WITH_USAGE = {**BODY, "stream": True, "stream_options": {"include_usage": True}}


@respx.mock
def test_a_stream_whose_finish_reason_and_usage_arrived_is_complete_without_done() -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(
            200, content=_sse('{"choices":[{"delta":{"content":"a"}}]}', _FINISH, _USAGE)
        )
    )
    chunks = list(OpenAICompatible().stream(DEPLOYMENT, _WITH_USAGE, CallOptions()))
    assert [bool(c.get("usage")) for c in chunks] == [False, False, True]


@respx.mock
def test_a_stream_that_asked_for_usage_and_ends_before_it_is_cut() -> None:
    respx.post(URL).mock(
        return_value=httpx.Response(200, content=_sse('{"choices":[{"delta":{"content":"a"}}]}', _FINISH))
    )
    with pytest.raises(openai.APIConnectionError):
        list(OpenAICompatible().stream(DEPLOYMENT, _WITH_USAGE, CallOptions()))


@respx.mock
async def test_an_unreadable_event_becomes_a_marker_and_the_stream_goes_on() -> None:
    events = [
        '{"choices":[{"delta":{"content":"a"}}]}',
        '{"choices": [{"delta": {"content": "un',
        "[1, 2]",
        _FINISH,
    ]
    respx.post(URL).mock(return_value=httpx.Response(200, content=_sse(*events, "[DONE]")))
    chunks = [
        c
        async for c in AsyncOpenAICompatible(httpx.AsyncClient()).stream(
            DEPLOYMENT, {**BODY, "stream": True}, CallOptions()
        )
    ]
    assert [MALFORMED_EVENT in c for c in chunks] == [False, True, True, False]


@respx.mock
def test_an_unreadable_event_in_a_stream_that_never_finishes_is_still_a_cut() -> None:
    events = ['{"choices":[{"delta":{"content":"a"}}]}', "{not json"]
    respx.post(URL).mock(return_value=httpx.Response(200, content=_sse(*events)))
    with pytest.raises(openai.APIConnectionError):
        list(OpenAICompatible().stream(DEPLOYMENT, {**BODY, "stream": True}, CallOptions()))


@respx.mock
def test_a_flex_deployment_asks_for_flex_and_a_standard_one_never_forwards_a_callers_flex() -> None:
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=OK))
    native = respx.post("http://local.test/v1/responses").mock(return_value=httpx.Response(200, json={}))
    flex = replace(DEPLOYMENT, name="local@flex", service_tier="flex", responses=True)
    adapter = OpenAICompatible()
    adapter.complete(flex, BODY, CallOptions())
    assert json.loads(route.calls.last.request.content)["service_tier"] == "flex"
    adapter.complete(DEPLOYMENT, {**BODY, "service_tier": "flex"}, CallOptions())
    assert "service_tier" not in json.loads(route.calls.last.request.content)
    adapter.complete(DEPLOYMENT, {**BODY, "service_tier": "priority"}, CallOptions())
    assert json.loads(route.calls.last.request.content)["service_tier"] == "priority"
    with pytest.raises(openai.APIError):  # the empty body is no Responses answer; the request is what counts
        adapter.complete(flex, {NATIVE_RESPONSES: NativeResponses({"input": "hi"})}, CallOptions())
    assert json.loads(native.calls.last.request.content)["service_tier"] == "flex"


@pytest.mark.parametrize(
    "deployment",
    [
        DEPLOYMENT,
        replace(
            DEPLOYMENT, adapter="azure", api_base="https://acme.openai.azure.com", api_version="2024-10-21"
        ),
        replace(DEPLOYMENT, headers={"Host": "proxy.internal", "x-team": "search"}),
        replace(DEPLOYMENT, api_key=None, headers={}),
    ],
    ids=["openai", "azure", "own-host-header", "no-key"],
)
@pytest.mark.parametrize(
    "options",
    [CallOptions(), CallOptions(extra_headers={"x-extra": "1"}), CallOptions(extra_query={"q": "1"})],
    ids=["plain", "extra-headers", "extra-query"],
)
def test_the_request_built_is_the_one_httpxs_constructor_makes(
    deployment: Deployment, options: CallOptions
) -> None:
    # The sync path sets the request's fields itself (no header parsing per call): same object state.
    from providers.openai_compat import _same_request, _timeout_dict, _url_and_headers

    body = {"messages": [{"role": "user", "content": "é中"}], "temperature": 9.6e-06}
    built = OpenAICompatible()._build(deployment, body, options)
    url, headers = _url_and_headers(deployment)
    expected = httpx.Request(
        "POST",
        url,
        params=dict(options.extra_query) if options.extra_query else None,
        headers={**headers, **(options.extra_headers or {})},
        content=built.content,
        extensions={"timeout": _timeout_dict(options)},
    )
    assert _same_request(built, expected)
    assert json.loads(built.content) == {**body, "model": "served-id"}


@respx.mock
def test_the_default_clients_cookie_jar_keeps_what_responses_set_and_skips_the_rest() -> None:
    # Reading a response's cookies is skipped only when it sets none: the jar ends up the same.
    route = respx.post(URL)
    route.side_effect = [
        httpx.Response(200, json=OK, headers={"set-cookie": "__cf_bm=abc; Path=/; HttpOnly"}),
        httpx.Response(200, json=OK),
        httpx.Response(200, json=OK, headers={"Set-Cookie": "_cfuvid=xyz; Path=/"}),
    ]
    adapter = OpenAICompatible()
    jars: list[dict[str, str]] = []
    for _ in range(3):
        adapter.complete(DEPLOYMENT, BODY, CallOptions())
        jars.append(dict(adapter._client.cookies))
    assert jars == [{"__cf_bm": "abc"}, {"__cf_bm": "abc"}, {"__cf_bm": "abc", "_cfuvid": "xyz"}]


def _context_of(adapter: OpenAICompatible) -> object:
    return adapter._client._transport._pool._ssl_context  # type: ignore[attr-defined]


def test_the_clients_the_router_builds_share_one_verifying_context_per_ca_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ssl

    import certifi

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    first, second = OpenAICompatible(), OpenAICompatible()
    context = _context_of(first)
    assert isinstance(context, ssl.SSLContext) and context is _context_of(second)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # A CA bundle named by SSL_CERT_FILE is honoured as httpx honours it: a context of its own.
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    assert _context_of(OpenAICompatible()) is not context


def test_a_callers_http_client_keeps_its_own_verify_setting() -> None:
    import ssl

    client = httpx.Client(verify=False)
    adapter = OpenAICompatible(http_client=client)
    context = _context_of(adapter)
    assert isinstance(context, ssl.SSLContext) and context is not _context_of(OpenAICompatible())
    assert context.verify_mode == ssl.CERT_NONE
    client.close()
