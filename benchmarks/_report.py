"""The markdown report: one table per measurement, what "everything on" had on, and the targets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from benchmarks._results import ImportLine, Results
from benchmarks._stats import ratio, scaling_exponent
from benchmarks._targets import TIMES, Target, evaluate


def table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> str:
    """A markdown table; ``align`` has one letter per column, "l" or "r" (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}{TIMES}"


def fmt_us(value: float) -> str:
    return f"{value:,.1f} µs" if value < 100 else f"{value:,.0f} µs"


def _latency(results: Results) -> str:
    sdk = results.latency_of("openai")
    rows = [
        [
            line.label,
            f"{line.calls:,}",
            fmt_us(line.p50_us),
            fmt_us(line.p99_us),
            fmt_ratio(ratio(line.p50_us, sdk.p50_us if sdk else None)),
            fmt_ratio(ratio(line.p99_us, sdk.p99_us if sdk else None)),
        ]
        for line in results.latency
    ]
    header = ["client", "calls", "p50", "p99", "p50 / SDK", "p99 / SDK"]
    return "## Per-call latency: sequential sync calls\n\n" + table(header, rows)


def _throughput(results: Results) -> str:
    sections = []
    for concurrency in dict.fromkeys(line.concurrency for line in results.throughput):
        base = results.throughput_of("openai", concurrency)
        floor = results.throughput_of("aiohttp", concurrency)
        rows = [
            [
                line.label,
                f"{line.requests:,} {TIMES} {len(line.rps_rounds)}",
                f"{line.rps:,.0f}",
                ", ".join(f"{r:,.0f}" for r in line.rps_rounds),
                fmt_us(line.cpu_us_per_request),
                fmt_ratio(ratio(line.rps, base.rps if base else None)),
                fmt_ratio(ratio(floor.rps if floor else None, line.rps)),
            ]
            for line in results.throughput
            if line.concurrency == concurrency
        ]
        header = [
            "client",
            f"requests {TIMES} rounds",
            "req/s (median)",
            "req/s per round",
            "client CPU / request",
            "req/s / AsyncOpenAI",
            "bare aiohttp / this",
        ]
        sections.append(f"## Async throughput: {concurrency} concurrent requests\n\n" + table(header, rows))
    return "\n\n".join(sections)


def _imports(results: Results) -> str:
    from benchmarks.imports import FIRST_CLIENT, baseline_of

    def label(line: ImportLine) -> str:
        if line.module in FIRST_CLIENT:
            name = line.module.split(",")[0]
            return f"`import {name}`, then its first `{name}.OpenAI(...)`"
        return f"`import {line.module}`" + (" (pulls in litellm)" if line.pulls_litellm else "")

    def base_ms(line: ImportLine) -> float | None:
        base = results.import_of(baseline_of(line.module))
        return base.median_ms if base else None

    rows = [
        [
            label(line),
            f"{line.median_ms:,.0f} ms",
            ", ".join(f"{r:.0f}" for r in line.runs_ms),
            f"`{baseline_of(line.module)}`" if line.module != "openai" else "—",
            fmt_ratio(ratio(line.median_ms, base_ms(line))) if line.module != "openai" else "—",
            _pairs(line),
        ]
        for line in results.imports
    ]
    runs = max((len(line.runs_ms) for line in results.imports), default=0)
    header = ["timed", f"median (of up to {runs})", "runs (ms)", "paired with", "vs its pair", "per pair"]
    how = (
        "Each run times a line and the one it is paired with back to back, in turn first and second; "
        "the last column is the median of those pairs' ratios, then each pair's (the import target "
        "reads `router`'s). `import router` loads the clients only: the router's machinery loads when "
        "the first client is built, so the last two lines time each import and its first client."
    )
    return "## Cold import: fresh processes\n\n" + how + "\n\n" + table(header, rows)


def _pairs(line: ImportLine) -> str:
    """The median of a line's per-pair ratios to ``import openai``, then each one."""
    if line.pair_ratio is None:
        return "—"
    each = ", ".join(f"{r:.2f}" for r in line.pair_ratios)
    return f"{fmt_ratio(line.pair_ratio)} ({each})"


