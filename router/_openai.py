"""``router.OpenAI`` and ``router.AsyncOpenAI``: openai's own clients, with chat completions routed.

They subclass ``openai.OpenAI`` / ``openai.AsyncOpenAI``, so ``isinstance`` holds and every
resource the router does not route (embeddings, files, batches, images, audio, ...) is openai's,
sending to the endpoint that ``api_key`` / ``base_url`` / the environment name. ``chat``,
``beta.chat`` and ``models`` are replaced by routed resources (``router._chat``) whose hot path is
the router's (``router._client``), never openai's request machinery.

Without an OpenAI key (a policy that routes only to Gemini or Anthropic) the clients still
construct; what needs the key raises openai's missing-credentials error when it is used.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import openai

from router._lean_httpx import load

if TYPE_CHECKING:
    from typing import Self

    import httpx
    from openai._provider import _Provider
    from openai.auth import WorkloadIdentity

    from policies.schema import Policy
    from providers._aiohttp import TransportLimits
    from router._chat import AsyncBeta, AsyncChat, AsyncModels, Beta, Chat, Models
    from router._client import AsyncRouter, PolicySource, SyncRouter
    from router._engine import Engine
    from router._responses_api import AsyncResponses, Responses
    from router.batch._resources import AsyncBatches, AsyncFiles, Batches, Files

    # openai's resources are cached properties that mypy sees as properties (as openai declares them).
    cached_property = property
else:
    from functools import cached_property

# openai 3's named endpoints (``data_residency=``); passed on only where the installed openai has it.
DataResidency = Literal["global", "us", "eu", "ae", "au", "in", "jp"]

_MISSING_KEY = (
    "Missing credentials: this request goes to OpenAI's API, and the router's client has no OpenAI "
    "key. Pass `api_key=` to router.OpenAI(...) or set the `OPENAI_API_KEY` environment variable. "
    "(Chat completions routed by the policy use each model's own key and work without it.)"
)


def _no_openai_key() -> str:
    raise openai.OpenAIError(_MISSING_KEY)


async def _no_openai_key_async() -> str:
    raise openai.OpenAIError(_MISSING_KEY)


# Options whose "not given" is not None.
_DEFAULTS: Mapping[str, Any] = {
    "timeout": openai.NOT_GIVEN,
    "_strict_response_validation": False,
    "_enforce_credentials": True,
}


@functools.cache
def _openai_parameters(cls: type) -> frozenset[str]:
    return frozenset(inspect.signature(cls).parameters)


def _openai_options(cls: type, options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments for the installed openai: None means "not given"; an option this
    openai does not know is an error only when it was given."""
    known = _openai_parameters(cls)
    out: dict[str, Any] = {}
    for name, value in options.items():
        if value == defaults[name] if name in defaults else value is None:
            continue
        if name not in known:
            raise TypeError(f"{name}= needs a newer openai package than the installed {openai.__version__}")
        out[name] = value
    return out


def _credentials_missing(
    api_key: object, admin_api_key: str | None, workload_identity: object, provider: object
) -> bool:
    """Whether openai's constructor would refuse for want of a key (it checks the same variables)."""
    return (
        api_key is None
        and not os.environ.get("OPENAI_API_KEY")
        and admin_api_key is None
        and not os.environ.get("OPENAI_ADMIN_KEY")
        and workload_identity is None
        and provider is None
    )


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """What routed OpenAI models take from the client: key, base URL, headers."""

    api_key: str | None
    base_url: str | None
    headers: tuple[tuple[str, str], ...]

    def engine(self, policy: Policy) -> Engine:
        from router._engine import Engine

        return Engine(
            policy,
            env=os.environ,
            api_key=self.api_key,
            base_url=self.base_url,
            default_headers=dict(self.headers),
        )


def _endpoint(
    client: openai.OpenAI | openai.AsyncOpenAI,
    api_key: object,
    workload_identity: object,
    provider: object,
    default_headers: Mapping[str, str] | None,
) -> _Endpoint:
    key = api_key if isinstance(api_key, str) and workload_identity is None else None
    headers = dict(default_headers or {})
    if client.organization:
        headers["OpenAI-Organization"] = client.organization
    if client.project:
        headers["OpenAI-Project"] = client.project
    return _Endpoint(
        api_key=key or os.environ.get("OPENAI_API_KEY") or None,
        # With provider= (Azure, Bedrock, ...) the base URL is the provider's: routed OpenAI models
        # keep the policy's endpoints.
        base_url=str(client.base_url) if provider is None else None,
        headers=tuple(sorted(headers.items())),
    )


