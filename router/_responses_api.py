"""``client.responses``: the Responses API, routed by the policy like chat completions.

The resources subclass openai's, so everything the router does not route (``cancel``,
``input_tokens``, ...) is openai's, sent to OpenAI's API (``retrieve``, ``delete`` and ``input_items``
of a response made natively go to the server that made it); ``create``,
``parse`` and ``stream`` are the router's, also behind openai's ``with_raw_response`` and
``with_streaming_response``. Imported on first use of ``client.responses``.

Each call goes through the client's routed chat pipeline (plan, budgets, fallbacks, events) as a
chat call that also carries the call as the Responses API takes it (``router._responses_native``):
a model whose provider speaks the Responses API gets the latter and its own ``Response`` (or stream
events) comes back as is; any other model gets the chat translation (``router._responses``), whose
answer is turned back into openai's ``Response`` (with ``.routing``) or Responses stream events.
``stream()`` returns openai's stream manager machinery, so ``get_final_response()`` and the typed
events work as in openai. A turn the router answered is kept (``router._turns``) for ``previous_response_id``.

Decide once, drive twice (as ``router._decide`` and ``router._client``): ``_Routed._decide`` makes
every decision of a call and hands out its I/O as actions (``_Read``/``_Write`` a turn, ``_Route``
the chat call); ``Responses`` and ``AsyncResponses`` only perform them. Their event streams feed one
source without I/O (``_Translated`` or ``_Native``) and perform the turn writes it returns.

openai's private parts used here (``construct_type`` for typed events, ``parse_response`` and
``type_to_text_format_param`` for ``parse``, the pydantic tool classes of ``openai.lib._tools``)
are pinned by tests/router/test_responses_end_to_end.py (typed events, ``output_parsed``,
``parsed_arguments``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Mapping
from functools import cached_property, partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, NamedTuple, TypeVar, cast, overload

import httpx
import openai
from openai._models import construct_type
from openai.lib._parsing._responses import parse_response, type_to_text_format_param
from openai.lib._tools import PydanticFunctionTool, ResponsesPydanticFunctionTool
from openai.lib.streaming.responses import (
    AsyncResponseStream,
    AsyncResponseStreamManager,
    ResponseStream,
    ResponseStreamManager,
)
from openai.resources.responses import AsyncResponses as _AsyncResponses
from openai.resources.responses import Responses as _Responses
from openai.resources.responses.input_items import AsyncInputItems, InputItems
from openai.types.responses import ParsedResponse, Response, ResponseStreamEvent
from pydantic import PrivateAttr

from providers._responses_wire import NATIVE_EVENT, NATIVE_RESPONSE, azure_v1_base
from router._arguments import accepted, check_arguments
from router._exceptions import NoCandidateError
from router._raw import Mode, raw_mode, wrap
from router._response import build
from router._responses import (
    JSON,
    ChatCall,
    EventTranslator,
    ResponsesRequestError,
    assistant_message,
    new_id,
    output_items,
    response_body,
    responses_usage,
    token_logprobs,
)
from router._responses_native import Prepared, none_native, origin_key, prepare
from router._routing import RoutingRecord, Usage
from router._streaming import AsyncRoutedStream, RoutedStream
from router._turns import TurnStore

if TYPE_CHECKING:
    from providers.base import Deployment
    from router._client import AsyncRouter, SyncRouter
    from router._openai import AsyncOpenAI, OpenAI
    from router._response import RoutedChatCompletion

_ROUTER_URL: Final = "router://responses"
_T = TypeVar("_T")
# What openai's methods accept (the installed version's): anything else is its TypeError (router._arguments).
_CREATE: Final = accepted(_Responses.create)
_PARSE: Final = accepted(_Responses.parse)
_STREAM: Final = accepted(_Responses.stream)
_V = TypeVar("_V")


class RoutedResponse(Response):
    """A ``Response`` with ``.routing``: which model answered, why, what it cost."""

    _routing: RoutingRecord | None = PrivateAttr(default=None)

    @property
    def routing(self) -> RoutingRecord:
        assert self._routing is not None
        return self._routing


# --------------------------------------------------------------------------- decisions (no I/O)


def _previous_id(params: Mapping[str, Any]) -> str | None:
    value = params.get("previous_response_id")
    return value if isinstance(value, str) and value else None


def _not_held(response_id: str, store: TurnStore) -> ResponsesRequestError:
    return ResponsesRequestError(
        f"Previous response with id {response_id!r} not found: the router continues only the turns it "
        f"answered and kept (in {store.describe()}), and this one is unknown, expired, was created with "
        "store=False, or came from another client. Send the earlier messages as input instead, or name a "
        "shared ledger (ledger='sqlite:///…' or 'redis://…') so every client keeps its turns there.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


def _usage(record: RoutingRecord) -> JSON | None:
    usage: Usage | None = record.usage
    if usage is None:
        return None
    return responses_usage(
        usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.reasoning_tokens
    )


def _routed(data: JSON, routing: RoutingRecord) -> RoutedResponse:
    response = build(RoutedResponse, data)
    response._routing = routing
    # As openai's client sets it from the x-request-id header: the id in the router's logs.
    response._request_id = routing.request_id
    return response


def _answer(
    call: ChatCall, completion: RoutedChatCompletion, wall_clock: float
) -> tuple[RoutedResponse, list[JSON]]:
    """The Response for a routed chat completion, and the turn to keep."""
    choice = completion.choices[0] if completion.choices else None
    output = (
        output_items(choice.message, logprobs=token_logprobs(choice.logprobs)) if choice is not None else []
    )
    body = response_body(
        response_id=new_id("resp"),
        created_at=wall_clock,
        model=completion.model,
        echo=call.echo,
        output=output,
        finish_reason=choice.finish_reason if choice is not None else None,
        usage=_usage(completion.routing),
    )
    return _routed(body, completion.routing), [*call.conversation, assistant_message(output)]


def _native_answer(
    call: ChatCall, completion: RoutedChatCompletion
) -> tuple[RoutedResponse, list[JSON]] | None:
    """The provider's own Response when a Responses server answered (None: a chat answer), and the
    turn to keep. Its ``model`` is the policy's name, as for every routed answer."""
    raw = (completion.model_extra or {}).get(NATIVE_RESPONSE)
    if not isinstance(raw, dict):
        return None
    response = _routed({**raw, "model": completion.model}, completion.routing)
    return response, [*call.conversation, assistant_message(_message_items(raw.get("output")))]


