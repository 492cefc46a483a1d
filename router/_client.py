"""``router.OpenAI`` and ``router.AsyncOpenAI``: the openai client's surface over a routing policy.

``_BaseClient`` holds everything that does no I/O (policy, engine, planning, error mapping);
``OpenAI`` and ``AsyncOpenAI`` only drive the session: call, await, report back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, overload

import httpx
import openai
from openai.lib._parsing._completions import (
    parse_chat_completion,
    type_to_response_format_param,
    validate_input_tools,
)
from openai.pagination import SyncPage
from openai.types.chat import ChatCompletionMessageParam, ParsedChatCompletion
from openai.types.model import Model

from policies.plan import UnknownModelError
from policies.schema import Policy
from providers.base import DEFAULT_TIMEOUT, AsyncAdapter, SyncAdapter, Timeout
from providers.litellm_adapter import AsyncLiteLLMAdapter, LiteLLMAdapter
from providers.openai_compat import AsyncOpenAICompatible, OpenAICompatible
from router._engine import Engine
from router._exceptions import ModelNotFoundError, NoCandidateError
from router._health import Breakers
from router._observations import Observations
from router._pipeline import Request, Session, StreamTracker, content_filtered, normalize, usage_of
from router._response import RoutedChatCompletion, completion
from router._streaming import AsyncRoutedStream, RoutedStream

PolicySource = Policy | str | os.PathLike[str] | Mapping[str, Any] | None


def load_policy_source(policy: PolicySource) -> Policy:
    """A policy from a Policy, a path, a dict, or (None) the file named by ROUTER_POLICY."""
    if isinstance(policy, Policy):
        return policy
    from policies import loader  # the YAML machinery is paid for only when a file is read

    if policy is None:
        return loader.load_default_policy()
    if isinstance(policy, str | os.PathLike | Path):
        return loader.load_policy(policy)
    return loader.policy_from_dict(policy)


class _BaseClient:
    """Configuration and planning; no I/O."""

    def __init__(
        self,
        *,
        policy: PolicySource = None,
        api_key: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: Timeout | openai.NotGiven = openai.NOT_GIVEN,
        max_retries: int | openai.NotGiven = openai.NOT_GIVEN,
        default_headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        _engine: Engine | None = None,
    ) -> None:
        self.timeout: Timeout = DEFAULT_TIMEOUT if isinstance(timeout, openai.NotGiven) else timeout
        # Given explicitly, openai's max_retries caps same-model retries (max_retries=0: none), as
        # code written for openai expects; otherwise the policy's retry.attempts decides.
        self._retry_attempts = None if isinstance(max_retries, openai.NotGiven) else max_retries + 1
        self.max_retries = (
            openai.DEFAULT_MAX_RETRIES if isinstance(max_retries, openai.NotGiven) else max_retries
        )
        if _engine is None:
            headers = dict(default_headers or {})
            if organization:
                headers["OpenAI-Organization"] = organization
            if project:
                headers["OpenAI-Project"] = project
            _engine = Engine(
                load_policy_source(policy),
                env=os.environ,
                api_key=api_key,
                base_url=str(base_url) if base_url is not None else None,
                default_headers=headers,
            )
        self._engine = _engine
        self._observations = Observations()
        # Injected so tests (and simulations) drive deadlines, backoff and cooldowns without sleeping.
        self._clock = clock
        self._breakers = Breakers(clock)

    @property
    def policy(self) -> Policy:
        return self._engine.policy

    def _session(self, kwargs: Mapping[str, Any]) -> Session:
        request: Request = normalize(kwargs, self.timeout)
        try:
            plan = self._engine.planner.plan(
                request.route, health=self._breakers.snapshot(), observed=self._observations
            )
        except UnknownModelError as exc:
            raise ModelNotFoundError(str(exc)) from None
        if not plan.candidates:
            raise NoCandidateError(request.route.model, plan.rejected, plan.route)
        return Session(
            self._engine,
            request,
            plan,
            clock=self._clock,
            observations=self._observations,
            breakers=self._breakers,
            retry_attempts=self._retry_attempts,
        )

    def _model_object(self, model: str) -> Model:
        for item in self._model_objects():
            if item.id == model:
                return item
        raise ModelNotFoundError(f"The model {model!r} is not in the policy.")

    def _bind(self) -> None:
        """Attach the resources (``chat``, ``models``) that point back at this client."""
        raise NotImplementedError

    def _copy(self, timeout: Timeout | openai.NotGiven, max_retries: int | openai.NotGiven) -> Any:
        # A shallow copy shares the engine, adapters, connections and breakers; only defaults differ.
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        if not isinstance(timeout, openai.NotGiven):
            clone.timeout = timeout
        if not isinstance(max_retries, openai.NotGiven):
            clone.max_retries = max_retries
            clone._retry_attempts = max_retries + 1
        clone._bind()
        return clone

    def _model_objects(self) -> list[Model]:
        models = [
            Model(id=name, object="model", created=0, owned_by=spec.provider)
            for name, spec in self._engine.policy.models.items()
        ]
        models += [
            Model(id=name, object="model", created=0, owned_by="router")
            for name in self._engine.policy.routes
        ]
        return models


def _parse_arguments(response_format: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    validate_input_tools(kwargs.get("tools", openai.omit))
    return {**kwargs, "response_format": type_to_response_format_param(response_format)}


def _parsed(response_format: Any, kwargs: Mapping[str, Any], response: RoutedChatCompletion) -> Any:
    parsed = parse_chat_completion(
        response_format=response_format,
        input_tools=kwargs.get("tools", openai.omit),
        chat_completion=response,
    )
    # Not a pydantic field: it must not appear in model_dump().
    object.__setattr__(parsed, "routing", response.routing)
    return parsed


# --------------------------------------------------------------------------- sync


class Completions:
    def __init__(self, client: OpenAI) -> None:
        self._client = client

    @overload
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
        return self._client._create(kwargs)

    def parse(self, *, response_format: Any, **kwargs: Any) -> ParsedChatCompletion[Any]:
        """Like openai's ``parse``: a pydantic ``response_format`` in, ``.parsed`` objects out."""
        response = self.create(**_parse_arguments(response_format, kwargs))
        return _parsed(response_format, kwargs, response)  # type: ignore[no-any-return]


