"""The turn stores behind ``previous_response_id`` (router/_turns.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from router._turns import TURN_TTL_S, MemoryTurns, SqliteTurns, open_turns

TURN = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_memory_keeps_only_the_newest_turns() -> None:
    turns = MemoryTurns(capacity=2)
    for name in ("a", "b", "c"):
        turns.put(name, TURN)
    assert turns.get("a") is None
    assert turns.get("b") == TURN and turns.get("c") == TURN


def test_a_turn_expires_after_its_time_to_live(tmp_path: Path) -> None:
    memory_clock, sqlite_clock = Clock(), Clock()
    stores = [
        (memory_clock, MemoryTurns(clock=memory_clock)),
        (sqlite_clock, SqliteTurns(str(tmp_path / "ledger.db"), clock=sqlite_clock)),
    ]
    for clock, turns in stores:
        turns.put("a", TURN)
        clock.now += TURN_TTL_S - 1
        assert turns.get("a") == TURN
        clock.now += 2
        assert turns.get("a") is None


def test_a_returned_turn_is_a_copy_the_caller_may_change() -> None:
    turns = MemoryTurns()
    turns.put("a", TURN)
    got = turns.get("a")
    assert got is not None
    got.append({"role": "user", "content": "more"})
    assert turns.get("a") == TURN


def test_sqlite_turns_are_shared_by_two_stores_on_one_file_sync_and_async(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.db")
    SqliteTurns(path).put("a", TURN)
    assert asyncio.run(SqliteTurns(path).aget("a")) == TURN
    asyncio.run(SqliteTurns(path).aput("b", TURN))
    assert SqliteTurns(path).get("b") == TURN


def test_the_store_follows_the_ledger_url(tmp_path: Path) -> None:
    assert isinstance(open_turns(None), MemoryTurns)
    assert isinstance(open_turns("memory://"), MemoryTurns)
    assert isinstance(open_turns(f"sqlite:///{tmp_path / 'x.db'}"), SqliteTurns)
    assert open_turns("redis://localhost:1/0").describe() == "the ledger's Redis"
