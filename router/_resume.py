"""The I/O of mid-stream continuation: open the continuation that ``router._continuation`` decides.

A routed stream that was cut after content calls its resumer with the text the caller has; the
resumer reserves, calls and reads the continuation up to its first content, like any stream
attempt, and hands it back, or None when no candidate could continue (the stream then raises the
cut it could not recover). A continuation that fails, however (a 400 refusing the prefix, a 503,
silence), is recorded and passed over: the caller never sees its error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import openai

from providers.base import JSON, Deployment
from router._continuation import Prefix, enabled, next_continuation
from router._exceptions import BudgetExceededError
from router._pipeline import Session, StreamTracker
from router.ledger import LedgerError

if TYPE_CHECKING:
    from router._client import AsyncRouter, SyncRouter


@dataclass(frozen=True, slots=True)
class Opened:
    """A continuation read up to its first content: what a routed stream switches to."""

    deployment: Deployment
    buffered: list[JSON]
    tracker: StreamTracker
    rest: Any  # Iterator[JSON] or AsyncIterator[JSON]
    ttft_ms: float
    settle: Any  # the driver's settle for this attempt's hold, or None


SyncResume = Callable[[Prefix], Opened | None]
AsyncResume = Callable[[Prefix], Awaitable[Opened | None]]


def sync_resumer(router: SyncRouter, session: Session) -> SyncResume | None:
    """The resumer of a sync stream, or None when the request does not ask for continuation."""
    return partial(_resume_sync, router, session) if enabled(session) else None


def async_resumer(router: AsyncRouter, session: Session) -> AsyncResume | None:
    return partial(_resume_async, router, session) if enabled(session) else None


def _resume_sync(router: SyncRouter, session: Session, prefix: Prefix) -> Opened | None:
    from router._client import _close_sync, _sent

    while (planned := next_continuation(session, prefix)) is not None:
        step, body = planned
        if step.wait_s:
            router._sleep(step.wait_s)
        deployment = step.deployment
        try:
            hold = router._reserve(session, deployment) if session.budgeted else None
        except (BudgetExceededError, LedgerError):
            return None  # the budget refuses another call: the cut stands
        if hold is False:
            continue
        session.begin(step)
        tracker = StreamTracker()
        buffered: list[JSON] = []
        try:
            chunks: Iterator[JSON] = router._adapters[deployment.adapter].stream(
                deployment, body, step.options
            )
            for data in chunks:
                tracker.observe(data)
                buffered.append(data)
                if tracker.committed:
                    break
                late = session.first_content_overdue()
                if late is not None:
                    _close_sync(chunks)
                    raise late
        except openai.APIError as exc:
            router._settle(session, hold, None, estimated=_sent(exc))
            session.failed_quietly(deployment, exc)
            continue
        except BaseException:
            router._settle(session, hold, None, estimated=True)
            raise
        settle = None if not hold else partial(router._settle, session, hold)
        return Opened(deployment, buffered, tracker, chunks, session.attempt_elapsed_ms(), settle)
    return None


async def _resume_async(router: AsyncRouter, session: Session, prefix: Prefix) -> Opened | None:
    from router._client import _close_quietly, _deadline_timeout, _sent

    while (planned := next_continuation(session, prefix)) is not None:
        step, body = planned
        if step.wait_s:
            await router._sleep(step.wait_s)
        deployment = step.deployment
        try:
            hold = await router._reserve(session, deployment) if session.budgeted else None
        except (BudgetExceededError, LedgerError):
            return None
        if hold is False:
            continue
        session.begin(step)
        tracker = StreamTracker()
        buffered: list[JSON] = []
        chunks: AsyncIterator[JSON] = router._adapters[deployment.adapter].stream(
            deployment, body, step.options
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
            await router._settle(session, hold, None, estimated=_sent(exc))
            late = session.first_content_overdue() or _deadline_timeout()
            session.failed_quietly(deployment, exc if isinstance(exc, openai.APIError) else late)
            continue
        except BaseException:
            await _close_quietly(chunks)
            await router._settle(session, hold, None, estimated=True)
            raise
        settle = None if not hold else partial(router._settle, session, hold)
        return Opened(deployment, buffered, tracker, chunks, session.attempt_elapsed_ms(), settle)
    return None
