"""Leave one dataset out: how an adequacy file routes a kind of prompt it was never trained on.

    nice -n 10 python examples/routerbench/leave_one_out.py /work/shared/data [--tag=NAME] [--balanced]

For each of the four training files in turn, ``router train`` (the shipped method, ``--target
"0.95 of gpt-4-1106-preview"``) learns a file from the *other three* (training splits only), and
the held-out file is replayed through the real planner of a route with ``cost_weight: auto`` —
what a user's unseen kind of traffic would get. Per held-out file it prints the route's quality
and cost against the best single model (GPT-4) and the zero-router hull at the route's cost.

Then, since ``auto`` gives a prompt the setting of the task it is nearest to when that similarity
reaches the file's ``task_threshold`` (else the global suggestion), it replays every held-out row
at each candidate weight once and reads off, for a grid of thresholds and fallback weights, what
the route would do: so the "none of these" threshold and the fallback can be chosen by what an
unseen kind of data gets, not by in-domain figures alone. MMLU's Mixtral column is read as
RouterBench's ``mistralai/mixtral-8x7b-chat`` (the same model) when it is the held-out file, so that
the file trained on RouterBench judges it. Trained files are cached in /tmp/adequacy-lodo.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from policies.adequacy import Adequacy  # noqa: E402
from policies.loader import load_policy  # noqa: E402
from policies.plan import Planner, describe_request  # noqa: E402
from policies.validate import policy_catalog  # noqa: E402
from router._cli_adequacy import _training_costs  # noqa: E402
from router._eval import cost_table, evaluate, hull, hull_quality, single_points  # noqa: E402
from router._labeled import LabeledData, load_labeled  # noqa: E402
from router._train import Settings, Target, train, write_artifact  # noqa: E402

FILES = (
    "routerbench/arc_challenge_train.csv",
    "routerbench/mbpp_train.csv",
    "routerbench/winogrande_train.csv",
    "routellm/mmlu.csv",
)
STRONG = "gpt-4-1106-preview"
ALIAS = {"mistralai/Mixtral-8x7B-Instruct-v0.1": "mistralai/mixtral-8x7b-chat"}
POLICY = ROOT / "examples" / "routerbench" / "policy.yaml"
CACHE = Path("/tmp/adequacy-lodo")
WEIGHTS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
# The file's task thresholds (one for all, or each task's own) times these: 1 is the file as trained.
THRESHOLDS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 1e9)


def aliased(data: LabeledData) -> LabeledData:
    def rename(table: Any) -> dict[str, Any]:
        return {ALIAS.get(k, k): v for k, v in table.items()}

    return replace(data, outcomes=rename(data.outcomes), costs=rename(data.costs))


def artifact_for(root: Path, held: str, settings: Settings, tag: str) -> Path:
    """The adequacy file trained on every file but ``held`` (cached)."""
    out = CACHE / tag / Path(held).stem / "adequacy.json"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    policy = load_policy(POLICY)
    labeled = load_labeled([root / f for f in FILES if f != held])
    costs = _training_costs(labeled, policy)
    artifact, _ = train(labeled, costs, target=Target(0.95, STRONG), settings=settings)
    write_artifact(artifact, out)
    return out


def route_policy(folder: Path, models: list[str]) -> Any:
    """The example policy, in ``folder`` next to its adequacy file, with a route over ``models``."""
    shutil.copy(POLICY, folder / "policy.yaml")
    policy = load_policy(folder / "policy.yaml")
    routes = dict(policy.routes)
    routes["held"] = routes["routerbench"].model_copy(update={"candidates": models})
    return policy.model_copy(update={"routes": routes})


def choices(policy: Any, data: LabeledData, rows: list[int], weight: float | None) -> list[str]:
    """The model the real planner sends each row to (cost_weight fixed at ``weight``; None: auto)."""
    if weight is not None:
        routes = dict(policy.routes)
        routes["held"] = routes["held"].model_copy(update={"cost_weight": weight})
        policy = policy.model_copy(update={"routes": routes})
    planner = Planner(policy, policy_catalog(policy))
    out = []
    for i in rows:
        plan = planner.plan(describe_request("held", "default", {"messages": list(data.messages[i])}, False))
        out.append(plan.candidates[0].model)
    return out


def similarities(adequacy: Adequacy, data: LabeledData, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest task (index into adequacy.tasks) and its cosine similarity relative to
    that task's threshold (>= 1: recognised)."""
    m = len(adequacy.models)
    best = np.zeros(len(rows), dtype=int)
    sim = np.zeros(len(rows))
    for k, i in enumerate(rows):
        idx, weights = adequacy.features(data.prompts[i])
        if not len(idx):
            continue
        # The centroids (times IDF) are the columns after the models' (policies/adequacy.py).
        s = weights / adequacy._idf[idx] @ adequacy._scaled[idx, m:]
        best[k] = int(s.argmax())
        sim[k] = float(s.max()) / max(adequacy.task_thresholds[best[k]], 1e-9)
    return best, sim


