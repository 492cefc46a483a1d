"""The routed resources: openai's ``chat.completions``, ``beta.chat`` and ``models``, subclassed.

Subclassing keeps every attribute openai's resource has (``with_raw_response``,
``with_streaming_response``, ``messages``, stored-completion ``retrieve``/``list``/...); only
``create``, ``parse`` and ``stream`` are the router's. openai's raw-response wrappers call them, so
they route too. ``stream()`` is openai's helper over a routed ``create(stream=True)``, with
``.routing`` on the stream and on ``get_final_completion()``'s answer (as ``responses.stream()``).
Imported on first use of ``client.chat``, not at ``import router``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast, overload

import httpx
import openai
from openai.lib._parsing._completions import (
    parse_chat_completion,
    type_to_response_format_param,
    validate_input_tools,
)
from openai.lib.streaming.chat import (
    AsyncChatCompletionStream,
    AsyncChatCompletionStreamManager,
    ChatCompletionStream,
    ChatCompletionStreamManager,
)
from openai.pagination import SyncPage
from openai.resources.beta import AsyncBeta as _AsyncBeta
from openai.resources.beta import Beta as _Beta
from openai.resources.chat import AsyncChat as _AsyncChat
from openai.resources.chat import Chat as _Chat
from openai.resources.chat.completions import AsyncCompletions as _AsyncCompletions
from openai.resources.chat.completions import Completions as _Completions
from openai.resources.models import AsyncModels as _AsyncModels
from openai.resources.models import Models as _Models
from openai.types.chat import ChatCompletionMessageParam, ParsedChatCompletion
from openai.types.model import Model

from router._arguments import accepted, check_arguments
from router._raw import raw_mode, wrap
from router._response import RoutedChatCompletion
from router._routing import RoutingRecord
from router._streaming import AsyncRoutedStream, RoutedStream

if TYPE_CHECKING:
    from router._client import AsyncRouter, SyncRouter
    from router._openai import AsyncOpenAI, OpenAI

    cached_property = property
else:
    from functools import cached_property

_Headers = Mapping[str, str | openai.Omit] | None
_Query = Mapping[str, object] | None
_Body = object | None
_Timeout = float | httpx.Timeout | None | openai.NotGiven
_V = TypeVar("_V")
# What openai's methods accept (the installed version's): anything else is its TypeError, not a
# silently ignored typo (router._arguments).
_CREATE: Final = accepted(_Completions.create)
_PARSE: Final = accepted(_Completions.parse)
_STREAM: Final = accepted(_Completions.stream)
_T = TypeVar("_T")


def _parse_arguments(response_format: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    validate_input_tools(kwargs.get("tools", openai.omit))
    kwargs.pop("stream", None)
    return {**kwargs, "response_format": type_to_response_format_param(response_format)}


def _parsed(response_format: Any, kwargs: Mapping[str, Any], response: RoutedChatCompletion) -> Any:
    """``.parsed`` content and tool arguments, as openai's ``parse``; the routing record kept."""
    parsed = parse_chat_completion(
        response_format=response_format,
        input_tools=kwargs.get("tools", openai.omit),
        chat_completion=response,
    )
    # Not a pydantic field: it must not appear in model_dump().
    object.__setattr__(parsed, "routing", response.routing)
    parsed._request_id = response._request_id
    return parsed


