"""Budget ledgers: atomic reserve -> settle of spend per budget line, in memory, SQLite or Redis.

``open_ledger(url)`` / ``open_async_ledger(url)`` pick the backend from a URL:

- ``memory://`` — this process only, forgotten on exit;
- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's convention:
  the path is what follows the third slash) — one machine, many processes; ``?busy_timeout_s=N``
  sets how long a call waits for another process's write lock (default 5) before a LedgerError;
- ``redis://host:port/db`` or ``rediss://…`` — many machines (needs ``router-sdk[redis]``);
- ``None`` — SQLite at ``$ROUTER_LEDGER`` if set (a path, or any URL above), else
  ``$XDG_STATE_HOME/router/ledger.sqlite3`` (``~/.local/state/router/ledger.sqlite3``).

Backends are imported when opened, so ``import router`` loads neither sqlite3 nor redis.
``open_guarded_ledger`` / ``open_async_guarded_ledger`` add the fault contract the clients rely
on (``_guard``): LedgerErrors with the URL's credentials redacted, and a write-ahead journal for
charges the ledger could not take (``<file>.router-journal`` beside a SQLite ledger; for Redis,
``$XDG_STATE_HOME/router/journal-<hash of the URL>.jsonl``, or the path given).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, TypeVar
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from router.ledger._types import AsyncLedger, Hold, Ledger, LedgerError, Line, Refusal, Report, Totals
from router.ledger._windows import WINDOWS, iso_utc, window_bounds

if TYPE_CHECKING:
    from router.ledger._guard import AsyncGuarded, Guarded

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
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
    "open_async_guarded_ledger",
    "open_async_ledger",
    "open_guarded_ledger",
    "open_ledger",
    "parse_ledger_url",
    "redact_url",
    "window_bounds",
]

# Bounded: a process holding the write lock longer than this makes the call fail with a LedgerError
# (fail closed or open, as the budget says) rather than hang the request.
DEFAULT_BUSY_TIMEOUT_S: Final = 5.0

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
    # SQLite: how long a call waits for another process's write lock (?busy_timeout_s=N; 0: not at all)
    busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S

    def __repr__(self) -> str:
        return f"LedgerTarget({self.kind!r}, {self.describe()!r})"

    def describe(self) -> str:
        """The URL to show: in messages, ``router spend``, events; credentials redacted."""
        if self.kind == "memory":
            return "memory://"
        if self.kind == "sqlite":
            return f"sqlite:///{self.location}"
        return redact_url(self.location)

    def secrets(self) -> tuple[str, ...]:
        """The URL's credentials, to scrub from a backend's error text."""
        if self.kind != "redis":
            return ()
        parts = urlsplit(self.location)
        found = [parts.password or ""]
        found += [value for key, value in parse_qsl(parts.query) if key.lower() in _SECRET_PARAMS]
        return tuple(s for s in found if s)


_SECRET_PARAMS: Final = frozenset({"password", "pass", "pwd", "token", "secret", "auth"})


def redact_url(url: str) -> str:
    """``url`` with any password (userinfo or a query parameter) replaced by ``***``; the user stays."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            # A lone userinfo (redis://secret@host) may be a password: hide it too.
            netloc = f"{user}:***@{host}" if colon else f"***@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = "&".join(
                f"{quote(k)}={'***' if k.lower() in _SECRET_PARAMS else quote(v)}" for k, v in pairs
            )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<a ledger URL that could not be parsed>"


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
        path, _, query = rest[1:].partition("?")
        busy = sqlite_busy_timeout(url, query) if query else DEFAULT_BUSY_TIMEOUT_S
        return LedgerTarget("sqlite", os.path.expanduser(path), busy_timeout_s=busy)
    if sep and scheme in ("redis", "rediss") and rest:
        return LedgerTarget("redis", url)
    shown = redact_url(url)
    raise ValueError(
        f"unknown ledger URL {shown!r}; accepted: {ACCEPTED}, or none for the default SQLite file"
    )


