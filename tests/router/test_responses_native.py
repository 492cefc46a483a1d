"""Native Responses API: ``client.responses`` sent as is to ``/responses`` for models whose provider
speaks it (OpenAI; an OpenAI-compatible server that declares ``responses``), translated to chat for
the others, with fallbacks across both, through ``router.OpenAI``/``AsyncOpenAI`` against the fakes.

Every test runs sync and async (the ``api`` fixture of tests/router/test_responses_end_to_end.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest
from router_fakes import FakeProviders, ModelScript, reply_text, status, stream_cut
from router_fakes._openai_responses import REASONING_TOKENS

from policies.schema import Policy
from router import NoCandidateError, StreamInterruptedError
from router.testing import capture_events

from .fault_helpers import KEY_ENV
from .test_responses_end_to_end import Api

QUESTION = "What is the capital of France?"
NATIVE_PATH = "/openai/v1/responses"
CHAT_PATH = "/openai/v1/chat/completions"
TOOL = {
    "type": "function",
    "name": "lookup_order",
    "description": "Find an order.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
        "additionalProperties": False,
    },
    "strict": True,
}


class City(pydantic.BaseModel):
    city: str
    population: int


def native_policy(fake: FakeProviders, **top: Any) -> Policy:
    """gpt-4o-mini (OpenAI: native), Gemini (translated), two OpenAI-compatible servers at the fake's
    OpenAI base: ``local`` (chat only: translated) and ``local-native`` (declares ``responses``)."""
    common = {"api_key_env": KEY_ENV}
    free = {"input_cost_per_mtok": 0, "output_cost_per_mtok": 0}
    return Policy.model_validate(
        {
            "retry": {"attempts": 1},
            "models": {
                "gpt-4o-mini": {"provider": "openai", "api_base": fake.openai_base, **common},
                "gemini-2.5-flash-lite": {"provider": "gemini", "api_base": fake.gemini_base, **common},
                "local": {"provider": "openai_compatible", "api_base": fake.openai_base, **common, **free},
                "local-native": {
                    "provider": "openai_compatible",
                    "api_base": fake.openai_base,
                    "supports": ["tools", "json_schema", "streaming", "responses"],
                    **common,
                    **free,
                },
            },
            "routes": {
                "native-first": {"candidates": ["gpt-4o-mini"], "fallbacks": ["gemini-2.5-flash-lite"]},
                "chat-first": {"candidates": ["gemini-2.5-flash-lite"], "fallbacks": ["gpt-4o-mini"]},
                "chat-only": {"candidates": ["gemini-2.5-flash-lite", "local"]},
            },
            **top,
        }
    )


@pytest.fixture(params=["sync", "async"])
def api(
    request: pytest.FixtureRequest, fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Api]:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    made = Api(request.param, native_policy(fake))
    yield made
    made.close()


def paths(fake: FakeProviders, model: str) -> list[str]:
    return [request.path for request in fake.requests_for(model)]


def run(api: Api, method: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a client method, awaiting it on the async client's loop."""
    result = method(*args, **kwargs)
    if api.kind == "sync":
        return result

    async def awaited() -> Any:
        return await result

    return api._run(awaited())


def test_an_openai_model_is_answered_by_its_responses_endpoint_and_priced_from_its_usage(
    api: Api, fake: FakeProviders
) -> None:
    response = api.create(model="gpt-4o-mini", input=QUESTION, reasoning={"effort": "low"})
    assert paths(fake, "gpt-4o-mini") == [NATIVE_PATH]
    sent = fake.requests_for("gpt-4o-mini")[0].body
    assert sent["input"] == QUESTION and sent["reasoning"] == {"effort": "low"} and "messages" not in sent
    # The provider's own Response: its ids and items, the policy's model name, .routing attached.
    assert response.id.startswith("resp_fake") and [item.type for item in response.output] == [
        "reasoning",
        "message",
    ]
    assert response.output_text == reply_text("gpt-4o-mini", QUESTION)
    assert response.model == "gpt-4o-mini" and response.routing.model == "gpt-4o-mini"
    usage = response.usage
    assert usage is not None and usage.output_tokens_details.reasoning_tokens == REASONING_TOKENS
    routed = response.routing.usage
    assert routed is not None
    assert (routed.prompt_tokens, routed.completion_tokens, routed.reasoning_tokens) == (
        usage.input_tokens,
        usage.output_tokens,
        REASONING_TOKENS,
    )
    # gpt-4o-mini: $0.15 / $0.60 per million tokens, reasoning tokens billed as output.
    expected = (usage.input_tokens * 0.15 + usage.output_tokens * 0.60) / 1e6
    assert response.routing.cost_usd == pytest.approx(expected)
    assert response._request_id == response.routing.request_id


