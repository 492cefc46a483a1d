"""Import httpx without its command-line client, and load the router's machinery when first used.

httpx's ``__init__`` imports ``httpx._main`` (its ``httpx`` command: click, rich, pygments) whenever
those are installed, and typer, which the ``router`` command uses, installs them. That is most of
httpx's import time. While ``httpx._main`` is marked absent, an ``import httpx`` keeps httpx's
fallback ``main``; the mark is taken away at once afterwards, so ``import httpx._main`` still works,
and a process where httpx was already imported is left as it is.

openai 2.x imports httpx itself, so ``import router`` imports openai under the mark. openai 3.x
speaks httpx2 and never imports httpx: then httpx (which the router's own transport uses) arrives
with the rest of the router's machinery, through ``load``, when a client is built or a name such
as ``router.BudgetExceededError`` is first read.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from types import ModuleType


@contextlib.contextmanager
def cli_absent() -> Iterator[None]:
    """Within the block, a first ``import httpx`` leaves out httpx's command-line client."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        yield
        return
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("httpx._main", ...) is None:
            del sys.modules["httpx._main"]


def load(module: str) -> ModuleType:
    """``importlib.import_module``, with httpx (if this brings it) imported lean.

    Always through importlib, never ``sys.modules`` directly: a module another thread is still
    importing is in ``sys.modules`` half made, and importlib waits for it to finish."""
    with cli_absent():
        return importlib.import_module(module)