def _message_items(output: Any) -> list[JSON]:
    """The output items a chat conversation can carry on (hosted tool and reasoning items cannot)."""
    return [
        item
        for item in output or ()
        if isinstance(item, dict) and item.get("type") in ("message", "function_call")
    ]


def _origin(found: list[JSON] | None) -> str | None:
    """The API base a native response was made at, from its turn-store record."""
    if not found or not isinstance(found[0], dict):
        return None
    base = found[0].get("api_base")
    return base if isinstance(base, str) else None


def _native_event(event: JSON, model: str, routing: Callable[[], RoutingRecord]) -> ResponseStreamEvent:
    if isinstance(event.get("response"), dict):
        event = {**event, "response": {**event["response"], "model": model}}
    return _event(event, routing)


_TERMINAL: Final = ("response.completed", "response.incomplete")


def _event(data: JSON, routing: Callable[[], RoutingRecord]) -> ResponseStreamEvent:
    """A typed event, built as openai's own stream builds them; the final response carries ``.routing``."""
    event = cast(ResponseStreamEvent, construct_type(type_=ResponseStreamEvent, value=data))
    if data["type"] in ("response.completed", "response.incomplete"):
        event.response = _routed(data["response"], routing())  # type: ignore[union-attr]
    return event


def _text_with_format(params: Mapping[str, Any], text_format: Any) -> Any:
    text = params.get("text")
    if isinstance(text_format, openai.Omit | openai.NotGiven) or text_format is None:
        return text
    text = dict(text or {})
    if "format" in text:
        raise TypeError("Cannot mix and match text.format with text_format")
    text["format"] = type_to_text_format_param(text_format)
    return text


def _parse_tools(tools: Any) -> list[Any] | None:
    """Tools as ``parse_response`` reads them: pydantic function tools in the Responses shape."""
    if tools is None or isinstance(tools, openai.Omit | openai.NotGiven):
        return None
    converted: list[Any] = []
    for tool in tools:
        function = tool.get("function") if tool.get("type") == "function" else None
        if isinstance(function, PydanticFunctionTool):
            converted.append(
                ResponsesPydanticFunctionTool(
                    {
                        "type": "function",
                        "name": function["name"],
                        "description": function.get("description"),
                        "parameters": function["parameters"],
                        "strict": function.get("strict") or False,
                    },
                    function.model,
                )
            )
        else:
            converted.append(tool)
    return converted