def test_hosted_tools_include_and_reasoning_items_pass_through_unchanged(
    api: Api, fake: FakeProviders
) -> None:
    response = api.create(
        model="native-first",
        input=QUESTION,
        tools=[{"type": "web_search"}, TOOL],
        tool_choice="auto",
        reasoning={"effort": "medium"},
        include=["reasoning.encrypted_content"],
        store=False,
        metadata={"feature": "search", "team": "a"},
    )
    sent = fake.requests_for("gpt-4o-mini")[0].body
    assert sent["tools"] == [{"type": "web_search"}, TOOL] and sent["include"] == [
        "reasoning.encrypted_content"
    ]
    assert sent["store"] is False
    assert sent["metadata"] == {"team": "a"}  # the router's routing key is not sent, as with chat
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "web_search_call", "function_call"]
    assert response.output[0].encrypted_content  # type: ignore[union-attr]
    assert response.routing.model == "gpt-4o-mini"


def test_a_request_only_a_responses_server_can_serve_skips_chat_models_and_says_why(
    api: Api, fake: FakeProviders
) -> None:
    response = api.create(model="chat-first", input=QUESTION, tools=[{"type": "web_search"}])
    assert response.routing.model == "gpt-4o-mini" and fake.requests_for("gemini-2.5-flash-lite") == []
    assert response.routing.rejected["gemini-2.5-flash-lite"] == "no native Responses API support"
    assert [item.type for item in response.output] == ["web_search_call", "message"]


