"""The routers behind ``router.OpenAI`` and ``router.AsyncOpenAI`` (``router._openai``).

``_BaseClient`` holds everything that does no I/O (policy, engine, planning, error mapping);
``SyncRouter`` and ``AsyncRouter`` only drive the session: call, await, report back. They never
go through openai's request machinery: the public clients are openai's, these are their hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import httpx
import openai
from openai.types.model import Model

from policies.plan import UnknownModelError
from policies.schema import Policy
from providers._aiohttp import TransportLimits
from providers.base import AsyncAdapter, Deployment, SyncAdapter, Timeout
from providers.catalog import ModelInfo
from providers.errors import timeout_error
from providers.litellm_adapter import AsyncLiteLLMAdapter, LiteLLMAdapter
from providers.openai_compat import AsyncOpenAICompatible, OpenAICompatible
from router._budgets import BudgetBook
from router._engine import Engine
from router._events import Events
from router._exceptions import ModelNotFoundError
from router._health import Breakers, SharedBreakers
from router._observations import Observations
from router._pipeline import Request, Session, StreamTracker, content_filtered, normalize, usage_of
from router._response import RoutedChatCompletion, completion
from router._resume import async_resumer, sync_resumer
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

if TYPE_CHECKING:
    from router.ledger._guard import AsyncGuarded, Guarded

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

    # Whether requests run on an event loop, which must never wait on Redis (shared breakers).
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
        self._breakers = _breakers_for(
            self._ledger_url, tuple(self._engine.deployments), clock, wall_clock, background=self._ASYNC
        )
        self._events = Events(
            policy_hash=self._engine.policy_hash,
            log_content=bool(policy_spec.logging and policy_spec.logging.log_content),
            # OpenTelemetry: spans go to this provider, or to the global one when the app set it.
            tracer_provider=tracer_provider,
        )
        if policy_spec.logging is not None:
            from router.logging import configure_from_spec

            configure_from_spec(policy_spec.logging, source=policy_spec.source)
        self._budgets = BudgetBook(policy_spec) if BudgetBook(policy_spec).has_budgets else None
        self._litellm_warming = False

    @property
    def policy(self) -> Policy:
        return self._engine.policy

    def _request(self, kwargs: Mapping[str, Any]) -> tuple[Request, tuple[Line, ...], tuple[Line, ...]]:
        """The normalized request, its budget lines, and those of them that may downgrade."""
        request: Request = normalize(kwargs, self.timeout)
        if self._budgets is None:
            return request, (), ()
        lines = self._budgets.lines_for(request.route.feature, self._wall_clock())
        budgets = self._budgets
        return (
            request,
            lines,
            tuple(line for line in lines if budgets.spec_for(line).on_exceed == "downgrade"),
        )

    def _session(
        self,
        request: Request,
        lines: tuple[Line, ...] = (),
        downgrade: tuple[Line, ...] = (),
        totals: Mapping[str, Totals] | None = None,
    ) -> Session:
        """Plan the request; ``totals`` (read from the ledger) let a downgrade budget filter models."""
        # Plan on settled spend only: a model blocked just by reservations in flight may fit once they
        # settle, and the reservation (which waits for that) decides; planning drops only models
        # that cannot fit in this window at all.
        settled = {key: Totals(t.spent_usd, 0.0) for key, t in totals.items()} if totals is not None else None
        check = _DowngradeCheck(downgrade, settled) if downgrade and settled is not None else None
        try:
            plan = self._engine.planner.plan(
                request.route, health=self._breakers.snapshot(), budget=check, observed=self._observations
            )
        except UnknownModelError as exc:
            raise ModelNotFoundError(str(exc)) from None
        if not self._litellm_warming and self._engine.litellm_models:
            self._warm_litellm(plan)
        session = Session(
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
        )
        if check is not None:
            for model, refusal in check.rejected:
                session.budget_downgraded(model, refusal)
        if not plan.candidates:
            if check is not None and check.refusal is not None:
                session.budget_refused_before_any(check.refusal)
            raise session.exhausted()
        return session

    def _warm_litellm(self, plan: Any) -> None:
        """A plan that may reach a litellm model starts litellm's import in a background thread, while
        the earlier candidates are tried; a call that needs it waits for it within its deadline."""
        litellm_models = self._engine.litellm_models
        if any(candidate.model in litellm_models for candidate in plan.candidates):
            self._litellm_warming = True
            self._litellm.warm()

    def _give_up(self, session: Session) -> Any:
        """No model answered: a content-filtered answer kept on the way (a completion or a stream), or
        the session's error."""
        session.budget_exhausted()
        kept = session.kept_answer()
        if kept is None:
            raise session.exhausted()
        deployment, answer, routing = kept
        if isinstance(answer, dict):
            return completion(answer, deployment.name, routing)
        return answer

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


