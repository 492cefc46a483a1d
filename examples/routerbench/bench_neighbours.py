"""CPU per plan with and without the neighbour memory, on real prompts (a micro-benchmark).

    nice -n 10 python examples/routerbench/bench_neighbours.py OLD.json NEW.json [/work/shared/data]
        [--baseline=OLD_ADEQUACY.py]

With ``--baseline`` (an older policies/adequacy.py, e.g. ``git show main~1:policies/adequacy.py``),
it also times what the gate computes per request (term counts, every model's prediction and the
task, then the neighbour) with that module's code and this one's, on NEW.json, alternating per
prompt, overall and per file.

Plans every sampled training prompt (RouterBench's ARC, MBPP, Winogrande and RouteLLM's MMLU; 300
of each) through examples/routerbench/policy.yaml's ``routerbench`` route (11 models, cost_weight
auto) with each adequacy file in turn, alternating, and prints the median and p90 CPU time
(``time.thread_time_ns``, so that load on the machine doesn't count) per plan, and of the
neighbour lookup alone (``Neighbours.find``) and how many prompts found a neighbour, for three
versions of the prompts: as they are (each finds itself: an exact repeat, the slowest path), with
one word of the ending changed (a near-duplicate), and with the ending's words shuffled (no
neighbour: what most production prompts are).
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from policies.loader import load_policy  # noqa: E402
from router._engine import Engine  # noqa: E402
from router._labeled import load_labeled  # noqa: E402
from router._pipeline import normalize  # noqa: E402

FILES = (
    "routerbench/arc_challenge_train.csv",
    "routerbench/mbpp_train.csv",
    "routerbench/winogrande_train.csv",
    "routellm/mmlu.csv",
)


def planner(adequacy: Path, folder: Path) -> object:
    here = folder / adequacy.stem
    here.mkdir()
    shutil.copy(ROOT / "examples" / "routerbench" / "policy.yaml", here / "policy.yaml")
    shutil.copy(adequacy, here / "adequacy.json")
    return Engine(load_policy(here / "policy.yaml"), env=os.environ).planner


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def main(argv: list[str]) -> None:
    baseline = next((a.split("=", 1)[1] for a in argv if a.startswith("--baseline=")), None)
    argv = [a for a in argv if not a.startswith("--")]
    old, new = Path(argv[0]).resolve(), Path(argv[1]).resolve()
    data_root = Path(argv[2]) if len(argv) > 2 else Path("/work/shared/data")
    labeled = load_labeled([data_root / f for f in FILES])
    prompts: list[str] = []
    origin: list[int] = []
    for k in range(len(FILES)):
        rows = [p for p, o in zip(labeled.prompts, labeled.origin, strict=True) if o == k]
        prompts += rows[:: max(1, len(rows) // 300)][:300]
        origin += [k] * (len(prompts) - len(origin))
    rng = random.Random(0)

    def changed(text: str, shuffle: bool) -> str:
        cut = text.rstrip().rfind("\n\n")
        head, tail = (text[: cut + 2], text[cut + 2 :]) if cut >= 0 else ("", text)
        words = tail.split(" ")
        if shuffle:
            rng.shuffle(words)
        else:
            words[len(words) // 2] = "zebra"
        return head + " ".join(words)

    for label, texts in (
        ("training prompts (exact repeats)", prompts),
        ("one word changed (near-duplicates)", [changed(p, False) for p in prompts]),
        ("ending shuffled (no neighbour)", [changed(p, True) for p in prompts]),
    ):
        print(f"{label}:")
        if baseline is not None:
            compare_code(Path(baseline), new, texts, origin)
        run(old, new, texts)


def compare_code(baseline: Path, adequacy_file: Path, prompts: list[str], origin: list[int]) -> None:
    """The gate's per-request work (terms, predictions and task, then the neighbour) with the
    baseline module's code and this checkout's, on the same file, alternating per prompt."""
    import importlib.util

    from policies import adequacy as current

    spec = importlib.util.spec_from_file_location("baseline_adequacy", baseline)
    assert spec is not None and spec.loader is not None
    before = importlib.util.module_from_spec(spec)
    sys.modules["baseline_adequacy"] = before  # dataclasses look their module up
    spec.loader.exec_module(before)
    loaded = {"before": before.Adequacy.load(adequacy_file), "after": current.Adequacy.load(adequacy_file)}

    def gate_work(name: str, text: str) -> None:
        adequacy = loaded[name]
        counts = adequacy.counts(text)
        predicted, task = adequacy.predict_task(*counts)
        if name == "before":
            adequacy.neighbours.moved(text, predicted)
        elif name == "after":
            adequacy.neighbours.moved(text, predicted, task)
        else:  # what AdequacyGate.judge does when the planner doesn't pass the task it recognised
            adequacy.neighbours.moved(text, predicted, lambda: adequacy.task_of(*counts))

    loaded["after, task recognised again on a hit"] = loaded["after"]
    times: dict[str, list[int]] = {name: [] for name in loaded}
    for _ in range(3):  # the first round warms up
        for values in times.values():
            values.clear()
        for text in prompts:
            for name, values in times.items():
                start = time.thread_time_ns()
                gate_work(name, text)
                values.append(time.thread_time_ns() - start)
    for name, values in times.items():
        by_file = [[v for v, o in zip(values, origin, strict=True) if o == k] for k in range(len(FILES))]
        per_file = ", ".join(
            f"{Path(f).stem.split('_')[0]} {statistics.median(v) / 1000:.1f}"
            for f, v in zip(FILES, by_file, strict=True)
        )
        print(
            f"terms + predictions + neighbour, {name}: median {statistics.median(values) / 1000:.1f} µs, "
            f"p90 {percentile(values, 0.9):.1f} µs (per file: {per_file})"
        )


def run(old: Path, new: Path, prompts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        planners = {"old": planner(old, Path(folder)), "new": planner(new, Path(folder))}
        routes = [
            normalize({"model": "routerbench", "messages": [{"role": "user", "content": p}]}, None).route
            for p in prompts
        ]
        times: dict[str, list[int]] = {"old": [], "new": []}
        for _ in range(2):  # the first round warms up
            for name in times:
                times[name].clear()
            for route in routes:
                for name, p in planners.items():
                    start = time.thread_time_ns()
                    p.plan(route)  # type: ignore[attr-defined]
                    times[name].append(time.thread_time_ns() - start)
    from policies.adequacy import Adequacy

    neighbours = Adequacy.load(new).neighbours
    assert neighbours is not None, f"{new} has no neighbour memory"
    adequacy = Adequacy.load(new)
    lookups: list[int] = []
    whole: dict[str, list[int]] = {"without": [], "with": []}
    found = 0
    for text in prompts:
        start = time.thread_time_ns()
        hit = neighbours.find(text)
        lookups.append(time.thread_time_ns() - start)
        found += hit is not None
        # what the gate does per request: count terms, predict every model, (then) the neighbour
        start = time.thread_time_ns()
        predicted = adequacy.predict_task(*adequacy.counts(text))[0]
        middle = time.thread_time_ns()
        neighbours.moved(text, predicted)
        end = time.thread_time_ns()
        whole["without"].append(middle - start)
        whole["with"].append(end - start)
    for name, values in times.items():
        median = statistics.median(values) / 1000
        print(f"plan, {name} file: median {median:.1f} µs, p90 {percentile(values, 0.9):.1f} µs")
    for name, values in whole.items():
        median, p90 = statistics.median(values) / 1000, percentile(values, 0.9)
        print(f"terms + predictions, {name} the neighbour: median {median:.1f} µs, p90 {p90:.1f} µs")
    print(
        f"neighbour lookup alone: median {statistics.median(lookups) / 1000:.1f} µs, "
        f"p90 {percentile(lookups, 0.9):.1f} µs; {found} of {len(prompts)} prompts found one"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