def test_with_no_model_that_speaks_the_responses_api_the_error_names_what_needed_it(
    api: Api, fake: FakeProviders
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        api.create(model="chat-only", input=QUESTION, tool_choice={"type": "web_search"})
    error = caught.value
    assert error.status_code == 400 and error.param == "tool_choice"
    assert "hosted tool" in error.message and "supports: [..., responses]" in error.message
    assert "local: no native Responses API support" in error.message
    assert error.routing.rejected == {  # type: ignore[attr-defined]
        "gemini-2.5-flash-lite": "no native Responses API support",
        "local": "no native Responses API support",
    }
    assert fake.requests == []


def test_a_request_no_model_can_serve_for_other_reasons_raises_the_routers_own_error(
    api: Api, fake: FakeProviders
) -> None:
    with pytest.raises(NoCandidateError) as caught:
        api.create(model="native-first", input=QUESTION, max_output_tokens=1_000_000)
    assert isinstance(caught.value, openai.BadRequestError) and caught.value.status_code == 400
    assert set(caught.value.rejected) == {"gpt-4o-mini", "gemini-2.5-flash-lite"}
    assert fake.requests == []


def test_an_openai_compatible_server_is_translated_unless_it_declares_responses(
    api: Api, fake: FakeProviders
) -> None:
    chat = api.create(model="local", input=QUESTION)
    native = api.create(model="local-native", input=QUESTION)
    assert paths(fake, "local") == [CHAT_PATH] and paths(fake, "local-native") == [NATIVE_PATH]
    assert set(fake.requests_for("local")[0].body) == {"model", "messages"}  # the chat call only
    assert chat.output_text == reply_text("local", QUESTION)
    assert native.output_text == reply_text("local-native", QUESTION)
    assert native.id.startswith("resp_fake") and not chat.id.startswith("resp_fake")


@pytest.mark.parametrize(
    ("route", "failing", "answering", "answering_path"),
    [
        ("native-first", "gpt-4o-mini", "gemini-2.5-flash-lite", None),
        ("chat-first", "gemini-2.5-flash-lite", "gpt-4o-mini", NATIVE_PATH),
    ],
    ids=["native-fails-to-translated", "translated-fails-to-native"],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream"])
def test_a_failed_candidate_falls_back_across_native_and_translated(
    api: Api,
    fake: FakeProviders,
    route: str,
    failing: str,
    answering: str,
    answering_path: str | None,
    streamed: bool,
) -> None:
    fake.script(ModelScript(failing, faults=(status(500),)))
    with capture_events() as events:
        if streamed:
            stream_events, stream = api.events(model=route, input=QUESTION)
            assert stream_events[-1].type == "response.completed"
            final = stream_events[-1].response
            routing = stream.routing
        else:
            final = api.create(model=route, input=QUESTION)
            routing = final.routing
    assert final.output_text == reply_text(answering, QUESTION) and final.model == answering
    assert [(a.model, a.error, a.status) for a in routing.attempts] == [
        (failing, "server", 500),
        (answering, None, None),
    ]
    assert routing.cost_usd is not None and routing.cost_usd > 0
    if answering_path is not None:
        assert paths(fake, answering) == [answering_path]
    # The same events as a chat call's: the decision, one per attempt, the outcome.
    assert [event["event"] for event in events] == [
        "route.decided",
        "route.attempt",
        "route.attempt",
        "route.completed",
    ]


def test_a_rate_limit_from_the_responses_endpoint_is_openais_rate_limit_error(
    api: Api, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(status(429, retry_after=7),)))
    with pytest.raises(openai.RateLimitError) as caught:
        api.create(model="gpt-4o-mini", input=QUESTION)
    assert caught.value.status_code == 429 and caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "7"


def test_a_native_stream_yields_the_providers_typed_events_with_routing_on_the_last(
    api: Api, fake: FakeProviders
) -> None:
    events, stream = api.events(model="gpt-4o-mini", input=QUESTION, tools=[{"type": "web_search"}])
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.web_search_call.searching" in kinds and kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    final = events[-1].response
    assert deltas == final.output_text == reply_text("gpt-4o-mini", QUESTION)
    assert events[0].response.model == final.model == "gpt-4o-mini"
    assert final.routing.cost_usd == stream.routing.cost_usd and stream.routing.cost_usd > 0
    assert final.routing.usage.completion_tokens == final.usage.output_tokens
    assert fake.requests_for("gpt-4o-mini")[0].stream and paths(fake, "gpt-4o-mini") == [NATIVE_PATH]


def test_a_native_stream_cut_before_content_falls_back_unseen_and_after_content_raises(
    api: Api, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gpt-4o-mini", faults=(stream_cut(0),)))
    events, stream = api.events(model="native-first", input=QUESTION)
    assert stream.routing.model == "gemini-2.5-flash-lite" and events[-1].type == "response.completed"
    assert [event.type for event in events].count("response.created") == 1
    fake.script(ModelScript("gpt-4o-mini", faults=(stream_cut(2),)))
    seen, error = api.read_some(1000, model="native-first", input=QUESTION)
    assert isinstance(error, StreamInterruptedError) and error.model == "gpt-4o-mini"
    assert [event.type for event in seen].count("response.output_text.delta") == 2
    assert "response.completed" not in [event.type for event in seen]


def test_previous_response_id_of_a_native_response_goes_to_its_server_and_any_model_continues_it(
    api: Api, fake: FakeProviders
) -> None:
    first = api.create(model="gpt-4o-mini", input="My name is Ada.", instructions="Be brief.")
    second = api.create(model="gpt-4o-mini", input="What is my name?", previous_response_id=first.id)
    sent = fake.requests_for("gpt-4o-mini")[-1].body
    assert sent["previous_response_id"] == first.id and sent["input"] == "What is my name?"
    assert second.previous_response_id == first.id
    # The router keeps the turn too: a chat model continues it from the router's copy.
    third = api.create(model="gemini-2.5-flash-lite", input="And again?", previous_response_id=second.id)
    gemini_sent = json.dumps(fake.requests_for("gemini-2.5-flash-lite")[-1].body)
    for text in ("My name is Ada.", reply_text("gpt-4o-mini", "My name is Ada."), "What is my name?"):
        assert text in gemini_sent
    # ... and a Responses server that never saw the router's turn gets it as input items.
    api.create(model="local-native", input="Once more?", previous_response_id=third.id)
    native_sent = fake.requests_for("local-native")[-1].body
    assert "previous_response_id" not in native_sent
    assert native_sent["input"][0] == {"role": "user", "content": "My name is Ada."}
    assert native_sent["input"][-1] == {"role": "user", "content": "Once more?"}
    assert "Be brief." not in json.dumps(native_sent)


def test_a_native_response_made_by_another_server_continues_there_with_the_id_not_the_turns(
    api: Api, fake: FakeProviders
) -> None:
    first = api.create(model="gpt-4o-mini", input="My name is Ada.")
    api.create(model="local-native", input="Who?", previous_response_id=first.id)
    sent = fake.requests_for("local-native")[-1].body
    # Same base URL as gpt-4o-mini's server here: it made the id, so it gets the id.
    assert sent["previous_response_id"] == first.id and sent["input"] == "Who?"


def test_a_previous_response_id_the_router_does_not_hold_goes_only_to_responses_servers(
    api: Api, fake: FakeProviders
) -> None:
    elsewhere = openai.OpenAI(base_url=fake.openai_base, api_key="fake-key")
    made = elsewhere.responses.create(model="gpt-4o-mini", input="My name is Ada.")
    elsewhere.close()
    response = api.create(model="chat-first", input="Who am I?", previous_response_id=made.id)
    assert response.routing.model == "gpt-4o-mini"
    assert response.routing.rejected["gemini-2.5-flash-lite"] == "no native Responses API support"
    assert fake.requests_for("gpt-4o-mini")[-1].body["previous_response_id"] == made.id
    # Unknown to the server too: OpenAI's own 400 comes back.
    with pytest.raises(openai.BadRequestError) as caught:
        api.create(model="gpt-4o-mini", input="Again", previous_response_id="resp_nowhere")
    assert caught.value.code == "previous_response_not_found"


def test_store_false_keeps_nothing_at_the_router_nor_the_server(api: Api, fake: FakeProviders) -> None:
    first = api.create(model="gpt-4o-mini", input="Hi", store=False)
    with pytest.raises(openai.BadRequestError) as caught:
        api.create(model="native-first", input="Again", previous_response_id=first.id)
    assert caught.value.code == "previous_response_not_found"


def test_retrieve_delete_and_input_items_of_a_native_response_reach_the_server_that_made_it(
    api: Api, fake: FakeProviders
) -> None:
    first = api.create(model="local-native", input="My name is Ada.")
    # The client's own base_url is OpenAI's; the response lives at the policy's server for the model.
    retrieved = run(api, api.client.responses.retrieve, first.id)
    assert retrieved.id == first.id and retrieved.output_text == first.output_text
    items = run(api, api.client.responses.input_items.list, first.id)
    assert [item.content[0].text for item in items.data] == ["My name is Ada."]
    raw = run(api, api.client.responses.with_raw_response.retrieve, first.id)
    assert raw.http_request.url.path == f"{NATIVE_PATH}/{first.id}"
    run(api, api.client.responses.delete, first.id)
    with pytest.raises(openai.NotFoundError):
        run(api, api.client.responses.retrieve, first.id)


def test_parse_stream_manager_and_raw_responses_work_natively(api: Api, fake: FakeProviders) -> None:
    parsed = api.parse(model="gpt-4o-mini", input="The capital of France?", text_format=City)
    assert isinstance(parsed.output_parsed, City) and parsed.routing.model == "gpt-4o-mini"  # type: ignore[attr-defined]
    events, final = api.stream_final(model="gpt-4o-mini", input=QUESTION, text_format=City)
    assert isinstance(final.output_parsed, City) and final.routing.model == "gpt-4o-mini"  # type: ignore[attr-defined]
    assert events[-1].type == "response.completed"
    raw = run(api, api.client.responses.with_raw_response.create, model="gpt-4o-mini", input=QUESTION)
    assert raw.headers["x-router-model"] == "gpt-4o-mini"
    assert paths(fake, "gpt-4o-mini") == [NATIVE_PATH] * 3


def test_a_budgeted_native_call_is_charged_what_its_usage_cost(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    url = f"sqlite:///{tmp_path / 'budget.db'}"
    policy = native_policy(fake, budget={"limit_usd": 1.0, "window": "total"}, ledger=url)
    api = Api("sync", policy)
    try:
        plain = api.create(model="gpt-4o-mini", input=QUESTION)
        _, stream = api.events(model="gpt-4o-mini", input=QUESTION)
    finally:
        api.close()
    from router.ledger import open_ledger

    ledger = open_ledger(url)
    try:
        ((_scope, _window, _start, totals),) = ledger.report(now=2e9)
    finally:
        ledger.close()
    assert totals.spent_usd == pytest.approx(plain.routing.cost_usd + stream.routing.cost_usd)
    assert totals.reserved_usd == 0


# --------------------------------------------------------------------------- the decision, pure


def test_a_hosted_tool_makes_the_call_native_only_and_the_plan_needs_the_responses_capability() -> None:
    from policies.plan import describe_request
    from providers.base import NATIVE_RESPONSES
    from router._responses_native import prepare

    prepared = prepare(
        {"model": "auto", "input": QUESTION, "tools": [{"type": "web_search"}, TOOL]}, history=[], origin=None
    )
    native = prepared.native
    assert native.required and native.reason is not None and "hosted" in native.reason
    assert native.params["tools"] == [{"type": "web_search"}, TOOL]
    body = {k: v for k, v in prepared.call.kwargs.items() if k != "model"}
    assert body[NATIVE_RESPONSES] is native
    # Planned with what chat would cost: the input's size, and its function tool asks for tool support.
    assert describe_request("auto", "default", body, stream=False).needs == {"responses", "tools"}
    plain = prepare({"model": "auto", "input": QUESTION, "tools": [TOOL]}, history=[], origin=None)
    assert not plain.native.required and plain.refusal is None
    assert describe_request("auto", "default", dict(plain.call.kwargs), stream=False).needs == {"tools"}


def test_a_held_turn_goes_to_responses_servers_as_input_items_unless_one_of_them_made_it() -> None:
    from router._responses_native import prepare

    history = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "u"}}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
        {"role": "assistant", "content": "Seen."},
    ]
    params = {
        "model": "auto",
        "input": "Next?",
        "previous_response_id": "resp_1",
        "metadata": {"feature": "x"},
    }
    expanded = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Look"},
                {"type": "input_image", "image_url": "u", "detail": "auto"},
            ],
        },
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "done"},
        {"role": "assistant", "content": "Seen."},
        {"role": "user", "content": "Next?"},
    ]
    made_by_router = prepare(params, history=history, origin=None).native
    assert made_by_router.params == {"input": expanded}  # no id a server would not know; no feature key
    made_natively = prepare(params, history=history, origin="https://api.openai.com/v1").native
    assert made_natively.params == {"input": "Next?", "previous_response_id": "resp_1"}
    assert made_natively.previous_base == "https://api.openai.com/v1"
    assert list(made_natively.expanded_input or ()) == expanded
    assert not made_natively.required  # a translated model continues it from the router's copy