def _breakers_for(
    ledger_url: str | None,
    models: tuple[str, ...],
    clock: Callable[[], float],
    wall_clock: Callable[[], float],
    *,
    background: bool = False,
) -> Breakers:
    """In-process breakers; shared through Redis when the ledger is Redis, so a fleet learns together."""
    if ledger_url and ledger_url.startswith(("redis://", "rediss://")):
        return SharedBreakers(clock, ledger_url, models, wall_clock=wall_clock, background=background)
    return Breakers(clock)


class _DowngradeCheck:
    """The planner's budget filter for ``on_exceed: downgrade`` caps, from figures read before planning.

    Keeps the smallest refusal it saw, so that when no model fits, the error names the best case.
    """

    __slots__ = ("_lines", "_totals", "refusal", "rejected")

    def __init__(self, lines: tuple[Line, ...], totals: Mapping[str, Totals]) -> None:
        self._lines = lines
        self._totals = totals
        self.refusal: Refusal | None = None
        self.rejected: list[tuple[str, Refusal]] = []

    def __call__(self, model: ModelInfo, worst_usd: float) -> str | None:
        refusal = BudgetBook.refusal(self._lines, self._totals, worst_usd)
        if refusal is None:
            return None
        if self.refusal is None or refusal.amount_usd < self.refusal.amount_usd:
            self.refusal = refusal
        self.rejected.append((model.name, refusal))
        return BudgetBook.downgrade_reason(refusal)


# Settle at the reserved worst case: the provider sent no usage, so the exact cost is unknown.
_WORST_CASE: Final = float("nan")


def _sent(exc: BaseException) -> bool:
    """Whether a failed call may have reached the provider, which then bills it: a timeout after the
    connection was made (a read timeout, our deadline). A refused connection, a connect or pool
    timeout, or an error the provider answered with are not charged."""
    if isinstance(exc, TimeoutError):
        return True  # our deadline (asyncio.timeout) cut a call in flight
    if not isinstance(exc, openai.APITimeoutError):
        return False
    return not isinstance(exc.__cause__, httpx.ConnectTimeout | httpx.PoolTimeout)


# --------------------------------------------------------------------------- sync