def _machinery() -> None:
    """The router's machinery (planner, ledger, transports: ``router._client`` and what it imports),
    loaded when the first client is built rather than by ``import router``."""
    load("router._client")


def _router_timeout(timeout: object) -> float | httpx.Timeout | None:
    """openai's resolved timeout as the router's fast path (httpx) takes it: openai 3's own
    ``Timeout`` class (httpx2) becomes an ``httpx.Timeout`` with the same phases."""
    import httpx  # imported (lean) with the router's machinery: see _machinery

    if timeout is None or isinstance(timeout, float | int | httpx.Timeout):
        return timeout
    phases = {name: getattr(timeout, name) for name in ("connect", "read", "write", "pool")}
    return httpx.Timeout(**phases)


def _fast_path_client(http_client: object, kind: type[httpx.Client] | type[httpx.AsyncClient]) -> Any:
    """The caller's HTTP client for routed calls when it is an httpx one (openai 3 takes httpx2's)."""
    return http_client if isinstance(http_client, kind) else None


@dataclass(frozen=True, slots=True)
class _Shared:
    """What ``copy()`` / ``with_options()`` hand to the new client: the router to share and the
    retry setting (openai's copy always passes ``max_retries``; only an explicit one changes it)."""

    router: Any
    endpoint: _Endpoint
    retry_attempts: int | None


def _retry_attempts(max_retries: int | openai.NotGiven) -> int | None:
    # Given explicitly, openai's max_retries caps same-model retries (max_retries=0: none), as code
    # written for openai expects; otherwise the policy's retry.attempts decides.
    return None if isinstance(max_retries, openai.NotGiven) else max_retries + 1


def _copy_options(client: OpenAI | AsyncOpenAI, options: dict[str, Any]) -> dict[str, Any]:
    retries = options.get("max_retries", openai.NOT_GIVEN)
    router = client._router
    shared = _Shared(
        router,
        client._endpoint,
        router._retry_attempts if isinstance(retries, openai.NotGiven) else retries + 1,
    )
    return {**options, "_extra_kwargs": {**options.get("_extra_kwargs", {}), "_shared": shared}}