def sqlite_busy_timeout(url: str, query: str) -> float:
    """A SQLite URL's query (what follows ``?``): its one parameter, ``busy_timeout_s=N`` (0 to
    3600 seconds); a ValueError for anything else. The policy's check of ``ledger:`` asks it too."""
    pairs = parse_qsl(query, keep_blank_values=True)
    if len(pairs) == 1 and pairs[0][0] == "busy_timeout_s":
        try:
            value = float(pairs[0][1])
        except ValueError:
            value = -1.0
        if 0 <= value < 3600:
            return value
    raise ValueError(
        f"ledger URL {url!r}: the only query parameter a SQLite ledger takes is busy_timeout_s=N"
        f" (seconds, 0 to 3600); accepted: {ACCEPTED}"
    )


def open_ledger(url: str | None = None) -> Ledger:
    """A ledger for sync code; raises ValueError for a URL it cannot read, LedgerError if it cannot open."""
    target = _prepare(url)
    if target.kind == "memory":
        from router.ledger.memory import MemoryLedger

        return MemoryLedger()
    if target.kind == "sqlite":
        from router.ledger.sqlite import SqliteLedger

        return SqliteLedger(target.location, busy_timeout_s=target.busy_timeout_s)
    try:
        from router.ledger.redis import RedisLedger
    except ImportError as exc:
        raise _no_redis(exc) from exc
    return _redis_open(target, RedisLedger)


def open_async_ledger(url: str | None = None) -> AsyncLedger:
    """``open_ledger`` for asyncio code."""
    target = _prepare(url)
    if target.kind == "memory":
        from router.ledger.memory import AsyncMemoryLedger

        return AsyncMemoryLedger()
    if target.kind == "sqlite":
        from router.ledger.sqlite import AsyncSqliteLedger

        return AsyncSqliteLedger(target.location, busy_timeout_s=target.busy_timeout_s)
    try:
        from router.ledger.redis import AsyncRedisLedger
    except ImportError as exc:
        raise _no_redis(exc) from exc
    return _redis_open(target, AsyncRedisLedger)


def _redis_open(target: LedgerTarget, kind: type[_R]) -> _R:
    try:
        return kind(target.location)  # type: ignore[call-arg]
    except ValueError as exc:  # redis-py reading the URL: its message may quote it
        from router.ledger._guard import translate

        raise translate(exc, target.describe(), "open", target.secrets()) from None


def journal_path(target: LedgerTarget, configured: str | os.PathLike[str] | None = None) -> Path | None:
    """Where charges the ledger could not take wait: ``configured``, else beside the SQLite file,
    else (Redis) in the state directory, one file per ledger URL; None for ``memory://``."""
    if configured is not None:
        return Path(os.path.expanduser(configured))
    if target.kind == "memory":
        return None
    if target.kind == "sqlite":
        return Path(target.location + ".router-journal")
    digest = hashlib.sha256(target.location.encode()).hexdigest()[:16]
    return default_ledger_path().parent / f"journal-{digest}.jsonl"


def open_guarded_ledger(url: str | None = None, *, journal: str | os.PathLike[str] | None = None) -> Guarded:
    """``open_ledger`` under the fault contract (``router.ledger._guard``); what the clients use."""
    from router.ledger._guard import Guarded
    from router.ledger._journal import Journal

    target = parse_ledger_url(url)  # a URL it cannot read is a ValueError now, not a fault later
    path = journal_path(target, journal)
    journal_ = None if path is None else Journal(path)
    return Guarded(lambda: open_ledger(url), target.describe(), journal_, target.secrets())


def open_async_guarded_ledger(
    url: str | None = None, *, journal: str | os.PathLike[str] | None = None
) -> AsyncGuarded:
    """``open_async_ledger`` under the fault contract."""
    from router.ledger._guard import AsyncGuarded
    from router.ledger._journal import Journal

    target = parse_ledger_url(url)  # a URL it cannot read is a ValueError now, not a fault later
    path = journal_path(target, journal)
    journal_ = None if path is None else Journal(path)
    return AsyncGuarded(lambda: open_async_ledger(url), target.describe(), journal_, target.secrets())


_R = TypeVar("_R")


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
