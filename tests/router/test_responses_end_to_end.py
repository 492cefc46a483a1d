"""``client.responses`` through ``router.OpenAI`` and ``router.AsyncOpenAI`` against the fake providers.

Every test runs sync and async (the ``api`` fixture) and, where it names a model, once per wire
protocol: OpenAI (natively, to the fake's ``/responses``, over our httpx fast path), Gemini and
Anthropic (translated to their chat protocols, through litellm).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest
from openai.types.responses import ParsedResponse, Response
from router_fakes import (
    FakeProviders,
    ModelScript,
    count_openai_prompt_tokens,
    minimal_instance,
    reply_text,
    status,
    stream_cut,
)

from policies.schema import Policy
from router import AsyncOpenAI, OpenAI, StreamInterruptedError
from router._responses_api import RoutedResponse
from router.ledger import open_ledger
from router.testing import capture_events

from .fault_helpers import KEY_ENV, MODELS, build_policy, fallback_of

QUESTION = "What is the capital of France?"
# The models whose Responses calls are translated to their chat protocol (gpt-4o-mini's go natively
# to OpenAI's /responses: tests/router/test_responses_native.py).
TRANSLATED = ("gemini-2.5-flash-lite", "claude-haiku-4-5")
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
CITY = {
    "type": "json_schema",
    "name": "city",
    "schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    },
    "strict": True,
}


class City(pydantic.BaseModel):
    city: str
    population: int


class Api:
    """One client, sync or async, driven through blocking calls (the async one on one event loop)."""

    def __init__(self, kind: str, policy: Policy, **client: Any) -> None:
        self.kind = kind
        self._runner = asyncio.Runner() if kind == "async" else None
        self.client: OpenAI | AsyncOpenAI = (
            OpenAI(policy=policy, **client) if kind == "sync" else AsyncOpenAI(policy=policy, **client)
        )

    def _run(self, awaitable: Any) -> Any:
        assert self._runner is not None
        return self._runner.run(awaitable)

    def create(self, **params: Any) -> RoutedResponse:
        if isinstance(self.client, OpenAI):
            response = self.client.responses.create(**params)
        else:
            response = self._run(self.client.responses.create(**params))
        assert isinstance(response, RoutedResponse)
        return response

    def parse(self, **params: Any) -> ParsedResponse[Any]:
        if isinstance(self.client, OpenAI):
            return self.client.responses.parse(**params)
        return self._run(self.client.responses.parse(**params))  # type: ignore[no-any-return]

    def events(self, **params: Any) -> tuple[list[Any], Any]:
        """``create(stream=True)`` read to its end: the events and the stream (for ``.routing``)."""
        if isinstance(self.client, OpenAI):
            stream = self.client.responses.create(stream=True, **params)
            assert isinstance(stream, openai.Stream)
            return list(stream), stream
        client = self.client

        async def read() -> tuple[list[Any], Any]:
            stream = await client.responses.create(stream=True, **params)
            assert isinstance(stream, openai.AsyncStream)
            return [event async for event in stream], stream

        return self._run(read())  # type: ignore[no-any-return]

    def read_some(self, count: int, **params: Any) -> tuple[list[Any], BaseException | None]:
        """Read up to ``count`` events of ``create(stream=True)``, then close the stream; and the error
        that ended it early, if any."""
        events: list[Any] = []
        if isinstance(self.client, OpenAI):
            stream = self.client.responses.create(stream=True, **params)
            try:
                for event in stream:
                    events.append(event)
                    if len(events) == count:
                        break
            except openai.APIError as exc:
                return events, exc
            finally:
                stream.close()
            return events, None
        client = self.client

        async def read() -> tuple[list[Any], BaseException | None]:
            stream = await client.responses.create(stream=True, **params)
            try:
                async for event in stream:
                    events.append(event)
                    if len(events) == count:
                        break
            except openai.APIError as exc:
                return events, exc
            finally:
                await stream.close()
            return events, None

        return self._run(read())  # type: ignore[no-any-return]

    def close_then_read(self, count: int, **params: Any) -> tuple[list[Any], list[Any]]:
        """Read ``count`` events of ``create(stream=True)``, close the stream, then read on."""
        if isinstance(self.client, OpenAI):
            stream = self.client.responses.create(stream=True, **params)
            first = [next(stream) for _ in range(count)]
            stream.close()
            return first, list(stream)
        client = self.client

        async def read() -> tuple[list[Any], list[Any]]:
            stream = await client.responses.create(stream=True, **params)
            first = [await stream.__anext__() for _ in range(count)]
            await stream.close()
            return first, [event async for event in stream]

        return self._run(read())  # type: ignore[no-any-return]

    def stream_final(self, **params: Any) -> tuple[list[Any], ParsedResponse[Any]]:
        """``responses.stream(...)``: the events and ``get_final_response()``."""
        if isinstance(self.client, OpenAI):
            with self.client.responses.stream(**params) as stream:
                events = list(stream)
                return events, stream.get_final_response()
        client = self.client

        async def read() -> tuple[list[Any], ParsedResponse[Any]]:
            async with client.responses.stream(**params) as stream:
                events = [event async for event in stream]
                return events, await stream.get_final_response()

        return self._run(read())  # type: ignore[no-any-return]

    def close(self) -> None:
        if isinstance(self.client, OpenAI):
            self.client.close()
        else:
            self._run(self.client.close())
        if self._runner is not None:
            self._runner.close()


@pytest.fixture(params=["sync", "async"])
def make_api(
    request: pytest.FixtureRequest, fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    made: list[Api] = []

    def make(policy: Policy | None = None, **client: Any) -> Api:
        api = Api(request.param, policy or build_policy(fake), **client)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture
def api(make_api: Any) -> Api:
    return make_api()  # type: ignore[no-any-return]


def _cost(response: Response | Any) -> float:
    cost = response.routing.cost_usd
    assert cost is not None and cost > 0
    return float(cost)


@pytest.mark.parametrize("model", MODELS)
def test_text_input_is_answered_as_an_openai_response_with_usage_and_routing(api: Api, model: str) -> None:
    response = api.create(model=model, input=QUESTION, instructions="Answer briefly.")
    assert isinstance(response, Response)
    Response.model_validate(response.model_dump())  # the whole object is valid openai data
    assert response.model == model and response.status == "completed"
    assert response.output_text == reply_text(model, QUESTION)
    assert response.id.startswith("resp_") and response.instructions == "Answer briefly."
    assert response.usage is not None
    expected_prompt = count_openai_prompt_tokens(
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": QUESTION}]
    )
    if model == "gpt-4o-mini":  # the OpenAI fake counts as OpenAI does; the others count their own way
        assert response.usage.input_tokens == expected_prompt
    assert response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    record = response.routing
    assert record.usage is not None and record.usage.prompt_tokens == response.usage.input_tokens
    assert [(a.model, a.error) for a in record.attempts] == [(model, None)]
    assert response._request_id == record.request_id  # as openai's, from the id in the router's logs
    _cost(response)


@pytest.mark.parametrize("model", MODELS)
def test_message_input_reaches_the_provider_as_chat_messages(
    api: Api, fake: FakeProviders, model: str
) -> None:
    response = api.create(
        model=model,
        input=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "input_text", "text": QUESTION}]},
        ],
    )
    assert response.output_text == reply_text(model, QUESTION)
    (sent,) = fake.requests_for(model)
    assert QUESTION in json.dumps(sent.body) and "Be brief." in json.dumps(sent.body)


@pytest.mark.parametrize("model", MODELS)
def test_a_function_tool_is_called_and_its_output_answered(api: Api, model: str) -> None:
    first = api.create(model=model, input=QUESTION, tools=[TOOL])
    (call,) = first.output
    assert call.type == "function_call" and call.name == "lookup_order"
    assert json.loads(call.arguments) == minimal_instance(TOOL["parameters"])
    assert first.output_text == ""
    assert [t.name for t in first.tools] == ["lookup_order"]  # type: ignore[union-attr]
    second = api.create(
        model=model,
        tools=[TOOL],
        input=[
            {"role": "user", "content": QUESTION},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"status": "shipped"}'},
        ],
    )
    assert second.output_text == reply_text(model, QUESTION, after_tool_result=True)


def test_output_items_fed_back_as_input_continue_a_tool_loop(api: Api, fake: FakeProviders) -> None:
    model = "gemini-2.5-flash-lite"
    history: list[Any] = [{"role": "user", "content": QUESTION}]
    first = api.create(model=model, input=history, tools=[TOOL])
    (call,) = first.output
    assert call.type == "function_call"
    # openai's documented loop: the typed output objects go back as input, then the tool's output.
    history += [*first.output, {"type": "function_call_output", "call_id": call.call_id, "output": "shipped"}]
    second = api.create(model=model, input=history, tools=[TOOL])
    assert second.output_text == reply_text(model, QUESTION, after_tool_result=True)


@pytest.mark.parametrize("model", MODELS)
def test_a_json_schema_text_format_gives_json_and_parse_gives_the_pydantic_object(
    api: Api, model: str
) -> None:
    response = api.create(model=model, input=QUESTION, text={"format": CITY})
    assert set(json.loads(response.output_text)) == {"city", "population"}
    parsed = api.parse(model=model, input=QUESTION, text_format=City)
    assert isinstance(parsed.output_parsed, City)
    assert parsed.routing.model == model  # type: ignore[attr-defined]


def test_parse_with_a_pydantic_function_tool_gives_parsed_arguments(api: Api) -> None:
    class LookupOrder(pydantic.BaseModel):
        order_id: str

    parsed = api.parse(
        model="claude-haiku-4-5", input=QUESTION, tools=[openai.pydantic_function_tool(LookupOrder)]
    )
    (call,) = parsed.output
    assert call.type == "function_call" and isinstance(call.parsed_arguments, LookupOrder)


@pytest.mark.parametrize("model", MODELS)
def test_max_output_tokens_bounds_the_plan_and_a_cut_answer_is_incomplete(api: Api, model: str) -> None:
    essay = "Write a long essay about the history of France, please, with every king in it."
    response = api.create(model=model, input=essay, max_output_tokens=3)
    assert response.status == "incomplete" and response.max_output_tokens == 3
    assert (
        response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    )
    assert response.routing.candidates[0].output_tokens == 3  # the worst case the budget reserves
    events, _ = api.events(model=model, input=essay, max_output_tokens=3)
    assert events[-1].type == "response.incomplete"


@pytest.mark.parametrize("model", MODELS)
def test_a_streamed_response_yields_openais_typed_events_and_a_priced_final_response(
    api: Api, model: str
) -> None:
    events, stream = api.events(model=model, input=QUESTION)
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 2 and "".join(deltas) == reply_text(model, QUESTION)
    final = events[-1].response
    assert isinstance(final, RoutedResponse) and final.model == model
    assert final.output_text == reply_text(model, QUESTION)
    assert final.usage is not None and final.usage.output_tokens > 0
    assert final.routing is stream.routing or final.routing == stream.routing
    assert _cost(final) == _cost(stream)
    # Like openai's stream: an HTTP response with the request id (the router's) and who answered.
    assert stream.response.headers["x-request-id"] == stream.routing.request_id
    assert stream.response.headers["x-router-model"] == model


def test_a_streams_http_body_is_the_events_as_server_sent_events(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    with OpenAI(policy=build_policy(fake)) as client:
        stream = client.responses.create(model="gpt-4o-mini", input=QUESTION, stream=True)
        lines = [line for line in stream.response.iter_lines() if line]
    assert lines[0] == "event: response.created" and lines[-2] == "event: response.completed"
    final = json.loads(lines[-1].removeprefix("data: "))["response"]
    assert final["model"] == "gpt-4o-mini" and final["status"] == "completed"


@pytest.mark.parametrize("model", MODELS)
def test_a_streamed_tool_call_arrives_as_function_call_argument_deltas(api: Api, model: str) -> None:
    events, _ = api.events(model=model, input=QUESTION, tools=[TOOL], tool_choice="required")
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.item.type for e in added] == ["function_call"]
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    (done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(deltas) == json.loads(done.arguments) == minimal_instance(TOOL["parameters"])
    (call,) = events[-1].response.output
    assert call.type == "function_call" and call.name == "lookup_order" and call.call_id


@pytest.mark.parametrize("model", MODELS)
def test_responses_stream_manager_gives_the_final_response_with_parsed_output(api: Api, model: str) -> None:
    events, final = api.stream_final(model=model, input=QUESTION, text_format=City)
    assert any(e.type == "response.output_text.delta" for e in events)
    assert isinstance(final.output_parsed, City)
    assert final.model == model and final.routing.model == model  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", TRANSLATED)
def test_previous_response_id_continues_the_conversation_the_router_answered(
    api: Api, fake: FakeProviders, model: str
) -> None:
    first = api.create(model=model, input="My name is Ada.", instructions="Be brief.")
    api.events(model=model, input="What is my name?", previous_response_id=first.id)
    events, _ = api.events(model=model, input="And again?", previous_response_id=first.id)
    third = api.create(model=model, input="Thanks.", previous_response_id=events[-1].response.id)
    assert third.previous_response_id == events[-1].response.id
    sent = json.dumps(fake.requests_for(model)[-1].body)
    # The whole conversation went out: the first turn, its answer, the second turn, its answer.
    for text in ("My name is Ada.", reply_text(model, "My name is Ada."), "And again?", "Thanks."):
        assert text in sent
    assert "What is my name?" not in sent  # a branch: the third turn continues the second stream's sibling
    assert "Be brief." not in sent  # instructions are not carried over, as in OpenAI's API


@pytest.mark.parametrize("model", MODELS)
def test_a_tool_loop_continues_with_previous_response_id_and_only_the_tool_output(
    api: Api, model: str
) -> None:
    first = api.create(model=model, input=QUESTION, tools=[TOOL])
    (call,) = first.output
    second = api.create(
        model=model,
        tools=[TOOL],
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "shipped"}],
    )
    assert second.output_text == reply_text(model, QUESTION, after_tool_result=True)


def test_previous_response_id_the_router_does_not_hold_is_a_bad_request_saying_why(
    api: Api, fake: FakeProviders
) -> None:
    unknown = api.create(model="gemini-2.5-flash-lite", input="Hi", store=False)
    sent = len(fake.requests)
    for response_id in (unknown.id, "resp_from_elsewhere"):
        with pytest.raises(openai.BadRequestError) as caught:
            api.create(model="gemini-2.5-flash-lite", input="Again", previous_response_id=response_id)
        assert caught.value.code == "previous_response_not_found"
        assert "Send the earlier messages as input" in caught.value.message
        # Only a Responses API server might know it, and this request has none to go to.
        assert "native Responses API" in caught.value.message
    assert len(fake.requests) == sent


def test_turns_kept_in_a_sqlite_ledger_continue_in_another_client(
    make_api: Any, fake: FakeProviders, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = make_api(ledger=url).create(model="gemini-2.5-flash-lite", input="My name is Ada.")
    later = make_api(ledger=url).create(
        model="gemini-2.5-flash-lite", input="Who?", previous_response_id=first.id
    )
    assert later.output_text
    assert "My name is Ada." in json.dumps(fake.requests_for("gemini-2.5-flash-lite")[-1].body)


def test_turns_kept_in_a_redis_ledger_continue_in_another_client(
    make_api: Any, fake: FakeProviders, redis_url: str
) -> None:
    first = make_api(ledger=redis_url).create(model="claude-haiku-4-5", input="My name is Ada.")
    later = make_api(ledger=redis_url).create(
        model="claude-haiku-4-5", input="Who?", previous_response_id=first.id
    )
    assert later.output_text
    assert "My name is Ada." in json.dumps(fake.requests_for("claude-haiku-4-5")[-1].body)


@pytest.mark.parametrize("model", MODELS)
def test_a_500_falls_back_to_the_next_model_streamed_and_not(
    api: Api, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(status(500),)))
    response = api.create(model=f"first-{model}", input=QUESTION)
    second = fallback_of(model)
    assert response.model == second and response.output_text == reply_text(second, QUESTION)
    assert [(a.model, a.error) for a in response.routing.attempts] == [(model, "server"), (second, None)]
    fake.script(ModelScript(model, faults=(status(500),)))
    events, stream = api.events(model=f"first-{model}", input=QUESTION)
    assert events[0].response.model == second and events[-1].response.model == second
    assert [a.error for a in stream.routing.attempts] == ["server", None]


@pytest.mark.parametrize("model", MODELS)
def test_a_budgeted_feature_is_charged_the_responses_cost_and_refused_past_its_cap(
    make_api: Any, fake: FakeProviders, tmp_path: Path, model: str
) -> None:
    url = f"sqlite:///{tmp_path / 'budget.db'}"
    policy = build_policy(
        fake, features={"faq": {"budget": {"limit_usd": 1.0, "window": "total"}}}, ledger=url
    )
    api = make_api(policy)
    plain = api.create(model=model, input=QUESTION, metadata={"feature": "faq"})
    _, stream = api.events(model=model, input=QUESTION, metadata={"feature": "faq"})
    ledger = open_ledger(url)
    try:
        ((scope, window, _start, totals),) = ledger.report(now=api.client._router._wall_clock())
    finally:
        ledger.close()
    assert (scope, window) == ("faq", "total")
    assert totals.spent_usd == pytest.approx(_cost(plain) + _cost(stream))
    assert totals.reserved_usd == 0
    tight = build_policy(
        fake, features={"faq": {"budget": {"limit_usd": 1e-9, "window": "total"}}}, ledger=url
    )
    with pytest.raises(openai.RateLimitError) as caught:
        make_api(tight).create(model=model, input=QUESTION, metadata={"feature": "faq"})
    assert caught.value.code == "insufficient_quota"
    assert len(fake.requests) == 2  # refused before any provider call


@pytest.mark.parametrize("model", MODELS)
def test_events_are_emitted_for_the_routed_responses_call_streamed_and_not(
    api: Api, fake: FakeProviders, model: str
) -> None:
    fake.script(ModelScript(model, faults=(status(500),)))
    with capture_events() as events:
        response = api.create(model=f"first-{model}", input=QUESTION, metadata={"feature": "faq"})
        fake.script(ModelScript(model, faults=(status(500),)))
        _, stream = api.events(model=f"first-{model}", input=QUESTION, metadata={"feature": "faq"})
    attempts = [(e["model"], e["error_class"]) for e in events if e["event"] == "route.attempt"]
    second = fallback_of(model)
    assert attempts == [(model, "server"), (second, None)] * 2
    completed = [e for e in events if e["event"] == "route.completed"]
    assert [(e["feature"], e["model"], e["stream"], e["fallback"]) for e in completed] == [
        ("faq", second, False, True),
        ("faq", second, True, True),
    ]
    assert [e["request_id"] for e in completed] == [response.routing.request_id, stream.routing.request_id]
    assert completed[1]["cost_usd"] == stream.routing.cost_usd


def test_a_stream_cut_after_content_raises_stream_interrupted_and_keeps_no_turn(
    api: Api, fake: FakeProviders
) -> None:
    fake.script(ModelScript("gemini-2.5-flash-lite", faults=(stream_cut(after_chunks=3),)))
    events, error = api.read_some(1000, model="first-gemini-2.5-flash-lite", input=QUESTION)
    assert isinstance(error, StreamInterruptedError)
    assert events[0].type == "response.created" and events[-1].type == "response.output_text.delta"
    assert not any(e.type == "response.completed" for e in events)
    with pytest.raises(openai.BadRequestError, match="not found"):
        api.create(model="gpt-4o-mini", input="Again", previous_response_id=events[0].response.id)


def test_closing_a_stream_early_settles_its_budget_at_what_arrived(
    make_api: Any, fake: FakeProviders, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'budget.db'}"
    policy = build_policy(
        fake, features={"faq": {"budget": {"limit_usd": 1.0, "window": "total"}}}, ledger=url
    )
    api = make_api(policy)
    events, error = api.read_some(5, model="claude-haiku-4-5", input=QUESTION, metadata={"feature": "faq"})
    assert error is None and events[-1].type == "response.output_text.delta"
    ledger = open_ledger(url)
    try:
        ((_scope, _window, _start, totals),) = ledger.report(now=api.client._router._wall_clock())
    finally:
        ledger.close()
    assert totals.reserved_usd == 0 and totals.spent_usd > 0


def test_a_stream_closed_early_ends_without_claiming_completion_and_keeps_no_turn(api: Api) -> None:
    first, rest = api.close_then_read(5, model="claude-haiku-4-5", input=QUESTION)
    assert first[-1].type == "response.output_text.delta" and rest == []
    with pytest.raises(openai.BadRequestError, match="not found"):
        api.create(model="claude-haiku-4-5", input="Again", previous_response_id=first[0].response.id)


def test_hosted_tools_for_a_chat_protocol_model_are_refused_before_any_provider_is_called(
    api: Api, fake: FakeProviders
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        api.create(model="gemini-2.5-flash-lite", input=QUESTION, tools=[{"type": "web_search"}])
    assert caught.value.param == "tools" and "function tools" in caught.value.message
    assert "no native Responses API support" in caught.value.message
    assert fake.requests == []


def test_the_resource_is_openais_and_its_raw_response_wrappers_route(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    with OpenAI(policy=build_policy(fake)) as client:
        assert isinstance(client.responses, openai.resources.responses.Responses)
        raw = client.responses.with_raw_response.create(model="claude-haiku-4-5", input=QUESTION)
        assert raw.headers["x-router-model"] == "claude-haiku-4-5"
        response = raw.parse()
        assert (
            isinstance(response, RoutedResponse)
            and raw.headers["x-request-id"] == response.routing.request_id
        )
        parsed = client.responses.with_raw_response.parse(
            model="gpt-4o-mini", input=QUESTION, text_format=City
        )
        assert isinstance(parsed.parse().output_parsed, City)
        # openai-agents reads streams this way: with_streaming_response.create(stream=True).parse()
        with client.responses.with_streaming_response.create(
            model="gemini-2.5-flash-lite", input=QUESTION, stream=True
        ) as streamed:
            assert streamed.headers["x-router-model"] == "gemini-2.5-flash-lite"
            events = list(streamed.parse())
        assert events[-1].type == "response.completed"
        assert events[-1].response.output_text == reply_text("gemini-2.5-flash-lite", QUESTION)


async def test_the_async_resource_routes_behind_openais_streaming_response_wrapper(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "fake-key")
    async with AsyncOpenAI(policy=build_policy(fake)) as client:
        assert isinstance(client.responses, openai.resources.responses.AsyncResponses)
        async with client.responses.with_streaming_response.create(
            model="claude-haiku-4-5", input=QUESTION, stream=True
        ) as streamed:
            stream = await streamed.parse()
            events = [event async for event in stream]
        assert events[-1].response.model == "claude-haiku-4-5"
        raw = await client.responses.with_raw_response.create(model="gpt-4o-mini", input=QUESTION)
        assert raw.parse().output_text == reply_text(
            "gpt-4o-mini", QUESTION
        )  # legacy: sync parse(), as openai


def test_a_copy_of_the_client_continues_the_conversations_of_the_original(api: Api) -> None:
    first = api.create(model="gpt-4o-mini", input="My name is Ada.")
    copy = api.client.with_options(timeout=30.0)
    params = {"model": "gpt-4o-mini", "input": "Who?", "previous_response_id": first.id}
    later = (
        copy.responses.create(**params)
        if isinstance(copy, OpenAI)
        else api._run(copy.responses.create(**params))
    )
    assert later.previous_response_id == first.id
