"""Running worker processes that start together: for tests of what concurrent processes do."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from queue import Empty
from typing import Any


def run_released_together(target: Callable[..., None], args_for: list[tuple[Any, ...]]) -> list[Any]:
    """One spawned process per argument tuple, each called as ``target(*args, ready, go, results)``.

    Every worker puts one message on ``ready`` once set up, waits for ``go`` (set when all are
    ready, so they really run at once), and puts its outcome on ``results``. Returns the outcomes;
    fails at once if a worker dies instead of reporting.
    """
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited connections or locks
    ready, go, results = context.Queue(), context.Event(), context.Queue()
    workers = [context.Process(target=target, args=(*args, ready, go, results)) for args in args_for]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            _get(ready, workers)
        go.set()
        outcomes = [_get(results, workers) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    assert all(worker.exitcode == 0 for worker in workers)
    return outcomes


def _get(queue: Any, workers: list[Any]) -> Any:
    """The next message; fails at once, rather than waiting, if a worker died without sending it."""
    while True:
        try:
            return queue.get(timeout=0.5)
        except Empty:
            dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            assert not dead, f"a worker process failed (exit codes {dead}); its traceback is above"
