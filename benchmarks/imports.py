"""Cold import time: each module imported in a fresh interpreter, median over several runs.

Only the import statement is timed (not interpreter start-up). Every module imports from compiled
bytecode kept under a private ``PYTHONPYCACHEPREFIX`` (filled by one untimed import each, whatever
``PYTHONDONTWRITEBYTECODE`` says), as after a ``pip install``; the file cache is warm. So this is
Python's import work, not compilation or disk reads. Runs interleave the modules.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Final

from benchmarks._configs import WORKER_ENV
from benchmarks._options import Options
from benchmarks._results import IMPORT_MODULES, ImportLine, Results
from benchmarks._worker import ROOT

_MARK: Final = "IMPORT-TIME"
_SNIPPET: Final = (
    "import sys, time\n"
    "start = time.perf_counter()\n"
    "import {module}\n"
    "elapsed = time.perf_counter() - start\n"
    "print('{mark}', elapsed, 'litellm' in sys.modules, flush=True)\n"
)


def parse_output(stdout: str) -> tuple[float, bool]:
    """(seconds, litellm imported) from the snippet's marked line; anything else printed is ignored."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(_MARK):
            _, seconds, litellm = line.split()
            return float(seconds), litellm == "True"
    raise ValueError(f"no {_MARK} line in the output: {stdout[-500:]!r}")


def time_import(module: str, pycache: Path) -> tuple[float, bool]:
    env = {**os.environ, **WORKER_ENV, "PYTHONPYCACHEPREFIX": str(pycache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    process = subprocess.run(
        [sys.executable, "-c", _SNIPPET.format(module=module, mark=_MARK)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_output(process.stdout)


def run(options: Options, workdir: Path, results: Results) -> None:
    pycache = workdir / "pycache"
    for module in IMPORT_MODULES:
        time_import(module, pycache)  # compiles the module's bytecode once, untimed
    runs: dict[str, list[tuple[float, bool]]] = {m: [] for m in IMPORT_MODULES}
    for _ in range(options.import_runs):
        for module in IMPORT_MODULES:
            runs[module].append(time_import(module, pycache))
    for module in IMPORT_MODULES:
        ms = tuple(seconds * 1000 for seconds, _ in runs[module])
        results.imports.append(
            ImportLine(
                module=module,
                median_ms=statistics.median(ms),
                runs_ms=ms,
                pulls_litellm=module != "litellm" and any(pulled for _, pulled in runs[module]),
            )
        )
