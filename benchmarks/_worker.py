"""Measurements run in fresh worker processes: ``python -m benchmarks._worker MODULE:FUNCTION OUT.json``.

The function gets the JSON object read from stdin and returns a JSON-ready dict, written to OUT.json.
A fresh process per measurement keeps them apart: litellm's import (2 s, thousands of objects, global
state) never weighs on the openai SDK's or the router's figures, and RSS is the router's alone.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from benchmarks._configs import WORKER_ENV

ROOT: Final = Path(__file__).resolve().parent.parent


class WorkerError(RuntimeError):
    pass


def run_worker(target: str, args: Mapping[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Run ``target`` ("module:function") in a fresh interpreter and return what it returned."""
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        out = Path(tmp) / "result.json"
        process = subprocess.run(
            [sys.executable, "-m", "benchmarks._worker", target, str(out)],
            input=json.dumps(args),
            cwd=ROOT,
            env={**os.environ, **WORKER_ENV},
            stdout=subprocess.DEVNULL,  # nothing a client prints may slow it down or end up in the report
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
        if process.returncode != 0:
            tail = "\n".join(process.stderr.strip().splitlines()[-15:])
            raise WorkerError(f"{target} exited with {process.returncode}:\n{tail}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def main(argv: Sequence[str]) -> int:
    target, out = argv
    module_name, _, function_name = target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(json.loads(sys.stdin.read()))
    Path(out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