class OpenAI(openai.OpenAI):
    """Drop-in for ``openai.OpenAI``: every chat completion is routed by the policy.

    openai's arguments mean what they mean in openai (``max_retries`` given explicitly also caps
    the router's same-model retries); ``policy``, ``ledger``, ``clock``, ``wall_clock``, ``sleep``
    and ``tracer_provider`` are the router's. ``configure_logging=True`` applies the policy's
    ``logging:`` section (``router.logging.configure_from_policy``); by default a client changes no
    logging.
    """

    def __init__(
        self,
        *,
        policy: PolicySource = None,
        api_key: str | Callable[[], str] | None = None,
        admin_api_key: str | None = None,
        workload_identity: WorkloadIdentity | None = None,
        organization: str | None = None,
        project: str | None = None,
        webhook_secret: str | None = None,
        provider: _Provider | None = None,
        base_url: str | httpx.URL | None = None,
        data_residency: DataResidency | None = None,
        websocket_base_url: str | httpx.URL | None = None,
        timeout: float | httpx.Timeout | openai.NotGiven | None = openai.NOT_GIVEN,
        max_retries: int | openai.NotGiven = openai.NOT_GIVEN,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, object] | None = None,
        http_client: httpx.Client | None = None,
        ledger: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        tracer_provider: Any = None,
        configure_logging: bool = False,
        _strict_response_validation: bool = False,
        _enforce_credentials: bool = True,
        _shared: _Shared | None = None,
    ) -> None:
        defer = _enforce_credentials and _credentials_missing(
            api_key, admin_api_key, workload_identity, provider
        )
        super().__init__(
            **_openai_options(
                openai.OpenAI,
                {
                    "api_key": _no_openai_key if defer else api_key,
                    "admin_api_key": admin_api_key,
                    "workload_identity": workload_identity,
                    "organization": organization,
                    "project": project,
                    "webhook_secret": webhook_secret,
                    "provider": provider,
                    "base_url": base_url,
                    "data_residency": data_residency,
                    "websocket_base_url": websocket_base_url,
                    "timeout": timeout,
                    "max_retries": openai.DEFAULT_MAX_RETRIES
                    if isinstance(max_retries, openai.NotGiven)
                    else max_retries,
                    "default_headers": default_headers,
                    "default_query": default_query,
                    "http_client": http_client,
                    "_strict_response_validation": _strict_response_validation,
                    "_enforce_credentials": _enforce_credentials,
                },
                _DEFAULTS,
            )
        )
        self._endpoint = _endpoint(self, api_key, workload_identity, provider, default_headers)
        if _shared is None:
            _machinery()
            import httpx

            from router._client import SyncRouter

            self._router: SyncRouter = SyncRouter(
                policy=policy,
                api_key=self._endpoint.api_key,
                base_url=self._endpoint.base_url,
                default_headers=dict(self._endpoint.headers),
                timeout=_router_timeout(self.timeout),
                retry_attempts=_retry_attempts(max_retries),
                clock=clock,
                wall_clock=wall_clock,
                ledger=ledger,
                tracer_provider=tracer_provider,
                http_client=_fast_path_client(http_client, httpx.Client),
                sleep=sleep,
            )
        else:
            changed = self._endpoint != _shared.endpoint
            engine = self._endpoint.engine(_shared.router.policy) if changed else None
            self._router = _shared.router._copy(_router_timeout(self.timeout), _shared.retry_attempts, engine)
        if configure_logging:
            # Only on request: a library that rewired the process's logging on construction would
            # let a second client change the first one's logs.
            from router.logging import configure_from_policy

            configure_from_policy(self._router.policy)

    @property
    def policy(self) -> Policy:
        return self._router.policy

    @cached_property
    def chat(self) -> Chat:
        from router._chat import Chat

        return Chat(self)

    @cached_property
    def beta(self) -> Beta:
        from router._chat import Beta

        return Beta(self)

    @cached_property
    def models(self) -> Models:
        from router._chat import Models

        return Models(self)

    @cached_property
    def responses(self) -> Responses:
        """The Responses API, routed by the policy (``router._responses_api``)."""
        from router._responses_api import Responses

        return Responses(self)

    @cached_property
    def files(self) -> Files:
        """openai's files; ``purpose="batch"`` uploads are kept by router for routed batches."""
        from router.batch._resources import Files

        return Files(self)

    @cached_property
    def batches(self) -> Batches:
        """Batches routed per line across providers' batch APIs (docs/batch.md)."""
        from router.batch._resources import Batches

        return Batches(self)

    if not TYPE_CHECKING:
        # At run time: openai's copy, also handing over the router to share. For type checkers:
        # openai's own signature, whichever openai is installed.
        def copy(self, **options: Any) -> Self:
            return super().copy(**_copy_options(self, options))

        with_options = copy

    def close(self) -> None:
        """Close the router's connections and ledger, then openai's HTTP client."""
        if "_router_batch_service" in self.__dict__:
            self.__dict__.pop("_router_batch_service").close()
        self._router.close()
        super().close()

    def feedback(self, request_id: str | Any, score: float | bool) -> None:
        """Record how good a routed answer was, for ``router train --from-ledger`` (docs/adequacy.md).

        ``request_id`` is ``response.routing.request_id`` (or the response itself); ``score`` is 1/0,
        True/False or a score in [0, 1]. Raises ``UnknownRequestError`` for a request the ledger's
        feedback store doesn't keep (only requests routed with ``adequacy:`` are kept).
        """
        self._router.feedback(request_id, score)