def _planning(results: Results) -> str:
    rows = []
    for cell in results.planning:
        smaller = results.planning_of(cell.models // 10, cell.prompt)
        k = (
            scaling_exponent(smaller.median_us, cell.median_us, smaller.models, cell.models)
            if smaller
            else None
        )
        rows.append(
            [
                f"{cell.models:,}",
                f"{cell.prompt} (~{cell.prompt_tokens:,} tokens)",
                fmt_us(cell.median_us),
                fmt_us(cell.p99_us),
                f"{cell.median_us * 1000 / cell.models:,.0f} ns",
                "—" if k is None else f"{k:.2f}",
                f"{cell.iterations:,}",
                f"{cell.candidates}/{cell.rejected}",
            ]
        )
    header = [
        "models",
        "prompt",
        "median",
        "p99",
        "median / model",
        "k vs 10 times fewer",
        "iterations",
        "candidates/rejected",
    ]
    strategies = sorted({cell.strategy for cell in results.planning})
    intro = f"One route over all models, strategy {', '.join(strategies)}; context windows 16k to 1M.\n\n"
    return "## Planning alone (no I/O), per call\n\n" + intro + table(header, rows)


def _memory(results: Results) -> str:
    m = results.memory
    if m is None:
        return ""
    rows = [
        [
            f"{m.requests:,}",
            f"{m.warmup:,}",
            f"{m.rss_warm_mb:.1f} MB",
            f"{m.rss_end_mb:.1f} MB",
            f"{m.growth_mb:+.1f} MB",
            f"{m.rss_max_mb:.1f} MB",
            f"{m.hwm_mb:.1f} MB",
            f"{m.blocks_warm:,} → {m.blocks_end:,}",
        ]
    ]
    header = [
        "requests",
        "warm-up",
        "RSS after warm-up",
        "RSS at end",
        "growth",
        "highest sample",
        "peak (VmHWM)",
        "live Python blocks after gc",
    ]
    trace = ", ".join(f"{n:,}: {mb:.1f}" for n, mb in m.samples)
    return (
        "## Memory: router.OpenAI (everything on), sequential calls\n\n"
        + table(header, rows)
        + f"\n\nRSS samples (requests done: MB): {trace}"
    )


def _soak(results: Results) -> str:
    from benchmarks.soak import verdict

    s = results.soak
    if s is None or not s.rounds:
        return ""
    rows = [
        [
            str(r.round),
            f"{r.success:.1%}",
            f"{r.p50_ms:,.0f} ms",
            f"{r.p99_ms:,.0f} ms",
            str(r.late),
            str(r.in_use),
            str(r.idle),
            str(r.fds),
            str(r.sockets),
            str(r.tasks),
            f"{r.rss_mb:.1f} MB",
        ]
        for r in s.rounds
    ]
    header = [
        "round",
        "success",
        "p50",
        "p99",
        "past deadline + 1 s",
        "connections in use",
        "idle connections",
        "open fds",
        "sockets",
        "tasks left",
        "RSS",
    ]
    checks = verdict(s)
    flat = all(held for _, held, _ in checks)
    lines = "\n".join(
        f"- {'holds' if held else '**fails**'}: {what} ({detail})" for what, held, detail in checks
    )
    return (
        f"## Fault soak: router.AsyncOpenAI, {len(s.rounds)} rounds {TIMES} {s.requests} "
        "concurrent requests\n\n"
        f"Random 500s, resets, hangs past the {s.deadline_s:g} s deadline and cut streams "
        "(benchmarks/soak.py); figures taken after each round ended. File descriptors before the first "
        "round, less idle pooled "
        f"sockets: {s.fds_baseline}.\n\n"
        + table(header, rows)
        + f"\n\n**Verdict: {'flat' if flat else 'not flat'}.**\n\n"
        + lines
    )


def _features(results: Results) -> str:
    if not results.features:
        return ""
    lines = [f"- **{f.name}**: {'on' if f.on else 'off'} — {f.detail}" for f in results.features]
    return '## What "everything on" had on\n\n' + "\n".join(lines)


def _targets(targets: Sequence[Target], quick: bool) -> str:
    rows = [[t.name, t.limit, t.measured, f"**{t.status}**", t.margin] for t in targets]
    note = (
        "\n\nQuick run: small counts, a smoke test of the harness; the figures are not stable."
        if quick
        else ""
    )
    header = ["target", "limit", "measured", "result", "margin"]
    return "## Targets (DESIGN.md, performance budget)\n\n" + table(header, rows, "lrrll") + note


def render(results: Results, machine: Mapping[str, str]) -> str:
    """The whole report as markdown."""
    kind = "quick (smoke)" if results.quick else "full"
    head = "# Benchmark results\n\n" + "\n".join(f"- {k}: {v}" for k, v in {**machine, "run": kind}.items())
    parts = [
        head,
        _latency(results) if results.latency else "",
        _throughput(results) if results.throughput else "",
        _imports(results) if results.imports else "",
        _planning(results) if results.planning else "",
        _memory(results),
        _soak(results),
        _features(results),
        _targets(evaluate(results), results.quick),
    ]
    if results.errors:
        parts.append("## Errors\n\n" + "\n".join(f"- {k}: {v}" for k, v in results.errors.items()))
    return "\n\n".join(p for p in parts if p) + "\n"