class Chat:
    def __init__(self, client: OpenAI) -> None:
        self.completions = Completions(client)


class Models:
    def __init__(self, client: OpenAI) -> None:
        self._client = client

    def list(self) -> SyncPage[Model]:
        """The policy's models and routes, as openai's model list."""
        return SyncPage[Model](data=self._client._model_objects(), object="list")

    def retrieve(self, model: str) -> Model:
        return self._client._model_object(model)


class OpenAI(_BaseClient):
    """Drop-in for ``openai.OpenAI``: every chat completion is routed by the policy."""

    def __init__(
        self,
        *,
        policy: PolicySource = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(policy=policy, **kwargs)
        self._sleep = sleep
        fast = OpenAICompatible(http_client)
        self._adapters: dict[str, SyncAdapter] = {"openai": fast, "azure": fast, "litellm": LiteLLMAdapter()}
        self._bind()

    def _bind(self) -> None:
        self.chat = Chat(self)
        self.models = Models(self)

    def with_options(
        self,
        *,
        timeout: Timeout | openai.NotGiven = openai.NOT_GIVEN,
        max_retries: int | openai.NotGiven = openai.NOT_GIVEN,
    ) -> OpenAI:
        """A copy with other defaults, sharing the policy, connections and breaker state."""
        clone: OpenAI = self._copy(timeout, max_retries)
        return clone

    def _create(self, kwargs: Mapping[str, Any]) -> RoutedChatCompletion | RoutedStream:
        session = self._session(kwargs)
        request = session.request
        if request.stream:
            return self._open_stream(session)
        while (step := session.next_step()) is not None:
            if step.wait_s:
                self._sleep(step.wait_s)
            session.begin(step)
            deployment = step.deployment
            try:
                data = self._adapters[deployment.adapter].complete(deployment, request.body, step.options)
            except openai.APIError as exc:
                session.failed(deployment, exc)
                continue
            usage = usage_of(data.get("usage"))
            if content_filtered(data):
                session.content_filtered(deployment, data, usage)
                continue
            return completion(data, deployment.name, session.succeeded(deployment, usage))
        kept = session.kept_answer()
        if kept is not None:
            deployment, data, routing = kept
            return completion(data, deployment.name, routing)
        raise session.exhausted()

    def _open_stream(self, session: Session) -> RoutedStream:
        """Read each candidate's stream up to its first content; fall back unseen until then."""
        request = session.request
        while (step := session.next_step()) is not None:
            if step.wait_s:
                self._sleep(step.wait_s)
            session.begin(step)
            deployment = step.deployment
            tracker = StreamTracker()
            buffered: list[dict[str, Any]] = []
            try:
                chunks: Iterator[dict[str, Any]] = self._adapters[deployment.adapter].stream(
                    deployment, request.body, step.options
                )
                for data in chunks:
                    tracker.observe(data)
                    buffered.append(data)
                    if tracker.committed:
                        break
            except openai.APIError as exc:
                session.failed(deployment, exc)
                continue
            stream = RoutedStream(
                session, deployment, buffered, tracker, chunks, session.attempt_elapsed_ms()
            )
            if tracker.content_filtered:
                session.content_filtered(deployment, stream, tracker.usage)
                continue
            return stream
        kept = session.kept_answer()
        if kept is not None:
            kept_stream: RoutedStream = kept[1]
            return kept_stream
        raise session.exhausted()

    def close(self) -> None:
        for adapter in {id(a): a for a in self._adapters.values()}.values():
            adapter.close()

    def __enter__(self) -> OpenAI:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --------------------------------------------------------------------------- async


def _deadline_timeout() -> openai.APITimeoutError:
    return openai.APITimeoutError(request=httpx.Request("POST", "router://chat/completions"))


async def _close_quietly(chunks: AsyncIterator[dict[str, Any]]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


class AsyncCompletions:
    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    @overload
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
        return await self._client._create(kwargs)

    async def parse(self, *, response_format: Any, **kwargs: Any) -> ParsedChatCompletion[Any]:
        response = await self.create(**_parse_arguments(response_format, kwargs))
        return _parsed(response_format, kwargs, response)  # type: ignore[no-any-return]


class AsyncChat:
    def __init__(self, client: AsyncOpenAI) -> None:
        self.completions = AsyncCompletions(client)


class _AsyncModelList:
    """Awaitable and async-iterable, like openai's AsyncPaginator."""

    def __init__(self, models: list[Model]) -> None:
        self._page = SyncPage[Model](data=models, object="list")

    def __await__(self) -> Any:
        async def page() -> SyncPage[Model]:
            return self._page

        return page().__await__()

    async def __aiter__(self) -> AsyncIterator[Model]:
        for model in self._page.data:
            yield model


class AsyncModels:
    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    def list(self) -> _AsyncModelList:
        return _AsyncModelList(self._client._model_objects())

    async def retrieve(self, model: str) -> Model:
        return self._client._model_object(model)


class AsyncOpenAI(_BaseClient):
    """Drop-in for ``openai.AsyncOpenAI``: every chat completion is routed by the policy."""

    def __init__(
        self,
        *,
        policy: PolicySource = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(policy=policy, **kwargs)
        self._sleep = sleep
        fast = AsyncOpenAICompatible(http_client)
        self._adapters: dict[str, AsyncAdapter] = {
            "openai": fast,
            "azure": fast,
            "litellm": AsyncLiteLLMAdapter(),
        }
        self._bind()

    def _bind(self) -> None:
        self.chat = AsyncChat(self)
        self.models = AsyncModels(self)

    def with_options(
        self,
        *,
        timeout: Timeout | openai.NotGiven = openai.NOT_GIVEN,
        max_retries: int | openai.NotGiven = openai.NOT_GIVEN,
    ) -> AsyncOpenAI:
        """A copy with other defaults, sharing the policy, connections and breaker state."""
        clone: AsyncOpenAI = self._copy(timeout, max_retries)
        return clone

    async def _create(self, kwargs: Mapping[str, Any]) -> RoutedChatCompletion | AsyncRoutedStream:
        session = self._session(kwargs)
        request = session.request
        if request.stream:
            return await self._open_stream(session)
        while (step := session.next_step()) is not None:
            if step.wait_s:
                await self._sleep(step.wait_s)
            session.begin(step)
            deployment = step.deployment
            try:
                # The deadline as a hard stop too: a server that trickles bytes never trips a read timeout.
                async with asyncio.timeout(session.remaining_s()):
                    data = await self._adapters[deployment.adapter].complete(
                        deployment, request.body, step.options
                    )
            except openai.APIError as exc:
                session.failed(deployment, exc)
                continue
            except TimeoutError:
                session.failed(deployment, _deadline_timeout())
                continue
            usage = usage_of(data.get("usage"))
            if content_filtered(data):
                session.content_filtered(deployment, data, usage)
                continue
            return completion(data, deployment.name, session.succeeded(deployment, usage))
        kept = session.kept_answer()
        if kept is not None:
            deployment, data, routing = kept
            return completion(data, deployment.name, routing)
        raise session.exhausted()

    async def _open_stream(self, session: Session) -> AsyncRoutedStream:
        """Read each candidate's stream up to its first content; fall back unseen until then."""
        request = session.request
        while (step := session.next_step()) is not None:
            if step.wait_s:
                await self._sleep(step.wait_s)
            session.begin(step)
            deployment = step.deployment
            tracker = StreamTracker()
            buffered: list[dict[str, Any]] = []
            chunks: AsyncIterator[dict[str, Any]] = self._adapters[deployment.adapter].stream(
                deployment, request.body, step.options
            )
            try:
                idle = min(session.resilience.stream_idle_timeout_s, session.remaining_s())
                async with asyncio.timeout(idle):
                    async for data in chunks:
                        tracker.observe(data)
                        buffered.append(data)
                        if tracker.committed:
                            break
            except openai.APIError as exc:
                session.failed(deployment, exc)
                continue
            except TimeoutError:
                await _close_quietly(chunks)
                session.failed(deployment, _deadline_timeout())
                continue
            stream = AsyncRoutedStream(
                session, deployment, buffered, tracker, chunks, session.attempt_elapsed_ms()
            )
            if tracker.content_filtered:
                session.content_filtered(deployment, stream, tracker.usage)
                continue
            return stream
        kept = session.kept_answer()
        if kept is not None:
            kept_stream: AsyncRoutedStream = kept[1]
            return kept_stream
        raise session.exhausted()

    async def close(self) -> None:
        for adapter in {id(a): a for a in self._adapters.values()}.values():
            await adapter.close()

    async def __aenter__(self) -> AsyncOpenAI:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
