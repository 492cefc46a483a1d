"""Every ledger backend, sync and async, behind one async fixture, so each behaviour is tested once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.ledger import (
    AsyncLedger,
    open_async_ledger,
    open_ledger,
)
from router.ledger._types import InlineAsyncLedger


class SyncAsAsync(InlineAsyncLedger):
    """A sync ledger seen through the async protocol: the same tests then drive both kinds."""


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
