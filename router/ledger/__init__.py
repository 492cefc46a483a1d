"""Budget ledgers: atomic reserve -> settle of spend per budget line, in memory, SQLite or Redis.

``open_ledger(url)`` / ``open_async_ledger(url)`` pick the backend from a URL:

- ``memory://`` — this process only, forgotten on exit;
- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's convention:
  the path is what follows the third slash) — one machine, many processes;
- ``redis://host:port/db`` or ``rediss://…`` — many machines (needs ``router-sdk[redis]``);
- ``None`` — SQLite at ``$ROUTER_LEDGER`` if set (a path, or any URL above), else
  ``$XDG_STATE_HOME/router/ledger.sqlite3`` (``~/.local/state/router/ledger.sqlite3``).

Backends are imported when opened, so ``import router`` loads neither sqlite3 nor redis.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from router.ledger._types import AsyncLedger, Hold, Ledger, LedgerError, Line, Refusal, Report, Totals
from router.ledger._windows import WINDOWS, iso_utc, window_bounds

__all__ = [
    "WINDOWS",
    "AsyncLedger",
    "Hold",
    "Ledger",
    "LedgerError",
    "LedgerTarget",
    "Line",
    "Refusal",
    "Report",
    "Totals",
    "default_ledger_path",
    "iso_utc",
    "open_async_ledger",
    "open_ledger",
    "parse_ledger_url",
    "window_bounds",
]

ACCEPTED: Final = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db, "
    "redis://host:port/db or rediss://host:port/db"
)


@dataclass(frozen=True, slots=True)
class LedgerTarget:
    """Where a ledger URL points, before anything is opened."""

    kind: Literal["memory", "sqlite", "redis"]
    location: str  # the SQLite path or the Redis URL; "" for memory
    default: bool = False  # the default SQLite file, whose directory we may create

    def describe(self) -> str:
        if self.kind == "memory":
            return "memory://"
        if self.kind == "sqlite":
            return f"sqlite:///{self.location}"
        return self.location


def default_ledger_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the ledger lives when neither the policy nor the client names one (XDG state dir)."""
    env = os.environ if env is None else env
    state = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "router" / "ledger.sqlite3"


def parse_ledger_url(url: str | None, env: Mapping[str, str] | None = None) -> LedgerTarget:
    """Read a ledger URL (see the module's docstring); a ValueError names the accepted forms."""
    if url is None:
        env = os.environ if env is None else env
        configured = env.get("ROUTER_LEDGER")
        if configured:
            if "://" in configured:
                return parse_ledger_url(configured, env)
            return LedgerTarget("sqlite", os.path.expanduser(configured), default=True)
        return LedgerTarget("sqlite", str(default_ledger_path(env)), default=True)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme == "memory" and not rest:
        return LedgerTarget("memory", "")
    if sep and scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        path = rest[1:]
        if "?" in path:
            raise ValueError(f"ledger URL {url!r}: query parameters are not supported; accepted: {ACCEPTED}")
        return LedgerTarget("sqlite", os.path.expanduser(path))
    if sep and scheme in ("redis", "rediss") and rest:
        return LedgerTarget("redis", url)
    raise ValueError(f"unknown ledger URL {url!r}; accepted: {ACCEPTED}, or none for the default SQLite file")


def open_ledger(url: str | None = None) -> Ledger:
    """A ledger for sync code; raises ValueError for a URL it cannot read, LedgerError if it cannot open."""
    target = _prepare(url)
    if target.kind == "memory":
        from router.ledger.memory import MemoryLedger

        return MemoryLedger()
    if target.kind == "sqlite":
        from router.ledger.sqlite import SqliteLedger

        return SqliteLedger(target.location)
    try:
        from router.ledger.redis import RedisLedger
    except ImportError as exc:
        raise _no_redis(exc) from exc
    return RedisLedger(target.location)


def open_async_ledger(url: str | None = None) -> AsyncLedger:
    """``open_ledger`` for asyncio code."""
    target = _prepare(url)
    if target.kind == "memory":
        from router.ledger.memory import AsyncMemoryLedger

        return AsyncMemoryLedger()
    if target.kind == "sqlite":
        from router.ledger.sqlite import AsyncSqliteLedger

        return AsyncSqliteLedger(target.location)
    try:
        from router.ledger.redis import AsyncRedisLedger
    except ImportError as exc:
        raise _no_redis(exc) from exc
    return AsyncRedisLedger(target.location)


def _prepare(url: str | None) -> LedgerTarget:
    target = parse_ledger_url(url)
    if target.default:
        try:
            Path(target.location).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create the ledger's directory for {target.location}: {exc}") from exc
    return target


def _no_redis(exc: ImportError) -> LedgerError:
    return LedgerError(f"a redis:// ledger needs the redis package: pip install 'router-sdk[redis]' ({exc})")