def _parsed(response: object, text_format: Any, tools: list[Any] | None) -> ParsedResponse[Any]:
    assert isinstance(response, RoutedResponse)
    parsed: ParsedResponse[Any] = parse_response(
        text_format=text_format if text_format is not None else openai.omit,
        input_tools=tools if tools is not None else openai.omit,
        response=response,
    )
    # Not a pydantic field: it must not appear in model_dump().
    object.__setattr__(parsed, "routing", response.routing)
    parsed._request_id = response._request_id
    return parsed


def _unsupported_resume() -> ResponsesRequestError:
    return ResponsesRequestError(
        "Resuming a stream by response_id needs OpenAI's servers; the router streams new responses only.",
        param="response_id",
    )


def _request() -> httpx.Request:
    return httpx.Request("POST", _ROUTER_URL)


def _parse_call(
    params: dict[str, Any], text_format: Any, tools: Any
) -> tuple[Mode | None, dict[str, Any], list[Any] | None]:
    """``parse``'s call: its raw-response mode, the call to route (never a stream), its parse tools."""
    mode = raw_mode(params)
    params.pop("stream", None)
    parse_tools = _parse_tools(tools)
    return mode, {**params, "text": _text_with_format(params, text_format), "tools": parse_tools}, parse_tools


def _stream_call(
    create: Callable[..., Any],
    params: Mapping[str, Any],
    text_format: Any,
    tools: Any,
    response_id: Any,
    starting_after: Any,
) -> tuple[Callable[[], Any], Any]:
    """``stream``'s request (``create`` with ``stream=True``, made when the manager is entered) and
    the input tools its manager parses with."""
    if isinstance(response_id, str) or isinstance(starting_after, int):
        raise _unsupported_resume()
    parse_tools = _parse_tools(tools)
    request = partial(
        create, **params, text=_text_with_format(params, text_format), tools=parse_tools, stream=True
    )
    return request, parse_tools if parse_tools is not None else openai.omit


# --------------------------------------------------------------------------- actions
# What the decisions below ask the sync and async resources to do: the turn store's reads and
# writes and the routed chat call are their only I/O.

_Writes = list[tuple[str, list[JSON]]]


class _Read(NamedTuple):
    """Read a turn-store record (``turns.get``); reports it, or None when it is not held."""

    key: str


class _Write(NamedTuple):
    """Keep a turn-store record (``turns.put``)."""

    key: str
    value: list[JSON]


class _Route(NamedTuple):
    """Make the routed chat call (the client's ``_create``); reports its completion or stream, or
    the NoCandidateError it raised (thrown back into the decisions)."""

    kwargs: Mapping[str, Any]


class _Stream(NamedTuple):
    """A streamed call's answer: the routed chat stream and what turns its chunks into events."""

    chat: Any
    source: _Translated | _Native


class _Done(NamedTuple):
    """The decisions' end: the answer to return (a stream to wrap in the driver's event stream)."""

    answer: RoutedResponse | _Stream


_Flow = Generator["_Read | _Write | _Route", Any, "RoutedResponse | _Stream"]


def _step(flow: _Flow, outcome: Any) -> _Read | _Write | _Route | _Done:
    """The next action, given the last one's outcome."""
    try:
        return flow.throw(outcome) if isinstance(outcome, NoCandidateError) else flow.send(outcome)
    except StopIteration as done:
        return _Done(done.value)


class _Translated:
    """A chat stream's chunks as Responses events (``EventTranslator``). No I/O: the sync and async
    event streams feed it and perform the writes ``finish`` returns."""

    def __init__(
        self,
        translator: EventTranslator,
        routing: Callable[[], RoutingRecord],
        keeps: Callable[[str, list[JSON]], _Writes],
    ) -> None:
        self._translator = translator
        self._routing = routing
        self._keeps = keeps

    def start(self) -> list[ResponseStreamEvent]:
        return [_event(data, self._routing) for data in self._translator.start()]

    def feed(self, chunk: Any) -> list[ResponseStreamEvent]:
        return [_event(data, self._routing) for data in self._translator.feed(chunk)]

    def finish(self) -> tuple[_Writes, list[ResponseStreamEvent]]:
        """At the stream's end: the turn to keep, then the closing events (the record is complete)."""
        translator = self._translator
        closing = translator.finish(_usage(self._routing()))
        writes = self._keeps(translator.response_id, translator.output)
        return writes, [_event(data, self._routing) for data in closing]


