"""Import httpx without its command-line client, before anything else imports it.

httpx's ``__init__`` imports ``httpx._main`` (its ``httpx`` command: click, rich, pygments) whenever
those are installed, and typer, which the ``router`` command uses, installs them. That is most of
httpx's import time, and with openai 3.x (which brings its own httpx2) it was most of what
``import router`` added to ``import openai``. Marked absent for the moment of the import, httpx keeps
its fallback ``main``; the mark is taken away at once, so ``import httpx._main`` still works, and a
process where httpx was already imported is left as it is.
"""

from __future__ import annotations

import sys

if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx  # noqa: F401
    finally:
        if sys.modules.get("httpx._main", ...) is None:
            del sys.modules["httpx._main"]
