"""The routers behind ``router.OpenAI`` and ``router.AsyncOpenAI`` (``router._openai``).

``_BaseClient`` holds everything that does no I/O (policy, engine, planning); ``SyncRouter`` and
``AsyncRouter`` are two thin drivers of the decision core (``router._decide.Decider``): each
performs the action it is given (call a model, sleep, reserve, settle...) and reports what
happened; neither decides anything. They never go through openai's request machinery: the
public clients are openai's, these are their hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeAlias

import httpx
import openai
from openai.types.model import Model

from policies.plan import UnknownModelError
from providers._aiohttp import TransportLimits
from providers.base import AsyncAdapter, SyncAdapter, Timeout
from providers.litellm_adapter import AsyncLiteLLMAdapter, LiteLLMAdapter
from providers.openai_compat import AsyncOpenAICompatible, OpenAICompatible
from router._budgets import BudgetBook
from router._continuation import Prefix, Resumed
from router._decide import (
    Bookkeep,
    Call,
    Cancelled,
    ClaimRate,
    Close,
    Decider,
    DowngradeCheck,
    Failed,
    Fetch,
    Opened,
    OpenStream,
    Publish,
    Raise,
    ReadTotals,
    ReadUsage,
    Release,
    Reserve,
    Return,
    Settle,
    Sleep,
    Unchecked,
    Warn,
    Wrap,
)
from router._engine import Engine
from router._events import Events
from router._exceptions import ModelNotFoundError
from router._health import Breakers, RedisBreakerStore, SharedBreakers
from router._observations import Observations
from router._request import Request, normalize
from router._response import RoutedChatCompletion
from router._session import Session
from router._streaming import AsyncRoutedStream, RoutedStream
from router._turns import open_turns
from router.ledger import (
    Hold,
    LedgerError,
    Line,
    Refusal,
    Totals,
    open_async_guarded_ledger,
    open_guarded_ledger,
)
from router.ledger._types import WouldWait

if TYPE_CHECKING:
    from policies.schema import Policy
    from router._deployments import Balancer
    from router._feedback import Outcomes
    from router.ledger._guard import AsyncGuarded, Guarded

# A string: the schema (pydantic) is loaded with the first policy, not at `import router`.
PolicySource: TypeAlias = "Policy | str | os.PathLike[str] | Mapping[str, Any] | None"


def load_policy_source(policy: PolicySource) -> Policy:
    """A policy from a Policy, a path, a dict, or (None) the file named by ROUTER_POLICY."""
    from policies.schema import Policy  # loaded with the first policy, not at `import router`

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

    # Whether requests run on an event loop, which must never wait on a store (feedback outcomes).
    _ASYNC: bool = False
    _litellm: LiteLLMAdapter | AsyncLiteLLMAdapter

    def __init__(
        self,
        *,
        policy: PolicySource,
        api_key: str | None,
        base_url: str | None,
        default_headers: Mapping[str, str],
        timeout: Timeout,
        retry_attempts: int | None,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        ledger: str | None,
        tracer_provider: Any,
        _engine: Engine | None = None,
    ) -> None:
        self.timeout = timeout
        # From an explicit max_retries (openai's: the retries after the first call), else None: the
        # policy's retry.attempts decides.
        self._retry_attempts = retry_attempts
        if _engine is None:
            _engine = Engine(
                load_policy_source(policy),
                env=os.environ,
                api_key=api_key,
                base_url=base_url,
                default_headers=default_headers,
            )
        self._engine = _engine
        self._observations = Observations()
        # Injected so tests (and simulations) drive deadlines, backoff and cooldowns without sleeping.
        self._clock = clock
        # Unix time, for budget windows, reservation expiry and Retry-After dates (injectable for tests).
        self._wall_clock = wall_clock
        policy_spec = self._engine.policy
        # The client's ledger= wins over the policy's ledger:; opened on the first budgeted request.
        self._ledger_url = ledger if ledger is not None else policy_spec.ledger
        self._ledger_handle: Any = None
        # The turns previous_response_id continues: in the named ledger's store, else in memory.
        self._turns = open_turns(self._ledger_url)
        self._breakers = _breakers_for(self._ledger_url, self._engine.breaker_keys, clock, wall_clock)
        # Shared breakers: their Redis reads and writes are actions this driver performs (Publish, Fetch).
        self._shared = self._breakers if isinstance(self._breakers, SharedBreakers) else None
        self._breaker_store = (
            RedisBreakerStore(self._ledger_url) if self._shared is not None and self._ledger_url else None
        )
        # Models with several deployments: the balancer picks one per request (router._deployments).
        self._balancer = _balancer_for(self._engine, self._ledger_url, wall_clock)
        # A stream's end reports back through the decider (Publish, Bookkeep) when either is in use.
        self._stream_reports = self._shared is not None or self._balancer is not None
        self._events = Events(
            policy_hash=self._engine.policy_hash,
            log_content=bool(policy_spec.logging and policy_spec.logging.log_content),
            # OpenTelemetry: spans go to this provider, or to the global one when the app set it.
            tracer_provider=tracer_provider,
        )
        self._budgets = BudgetBook(policy_spec) if BudgetBook(policy_spec).has_budgets else None
        self._litellm_warming = False
        self._outcomes = _outcomes_for(policy_spec, self._ledger_url, wall_clock, background=self._ASYNC)

    @property
    def policy(self) -> Policy:
        return self._engine.policy

    def _decider(self, kwargs: Mapping[str, Any]) -> Decider:
        """The decision core for one ``create(**kwargs)``: the driver performs what it says."""
        request = normalize(kwargs, self.timeout)
        budgets = self._budgets
        lines = budgets.lines_for(request.route.feature, self._wall_clock()) if budgets is not None else ()
        return Decider(
            request,
            self._plan,
            lines=lines,
            budgets=budgets,
            wall_clock=self._wall_clock,
            shared=self._shared,
        )

    def _plan(self, request: Request, lines: tuple[Line, ...], check: DowngradeCheck | None) -> Session:
        """Plan the request (``check``: a downgrade budget's filter) and open its Session."""
        try:
            plan = self._engine.planner.plan(
                request.route, health=self._breakers.snapshot(), budget=check, observed=self._observations
            )
        except UnknownModelError as exc:
            raise ModelNotFoundError(str(exc)) from None
        if not self._litellm_warming and self._engine.litellm_models:
            self._warm_litellm(plan)
        return Session(
            self._engine,
            request,
            plan,
            clock=self._clock,
            observations=self._observations,
            breakers=self._breakers,
            retry_attempts=self._retry_attempts,
            events=self._events,
            budgets=self._budgets,
            budget_lines=lines,
            wall_clock=self._wall_clock,
            outcomes=self._outcomes,
            balancer=self._balancer,
        )

    def _warm_litellm(self, plan: Any) -> None:
        """A plan that may reach a litellm model starts litellm's import in a background thread, while
        the earlier candidates are tried; a call that needs it waits for it within its deadline."""
        litellm_models = self._engine.litellm_models
        if any(candidate.model in litellm_models for candidate in plan.candidates):
            self._litellm_warming = True
            self._litellm.warm()

    def _model_object(self, model: str) -> Model:
        for item in self._model_objects():
            if item.id == model:
                return item
        raise ModelNotFoundError(f"The model {model!r} is not in the policy.")

    def _copy(self, timeout: Timeout, retry_attempts: int | None, engine: Engine | None) -> Any:
        """A router for a client's copy: it shares the breakers, adapters (connections), ledger and,
        unless the OpenAI credentials changed (``engine``), the engine; only defaults differ."""
        if self._budgets is not None:
            self._ledger()  # opened now, so that every copy settles in the same ledger
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.timeout = timeout
        clone._retry_attempts = retry_attempts
        if engine is not None:
            clone._engine = engine
            if self._balancer is not None:
                clone._balancer = self._balancer.for_engine(engine)
        return clone

    def _ledger(self) -> Any:
        raise NotImplementedError

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


def _outcomes_for(
    policy: Policy, ledger_url: str | None, wall_clock: Callable[[], float], *, background: bool
) -> Outcomes | None:
    """What client.feedback() needs, kept for requests judged by learned adequacy (and, with
    log_content, any request); None when the policy has neither (router._feedback)."""
    log_content = bool(policy.logging and policy.logging.log_content)
    adequacy = any(s.adequacy is not None for s in policy.routes.values()) or any(
        s.adequacy is not None for s in policy.features.values()
    )
    if not log_content and not adequacy:
        return None
    from router._feedback import Outcomes

    return Outcomes(ledger_url, log_content=log_content, wall_clock=wall_clock, background=background)


def _breakers_for(
    ledger_url: str | None,
    models: tuple[str, ...],
    clock: Callable[[], float],
    wall_clock: Callable[[], float],
) -> Breakers:
    """In-process breakers; shared through Redis when the ledger is Redis, so a fleet learns together."""
    if ledger_url and ledger_url.startswith(("redis://", "rediss://")):
        return SharedBreakers(clock, models, wall_clock=wall_clock)
    return Breakers(clock)


def _balancer_for(engine: Engine, ledger_url: str | None, wall_clock: Callable[[], float]) -> Balancer | None:
    """A balancer when some model lists deployments; its rate counters live beside the ledger named."""
    if not engine.pools:
        return None
    from router._deployments import Balancer
    from router.ledger._rates import open_rates

    return Balancer(engine, open_rates(ledger_url), wall_clock=wall_clock)


# --------------------------------------------------------------------------- sync


class SyncRouter(_BaseClient):
    """The sync driver behind ``router.OpenAI``: performs what the decider says."""

    def __init__(
        self, *, http_client: httpx.Client | None, sleep: Callable[[float], None], **config: Any
    ) -> None:
        super().__init__(**config)
        self._sleep = sleep
        fast = OpenAICompatible(http_client)
        self._litellm = slow = LiteLLMAdapter()
        self._adapters: dict[str, SyncAdapter] = {"openai": fast, "azure": fast, "litellm": slow}

    def _create(self, kwargs: Mapping[str, Any]) -> RoutedChatCompletion | RoutedStream:
        answer: RoutedChatCompletion | RoutedStream = self._drive(self._decider(kwargs))
        return answer

    def _drive(self, decider: Decider) -> Any:
        """Perform what the decider says and report back, until it returns (or raises)."""
        perform = _SYNC_PERFORM
        try:
            while type(action := decider.next_action()) is not Return:
                decider.report(perform[type(action)](self, action, decider))
        except BaseException:
            for cleanup in decider.abandoned():
                perform[type(cleanup)](self, cleanup, decider)
            raise
        return action.answer

    # ------------------------------------------------------------------ what each action does

    def _call(self, action: Call, decider: Decider) -> Any:
        deployment = action.deployment
        try:
            return self._adapters[deployment.adapter].complete(deployment, action.body, action.options)
        except openai.APIError as exc:
            return Failed(exc)
        except BaseException as exc:
            return Cancelled(exc)

    def _open(self, action: OpenStream, decider: Decider) -> Failed | Cancelled | Opened:
        deployment = action.deployment
        chunks: Iterator[dict[str, Any]] | None = None
        try:
            chunks = self._adapters[deployment.adapter].stream(deployment, action.body, action.options)
            for data in chunks:
                if decider.take(data):
                    break
        except openai.APIError as exc:
            return Failed(exc, chunks)
        except BaseException as exc:
            return Cancelled(exc, chunks)
        return Opened(chunks)

    def _wrap(self, action: Wrap, decider: Decider) -> RoutedStream:
        resume = partial(self._resume, decider) if action.resumable else None
        publish = partial(self._publish_later, decider) if self._stream_reports else None
        return RoutedStream(
            *action.parts, self._settler(decider, action.hold), resume=resume, publish=publish
        )

    def _count(self, action: ReadUsage | ClaimRate, decider: Decider) -> Any:
        """A rate counter's read or claim (a pooled model's pick), inline."""
        assert self._balancer is not None
        return self._balancer.perform(action)

    def _bookkeep(self, action: Bookkeep, decider: Decider) -> None:
        """Calls begun or ended on pooled deployments, told to the balancer, inline."""
        assert self._balancer is not None
        self._balancer.record(action)

    def _publish_later(self, decider: Decider) -> None:
        """A stream's end changed a shared breaker or a deployment's counts: the decider's Publish and
        Bookkeep, performed here."""
        self._drive(decider.publishing())

    def _publish(self, action: Publish, decider: Decider) -> None:
        assert self._breaker_store is not None
        self._breaker_store.write(action.writes)

    def _fetch(self, action: Fetch, decider: Decider) -> None:
        assert self._breaker_store is not None
        action.done(self._breaker_store.fetch(action.keys))

    def _settler(self, decider: Decider, hold: Hold | None) -> Callable[[float | None, bool], None] | None:
        return None if hold is None else partial(self._settle_later, decider, hold)

    def _settle_later(self, decider: Decider, hold: Hold, cost: float | None, estimated: bool) -> None:
        """A stream's settle, when it ends: the decider's settle actions, performed here."""
        self._drive(decider.settling(hold, cost, estimated))

    def _resume(self, decider: Decider, prefix: Prefix) -> Resumed | None:
        """A cut stream's continuation: the decider's actions, performed here; None: the cut stands."""
        resumed: Resumed | None = self._drive(decider.continuing(prefix))
        return None if resumed is None else resumed._replace(settle=self._settler(decider, resumed.hold))

    def _pause(self, action: Sleep, decider: Decider) -> None:
        self._sleep(action.seconds)

    def _close_stream(self, action: Close, decider: Decider) -> None:
        close = getattr(action.chunks, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()

    # ------------------------------------------------------------------ budgets: the ledger I/O

    def _ledger(self) -> Guarded:
        if self._ledger_handle is None:
            self._ledger_handle = open_guarded_ledger(self._ledger_url, journal=self.policy.ledger_journal)
        ledger: Guarded = self._ledger_handle
        return ledger

    def _totals(self, action: ReadTotals, decider: Decider) -> Mapping[str, Totals] | Failed:
        try:
            return self._ledger().totals(action.lines, now=action.now)
        except LedgerError as exc:
            return Failed(exc)

    def _reserve(self, action: Reserve, decider: Decider) -> Hold | Refusal | Failed:
        ledger = self._ledger()
        try:
            return ledger.reserve(
                action.lines, action.amount_usd, ttl_s=action.ttl_s, now=action.now, hold_id=action.hold_id
            )
        except LedgerError as exc:
            return Failed(exc)

    def _unchecked(self, action: Unchecked, decider: Decider) -> Hold:
        ask = action.ask
        return self._ledger().unchecked(ask.lines, ask.amount_usd, ttl_s=ask.ttl_s, now=ask.now)

    def _settle(self, action: Settle, decider: Decider) -> Mapping[str, Totals] | LedgerError:
        return self._ledger().settle(
            action.hold, action.amount_usd, now=action.now, estimated=action.estimated
        )

    def _release(self, action: Release, decider: Decider) -> None:
        self._ledger().release(action.hold)

    def _warn(self, action: Warn, decider: Decider) -> bool:
        return self._ledger().first_warning(action.line, action.threshold)

    def close(self) -> None:
        for adapter in {id(a): a for a in self._adapters.values()}.values():
            adapter.close()
        if self._ledger_handle is not None:
            self._ledger_handle.close()
            self._ledger_handle = None
        self._turns.close()
        if self._breaker_store is not None:
            self._breaker_store.close()
        if self._balancer is not None:
            self._balancer.close()
        if self._outcomes is not None:
            self._outcomes.close()

    def feedback(self, request: object, score: object) -> None:
        """``client.feedback``: an outcome for a routed request (router._feedback)."""
        if self._outcomes is None:
            raise _no_feedback()
        self._outcomes.feedback(request, score)


# --------------------------------------------------------------------------- async


async def _close_quietly(chunks: AsyncIterator[dict[str, Any]]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


class AsyncRouter(_BaseClient):
    """The async driver behind ``router.AsyncOpenAI``: performs what the decider says."""

    _ASYNC = True

    def __init__(
        self,
        *,
        http_client: httpx.AsyncClient | None,
        sleep: Callable[[float], Awaitable[None]],
        connection_limits: TransportLimits | None = None,
        **config: Any,
    ) -> None:
        super().__init__(**config)
        self._sleep = sleep
        # Settles of streams dropped unread, run in the background (see _spawn).
        self._background: set[asyncio.Task[None]] = set()
        # Without http_client, the fast path runs on aiohttp (docs/transport.md), sized by connection_limits.
        fast = AsyncOpenAICompatible(http_client, limits=connection_limits)
        self._litellm = slow = AsyncLiteLLMAdapter()
        self._adapters: dict[str, AsyncAdapter] = {"openai": fast, "azure": fast, "litellm": slow}

    async def _create(self, kwargs: Mapping[str, Any]) -> RoutedChatCompletion | AsyncRoutedStream:
        answer: RoutedChatCompletion | AsyncRoutedStream = await self._drive(self._decider(kwargs))
        return answer

    async def _drive(self, decider: Decider) -> Any:
        """``SyncRouter._drive``, awaited."""
        perform = _ASYNC_PERFORM
        try:
            while type(action := decider.next_action()) is not Return:
                decider.report(await perform[type(action)](self, action, decider))
        except BaseException:
            for cleanup in decider.abandoned():
                await perform[type(cleanup)](self, cleanup, decider)
            raise
        return action.answer

    # ------------------------------------------------------------------ what each action does

    async def _call(self, action: Call, decider: Decider) -> Any:
        deployment = action.deployment
        try:
            # The deadline as a hard stop too: a server that trickles bytes never trips a read timeout.
            async with asyncio.timeout(action.limit_s):
                return await self._adapters[deployment.adapter].complete(
                    deployment, action.body, action.options
                )
        except (openai.APIError, TimeoutError) as exc:
            return Failed(exc)
        except BaseException as exc:
            # Cancelled (the caller's timeout, a shutdown) once the call began: reported, so that the
            # decider charges what the provider may bill before the cancellation goes on.
            return Cancelled(exc)

    async def _open(self, action: OpenStream, decider: Decider) -> Failed | Cancelled | Opened:
        deployment = action.deployment
        chunks = self._adapters[deployment.adapter].stream(deployment, action.body, action.options)
        try:
            # The first content's limit as a hard stop: a provider may send nothing at all.
            async with asyncio.timeout(action.limit_s):
                async for data in chunks:
                    if decider.take(data):
                        break
        except (openai.APIError, TimeoutError) as exc:
            return Failed(exc, chunks)
        except BaseException as exc:
            return Cancelled(exc, chunks)
        return Opened(chunks)

    async def _wrap(self, action: Wrap, decider: Decider) -> AsyncRoutedStream:
        resume = partial(self._resume, decider) if action.resumable else None
        publish = partial(self._publish_later, decider) if self._stream_reports else None
        return AsyncRoutedStream(
            *action.parts,
            self._settler(decider, action.hold),
            spawn=self._spawn,
            resume=resume,
            publish=publish,
        )

    async def _count(self, action: ReadUsage | ClaimRate, decider: Decider) -> Any:
        """A rate counter's read or claim: inline when it needs no wait (in-process counters; SQLite's
        when no other process holds its lock), else on a worker thread (Redis, a locked SQLite file),
        so the event loop serves other requests meanwhile."""
        balancer = self._balancer
        assert balancer is not None
        if balancer.counters_block:
            try:
                return balancer.perform_now(action)
            except WouldWait:
                return await asyncio.to_thread(balancer.perform, action)
        return balancer.perform(action)

    async def _bookkeep(self, action: Bookkeep, decider: Decider) -> None:
        """``SyncRouter._bookkeep``; a claim's settle inline when the counters need no wait for it,
        else (Redis, a locked SQLite file, provider headers to fold in) on a worker thread, so the
        event loop never waits on them."""
        balancer = self._balancer
        assert balancer is not None
        if balancer.record_blocks(action):
            try:
                balancer.record_now(action)
            except WouldWait:
                await asyncio.to_thread(balancer.record, action)
        else:
            balancer.record(action)

    async def _publish_later(self, decider: Decider) -> None:
        await self._drive(decider.publishing())

    async def _publish(self, action: Publish, decider: Decider) -> None:
        """Written on the store's own worker thread, in order, while the request goes on: the event
        loop never waits on Redis."""
        store = self._breaker_store
        assert store is not None
        loop = asyncio.get_running_loop()
        self._spawn(loop.run_in_executor(store.worker, store.write, action.writes))

    async def _fetch(self, action: Fetch, decider: Decider) -> None:
        """Read on the store's worker thread; this request plans on the last refresh meanwhile."""
        store = self._breaker_store
        assert store is not None
        loop = asyncio.get_running_loop()
        read = loop.run_in_executor(store.worker, store.fetch, action.keys)

        async def land() -> None:
            try:
                values = await read
            except BaseException:
                action.done(None)  # cancelled (closing): a later request asks again
                raise
            action.done(values)

        self._spawn(land())

    def _settler(
        self, decider: Decider, hold: Hold | None
    ) -> Callable[[float | None, bool], Awaitable[None]] | None:
        return None if hold is None else partial(self._settle_later, decider, hold)

    async def _settle_later(self, decider: Decider, hold: Hold, cost: float | None, estimated: bool) -> None:
        await self._drive(decider.settling(hold, cost, estimated))

    async def _resume(self, decider: Decider, prefix: Prefix) -> Resumed | None:
        """``SyncRouter._resume``, awaited."""
        resumed: Resumed | None = await self._drive(decider.continuing(prefix))
        return None if resumed is None else resumed._replace(settle=self._settler(decider, resumed.hold))

    async def _pause(self, action: Sleep, decider: Decider) -> None:
        await self._sleep(action.seconds)

    async def _close_stream(self, action: Close, decider: Decider) -> None:
        await _close_quietly(action.chunks)

    # ------------------------------------------------------------------ budgets: the ledger I/O

    def _ledger(self) -> AsyncGuarded:
        if self._ledger_handle is None:
            self._ledger_handle = open_async_guarded_ledger(
                self._ledger_url, journal=self.policy.ledger_journal
            )
        ledger: AsyncGuarded = self._ledger_handle
        return ledger

    def _spawn(self, work: Awaitable[None]) -> None:
        """Run a settle in the background (an abandoned stream's), kept referenced until it ends."""

        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _totals(self, action: ReadTotals, decider: Decider) -> Mapping[str, Totals] | Failed:
        try:
            return await self._ledger().totals(action.lines, now=action.now)
        except LedgerError as exc:
            return Failed(exc)

    async def _reserve(self, action: Reserve, decider: Decider) -> Hold | Refusal | Failed:
        ledger = self._ledger()
        try:
            return await ledger.reserve(
                action.lines, action.amount_usd, ttl_s=action.ttl_s, now=action.now, hold_id=action.hold_id
            )
        except LedgerError as exc:
            return Failed(exc)

    async def _unchecked(self, action: Unchecked, decider: Decider) -> Hold:
        ask = action.ask
        return self._ledger().unchecked(ask.lines, ask.amount_usd, ttl_s=ask.ttl_s, now=ask.now)

    async def _settle(self, action: Settle, decider: Decider) -> Mapping[str, Totals] | LedgerError:
        return await self._ledger().settle(
            action.hold, action.amount_usd, now=action.now, estimated=action.estimated
        )

    async def _release(self, action: Release, decider: Decider) -> None:
        await self._ledger().release(action.hold)

    async def _warn(self, action: Warn, decider: Decider) -> bool:
        return await self._ledger().first_warning(action.line, action.threshold)

    async def close(self) -> None:
        if self._background:  # abandoned streams' settles: let them land before the ledger closes
            await asyncio.gather(*self._background, return_exceptions=True)
        for adapter in {id(a): a for a in self._adapters.values()}.values():
            await adapter.close()
        if self._ledger_handle is not None:
            await self._ledger_handle.close()
            self._ledger_handle = None
        await self._turns.aclose()
        if self._breaker_store is not None:
            self._breaker_store.close()
        if self._balancer is not None:
            self._balancer.close()
        if self._outcomes is not None:
            await asyncio.to_thread(self._outcomes.close)

    async def feedback(self, request: object, score: object) -> None:
        """``await client.feedback``: written on a worker thread, never on the event loop."""
        if self._outcomes is None:
            raise _no_feedback()
        await asyncio.to_thread(self._outcomes.feedback, request, score)


def _no_feedback() -> Exception:
    from router._exceptions import UnknownRequestError

    return UnknownRequestError(
        "this client keeps no feedback: its policy has no route or feature with `adequacy:` (and "
        "logging.log_content is off), so no request was recorded. Name an adequacy file on the "
        "route (docs/adequacy.md)."
    )


def _raise(router: object, action: Raise, decider: Decider) -> NoReturn:
    raise action.error


async def _araise(router: object, action: Raise, decider: Decider) -> NoReturn:
    raise action.error


# Which method performs which action: the drivers' whole vocabulary (router._decide has the grammar).
_SYNC_PERFORM: Final[Mapping[type, Callable[..., Any]]] = {
    Call: SyncRouter._call,
    OpenStream: SyncRouter._open,
    Wrap: SyncRouter._wrap,
    Sleep: SyncRouter._pause,
    Close: SyncRouter._close_stream,
    ReadTotals: SyncRouter._totals,
    Reserve: SyncRouter._reserve,
    Unchecked: SyncRouter._unchecked,
    Settle: SyncRouter._settle,
    Release: SyncRouter._release,
    Warn: SyncRouter._warn,
    Publish: SyncRouter._publish,
    Fetch: SyncRouter._fetch,
    ReadUsage: SyncRouter._count,
    ClaimRate: SyncRouter._count,
    Bookkeep: SyncRouter._bookkeep,
    Raise: _raise,
}
_ASYNC_PERFORM: Final[Mapping[type, Callable[..., Awaitable[Any]]]] = {
    Call: AsyncRouter._call,
    OpenStream: AsyncRouter._open,
    Wrap: AsyncRouter._wrap,
    Sleep: AsyncRouter._pause,
    Close: AsyncRouter._close_stream,
    ReadTotals: AsyncRouter._totals,
    Reserve: AsyncRouter._reserve,
    Unchecked: AsyncRouter._unchecked,
    Settle: AsyncRouter._settle,
    Release: AsyncRouter._release,
    Warn: AsyncRouter._warn,
    Publish: AsyncRouter._publish,
    Fetch: AsyncRouter._fetch,
    ReadUsage: AsyncRouter._count,
    ClaimRate: AsyncRouter._count,
    Bookkeep: AsyncRouter._bookkeep,
    Raise: _araise,
}
