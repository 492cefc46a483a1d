"""Cold import time: each module imported in a fresh interpreter, median over several runs.

Only the import statement is timed (not interpreter start-up). Every module imports from compiled
bytecode kept under a private ``PYTHONPYCACHEPREFIX`` (filled by one untimed import each, whatever
``PYTHONDONTWRITEBYTECODE`` says), as after a ``pip install``; the file cache is warm. So this is
Python's import work, not compilation or disk reads.

``import openai`` is the baseline, and each run pairs it with every other module: openai then the
module on even runs, the module then openai on odd ones, back to back, so that a pair shares the
machine's state (another job starting, a slow spell) and neither side always goes first. Each pair
gives a ratio; the target reads the median of those ratios, which a disturbed stretch of the run
moves less than it moves the ratio of two medians taken over different moments.

``import router`` loads the clients only; the router's machinery (planner, ledger, transports,
httpx) loads when the first client is built. So two more lines time each import followed by its
first client, ``router.OpenAI(policy=...)`` paired with ``openai.OpenAI()``: what a program that
builds its client at start-up waits for in all.
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
BASELINE: Final = "openai"
_SNIPPET: Final = (
    "import sys, time\n"
    "start = time.perf_counter()\n"
    "{code}\n"
    "elapsed = time.perf_counter() - start\n"
    "print('{mark}', elapsed, 'litellm' in sys.modules, flush=True)\n"
)
# The smallest policy a client is built with: one OpenAI model behind ``auto``.
_POLICY: Final = {
    "models": {"gpt-4o-mini": {"provider": "openai"}},
    "routes": {"auto": {"candidates": ["gpt-4o-mini"]}},
}
FIRST_CLIENT_BASELINE: Final = "openai, first client"
# Each import followed by its first client (what is timed), and the line it is paired with.
FIRST_CLIENT: Final = {
    FIRST_CLIENT_BASELINE: ("import openai\nopenai.OpenAI(api_key='sk-bench')", BASELINE),
    "router, first client": (
        f"import router\nrouter.OpenAI(api_key='sk-bench', policy={_POLICY!r})",
        FIRST_CLIENT_BASELINE,
    ),
}


def code_of(subject: str) -> str:
    """What a run times for ``subject``: ``import subject``, or an import and its first client."""
    return FIRST_CLIENT[subject][0] if subject in FIRST_CLIENT else f"import {subject}"


def baseline_of(subject: str) -> str:
    """What ``subject`` is paired with: ``import openai``, or openai's import and first client."""
    return FIRST_CLIENT[subject][1] if subject in FIRST_CLIENT else BASELINE


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
        [sys.executable, "-c", _SNIPPET.format(code=code_of(module), mark=_MARK)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_output(process.stdout)


def run(options: Options, workdir: Path, results: Results) -> None:
    pycache = workdir / "pycache"
    subjects = [*IMPORT_MODULES, *FIRST_CLIENT]
    for module in subjects:
        time_import(module, pycache)  # compiles the module's bytecode once, untimed
    others = [m for m in subjects if m != BASELINE]
    runs: dict[str, list[tuple[float, bool]]] = {m: [] for m in subjects}
    ratios: dict[str, list[float]] = {m: [] for m in others}
    for n in range(options.import_runs):
        for module in others:
            base = baseline_of(module)
            pair = (base, module) if n % 2 == 0 else (module, base)
            timed = {m: time_import(m, pycache) for m in pair}
            runs[base].append(timed[base])
            runs[module].append(timed[module])
            ratios[module].append(timed[module][0] / timed[base][0])
    for module in subjects:
        ms = tuple(seconds * 1000 for seconds, _ in runs[module])
        results.imports.append(
            ImportLine(
                module=module,
                median_ms=statistics.median(ms),
                runs_ms=ms,
                pulls_litellm=module != "litellm" and any(pulled for _, pulled in runs[module]),
                pair_ratios=tuple(ratios.get(module, ())),
            )
        )