def main(argv: list[str]) -> None:
    root = Path(argv[0]) if argv and not argv[0].startswith("-") else Path("/work/shared/data")
    tag = next((a.split("=", 1)[1] for a in argv if a.startswith("--tag=")), "default")
    # Files are cached per --tag: the figures "before" in docs/adequacy.md come from files trained by
    # router train as of f732cea (one task threshold); --balanced: router train's balance_files.
    settings = Settings(
        output_tokens=load_policy(POLICY).expected_output_tokens, balance_files="--balanced" in argv
    )
    only = next((a.split("=", 1)[1].split(",") for a in argv if a.startswith("--only=")), None)
    summary: dict[str, Any] = {}
    for held in FILES:
        if only is not None and not any(o in held for o in only):
            continue
        name = Path(held).stem.replace("_train", "")
        path = artifact_for(root, held, settings, tag)
        adequacy = Adequacy.load(path)
        data = aliased(load_labeled([root / held]))
        models = [m for m in data.models if m in adequacy.models]
        policy = route_policy(path.parent, models)
        catalog = policy_catalog(policy)
        report = evaluate(policy, catalog, "held", data, adequacy=adequacy)
        rows = [i for i in range(len(data)) if all(data.outcomes[m][i] is not None for m in models)]
        y = {m: [float(data.outcomes[m][i] or 0.0) for i in rows] for m in models}
        full = cost_table(data, models, catalog, policy.expected_output_tokens)
        c = {m: [full[m][i] for i in rows] for m in models}
        chain = hull(single_points(y, c))
        strong_q, strong_c = np.mean(y[STRONG]), np.mean(c[STRONG]) * 1000
        r = report.result.point
        print(
            f"{name}: trained on the other three (tasks {', '.join(adequacy.tasks)}, threshold "
            f"{adequacy.task_threshold:.3f}, suggestions "
            f"{ {t: adequacy.task_suggested[t].get('cost_weight') for t in adequacy.tasks} }, "
            f"global {adequacy.suggested.get('cost_weight')})",
            flush=True,
        )
        print(
            f"  auto as shipped: q {r.quality:.3f} ({r.quality / strong_q:.0%} of gpt-4) "
            f"${r.cost_per_1k:.3f}/1k ({r.cost_per_1k / strong_c:.0%} of gpt-4's cost), hull "
            f"{report.result.hull_quality or 0:.3f} "
            f"({(r.quality - (report.result.hull_quality or 0)) * 100:+.1f} pt);"
            f" routed {dict(list(report.result.share.items())[:4])}",
            flush=True,
        )
        best, sim = similarities(adequacy, data, rows)
        names, counts = np.unique(np.array(adequacy.tasks)[best], return_counts=True)
        print(
            f"  nearest task: {dict(zip(names.tolist(), counts.tolist(), strict=True))}; "
            f"similarity / threshold, percentiles 1/10/50/90: "
            f"{np.percentile(sim, [1, 10, 50, 90]).round(3).tolist()}",
            flush=True,
        )
        task_weights = {t: adequacy.task_suggested[t].get("cost_weight") for t in adequacy.tasks}
        grid = sorted({*WEIGHTS, *(w for w in task_weights.values() if w is not None)})
        chosen = {w: choices(policy, data, rows, w) for w in grid}
        yy = {w: np.array([y[m][k] for k, m in enumerate(chosen[w])]) for w in grid}
        cc = {w: np.array([c[m][k] for k, m in enumerate(chosen[w])]) * 1000 for w in grid}
        curve = []
        for w in grid:
            q, cost = yy[w].mean(), cc[w].mean()
            curve.append((w, q, cost, q - (hull_quality(chain, cost) or 0.0)))
        table = {}
        for thr in THRESHOLDS:
            for fb in WEIGHTS:
                per_row = np.array(
                    [
                        tw if s >= thr and (tw := task_weights[adequacy.tasks[b]]) is not None else fb
                        for b, s in zip(best, sim, strict=True)
                    ]
                )  # fmt: skip
                q = sum(yy[w][per_row == w].sum() for w in np.unique(per_row)) / len(rows)
                cost = sum(cc[w][per_row == w].sum() for w in np.unique(per_row)) / len(rows)
                table[(thr, fb)] = (q, cost, q - (hull_quality(chain, cost) or 0.0))
        print(
            "  fixed weight (no task):",
            ", ".join(f"{w:g}: {q:.3f} ${x:.2f} {m * 100:+.1f}" for w, q, x, m in curve),
        )
        summary[name] = {
            "gpt4": (strong_q, strong_c),
            "shipped": (r.quality, r.cost_per_1k, r.quality - (report.result.hull_quality or 0.0)),
            "fixed": curve,
            "table": {f"{t:g}/{f:g}": v for (t, f), v in table.items()},
            "recognised_at": {f"{t:g}": float(np.mean(sim >= t)) for t in THRESHOLDS},
        }
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / f"summary-{tag}.json").write_text(json.dumps(summary, indent=1, default=float))
    print(
        "\nthreshold/fallback: per held-out file margin over the hull (pt) and share of gpt-4's quality/cost"
    )
    for thr in THRESHOLDS:
        for fb in WEIGHTS:
            key = f"{thr:g}/{fb:g}"
            cells = []
            for name, s in summary.items():
                q, cost, m = s["table"][key]
                cells.append(f"{name[:5]} {m * 100:+5.1f} {q / s['gpt4'][0]:4.0%}/{cost / s['gpt4'][1]:4.0%}")
            worst = min(s["table"][key][2] for s in summary.values())
            print(f"  thr {thr:<5g} fb {fb:<5g} min {worst * 100:+5.1f} | " + " | ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1:])
