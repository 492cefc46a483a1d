"""The benchmark harness's pure parts: statistics, parsing, target evaluation, rendering. No timings."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from benchmarks._everything_on import everything_on
from benchmarks._machine import cpu_model
from benchmarks._options import QUICK, Options
from benchmarks._report import render, table
from benchmarks._results import (
    Feature,
    ImportLine,
    LatencyLine,
    MemoryResult,
    PlanningCell,
    Results,
    SoakResult,
    SoakRound,
    ThroughputLine,
)
from benchmarks._server import parse_ready_line
from benchmarks._stats import percentile, ratio, scaling_exponent, summarize_ns
from benchmarks._targets import TIMES, evaluate
from benchmarks.imports import parse_output
from benchmarks.memory import status_mb
from benchmarks.planning import long_text

MACHINE = {"date": "2026-01-01 00:00 UTC", "cpu": "Test CPU"}


def _latency(key: str, p50: float) -> LatencyLine:
    return LatencyLine(key=key, calls=100, p50_us=p50, p99_us=p50 * 2, mean_us=p50)


def _planning(models: int, prompt: str, median: float) -> PlanningCell:
    return PlanningCell(models, prompt, "ordered", 10, 100, median, median * 2, models, 0)


def _round(n: int, success: float = 0.97, **changes: float) -> SoakRound:
    figures = {"in_use": 0, "idle": 40, "fds": 52, "sockets": 40, "tasks": 0, "late": 0, "rss_mb": 80.0}
    figures.update(changes)
    return SoakRound(n, success, 200.0, 900.0, seconds=1.0, **figures)  # type: ignore[arg-type]


def good_soak(rounds: int = 40) -> SoakResult:
    return SoakResult(500, 1.0, 12, tuple(_round(n) for n in range(1, rounds + 1)))


def good_results() -> Results:
    """A run in which every target holds."""
    return Results(
        latency=[_latency("openai", 1000), _latency("router_full", 600), _latency("litellm_router", 4500)],
        throughput=[
            ThroughputLine("openai", 640, 64, 1000.0, (1000.0,), 900.0),
            ThroughputLine("router_full", 640, 64, 2100.0, (2100.0,), 400.0),
            ThroughputLine("aiohttp", 640, 64, 3000.0, (3000.0,), 300.0),
            ThroughputLine("openai", 640, 512, 800.0, (800.0,), 950.0),
            ThroughputLine("router_full", 640, 512, 1900.0, (1900.0,), 420.0),
        ],
        imports=[ImportLine("openai", 450.0, (450.0,)), ImportLine("router", 500.0, (500.0,))],
        planning=[
            _planning(n, prompt, t)
            for prompt in ("short", "100k")
            for n, t in ((10, 5.0), (100, 40.0), (1000, 400.0))
        ]
        + [_planning(10, "adequacy, ~2k chars", 60.0)],
        memory=MemoryResult(50_000, 5_000, 70.0, 70.5, 70.6, 71.0, ((5_000, 70.0), (50_000, 70.5))),
        soak=good_soak(),
        features=[Feature("routing", True, "3 models"), Feature("budget + SQLite ledger", False, "not yet")],
    )


def _status(results: Results) -> dict[str, str]:
    return {t.name: t.status for t in evaluate(results)}


# --------------------------------------------------------------------------- statistics


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([4, 1, 3, 2], 0) == 1
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert percentile([7], 99) == 7


def test_percentile_rejects_no_values_and_out_of_range_q() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_summaries_are_in_microseconds() -> None:
    s = summarize_ns([1000, 2000, 3000])
    assert (s.n, s.p50_us, s.mean_us) == (3, 2.0, 2.0)


def test_ratio_is_none_without_a_baseline() -> None:
    assert ratio(2.0, 4.0) == 0.5
    assert ratio(None, 4.0) is None
    assert ratio(2.0, 0.0) is None


def test_scaling_exponent_is_one_for_linear_and_two_for_quadratic_growth() -> None:
    assert scaling_exponent(1.0, 10.0, 100, 1000) == pytest.approx(1.0)
    assert scaling_exponent(1.0, 100.0, 100, 1000) == pytest.approx(2.0)


# --------------------------------------------------------------------------- targets


def test_every_target_passes_on_a_good_run() -> None:
    assert set(_status(good_results()).values()) == {"PASS"}


def test_a_router_slower_than_the_sdk_fails_its_latency_target() -> None:
    results = good_results()
    results.latency[1] = _latency("router_full", 1100)
    assert _status(results)["router everything-on p50 / openai SDK p50"] == "FAIL"


def test_quadratic_planning_fails_the_linearity_target() -> None:
    results = good_results()
    results.planning = [c for c in results.planning if c.models != 1000] + [_planning(1000, "100k", 4000.0)]
    statuses = _status(results)
    assert statuses["planning scaling exponent k (t ∝ models^k, 100 → 1,000, worst prompt)"] == "FAIL"


def test_slow_learned_adequacy_fails_its_planning_target() -> None:
    results = good_results()
    results.planning = [c for c in results.planning if c.prompt != "adequacy, ~2k chars"]
    results.planning.append(_planning(10, "adequacy, ~2k chars", 250.0))
    statuses = _status(results)
    assert statuses["planning median with learned adequacy, 10 models, ~2k-char prompt"] == "FAIL"


def test_rss_growth_beyond_a_few_mb_fails() -> None:
    results = good_results()
    assert results.memory is not None
    results.memory = dataclasses.replace(results.memory, rss_end_mb=90.0)
    assert _status(results)["RSS growth after warm-up, router.OpenAI"] == "FAIL"


def test_a_router_at_the_sdks_async_throughput_fails_the_two_times_target() -> None:
    results = good_results()
    results.throughput[1] = dataclasses.replace(results.throughput[1], rps=1100.0)
    statuses = _status(results)
    assert statuses["router.AsyncOpenAI / AsyncOpenAI throughput, 64 in flight"] == "FAIL"
    assert statuses["bare aiohttp loop / router.AsyncOpenAI throughput, 64 in flight"] == "FAIL"


def test_a_p99_tail_over_the_sdks_fails() -> None:
    results = good_results()
    results.latency[1] = dataclasses.replace(results.latency[1], p99_us=2600.0)
    assert _status(results)["router everything-on p99 / openai SDK p99"] == "FAIL"


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({"in_use": 3}, "no connection in use after any round"),
        ({"fds": 60}, "file descriptors back to the baseline"),
        ({"late": 1}, "no request alive past its deadline"),
        ({"tasks": 2}, "no task left after any round"),
        ({"success": 0.90}, "round 40 success within 2 points"),
        ({"rss_mb": 90.0}, "RSS flat"),
    ],
)
def test_a_soak_that_leaks_or_decays_is_not_flat(change: dict[str, float], failed: str) -> None:
    soak = good_soak()
    last = dataclasses.replace(soak.rounds[-1], **change)  # type: ignore[arg-type]
    results = good_results()
    results.soak = dataclasses.replace(soak, rounds=(*soak.rounds[:-1], last))
    target = next(t for t in evaluate(results) if t.name.startswith("fault soak"))
    assert target.status == "FAIL" and failed in target.margin
    assert "**Verdict: not flat.**" in render(results, MACHINE)


def test_targets_without_figures_are_not_applicable() -> None:
    assert set(_status(Results()).values()) == {"n/a"}


# --------------------------------------------------------------------------- rendering


def test_table_right_aligns_all_but_the_first_column() -> None:
    assert table(["a", "b"], [["x", "1"]]).splitlines() == ["| a | b |", "| --- | ---: |", "| x | 1 |"]


def test_report_shows_ratios_features_and_targets() -> None:
    report = render(good_results(), MACHINE)
    assert "- cpu: Test CPU" in report
    assert f"| router.OpenAI, everything on | 100 | 600 µs | 1,200 µs | 0.60{TIMES} | 0.60{TIMES} |" in report
    assert "**budget + SQLite ledger**: off — not yet" in report
    assert "**FAIL**" not in report
    assert report.count("**PASS**") == len(evaluate(good_results()))
    assert "## Async throughput: 512 concurrent requests" in report
    assert f"| bare aiohttp loop (the floor) | 640 {TIMES} 1 | 3,000 |" in report
    assert "**Verdict: flat.**" in report


def test_a_quick_report_says_its_figures_are_not_stable() -> None:
    results = good_results()
    results.quick = True
    assert "not stable" in render(results, MACHINE)


def test_errors_are_listed_in_the_report() -> None:
    results = Results(errors={"latency": "WorkerError: boom"})
    assert "- latency: WorkerError: boom" in render(results, MACHINE)


# --------------------------------------------------------------------------- parsing and helpers


def test_the_server_url_comes_from_its_listening_line() -> None:
    assert parse_ready_line("fake providers listening on http://127.0.0.1:4000\n") == "http://127.0.0.1:4000"
    assert parse_ready_line("something else") is None


def test_import_time_is_read_from_the_marked_line_only() -> None:
    assert parse_output("noise\nIMPORT-TIME 0.5 False\n") == (0.5, False)
    with pytest.raises(ValueError):
        parse_output("no mark")


def test_rss_fields_are_read_in_mb() -> None:
    status = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"
    assert status_mb("VmRSS", status) == 100.0
    assert status_mb("VmHWM", status) == 200.0


def test_cpu_model_is_the_first_model_name() -> None:
    assert cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nmodel name\t: other\n") == "AMD EPYC 7B13"


def test_the_long_prompt_is_about_100k_tokens() -> None:
    assert len(long_text(100_000)) == 400_000


def test_quick_options_do_less_of_everything() -> None:
    full = Options()
    assert QUICK.quick and not full.quick
    assert QUICK.calls < full.calls and QUICK.rss_requests < full.rss_requests


# --------------------------------------------------------------------------- switch-on detection


def test_everything_on_has_a_budget_on_a_sqlite_ledger_and_json_logging_to_a_file(tmp_path: Path) -> None:
    config = everything_on("http://127.0.0.1:1/v1", "http://127.0.0.1:1/gemini", tmp_path)
    policy = config.policy
    assert policy.ledger == f"sqlite:///{config.ledger_path}" and str(config.ledger_path).startswith("/")
    assert policy.features["bench"].budget is not None
    assert policy.logging is not None and policy.logging.json_lines and policy.logging.level == "INFO"
    assert policy.logging.file == str(config.log_path) and not policy.logging.log_content


# --------------------------------------------------------------------------- cold import, paired


def test_imports_pair_openai_with_each_module_in_turn_first_and_second(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import benchmarks.imports as imports

    order: list[str] = []
    oc, rc = "openai, first client", "router, first client"
    times = {"openai": 0.5, "router": 0.6, "litellm": 2.0, oc: 0.55, rc: 0.77}

    def fake(module: str, pycache: Path) -> tuple[float, bool]:
        order.append(module)
        slow = 2.0 if len(order) in (14, 15) else 1.0  # one disturbed pair: both of it slow
        return times[module] * slow, False

    monkeypatch.setattr(imports, "time_import", fake)
    results = Results()
    imports.run(dataclasses.replace(Options(), import_runs=3), tmp_path, results)
    assert order[5:] == [  # after one untimed run of each; first clients paired with openai's
        "openai", "router", "openai", "litellm", "openai", oc, oc, rc,
        "router", "openai", "litellm", "openai", oc, "openai", rc, oc,
        "openai", "router", "openai", "litellm", "openai", oc, oc, rc,
    ]  # fmt: skip
    router, openai = results.import_of("router"), results.import_of("openai")
    assert router is not None and openai is not None
    assert router.pair_ratios == pytest.approx((1.2, 1.2, 1.2)) and openai.pair_ratios == ()
    assert len(openai.runs_ms) == 9 and router.runs_ms == pytest.approx((600.0, 1200.0, 600.0))
    first = results.import_of(rc)
    assert first is not None and first.pair_ratios == pytest.approx((1.4, 1.4, 1.4))


def test_a_first_client_line_times_the_import_and_the_client_against_openais() -> None:
    from benchmarks.imports import baseline_of, code_of

    assert code_of("router") == "import router"
    assert baseline_of("router") == "openai" and baseline_of("router, first client") == "openai, first client"
    code = code_of("router, first client")
    assert code.startswith("import router\nrouter.OpenAI(") and "policy=" in code
    assert code_of("openai, first client") == "import openai\nopenai.OpenAI(api_key='sk-bench')"


def test_the_import_target_reads_the_median_of_the_paired_ratios() -> None:
    results = good_results()
    # medians 450 and 600 (1.33, over the limit), but each run's pair was within 1.10
    results.imports = [
        ImportLine("openai", 450.0, (450.0, 900.0, 400.0)),
        ImportLine("router", 600.0, (480.0, 990.0, 600.0), pair_ratios=(1.07, 1.10, 1.5)),
    ]
    target = next(t for t in evaluate(results) if t.name == "import router / import openai")
    assert (target.measured, target.status) == (f"1.10{TIMES}", "PASS")
    assert f"| 1.10{TIMES} (1.07, 1.10, 1.50) |" in render(results, MACHINE)
    results.imports = [ImportLine("openai", 450.0, (450.0,)), ImportLine("router", 600.0, (600.0,))]
    target = next(t for t in evaluate(results) if t.name == "import router / import openai")
    assert (target.measured, target.status) == (f"1.33{TIMES}", "FAIL")  # no pairs: the medians' ratio


def test_a_planning_cell_timed_in_turns_never_repeats_a_prompt() -> None:
    from benchmarks.planning import _time_cell

    seen: list[str] = []

    class Planner:
        def plan(self, route: Any) -> str:
            seen.append(route.prompt.messages[-1]["content"])
            return "plan"

    taken: list[int] = []
    for _ in range(3):  # three turns of one cell, as measure() takes them
        more, plan = _time_cell(Planner(), "text", 0, min_calls=2, first=len(taken))
        taken += more
    assert plan == "plan" and len(taken) == 6
    assert seen == [f"{n} text" for n in range(6)]