class SyncRouter(_BaseClient):
    """The sync driver behind ``router.OpenAI``: performs what the session decides."""

    def __init__(
        self, *, http_client: httpx.Client | None, sleep: Callable[[float], None], **config: Any
    ) -> None:
        super().__init__(**config)
        self._sleep = sleep
        fast = OpenAICompatible(http_client)
        self._litellm = slow = LiteLLMAdapter()
        self._adapters: dict[str, SyncAdapter] = {"openai": fast, "azure": fast, "litellm": slow}

    def _create(self, kwargs: Mapping[str, Any]) -> RoutedChatCompletion | RoutedStream:
        request, lines, downgrade = self._request(kwargs)
        totals = None
        if downgrade:
            try:
                totals = self._ledger().totals(downgrade, now=self._wall_clock())
            except LedgerError:
                if self._budgets is None or not self._budgets.fail_open(lines):
                    raise
        session = self._session(request, lines, downgrade, totals)
        if request.stream:
            return self._open_stream(session)
        while (step := session.next_step()) is not None:
            if step.wait_s:
                self._sleep(step.wait_s)
            deployment = step.deployment
            hold = self._reserve(session, deployment) if lines else None
            if hold is False:
                continue
            session.begin(step)
            try:
                data = self._adapters[deployment.adapter].complete(deployment, request.body, step.options)
            except openai.APIError as exc:
                self._settle(session, hold, None, estimated=_sent(exc))
                session.failed(deployment, exc)
                continue
            except BaseException:
                # Interrupted (KeyboardInterrupt, ...) once the call began: the provider may bill it.
                self._settle(session, hold, None, estimated=True)
                raise
            usage = usage_of(data.get("usage"), data.get("service_tier"))
            self._settle(session, hold, session.cost_of(deployment, usage) if usage else _WORST_CASE)
            if content_filtered(data):
                session.content_filtered(deployment, data, usage)
                continue
            return completion(data, deployment.name, session.succeeded(deployment, usage))
        answer: RoutedChatCompletion = self._give_up(session)
        return answer

    def _open_stream(self, session: Session) -> RoutedStream:
        """Read each candidate's stream up to its first content; fall back unseen until then."""
        request = session.request
        while (step := session.next_step()) is not None:
            if step.wait_s:
                self._sleep(step.wait_s)
            deployment = step.deployment
            hold = self._reserve(session, deployment) if session.budgeted else None
            if hold is False:
                continue
            session.begin(step)
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
                    # Reads are bounded one by one; chunks without content must not add up past the limit.
                    late = session.first_content_overdue()
                    if late is not None:
                        _close_sync(chunks)
                        raise late
            except openai.APIError as exc:
                self._settle(session, hold, None, estimated=_sent(exc))
                session.failed(deployment, exc)
                continue
            except BaseException:
                self._settle(session, hold, None, estimated=True)
                raise
            settle = None if not hold else partial(self._settle, session, hold)
            stream = RoutedStream(
                session,
                deployment,
                buffered,
                tracker,
                chunks,
                session.attempt_elapsed_ms(),
                settle,
                resume=sync_resumer(self, session),
            )
            if tracker.content_filtered:
                stream.settle_now()
                session.content_filtered(deployment, stream, tracker.usage)
                continue
            return stream
        return self._give_up(session)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ budgets: the ledger I/O

    def _ledger(self) -> Guarded:
        if self._ledger_handle is None:
            self._ledger_handle = open_guarded_ledger(self._ledger_url, journal=self.policy.ledger_journal)
        ledger: Guarded = self._ledger_handle
        return ledger

    def _reserve(self, session: Session, deployment: Deployment) -> Hold | Literal[False] | None:
        """Reserve this call's worst case; False to skip the model (downgrade). May wait, or raise."""
        ask = session.budget_ask(deployment)
        if ask is None:
            return None
        ledger = self._ledger()
        while True:
            now = self._wall_clock()
            try:
                outcome = ledger.reserve(ask.lines, ask.amount_usd, ttl_s=ask.ttl_s, now=now)
            except LedgerError as exc:
                unchecked = self._budgets is not None and self._budgets.fail_open(ask.lines)
                session.ledger_failed(exc, ask.lines, unchecked=unchecked)
                if not unchecked:
                    raise
                return ledger.unchecked(ask.lines, ask.amount_usd, ttl_s=ask.ttl_s, now=now)
            if isinstance(outcome, Hold):
                session.budget_held()
                return outcome
            wait = session.budget_refused(deployment, outcome)
            if wait is None:
                return False
            self._sleep(wait)

    def _settle(
        self,
        session: Session,
        hold: Hold | Literal[False] | None,
        cost: float | None,
        estimated: bool = False,
    ) -> None:
        """Settle a hold at the call's cost (``_WORST_CASE``: as reserved), or release it (None).

        ``estimated``: cancelled after it was sent, so charged the worst case (or ``cost``, if more).
        A ledger that fails now costs no answer: the charge is journaled (``Guarded.settle``).
        """
        if not hold:
            return
        ledger = self._ledger()
        if cost is None and not estimated:
            ledger.release(hold)
            return
        amount = _amount(hold, cost, estimated)
        totals = ledger.settle(hold, amount, now=self._wall_clock(), estimated=estimated)
        if isinstance(totals, LedgerError):
            session.ledger_journaled(totals, hold, amount)
            return
        if estimated:
            session.budget_estimated(hold, amount, totals)
        for line, threshold in session.budget_settled(hold, totals, amount):
            if ledger.first_warning(line, threshold):
                session.budget_warned(line, threshold)

    def close(self) -> None:
        for adapter in {id(a): a for a in self._adapters.values()}.values():
            adapter.close()
        if self._ledger_handle is not None:
            self._ledger_handle.close()
            self._ledger_handle = None
        self._turns.close()
        self._breakers.close()


