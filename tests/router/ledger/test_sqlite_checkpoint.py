"""The SQLite ledger checkpoints its WAL on a thread of its own, never inside a request's COMMIT
(the automatic checkpoint, two fsyncs in one request in fifty, was the everything-on p99 tail)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from router.ledger import Hold, Line
from router.ledger.sqlite import SqliteLedger

LINE = Line("support", "total", 0.0, None, 1.0)


def test_a_request_commit_never_checkpoints(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        assert ledger._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    finally:
        ledger.close()


def test_the_background_thread_copies_the_wal_into_the_database(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = SqliteLedger(path)
    try:
        before = path.stat().st_size
        for _ in range(300):
            hold = ledger.reserve((LINE,), 0.000001, ttl_s=60, now=1.0)
            assert isinstance(hold, Hold)
            ledger.settle(hold, 0.000001, now=1.0)
        # The requests wrote only the WAL; the checkpointer (about once a second) moves the pages
        # into the database file. Polled: a count of rounds, not a time bound on the machine.
        for _ in range(300):
            if path.stat().st_size > before:
                break
            time.sleep(0.05)
        assert path.stat().st_size > before
    finally:
        ledger.close()


def test_closing_the_ledger_stops_its_checkpointer_and_keeps_every_charge(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = SqliteLedger(path)
    thread = ledger._checkpointer._thread
    assert thread.name == "router-ledger-checkpoint" and thread.is_alive()
    assert thread in threading.enumerate()
    hold = ledger.reserve((LINE,), 0.25, ttl_s=60, now=1.0)
    assert isinstance(hold, Hold)
    ledger.settle(hold, 0.125, now=1.0)
    ledger.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    again = SqliteLedger(path)
    try:
        assert again.totals((LINE,), now=1.0)[LINE.key].spent_usd == 0.125
    finally:
        again.close()


def _wal_restarts(path: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time it starts the WAL over."""
    with open(f"{path}-wal", "rb") as wal:
        return int.from_bytes(wal.read(16)[12:16], "big")


def test_the_wal_starts_over_while_requests_never_pause(tmp_path: Path) -> None:
    # A passive checkpoint never catches up with a writer that never pauses, and SQLite starts the WAL
    # over only once every frame is copied: the file grew by every request, without end. Writes here
    # run back to back until the checkpointer's round has made SQLite start the WAL over; counted in
    # rounds of requests, so a slow machine only takes more of them.
    path = tmp_path / "ledger.db"
    ledger = SqliteLedger(path)
    try:
        hold = ledger.reserve((LINE,), 0.000001, ttl_s=60, now=1.0)
        assert isinstance(hold, Hold)
        first = _wal_restarts(path)
        for _ in range(3_000):
            for _ in range(50):
                hold = ledger.reserve((LINE,), 0.000001, ttl_s=60, now=1.0)
                assert isinstance(hold, Hold)
                ledger.settle(hold, 0.000001, now=1.0)
            if _wal_restarts(path) != first:
                break
        assert _wal_restarts(path) != first
    finally:
        ledger.close()


def test_the_checkpointer_copies_and_syncs_before_it_takes_the_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RESTART holds the write lock for its copy and fsyncs: a transaction that met it waited 10-70 ms
    # here (a second's frames, synced). A PASSIVE checkpoint first copies and syncs them with writers
    # going on, so RESTART's lock covers only what they wrote meanwhile. Counted from the statements
    # the checkpointer's own connection runs, as SQLite's trace hook reports them.
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = connect(*args, **kwargs)
        if threading.current_thread().name == "router-ledger-checkpoint":
            db.set_trace_callback(statements.append)
        return db

    monkeypatch.setattr(sqlite3, "connect", traced)
    path = tmp_path / "ledger.db"
    ledger = SqliteLedger(path)
    try:
        first = _wal_restarts(path) if Path(f"{path}-wal").exists() else None
        for _ in range(3_000):  # rounds of requests until a checkpoint has started the WAL over
            for _ in range(20):
                hold = ledger.reserve((LINE,), 0.000001, ttl_s=60, now=1.0)
                assert isinstance(hold, Hold)
                ledger.settle(hold, 0.000001, now=1.0)
            if first is None:
                first = _wal_restarts(path)
            elif _wal_restarts(path) != first and any("RESTART" in s for s in statements):
                break
    finally:
        ledger.close()
    checkpoints = [s for s in statements if s.startswith("PRAGMA wal_checkpoint")]
    assert checkpoints, "the checkpointer ran no checkpoint"
    restarts = [n for n, s in enumerate(checkpoints) if "RESTART" in s]
    assert restarts and all(n > 0 and "PASSIVE" in checkpoints[n - 1] for n in restarts)