class AsyncOpenAI(openai.AsyncOpenAI):
    """Drop-in for ``openai.AsyncOpenAI``: every chat completion is routed by the policy.

    openai's arguments mean what they mean in openai (``max_retries`` given explicitly also caps
    the router's same-model retries); ``policy``, ``ledger``, ``clock``, ``wall_clock``, ``sleep``
    and ``tracer_provider`` are the router's. ``configure_logging=True`` applies the policy's
    ``logging:`` section (``router.logging.configure_from_policy``); by default a client changes no
    logging.
    """

    def __init__(
        self,
        *,
        policy: PolicySource = None,
        api_key: str | Callable[[], Awaitable[str]] | None = None,
        admin_api_key: str | None = None,
        workload_identity: WorkloadIdentity | None = None,
        organization: str | None = None,
        project: str | None = None,
        webhook_secret: str | None = None,
        provider: _Provider | None = None,
        base_url: str | httpx.URL | None = None,
        data_residency: DataResidency | None = None,
        websocket_base_url: str | httpx.URL | None = None,
        timeout: float | httpx.Timeout | openai.NotGiven | None = openai.NOT_GIVEN,
        max_retries: int | openai.NotGiven = openai.NOT_GIVEN,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, object] | None = None,
        http_client: httpx.AsyncClient | None = None,
        ledger: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        connection_limits: TransportLimits | None = None,
        tracer_provider: Any = None,
        configure_logging: bool = False,
        _strict_response_validation: bool = False,
        _enforce_credentials: bool = True,
        _shared: _Shared | None = None,
    ) -> None:
        defer = _enforce_credentials and _credentials_missing(
            api_key, admin_api_key, workload_identity, provider
        )
        super().__init__(
            **_openai_options(
                openai.AsyncOpenAI,
                {
                    "api_key": _no_openai_key_async if defer else api_key,
                    "admin_api_key": admin_api_key,
                    "workload_identity": workload_identity,
                    "organization": organization,
                    "project": project,
                    "webhook_secret": webhook_secret,
                    "provider": provider,
                    "base_url": base_url,
                    "data_residency": data_residency,
                    "websocket_base_url": websocket_base_url,
                    "timeout": timeout,
                    "max_retries": openai.DEFAULT_MAX_RETRIES
                    if isinstance(max_retries, openai.NotGiven)
                    else max_retries,
                    "default_headers": default_headers,
                    "default_query": default_query,
                    "http_client": http_client,
                    "_strict_response_validation": _strict_response_validation,
                    "_enforce_credentials": _enforce_credentials,
                },
                _DEFAULTS,
            )
        )
        self._endpoint = _endpoint(self, api_key, workload_identity, provider, default_headers)
        if _shared is None:
            _machinery()
            import httpx

            from router._client import AsyncRouter

            self._router: AsyncRouter = AsyncRouter(
                policy=policy,
                api_key=self._endpoint.api_key,
                base_url=self._endpoint.base_url,
                default_headers=dict(self._endpoint.headers),
                timeout=_router_timeout(self.timeout),
                retry_attempts=_retry_attempts(max_retries),
                clock=clock,
                wall_clock=wall_clock,
                ledger=ledger,
                tracer_provider=tracer_provider,
                http_client=_fast_path_client(http_client, httpx.AsyncClient),
                sleep=sleep,
                connection_limits=connection_limits,
            )
        else:
            changed = self._endpoint != _shared.endpoint
            engine = self._endpoint.engine(_shared.router.policy) if changed else None
            self._router = _shared.router._copy(_router_timeout(self.timeout), _shared.retry_attempts, engine)
        if configure_logging:
            # Only on request: a library that rewired the process's logging on construction would
            # let a second client change the first one's logs.
            from router.logging import configure_from_policy

            configure_from_policy(self._router.policy)

    @property
    def policy(self) -> Policy:
        return self._router.policy

    @cached_property
    def chat(self) -> AsyncChat:
        from router._chat import AsyncChat

        return AsyncChat(self)

    @cached_property
    def beta(self) -> AsyncBeta:
        from router._chat import AsyncBeta

        return AsyncBeta(self)

    @cached_property
    def models(self) -> AsyncModels:
        from router._chat import AsyncModels

        return AsyncModels(self)

    @cached_property
    def responses(self) -> AsyncResponses:
        """The Responses API, routed by the policy (``router._responses_api``)."""
        from router._responses_api import AsyncResponses

        return AsyncResponses(self)

    @cached_property
    def files(self) -> AsyncFiles:
        """openai's files; ``purpose="batch"`` uploads are kept by router for routed batches."""
        from router.batch._resources import AsyncFiles

        return AsyncFiles(self)

    @cached_property
    def batches(self) -> AsyncBatches:
        """Batches routed per line across providers' batch APIs (docs/batch.md)."""
        from router.batch._resources import AsyncBatches

        return AsyncBatches(self)

    if not TYPE_CHECKING:

        def copy(self, **options: Any) -> Self:
            return super().copy(**_copy_options(self, options))

        with_options = copy

    async def close(self) -> None:
        """Close the router's connections and ledger, then openai's HTTP client."""
        if "_router_batch_service" in self.__dict__:
            self.__dict__.pop("_router_batch_service").close()
        await self._router.close()
        await super().close()

    async def feedback(self, request_id: str | Any, score: float | bool) -> None:
        """``OpenAI.feedback``, written off the event loop."""
        await self._router.feedback(request_id, score)