def _stream_arguments(
    response_format: Any, tools: Any, extra_headers: _Headers, kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """``create``'s arguments for ``stream()``: what openai's helper sends (its helper header too)."""
    return {
        **kwargs,
        "stream": True,
        "response_format": type_to_response_format_param(response_format),
        "tools": tools,
        "extra_headers": {"X-Stainless-Helper-Method": "chat.completions.stream", **(extra_headers or {})},
    }


def _maybe_raw(extra_headers: _Headers, value: _V, client: Any, *, asynchronous: bool) -> _V:
    """The value, or (through ``with_raw_response`` / ``with_streaming_response``) its raw response."""
    mode = raw_mode({"extra_headers": extra_headers}) if extra_headers else None
    return value if mode is None else cast(_V, wrap(mode, value, client, asynchronous=asynchronous))


# --------------------------------------------------------------------------- sync


class Completions(_Completions):
    """openai's ``chat.completions``; ``create`` and ``parse`` are routed by the policy."""

    def __init__(self, client: OpenAI) -> None:
        super().__init__(client)
        self._router: SyncRouter = client._router

    @overload  # type: ignore[override]
    def create(
        self,
        *,
        messages: Iterable[ChatCompletionMessageParam],
        model: str,
        stream: Literal[True],
        **kwargs: Any,
    ) -> RoutedStream: ...

    @overload
    def create(
        self,
        *,
        messages: Iterable[ChatCompletionMessageParam],
        model: str,
        stream: Literal[False] | openai.NotGiven | openai.Omit | None = ...,
        **kwargs: Any,
    ) -> RoutedChatCompletion: ...

    def create(self, **kwargs: Any) -> RoutedChatCompletion | RoutedStream:
        """Route a chat completion; same arguments and return types as openai's ``create``."""
        check_arguments(kwargs, _CREATE, "Completions.create")
        mode = raw_mode(kwargs)
        if mode is None:
            return self._router._create(kwargs)
        return cast(
            RoutedChatCompletion, wrap(mode, self._router._create(kwargs), self._client, asynchronous=False)
        )

    def parse(self, *, response_format: Any = openai.omit, **kwargs: Any) -> ParsedChatCompletion[Any]:
        """Like openai's ``parse``: a pydantic ``response_format`` in, ``.parsed`` objects out;
        ``openai.pydantic_function_tool`` tools come back with ``parsed_arguments``."""
        check_arguments(kwargs, _PARSE, "Completions.parse")
        mode = raw_mode(kwargs)
        response = self._router._create(_parse_arguments(response_format, kwargs))
        parsed = _parsed(response_format, kwargs, response)  # type: ignore[arg-type]
        return cast(
            ParsedChatCompletion[Any],
            wrap(mode, parsed, self._client, asynchronous=False) if mode else parsed,
        )

    def stream(  # type: ignore[override]
        self,
        *,
        response_format: Any = openai.omit,
        tools: Any = openai.omit,
        extra_headers: _Headers = None,
        **kwargs: Any,
    ) -> RoutedChatCompletionStreamManager[Any]:
        """Like openai's ``stream``: a context manager over typed events and
        ``get_final_completion()``; the stream and that completion carry ``.routing``."""
        check_arguments(kwargs, _STREAM, "Completions.stream")
        validate_input_tools(tools)
        request = partial(self.create, **_stream_arguments(response_format, tools, extra_headers, kwargs))
        return RoutedChatCompletionStreamManager(request, response_format=response_format, input_tools=tools)


class Chat(_Chat):
    @cached_property
    def completions(self) -> Completions:
        return Completions(self._client)  # type: ignore[arg-type]


class Beta(_Beta):
    """openai's ``beta``; its ``chat`` is the client's routed one (``beta.chat.completions.parse``)."""

    @cached_property
    def chat(self) -> Chat:
        return self._client.chat  # type: ignore[return-value]


class Models(_Models):
    """The policy's models and routes, as openai's model objects (``owned_by``: provider or "router")."""

    def __init__(self, client: OpenAI) -> None:
        super().__init__(client)
        self._router: SyncRouter = client._router

    def list(
        self,
        *,
        extra_headers: _Headers = None,
        extra_query: _Query = None,
        extra_body: _Body = None,
        timeout: _Timeout = openai.NOT_GIVEN,
    ) -> SyncPage[Model]:
        page = SyncPage[Model](data=self._router._model_objects(), object="list")
        return _maybe_raw(extra_headers, page, self._client, asynchronous=False)

    def retrieve(
        self,
        model: str,
        *,
        extra_headers: _Headers = None,
        extra_query: _Query = None,
        extra_body: _Body = None,
        timeout: _Timeout = openai.NOT_GIVEN,
    ) -> Model:
        return _maybe_raw(extra_headers, self._router._model_object(model), self._client, asynchronous=False)


# --------------------------------------------------------------------------- async


class AsyncCompletions(_AsyncCompletions):
    """openai's async ``chat.completions``; ``create`` and ``parse`` are routed by the policy."""

    def __init__(self, client: AsyncOpenAI) -> None:
        super().__init__(client)
        self._router: AsyncRouter = client._router

    @overload  # type: ignore[override]
    async def create(
        self,
        *,
        messages: Iterable[ChatCompletionMessageParam],
        model: str,
        stream: Literal[True],
        **kwargs: Any,
    ) -> AsyncRoutedStream: ...

    @overload
    async def create(
        self,
        *,
        messages: Iterable[ChatCompletionMessageParam],
        model: str,
        stream: Literal[False] | openai.NotGiven | openai.Omit | None = ...,
        **kwargs: Any,
    ) -> RoutedChatCompletion: ...

    async def create(self, **kwargs: Any) -> RoutedChatCompletion | AsyncRoutedStream:
        """Route a chat completion; same arguments and return types as openai's async ``create``."""
        check_arguments(kwargs, _CREATE, "AsyncCompletions.create")
        mode = raw_mode(kwargs)
        if mode is None:
            return await self._router._create(kwargs)
        answer = await self._router._create(kwargs)
        return cast(RoutedChatCompletion, wrap(mode, answer, self._client, asynchronous=True))

    async def parse(self, *, response_format: Any = openai.omit, **kwargs: Any) -> ParsedChatCompletion[Any]:
        check_arguments(kwargs, _PARSE, "AsyncCompletions.parse")
        mode = raw_mode(kwargs)
        response = await self._router._create(_parse_arguments(response_format, kwargs))
        parsed = _parsed(response_format, kwargs, response)  # type: ignore[arg-type]
        return cast(
            ParsedChatCompletion[Any], wrap(mode, parsed, self._client, asynchronous=True) if mode else parsed
        )

    def stream(  # type: ignore[override]
        self,
        *,
        response_format: Any = openai.omit,
        tools: Any = openai.omit,
        extra_headers: _Headers = None,
        **kwargs: Any,
    ) -> AsyncRoutedChatCompletionStreamManager[Any]:
        """Like openai's async ``stream``: the stream and ``get_final_completion()`` carry ``.routing``."""
        check_arguments(kwargs, _STREAM, "AsyncCompletions.stream")
        validate_input_tools(tools)
        request = partial(self.create, **_stream_arguments(response_format, tools, extra_headers, kwargs))
        return AsyncRoutedChatCompletionStreamManager(
            cast(Callable[[], Awaitable[AsyncRoutedStream]], request),
            response_format=response_format,
            input_tools=tools,
        )


class AsyncChat(_AsyncChat):
    @cached_property
    def completions(self) -> AsyncCompletions:
        return AsyncCompletions(self._client)  # type: ignore[arg-type]


class AsyncBeta(_AsyncBeta):
    @cached_property
    def chat(self) -> AsyncChat:
        return self._client.chat  # type: ignore[return-value]


class _AsyncModelList:
    """Awaitable and async-iterable, like openai's AsyncPaginator."""

    def __init__(self, models: list[Model], extra_headers: _Headers, client: Any) -> None:
        self._page = SyncPage[Model](data=models, object="list")
        self._raw = _maybe_raw(extra_headers, self._page, client, asynchronous=True)

    def __await__(self) -> Any:
        async def page() -> Any:
            return self._raw

        return page().__await__()

    async def __aiter__(self) -> AsyncIterator[Model]:
        for model in self._page.data:
            yield model


class AsyncModels(_AsyncModels):
    """The policy's models and routes, as openai's model objects."""

    def __init__(self, client: AsyncOpenAI) -> None:
        super().__init__(client)
        self._router: AsyncRouter = client._router

    def list(  # type: ignore[override]
        self,
        *,
        extra_headers: _Headers = None,
        extra_query: _Query = None,
        extra_body: _Body = None,
        timeout: _Timeout = openai.NOT_GIVEN,
    ) -> _AsyncModelList:
        return _AsyncModelList(self._router._model_objects(), extra_headers, self._client)

    async def retrieve(
        self,
        model: str,
        *,
        extra_headers: _Headers = None,
        extra_query: _Query = None,
        extra_body: _Body = None,
        timeout: _Timeout = openai.NOT_GIVEN,
    ) -> Model:
        return _maybe_raw(extra_headers, self._router._model_object(model), self._client, asynchronous=True)


# --------------------------------------------------------------------------- stream()


class RoutedChatCompletionStream(ChatCompletionStream[_T]):
    """openai's ``ChatCompletionStream`` over a routed stream: ``.routing``, and the final completion's."""

    @property
    def routing(self) -> RoutingRecord:
        """The decision record; complete (usage, cost) once the stream is exhausted."""
        return cast(RoutedStream, self._raw_stream).routing

    def get_final_completion(self) -> ParsedChatCompletion[_T]:
        completion = super().get_final_completion()
        object.__setattr__(completion, "routing", self.routing)  # not a field: never in model_dump()
        return completion


class RoutedChatCompletionStreamManager(ChatCompletionStreamManager[_T]):
    """openai's stream manager: the request is made on entering, the stream closed on leaving."""

    def __init__(
        self, api_request: Callable[[], RoutedStream], *, response_format: Any, input_tools: Any
    ) -> None:
        super().__init__(api_request, response_format=response_format, input_tools=input_tools)
        self._request = api_request
        self._response_format = response_format
        self._input_tools = input_tools
        self._stream: RoutedChatCompletionStream[_T] | None = None

    def __enter__(self) -> RoutedChatCompletionStream[_T]:
        self._stream = RoutedChatCompletionStream(
            raw_stream=self._request(), response_format=self._response_format, input_tools=self._input_tools
        )
        return self._stream

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stream is not None:
            self._stream.close()


class AsyncRoutedChatCompletionStream(AsyncChatCompletionStream[_T]):
    """``RoutedChatCompletionStream`` for asyncio."""

    @property
    def routing(self) -> RoutingRecord:
        return cast(AsyncRoutedStream, self._raw_stream).routing

    async def get_final_completion(self) -> ParsedChatCompletion[_T]:
        completion = await super().get_final_completion()
        object.__setattr__(completion, "routing", self.routing)
        return completion


class AsyncRoutedChatCompletionStreamManager(AsyncChatCompletionStreamManager[_T]):
    """openai's async stream manager: the request is awaited on entering, the stream closed on leaving."""

    def __init__(
        self,
        api_request: Callable[[], Awaitable[AsyncRoutedStream]],
        *,
        response_format: Any,
        input_tools: Any,
    ) -> None:
        # The request is made on entry: openai's manager takes a coroutine made up front, which warns
        # "never awaited" when the manager is dropped unused (as responses.stream()'s does).
        self._request = api_request
        self._response_format = response_format
        self._input_tools = input_tools
        self._stream: AsyncRoutedChatCompletionStream[_T] | None = None

    async def __aenter__(self) -> AsyncRoutedChatCompletionStream[_T]:
        self._stream = AsyncRoutedChatCompletionStream(
            raw_stream=await self._request(),  # type: ignore[arg-type]
            response_format=self._response_format,
            input_tools=self._input_tools,
        )
        return self._stream

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stream is not None:
            await self._stream.close()
