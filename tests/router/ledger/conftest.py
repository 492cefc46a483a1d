"""Every ledger backend, sync and async, behind one async fixture, so each behaviour is tested once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from router.ledger import (
    AsyncLedger,
    Hold,
    Ledger,
    Line,
    Refusal,
    Report,
    Totals,
    open_async_ledger,
    open_ledger,
)


class SyncAsAsync:
    """A sync ledger seen through the async protocol: the same tests then drive both kinds."""

    def __init__(self, ledger: Ledger) -> None:
        self.sync = ledger

    async def reserve(
        self, lines: Sequence[Line], amount_usd: float, *, ttl_s: float, now: float
    ) -> Hold | Refusal:
        return self.sync.reserve(lines, amount_usd, ttl_s=ttl_s, now=now)

    async def settle(self, hold: Hold, cost_usd: float, *, now: float) -> dict[str, Totals]:
        return self.sync.settle(hold, cost_usd, now=now)

    async def release(self, hold: Hold) -> None:
        self.sync.release(hold)

    async def totals(self, lines: Sequence[Line], *, now: float) -> dict[str, Totals]:
        return self.sync.totals(lines, now=now)

    async def first_warning(self, line: Line, threshold: float) -> bool:
        return self.sync.first_warning(line, threshold)

    async def report(self, *, now: float) -> Report:
        return self.sync.report(now=now)

    async def close(self) -> None:
        self.sync.close()


BACKENDS = ["memory", "sqlite", "redis"]


def backend_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture(params=[f"{b}-{kind}" for b in BACKENDS for kind in ("sync", "async")])
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncLedger]:
    """One fresh, empty ledger of each backend, through its sync or its async class."""
    backend, kind = request.param.split("-")
    url = backend_url(backend, tmp_path, request)
    opened: AsyncLedger = SyncAsAsync(open_ledger(url)) if kind == "sync" else open_async_ledger(url)
    yield opened
    await opened.close()