# --------------------------------------------------------------------------- async


def _amount(hold: Hold, cost: float | None, estimated: bool) -> float:
    """What to charge: the cost; the reserved worst case when it is unknown (``_WORST_CASE``); and,
    for a call cancelled after it was sent, never less than the worst case."""
    if cost is None or cost is _WORST_CASE:
        return hold.amount_usd
    return max(cost, hold.amount_usd) if estimated else cost


def _deadline_timeout() -> openai.APITimeoutError:
    return timeout_error()


def _close_sync(chunks: Iterator[dict[str, Any]]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


async def _close_quietly(chunks: AsyncIterator[dict[str, Any]]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


class AsyncRouter(_BaseClient):
    """The async driver behind ``router.AsyncOpenAI``: performs what the session decides."""

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
        request, lines, downgrade = self._request(kwargs)
        totals = None
        if downgrade:
            try:
                totals = await self._ledger().totals(downgrade, now=self._wall_clock())
            except LedgerError:
                if self._budgets is None or not self._budgets.fail_open(lines):
                    raise
        session = self._session(request, lines, downgrade, totals)
        if request.stream:
            return await self._open_stream(session)
        while (step := session.next_step()) is not None:
            if step.wait_s:
                await self._sleep(step.wait_s)
            deployment = step.deployment
            hold = await self._reserve(session, deployment) if lines else None
            if hold is False:
                continue
            session.begin(step)
            try:
                # The deadline as a hard stop too: a server that trickles bytes never trips a read timeout.
                async with asyncio.timeout(session.remaining_s()):
                    data = await self._adapters[deployment.adapter].complete(
                        deployment, request.body, step.options
                    )
            except (openai.APIError, TimeoutError) as exc:
                await self._settle(session, hold, None, estimated=_sent(exc))
                session.failed(deployment, exc if isinstance(exc, openai.APIError) else _deadline_timeout())
                continue
            except BaseException:
                # Cancelled (the caller's timeout, a shutdown) once the call began: the provider may
                # bill it, so charge the worst case now (marked estimated), not nothing.
                await self._settle(session, hold, None, estimated=True)
                raise
            usage = usage_of(data.get("usage"), data.get("service_tier"))
            await self._settle(session, hold, session.cost_of(deployment, usage) if usage else _WORST_CASE)
            if content_filtered(data):
                session.content_filtered(deployment, data, usage)
                continue
            return completion(data, deployment.name, session.succeeded(deployment, usage))
        answer: RoutedChatCompletion = self._give_up(session)
        return answer

    async def _open_stream(self, session: Session) -> AsyncRoutedStream:
        """Read each candidate's stream up to its first content; fall back unseen until then."""
        request = session.request
        while (step := session.next_step()) is not None:
            if step.wait_s:
                await self._sleep(step.wait_s)
            deployment = step.deployment
            hold = await self._reserve(session, deployment) if session.budgeted else None
            if hold is False:
                continue
            session.begin(step)
            tracker = StreamTracker()
            buffered: list[dict[str, Any]] = []
            chunks: AsyncIterator[dict[str, Any]] = self._adapters[deployment.adapter].stream(
                deployment, request.body, step.options
            )
            try:
                async with asyncio.timeout(session.first_content_wait_s()):
                    async for data in chunks:
                        tracker.observe(data)
                        buffered.append(data)
                        if tracker.committed:
                            break
            except (openai.APIError, TimeoutError) as exc:
                if isinstance(exc, TimeoutError):
                    await _close_quietly(chunks)
                await self._settle(session, hold, None, estimated=_sent(exc))
                late = session.first_content_overdue() or _deadline_timeout()
                session.failed(deployment, exc if isinstance(exc, openai.APIError) else late)
                continue
            except BaseException:
                await _close_quietly(chunks)
                await self._settle(session, hold, None, estimated=True)
                raise
            settle = None if not hold else partial(self._settle, session, hold)
            stream = AsyncRoutedStream(
                session,
                deployment,
                buffered,
                tracker,
                chunks,
                session.attempt_elapsed_ms(),
                settle,
                spawn=self._spawn,
                resume=async_resumer(self, session),
            )
            if tracker.content_filtered:
                await stream.settle_now()
                session.content_filtered(deployment, stream, tracker.usage)
                continue
            return stream
        return self._give_up(session)  # type: ignore[no-any-return]

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

    async def _reserve(self, session: Session, deployment: Deployment) -> Hold | Literal[False] | None:
        """Reserve this call's worst case; False to skip the model (downgrade). May wait, or raise."""
        ask = session.budget_ask(deployment)
        if ask is None:
            return None
        ledger = self._ledger()
        while True:
            now = self._wall_clock()
            try:
                outcome = await ledger.reserve(ask.lines, ask.amount_usd, ttl_s=ask.ttl_s, now=now)
            except LedgerError as exc:
                unchecked = self._budgets is not None and self._budgets.fail_open(ask.lines)
                session.ledger_failed(exc, ask.lines, unchecked=unchecked)
                if not unchecked:
                    raise
                return ledger.unchecked(ask.lines, ask.amount_usd, ttl_s=ask.ttl_s, now=now)
            if isinstance(outcome, Hold):
                session.budget_held()
                return outcome
            wait = session.budget_refused(deployment, outcome)
            if wait is None:
                return False
            await self._sleep(wait)

    async def _settle(
        self,
        session: Session,
        hold: Hold | Literal[False] | None,
        cost: float | None,
        estimated: bool = False,
    ) -> None:
        """``OpenAI._settle``, awaited."""
        if not hold:
            return
        ledger = self._ledger()
        if cost is None and not estimated:
            await ledger.release(hold)
            return
        amount = _amount(hold, cost, estimated)
        totals = await ledger.settle(hold, amount, now=self._wall_clock(), estimated=estimated)
        if isinstance(totals, LedgerError):
            session.ledger_journaled(totals, hold, amount)
            return
        if estimated:
            session.budget_estimated(hold, amount, totals)
        for line, threshold in session.budget_settled(hold, totals, amount):
            if await ledger.first_warning(line, threshold):
                session.budget_warned(line, threshold)

    async def close(self) -> None:
        if self._background:  # abandoned streams' settles: let them land before the ledger closes
            await asyncio.gather(*self._background, return_exceptions=True)
        for adapter in {id(a): a for a in self._adapters.values()}.values():
            await adapter.close()
        if self._ledger_handle is not None:
            await self._ledger_handle.close()
            self._ledger_handle = None
        await self._turns.aclose()
        self._breakers.close()
