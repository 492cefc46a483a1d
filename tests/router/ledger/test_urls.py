"""Ledger URLs: which backend and where, the default file, and what is imported when."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.ledger import (
    LedgerError,
    LedgerTarget,
    default_ledger_path,
    open_async_ledger,
    open_ledger,
    parse_ledger_url,
)
from router.ledger.memory import AsyncMemoryLedger, MemoryLedger
from router.ledger.sqlite import AsyncSqliteLedger, SqliteLedger

segment = st.text(st.characters(codec="utf-8", exclude_characters="/?\x00~"), min_size=1, max_size=12)
relative_paths = st.lists(segment, min_size=1, max_size=4).map("/".join)


@settings(max_examples=100, deadline=None)
@given(path=relative_paths)
def test_three_slashes_name_a_path_relative_to_the_working_directory(path: str) -> None:
    assert parse_ledger_url(f"sqlite:///{path}") == LedgerTarget("sqlite", path)


@settings(max_examples=100, deadline=None)
@given(path=relative_paths)
def test_four_slashes_name_an_absolute_path(path: str) -> None:
    assert parse_ledger_url(f"sqlite:////{path}") == LedgerTarget("sqlite", f"/{path}")


@settings(max_examples=100, deadline=None)
@given(scheme=st.from_regex(r"[a-z][a-z0-9+.\-]{0,10}", fullmatch=True), rest=st.text(max_size=20))
def test_any_other_scheme_is_a_value_error_listing_the_accepted_forms(scheme: str, rest: str) -> None:
    url = f"{scheme}://{rest}"
    try:
        target = parse_ledger_url(url)
    except ValueError as exc:
        for form in ("memory://", "sqlite:///", "sqlite:////", "redis://", "rediss://"):
            assert form in str(exc)
    else:
        assert scheme in ("memory", "sqlite", "redis", "rediss") and target.kind in scheme


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("memory://", LedgerTarget("memory", "")),
        ("MEMORY://", LedgerTarget("memory", "")),
        ("redis://cache:6380/2", LedgerTarget("redis", "redis://cache:6380/2")),
        ("rediss://:secret@cache:6380/0", LedgerTarget("redis", "rediss://:secret@cache:6380/0")),
    ],
)
def test_memory_and_redis_urls(url: str, target: LedgerTarget) -> None:
    assert parse_ledger_url(url) == target


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite:///x.db?mode=ro", "memory://x", "ledger.db"]
)
def test_malformed_urls_are_value_errors(url: str) -> None:
    with pytest.raises(ValueError, match="accepted"):
        parse_ledger_url(url)


@pytest.mark.parametrize(
    ("query", "seconds"), [("", 5.0), ("?busy_timeout_s=0.25", 0.25), ("?busy_timeout_s=0", 0.0)]
)
def test_a_sqlite_url_sets_how_long_a_call_waits_for_the_write_lock_zero_meaning_not_at_all(
    tmp_path: Path, query: str, seconds: float
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}{query}"
    assert parse_ledger_url(url).busy_timeout_s == seconds
    ledger = open_ledger(url)
    try:
        assert isinstance(ledger, SqliteLedger)
        assert ledger.busy_timeout_s == seconds
        # what SQLite itself was told: 0 is no wait, not the default's 5 s
        assert ledger._db.execute("PRAGMA busy_timeout").fetchone()[0] == int(seconds * 1000)
    finally:
        ledger.close()


@pytest.mark.parametrize("query", ["busy_timeout_s=-1", "busy_timeout_s=3600", "busy_timeout_s=x", "mode=ro"])
def test_a_sqlite_url_takes_no_other_query(query: str) -> None:
    with pytest.raises(ValueError, match="busy_timeout_s=N"):
        parse_ledger_url(f"sqlite:///x.db?{query}")


def test_no_url_means_sqlite_in_the_xdg_state_directory() -> None:
    assert parse_ledger_url(None, env={"XDG_STATE_HOME": "/state"}) == LedgerTarget(
        "sqlite", "/state/router/ledger.sqlite3", default=True
    )
    home = Path("~").expanduser()
    assert default_ledger_path({}) == home / ".local" / "state" / "router" / "ledger.sqlite3"


def test_router_ledger_names_the_default_file_or_any_url() -> None:
    assert parse_ledger_url(None, env={"ROUTER_LEDGER": "/data/spend.db"}) == LedgerTarget(
        "sqlite", "/data/spend.db", default=True
    )
    assert parse_ledger_url(None, env={"ROUTER_LEDGER": "redis://r:6379/1"}).kind == "redis"


def test_the_default_ledger_creates_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROUTER_LEDGER", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    ledger = open_ledger(None)
    try:
        assert isinstance(ledger, SqliteLedger)
        assert (tmp_path / "state" / "router" / "ledger.sqlite3").is_file()
    finally:
        ledger.close()


def test_an_explicit_path_in_a_missing_directory_is_a_ledger_error_that_explains_slashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LedgerError, match="four slashes"):
        open_ledger("sqlite:///var/lib/app/ledger.db")
    assert not (tmp_path / "var").exists()


async def test_each_url_opens_its_backend(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'l.db'}"
    for url, sync_class, async_class in [
        ("memory://", MemoryLedger, AsyncMemoryLedger),
        (sqlite_url, SqliteLedger, AsyncSqliteLedger),
    ]:
        ledger, async_ledger = open_ledger(url), open_async_ledger(url)
        assert isinstance(ledger, sync_class) and isinstance(async_ledger, async_class)
        ledger.close()
        await async_ledger.close()


async def test_a_redis_url_opens_the_redis_backend(redis_url: str) -> None:
    from router.ledger.redis import AsyncRedisLedger, RedisLedger

    ledger, async_ledger = open_ledger(redis_url), open_async_ledger(redis_url)
    assert isinstance(ledger, RedisLedger) and isinstance(async_ledger, AsyncRedisLedger)
    ledger.close()
    await async_ledger.close()


def test_import_router_loads_neither_sqlite3_nor_redis() -> None:
    code = "import sys, router, router.ledger; print('sqlite3' in sys.modules, 'redis' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
