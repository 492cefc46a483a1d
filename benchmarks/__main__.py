"""``python -m benchmarks [--quick] [--only NAME ...]``: run the benchmarks, print and save the report."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from benchmarks import imports, latency, memory, planning, soak, throughput
from benchmarks._machine import describe
from benchmarks._options import QUICK, Options
from benchmarks._report import render
from benchmarks._results import Results
from benchmarks._server import Server, fake_providers
from benchmarks._worker import ROOT

SECTIONS: Final = ("latency", "throughput", "soak", "imports", "planning", "memory")
_NEEDS_SERVER: Final = frozenset({"latency", "throughput", "soak", "memory"})
LATEST: Final = ROOT / "benchmarks" / "results" / "latest.md"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run of the harness")
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, metavar="NAME", help=f"any of {', '.join(SECTIONS)}"
    )
    parser.add_argument("--calls", type=int, help="sync calls per openai-family line (default 10,000)")
    parser.add_argument("--litellm-calls", type=int, help="sync calls per litellm line (default 3,000)")
    parser.add_argument("--async-requests", type=int, help="requests per throughput round (default 3,200)")
    parser.add_argument("--rss-requests", type=int, help="requests in the memory run (default 50,000)")
    parser.add_argument("--soak-rounds", type=int, help="rounds of the fault soak (default 40)")
    parser.add_argument("--soak-requests", type=int, help="concurrent requests per soak round (default 500)")
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the report (default: benchmarks/results/latest.md for a full run of every "
        "section; nothing for --quick or --only)",
    )
    return parser.parse_args(argv)


def _options(args: argparse.Namespace) -> Options:
    options = QUICK if args.quick else Options()
    overrides = {
        "calls": args.calls,
        "litellm_calls": args.litellm_calls,
        "async_requests": args.async_requests,
        "rss_requests": args.rss_requests,
        "soak_rounds": args.soak_rounds,
        "soak_requests": args.soak_requests,
    }
    options = dataclasses.replace(options, **{k: v for k, v in overrides.items() if v is not None})
    if options.rss_warmup >= options.rss_requests:
        options = dataclasses.replace(options, rss_warmup=options.rss_requests // 10)
    return options


def _run_section(name: str, step: Callable[[], None], results: Results) -> None:
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        step()
    except Exception as exc:  # one broken section must not hide the others' figures
        results.errors[name] = f"{type(exc).__name__}: {exc}"
        print(f"[bench] {name} failed: {exc}", file=sys.stderr, flush=True)
    else:
        print(f"[bench] {name} done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)


def run(sections: Sequence[str], options: Options) -> Results:
    results = Results(quick=options.quick)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        server: Server | None = None
        if _NEEDS_SERVER & set(sections):
            server = stack.enter_context(fake_providers())
            print(f"[bench] fake providers at {server.url} (separate process)", file=sys.stderr, flush=True)
        steps: dict[str, Callable[[], None]] = {
            "latency": lambda: latency.run(server, options, workdir, results),  # type: ignore[arg-type]
            "throughput": lambda: throughput.run(server, options, workdir, results),  # type: ignore[arg-type]
            "soak": lambda: soak.run(server, options, workdir, results),  # type: ignore[arg-type]
            "imports": lambda: imports.run(options, workdir, results),
            "planning": lambda: planning.run(options, results),
            "memory": lambda: memory.run(server, options, workdir, results),  # type: ignore[arg-type]
        }
        for name in sections:
            _run_section(name, steps[name], results)
    return results


def write(report: str, path: Path) -> None:
    """Write atomically: a half-written report never replaces the last good one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(report, encoding="utf-8")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    sections = [s for s in SECTIONS if s in (args.only or SECTIONS)]
    results = run(sections, _options(args))
    report = render(results, describe(ROOT))
    print(report)
    output = args.output or (LATEST if not args.quick and not args.only else None)
    if output is not None:
        write(report, output)
        print(f"[bench] written to {output}", file=sys.stderr)
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