class _Native:
    """The provider's own events; the terminal one waits for the end of the stream, when the
    routing record (usage, cost) is complete."""

    def __init__(
        self, model: str, routing: Callable[[], RoutingRecord], keeps: Callable[[str, list[JSON]], _Writes]
    ) -> None:
        self._model = model
        self._routing = routing
        self._keeps = keeps
        self._terminal: JSON | None = None

    def start(self) -> tuple[ResponseStreamEvent, ...]:
        return ()

    def feed(self, chunk: Any) -> tuple[ResponseStreamEvent, ...]:
        event = (chunk.model_extra or {}).get(NATIVE_EVENT)
        if not isinstance(event, dict):
            return ()
        if event.get("type") in _TERMINAL:
            self._terminal = event
            return ()
        return (_native_event(event, self._model, self._routing),)

    def finish(self) -> tuple[_Writes, tuple[ResponseStreamEvent, ...]]:
        terminal = self._terminal
        if terminal is None:
            return [], ()
        final = terminal.get("response") or {}
        writes = self._keeps(str(final.get("id") or ""), _message_items(final.get("output")))
        return writes, (_native_event(terminal, self._model, self._routing),)


class _Direct(NamedTuple):
    """An openai client for the server that made a native response, and the headers each call to it
    adds (Azure: ``Authorization`` left out, the key goes in ``api-key``)."""

    client: Any
    headers: Mapping[str, Any]

    def params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A call's arguments with these headers (the caller's ``extra_headers`` win)."""
        if not self.headers:
            return dict(params)
        return {**params, "extra_headers": {**self.headers, **(params.get("extra_headers") or {})}}


class _Routed:
    """What the sync and async resources share: every decision of a routed call (``_decide``), made
    once; the resources below only perform its actions."""

    _asynchronous: ClassVar[bool]
    _client: Any
    _router: SyncRouter | AsyncRouter
    _turns: TurnStore

    def _decide(self, params: Mapping[str, Any]) -> _Flow:
        """One call's decisions, in the order they happen: each ``yield`` hands the driver an action
        and receives its outcome; the flow returns the answer (a Response, or a stream to wrap)."""
        previous = _previous_id(params)
        history: list[JSON] | None = (yield _Read(previous)) if previous else []
        found: list[JSON] | None = (
            (yield _Read(origin_key(previous))) if previous and history is not None else None
        )
        prepared = self._prepared(params, previous, history, found)
        call = prepared.call
        stream = bool(params.get("stream"))
        try:
            result = yield _Route({**call.kwargs, "stream": True} if stream else call.kwargs)
        except NoCandidateError as exc:
            replacement = none_native(exc, prepared)
            if replacement is None:
                raise
            raise replacement from exc
        wall_clock = self._router._wall_clock
        if not stream:
            completion = cast("RoutedChatCompletion", result)
            native = _native_answer(call, completion)
            response, turn = native or _answer(call, completion, wall_clock())
            made_at = completion.routing if native is not None else None
            for key, value in self._keeps(prepared, response.id, turn, made_at):
                yield _Write(key, value)
            return response
        chat = result
        assert isinstance(chat, RoutedStream | AsyncRoutedStream)
        answered = chat.routing.model
        native_model = answered if self._native(answered) else None

        def keeps(response_id: str, output: list[JSON]) -> _Writes:
            turn = [*call.conversation, assistant_message(output)]
            return self._keeps(prepared, response_id, turn, chat.routing if native_model else None)

        routing = partial(getattr, chat, "routing")
        if native_model is not None:
            return _Stream(chat, _Native(native_model, routing, keeps))
        translator = EventTranslator(
            response_id=new_id("resp"),
            created_at=wall_clock(),
            model=answered or str(params["model"]),
            echo=call.echo,
        )
        return _Stream(chat, _Translated(translator, routing, keeps))

    def _prepared(
        self,
        params: Mapping[str, Any],
        previous: str | None,
        history: list[JSON] | None,
        found: list[JSON] | None,
    ) -> Prepared:
        not_held = _not_held(previous, self._turns) if previous and history is None else None
        made_at = self._made_at(found)
        sharing = self._router._engine.sharing(made_at) if made_at is not None else None
        return prepare(params, history, _origin(found), not_held, sharing)

    def _direct(self, found: list[JSON] | None) -> _Direct | None:
        """An openai client for the deployment that created a native response (its base URL, key and
        headers; the client's own HTTP connections), or None when the router made none."""
        deployment = self._made_at(found)
        if deployment is None or not deployment.api_base:
            return None
        owner = self._client
        kind = openai.AsyncOpenAI if self._asynchronous else openai.OpenAI
        azure = deployment.adapter == "azure"
        headers: dict[str, Any] = dict(deployment.headers)
        if azure and deployment.api_key:
            # As the chat path sends it; Azure refuses a request with both this and Authorization.
            headers["api-key"] = deployment.api_key
        client = kind(
            api_key=deployment.api_key or "unused",
            base_url=azure_v1_base(deployment.api_base) if azure else deployment.api_base,
            default_headers=headers,
            http_client=owner._client,
            max_retries=owner.max_retries,
            timeout=owner.timeout,
        )
        return _Direct(client, {"Authorization": openai.omit} if azure else {})

    def _made_at(self, found: list[JSON] | None) -> Deployment | None:
        """The deployment an origin record names: the pool member that answered (``deployment``),
        or, in records kept before they named one, the model's own deployment."""
        entry = found[0] if found and isinstance(found[0], dict) else {}
        model, member = entry.get("model"), entry.get("deployment")
        if not isinstance(model, str):
            return None
        return self._router._engine.deployment_of(model, member if isinstance(member, str) else None)

    def _native(self, model: str | None) -> bool:
        deployment = self._router._engine.deployments.get(model or "")
        return deployment is not None and deployment.responses

    def _keeps(
        self, prepared: Prepared, response_id: str, turn: list[JSON], made_at: RoutingRecord | None
    ) -> _Writes:
        """The turn-store writes for an answer: the turn (when the router could translate the whole
        conversation), and for a native answer (``made_at``: its routing) the deployment that made it,
        a pooled model's member included (``retrieve`` and a later ``previous_response_id`` go there)."""
        if not prepared.call.store:
            return []
        keeps: _Writes = []
        if prepared.refusal is None:
            keeps.append((response_id, turn))
        model = made_at.model if made_at is not None else None
        deployment = (
            self._router._engine.deployment_of(model, made_at.deployment)
            if made_at is not None and model is not None
            else None
        )
        if deployment is not None:
            origin = {"api_base": deployment.api_base, "model": model, "deployment": deployment.pool_name}
            keeps.append((origin_key(response_id), [origin]))
        return keeps

    def _raw(self, mode: Mode | None, value: _V) -> _V:
        """The value, or (through ``with_raw_response`` / ``with_streaming_response``) its raw response."""
        if mode is None:
            return value
        return cast(_V, wrap(mode, value, self._client, asynchronous=self._asynchronous))


# --------------------------------------------------------------------------- sync


def _sse(event: ResponseStreamEvent) -> bytes:
    return f"event: {event.type}\ndata: {event.model_dump_json(exclude_unset=True)}\n\n".encode()


def _http_response(
    routing: RoutingRecord, body: httpx.SyncByteStream | httpx.AsyncByteStream
) -> httpx.Response:
    """The stream's ``.response``, as openai's: headers, and the events as server-sent events."""
    headers = {
        "content-type": "text/event-stream",
        "x-request-id": routing.request_id,
        "x-router-model": routing.model or "",
    }
    return httpx.Response(200, headers=headers, stream=body, request=_request())


class _EventStream:
    """What the sync and async event streams share: openai's stream attributes, made from a routed
    chat stream, and ``.routing``."""

    response: httpx.Response
    _cast_to: Any
    _options: Any
    _chat: Any
    _source: _Translated | _Native
    _closed: bool

    def _begin(
        self, chat: Any, source: _Translated | _Native, body: httpx.SyncByteStream | httpx.AsyncByteStream
    ) -> None:
        # Not openai's __init__: there is no SSE body to decode, the events are made here.
        self.response = _http_response(chat.routing, body)
        self._cast_to = cast(Any, ResponseStreamEvent)
        self._options = None
        self._chat = chat
        self._source = source
        self._closed = False

    @property
    def routing(self) -> RoutingRecord:
        """The decision record; complete (usage, cost) once the stream is exhausted."""
        routing: RoutingRecord = self._chat.routing
        return routing


class _EventBytes(httpx.SyncByteStream):
    """The body of the event stream's ``.response``: reading it reads the stream; closing it closes
    the routed chat stream (as openai's ``ResponseStream.close()`` does)."""

    def __init__(self, stream: ResponseEventStream) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        for event in self._stream:
            yield _sse(event)

    def close(self) -> None:
        self._stream._closed = True
        self._stream._chat.close()


class ResponseEventStream(_EventStream, openai.Stream[ResponseStreamEvent]):
    """openai's ``Stream`` of Responses events, made from a routed chat stream."""

    _chat: RoutedStream

    def __init__(
        self, chat: RoutedStream, source: _Translated | _Native, keep: Callable[[str, list[JSON]], None]
    ) -> None:
        self._begin(chat, source, _EventBytes(self))
        self._keep = keep
        self._iterator = self._events()

    def _events(self) -> Iterator[ResponseStreamEvent]:
        source = self._source
        yield from source.start()
        for chunk in self._chat:
            if self._closed:
                return
            yield from source.feed(chunk)
        if self._closed:  # closed early: it ends, never "completed" with a cut answer
            return
        writes, closing = source.finish()
        for key, value in writes:
            self._keep(key, value)
        yield from closing


class RoutedResponseStream(ResponseStream[_T]):
    """openai's ``ResponseStream`` whose final response carries ``.routing``."""

    @property
    def routing(self) -> RoutingRecord:
        return cast(ResponseEventStream, self._raw_stream).routing

    def get_final_response(self) -> ParsedResponse[_T]:
        response = super().get_final_response()
        object.__setattr__(response, "routing", self.routing)
        return response


class RoutedResponseStreamManager(ResponseStreamManager[_T]):
    """openai's stream manager over a routed request."""

    def __init__(
        self, api_request: Callable[[], ResponseEventStream], *, text_format: Any, input_tools: Any
    ) -> None:
        super().__init__(api_request, text_format=text_format, input_tools=input_tools, starting_after=None)
        self._request = api_request
        self._text_format = text_format
        self._input_tools = input_tools
        self._stream: RoutedResponseStream[_T] | None = None

    def __enter__(self) -> RoutedResponseStream[_T]:
        self._stream = RoutedResponseStream(
            raw_stream=self._request(),
            text_format=self._text_format,
            input_tools=self._input_tools,
            starting_after=None,
        )
        return self._stream

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stream is not None:
            self._stream.close()


class _InputItems(InputItems):
    """``responses.input_items``: of a native response, from the server that made it."""

    def __init__(self, responses: Responses) -> None:
        super().__init__(responses._client)
        self._responses = responses

    def list(self, response_id: str, **params: Any) -> Any:  # type: ignore[override]
        direct = self._responses._stored(response_id)
        if direct is None:
            return super().list(response_id, **params)
        return direct.client.responses.input_items.list(response_id, **direct.params(params))


class _AsyncInputItems(AsyncInputItems):
    def __init__(self, responses: AsyncResponses) -> None:
        super().__init__(responses._client)
        self._responses = responses

    def list(self, response_id: str, **params: Any) -> Any:  # type: ignore[override]
        # openai's returns an awaitable, async-iterable paginator at once; so does this.
        return _AsyncPage(self, response_id, params)


class _AsyncPage:
    """``await`` it for the first page or ``async for`` over every item, as openai's paginator."""

    def __init__(self, items: _AsyncInputItems, response_id: str, params: Mapping[str, Any]) -> None:
        self._items = items
        self._response_id = response_id
        self._params = params

    async def _paginator(self) -> Any:
        direct = await self._items._responses._stored(self._response_id)
        if direct is None:
            return AsyncInputItems.list(self._items, self._response_id, **self._params)
        return direct.client.responses.input_items.list(self._response_id, **direct.params(self._params))

    def __await__(self) -> Any:
        async def first() -> Any:
            return await (await self._paginator())

        return first().__await__()

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for item in await self._paginator():
            yield item


class Responses(_Routed, _Responses):
    """openai's ``client.responses``; ``create``, ``parse`` and ``stream`` are routed by the policy."""

    _asynchronous = False

    def __init__(self, client: OpenAI) -> None:
        super().__init__(client)
        self._router: SyncRouter = client._router
        self._turns: TurnStore = client._router._turns

    # Stored responses: one the router had made natively is at the server that made it; any other
    # id goes to OpenAI's API with the client's key, as with openai's client.

    def _stored(self, response_id: str) -> _Direct | None:
        return self._direct(self._turns.get(origin_key(response_id)))

    def retrieve(self, response_id: str, **params: Any) -> Any:  # type: ignore[override]
        direct = self._stored(response_id)
        if direct is None:
            return super().retrieve(response_id, **params)
        return direct.client.responses.retrieve(response_id, **direct.params(params))

    def delete(self, response_id: str, **params: Any) -> Any:  # type: ignore[override]
        direct = self._stored(response_id)
        if direct is None:
            return super().delete(response_id, **params)
        return direct.client.responses.delete(response_id, **direct.params(params))

    @cached_property
    def input_items(self) -> InputItems:
        return _InputItems(self)

    @overload  # type: ignore[override]
    def create(self, *, stream: Literal[True], **params: Any) -> ResponseEventStream: ...

    @overload
    def create(
        self, *, stream: Literal[False] | openai.NotGiven | openai.Omit | None = ..., **params: Any
    ) -> RoutedResponse: ...

    def create(self, **params: Any) -> RoutedResponse | ResponseEventStream:
        """Route a Responses API call; same arguments and return types as openai's ``create``."""
        check_arguments(params, _CREATE, "Responses.create")
        mode = raw_mode(params)
        return self._raw(mode, self._route(params))

    def _route(self, params: Mapping[str, Any]) -> RoutedResponse | ResponseEventStream:
        """Perform what ``_decide`` says: the turn store's reads and writes, the routed call."""
        flow = self._decide(params)
        outcome: Any = None
        while not isinstance(action := _step(flow, outcome), _Done):
            if isinstance(action, _Read):
                outcome = self._turns.get(action.key)
            elif isinstance(action, _Write):
                outcome = None
                self._turns.put(action.key, action.value)
            else:
                try:
                    outcome = self._router._create(action.kwargs)
                except NoCandidateError as exc:  # the decisions say what it comes to
                    outcome = exc
        answer = action.answer
        if isinstance(answer, _Stream):
            return ResponseEventStream(answer.chat, answer.source, self._turns.put)
        return answer

    def parse(  # type: ignore[override]
        self, *, text_format: Any = openai.omit, tools: Any = openai.omit, **params: Any
    ) -> ParsedResponse[Any]:
        """Like openai's ``parse``: a pydantic ``text_format`` (or pydantic function tools) in,
        ``.output_parsed`` out."""
        check_arguments(params, _PARSE, "Responses.parse")
        mode, call, parse_tools = _parse_call(params, text_format, tools)
        return self._raw(mode, _parsed(self._route(call), text_format, parse_tools))

    def stream(  # type: ignore[override]
        self,
        *,
        text_format: Any = openai.omit,
        tools: Any = openai.omit,
        response_id: Any = openai.omit,
        starting_after: Any = openai.omit,
        **params: Any,
    ) -> RoutedResponseStreamManager[Any]:
        """Like openai's ``stream``: a context manager over typed events, with ``get_final_response()``."""
        check_arguments(params, _STREAM, "Responses.stream")
        request, input_tools = _stream_call(
            self.create, params, text_format, tools, response_id, starting_after
        )
        return RoutedResponseStreamManager(request, text_format=text_format, input_tools=input_tools)


# --------------------------------------------------------------------------- async


class _AsyncEventBytes(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncResponseEventStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for event in self._stream:
            yield _sse(event)

    async def aclose(self) -> None:
        self._stream._closed = True
        await self._stream._chat.close()


class AsyncResponseEventStream(_EventStream, openai.AsyncStream[ResponseStreamEvent]):
    """openai's ``AsyncStream`` of Responses events, made from a routed chat stream."""

    _chat: AsyncRoutedStream

    def __init__(
        self,
        chat: AsyncRoutedStream,
        source: _Translated | _Native,
        keep: Callable[[str, list[JSON]], Awaitable[None]],
    ) -> None:
        self._begin(chat, source, _AsyncEventBytes(self))
        self._keep = keep
        self._iterator = self._events()

    async def _events(self) -> AsyncIterator[ResponseStreamEvent]:
        """``ResponseEventStream._events``, awaited."""
        source = self._source
        for event in source.start():
            yield event
        async for chunk in self._chat:
            if self._closed:
                return
            for event in source.feed(chunk):
                yield event
        if self._closed:
            return
        writes, closing = source.finish()
        for key, value in writes:
            await self._keep(key, value)
        for event in closing:
            yield event


class AsyncRoutedResponseStream(AsyncResponseStream[_T]):
    @property
    def routing(self) -> RoutingRecord:
        return cast(AsyncResponseEventStream, self._raw_stream).routing

    async def get_final_response(self) -> ParsedResponse[_T]:
        response = await super().get_final_response()
        object.__setattr__(response, "routing", self.routing)
        return response


class AsyncRoutedResponseStreamManager(AsyncResponseStreamManager[_T]):
    def __init__(
        self,
        api_request: Callable[[], Awaitable[AsyncResponseEventStream]],
        *,
        text_format: Any,
        input_tools: Any,
    ) -> None:
        # The request is made on entry (openai's manager takes a coroutine made up front, which
        # warns "never awaited" when the manager is dropped unused).
        self._request = api_request
        self._text_format = text_format
        self._input_tools = input_tools
        self._stream: AsyncRoutedResponseStream[_T] | None = None

    async def __aenter__(self) -> AsyncRoutedResponseStream[_T]:
        self._stream = AsyncRoutedResponseStream(
            raw_stream=await self._request(),
            text_format=self._text_format,
            input_tools=self._input_tools,
            starting_after=None,
        )
        return self._stream

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stream is not None:
            await self._stream.close()


class AsyncResponses(_Routed, _AsyncResponses):
    """openai's async ``client.responses``; ``create``, ``parse`` and ``stream`` are routed."""

    _asynchronous = True

    def __init__(self, client: AsyncOpenAI) -> None:
        super().__init__(client)
        self._router: AsyncRouter = client._router
        self._turns: TurnStore = client._router._turns

    async def _stored(self, response_id: str) -> _Direct | None:
        return self._direct(await self._turns.aget(origin_key(response_id)))

    async def retrieve(self, response_id: str, **params: Any) -> Any:  # type: ignore[override]
        direct = await self._stored(response_id)
        if direct is None:
            return await super().retrieve(response_id, **params)
        return await direct.client.responses.retrieve(response_id, **direct.params(params))

    async def delete(self, response_id: str, **params: Any) -> Any:  # type: ignore[override]
        direct = await self._stored(response_id)
        if direct is None:
            return await super().delete(response_id, **params)
        return await direct.client.responses.delete(response_id, **direct.params(params))

    @cached_property
    def input_items(self) -> AsyncInputItems:
        return _AsyncInputItems(self)

    @overload  # type: ignore[override]
    async def create(self, *, stream: Literal[True], **params: Any) -> AsyncResponseEventStream: ...

    @overload
    async def create(
        self, *, stream: Literal[False] | openai.NotGiven | openai.Omit | None = ..., **params: Any
    ) -> RoutedResponse: ...

    async def create(self, **params: Any) -> RoutedResponse | AsyncResponseEventStream:
        """Route a Responses API call; same arguments and return types as openai's async ``create``."""
        check_arguments(params, _CREATE, "AsyncResponses.create")
        mode = raw_mode(params)
        return self._raw(mode, await self._route(params))

    async def _route(self, params: Mapping[str, Any]) -> RoutedResponse | AsyncResponseEventStream:
        """``Responses._route``, awaited."""
        flow = self._decide(params)
        outcome: Any = None
        while not isinstance(action := _step(flow, outcome), _Done):
            if isinstance(action, _Read):
                outcome = await self._turns.aget(action.key)
            elif isinstance(action, _Write):
                outcome = None
                await self._turns.aput(action.key, action.value)
            else:
                try:
                    outcome = await self._router._create(action.kwargs)
                except NoCandidateError as exc:
                    outcome = exc
        answer = action.answer
        if isinstance(answer, _Stream):
            return AsyncResponseEventStream(answer.chat, answer.source, self._turns.aput)
        return answer

    async def parse(  # type: ignore[override]
        self, *, text_format: Any = openai.omit, tools: Any = openai.omit, **params: Any
    ) -> ParsedResponse[Any]:
        check_arguments(params, _PARSE, "AsyncResponses.parse")
        mode, call, parse_tools = _parse_call(params, text_format, tools)
        return self._raw(mode, _parsed(await self._route(call), text_format, parse_tools))

    def stream(  # type: ignore[override]
        self,
        *,
        text_format: Any = openai.omit,
        tools: Any = openai.omit,
        response_id: Any = openai.omit,
        starting_after: Any = openai.omit,
        **params: Any,
    ) -> AsyncRoutedResponseStreamManager[Any]:
        check_arguments(params, _STREAM, "AsyncResponses.stream")
        request, input_tools = _stream_call(
            self.create, params, text_format, tools, response_id, starting_after
        )
        return AsyncRoutedResponseStreamManager(request, text_format=text_format, input_tools=input_tools)


__all__ = [
    "AsyncResponseEventStream",
    "AsyncResponses",
    "ResponseEventStream",
    "Responses",
    "RoutedResponse",
]
