"""The public client at the HTTP layer (respx): fallback, records, errors, options, sync and async."""

import httpx
import openai
import pytest
import respx

from router import AsyncOpenAI, ModelNotFoundError, NoCandidateError, OpenAI
from tests.router.helpers import OK_BODY, two_model_policy

A = "http://a.test/v1/chat/completions"
B = "http://b.test/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hi"}]


@respx.mock
def test_a_500_from_the_first_model_is_answered_by_the_second_with_both_attempts_recorded() -> None:
    respx.post(A).mock(return_value=httpx.Response(500, json={"error": {"message": "boom"}}))
    respx.post(B).mock(return_value=httpx.Response(200, json=OK_BODY))
    response = OpenAI(policy=two_model_policy()).chat.completions.create(
        model="auto", messages=MESSAGES, metadata={"feature": "faq"}
    )
    assert isinstance(response, openai.types.chat.ChatCompletion)
    assert response.model == "b" and response.routing.model == "b"
    assert response.routing.feature == "faq" and response.routing.route == "auto"
    assert [(a.model, a.error) for a in response.routing.attempts] == [("a", "server"), ("b", None)]
    assert response.routing.cost_usd == pytest.approx((1000 * 1 + 500 * 2) / 1e6)


@respx.mock
def test_a_bad_request_is_raised_without_trying_other_models() -> None:
    a = respx.post(A).mock(return_value=httpx.Response(400, json={"error": {"message": "bad messages"}}))
    b = respx.post(B).mock(return_value=httpx.Response(200, json=OK_BODY))
    with pytest.raises(openai.BadRequestError):
        OpenAI(policy=two_model_policy()).chat.completions.create(model="auto", messages=MESSAGES)
    assert a.call_count == 1 and b.call_count == 0


@respx.mock
def test_when_all_models_fail_the_caller_catches_the_providers_class() -> None:
    respx.post(A).mock(return_value=httpx.Response(429, json={"error": {"message": "slow"}}))
    respx.post(B).mock(return_value=httpx.Response(429, json={"error": {"message": "slow"}}))
    with pytest.raises(openai.RateLimitError):
        OpenAI(policy=two_model_policy()).chat.completions.create(model="auto", messages=MESSAGES)


def test_an_unknown_model_name_is_openais_not_found_error_listing_routes_and_models() -> None:
    client = OpenAI(policy=two_model_policy())
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-5", messages=MESSAGES)
    assert isinstance(caught.value, ModelNotFoundError)
    assert "auto" in str(caught.value) and "'gpt-5'" in str(caught.value)


@respx.mock
def test_naming_a_concrete_model_calls_only_that_model() -> None:
    a = respx.post(A).mock(return_value=httpx.Response(200, json=OK_BODY))
    response = OpenAI(policy=two_model_policy()).chat.completions.create(model="a", messages=MESSAGES)
    assert response.model == "a" and a.call_count == 1


def test_a_model_whose_key_is_missing_is_rejected_with_the_variable_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROUTER_TEST_KEY", raising=False)
    policy = two_model_policy().model_copy(
        update={
            "models": {
                "a": two_model_policy().models["a"].model_copy(update={"api_key_env": "ROUTER_TEST_KEY"}),
            },
            "routes": {},
        }
    )
    with pytest.raises(NoCandidateError) as caught:
        OpenAI(policy=policy).chat.completions.create(model="a", messages=MESSAGES)
    assert "set ROUTER_TEST_KEY" in str(caught.value)
    assert isinstance(caught.value, openai.BadRequestError)


@respx.mock
def test_per_call_timeout_and_extra_headers_reach_the_provider() -> None:
    route = respx.post(A).mock(return_value=httpx.Response(200, json=OK_BODY))
    OpenAI(policy=two_model_policy()).chat.completions.create(
        model="a", messages=MESSAGES, timeout=7.0, extra_headers={"x-trace": "t1"}
    )
    sent = route.calls.last.request
    assert sent.headers["x-trace"] == "t1"
    assert sent.extensions["timeout"]["read"] == 7.0


@respx.mock
def test_the_stream_hides_the_usage_chunk_unless_asked_but_prices_it() -> None:
    sse = b"".join(
        f"data: {e}\n\n".encode()
        for e in (
            '{"id":"1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
            '{"id":"1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}',
            '{"id":"1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5000,"completion_tokens":0,"total_tokens":5000}}',
            "[DONE]",
        )
    )
    respx.post(A).mock(return_value=httpx.Response(200, content=sse))
    client = OpenAI(policy=two_model_policy())
    stream = client.chat.completions.create(model="a", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert [c.choices[0].delta.content for c in chunks] == ["", "Hi"]
    assert all(c.model == "a" for c in chunks)
    assert stream.routing.cost_usd == pytest.approx(0.005)  # 5,000 prompt tokens at $1 per M
    with client.chat.completions.create(
        model="a", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as asked:
        assert [c.usage is not None for c in asked] == [False, False, True]


def test_models_list_shows_models_and_routes() -> None:
    page = OpenAI(policy=two_model_policy()).models.list()
    assert [m.id for m in page] == ["a", "b", "auto"]
    assert [m.owned_by for m in page.data] == ["openai_compatible", "openai_compatible", "router"]


@respx.mock
async def test_async_client_falls_back_the_same_way() -> None:
    respx.post(A).mock(return_value=httpx.Response(503, json={"error": {"message": "busy"}}))
    respx.post(B).mock(return_value=httpx.Response(200, json=OK_BODY))
    # respx answers httpx clients: a given http_client carries the async calls, as with openai.
    async with AsyncOpenAI(policy=two_model_policy(), http_client=httpx.AsyncClient()) as client:
        response = await client.chat.completions.create(model="auto", messages=MESSAGES)
        assert response.model == "b"
        assert [a.error for a in response.routing.attempts] == ["server", None]
        assert [m.id async for m in client.models.list()] == ["a", "b", "auto"]
        assert len((await client.models.list()).data) == 3


@respx.mock
def test_parse_returns_the_pydantic_object_and_the_record() -> None:
    import pydantic

    class Answer(pydantic.BaseModel):
        city: str
        population: int

    body = {
        **OK_BODY,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": '{"city": "Paris", "population": 2}'},
                "finish_reason": "stop",
            }
        ],
    }
    route = respx.post(A).mock(return_value=httpx.Response(200, json=body))
    parsed = OpenAI(policy=two_model_policy()).chat.completions.parse(
        model="a", messages=MESSAGES, response_format=Answer
    )
    assert parsed.choices[0].message.parsed == Answer(city="Paris", population=2)
    assert parsed.routing.model == "a"  # type: ignore[attr-defined]
    assert "routing" not in parsed.model_dump(warnings=False)
    import json

    assert json.loads(route.calls.last.request.content)["response_format"]["type"] == "json_schema"


@respx.mock
def test_with_options_changes_the_default_timeout_and_shares_the_policy() -> None:
    route = respx.post(A).mock(return_value=httpx.Response(200, json=OK_BODY))
    client = OpenAI(policy=two_model_policy())
    quick = client.with_options(timeout=2.0)
    quick.chat.completions.create(model="a", messages=MESSAGES)
    assert route.calls.last.request.extensions["timeout"]["read"] == 2.0
    assert quick.policy is client.policy and client.timeout != 2.0
    assert quick.models.retrieve("auto").owned_by == "router"
    with pytest.raises(ModelNotFoundError):
        client.models.retrieve("nope")
