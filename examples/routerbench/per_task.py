"""Per-task cost_weight vs one shared setting, by nested cross-validation on the training splits.

    nice -n 10 python examples/routerbench/per_task.py /work/shared/data [--refit]
        [--per-task-thresholds] [--balanced]

The predictor is compare_methods.py's default (TF-IDF word 1-2grams, per-model LR, Platt,
``cost_weight`` priced against the dearest's cost scaled by the square root of the length ratio).
For each outer fold, everything a route would be given is chosen on the other four folds only:
the task recogniser (nearest centroid, cosine, over the same TF-IDF vector) and its "none of these"
threshold, the per-task ``cost_weight`` reaching 95% of GPT-4 on that task at the lowest cost, and
the one shared setting (``router train --target``'s rule: 95% on every task). Then the outer fold is
routed both ways. Without ``--refit`` the inner choice reads the out-of-fold predictions of the
outer split (fitted with the outer fold's rows among their training rows); with ``--refit`` each
outer fold gets its own inner 4-fold predictions (20 more fits; slow), so nothing of the outer fold
reaches any choice.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_methods import (
    KNOBS,
    STRONG,
    Data,
    choose,
    logreg,
    oof,
    second_stage,
    tfidf,
)  # fmt: skip

from router._eval import hull, hull_quality, single_points

RULE = "tokutility0.5"
KNOB = KNOBS[RULE]


def refs(data: Data, rows: np.ndarray, cand: list[int]) -> np.ndarray:
    exp = data.expected[np.ix_(rows, cand)]
    t = data.tokens[rows] + data.out_tokens
    return exp.max(axis=1) * np.sqrt((data.ref_tokens + data.out_tokens) / t)


def curve(data: Data, p: np.ndarray, rows: np.ndarray, cand: list[int]) -> np.ndarray:
    """(knob, 2): quality and cost per 1k on ``rows`` at every knob."""
    y, c = data.y[np.ix_(rows, cand)], data.cost[np.ix_(rows, cand)]
    exp, ref = data.expected[np.ix_(rows, cand)], refs(data, rows, cand)
    out = np.zeros((len(KNOB), 2))
    for k, knob in enumerate(KNOB):
        pick = choose(RULE, knob, p[np.ix_(rows, cand)], exp, ref)
        out[k] = y[np.arange(len(rows)), pick].mean(), c[np.arange(len(rows)), pick].mean() * 1000
    return out


def pick_knob(data: Data, p: np.ndarray, groups: dict[int, tuple[np.ndarray, list[int]]]) -> int | None:
    """The cheapest knob reaching 95% of GPT-4 on every group (index into KNOB)."""
    best = None
    curves = {s: curve(data, p, rows, cand) for s, (rows, cand) in groups.items()}
    for k in range(len(KNOB)):
        ok = True
        total = 0.0
        for s, (rows, _) in groups.items():
            goal = 0.95 * np.nanmean(data.y[rows, data.models.index(STRONG)])
            if curves[s][k, 0] < goal - 1e-12:
                ok = False
                break
            total += curves[s][k, 1] * len(rows)
        if ok and (best is None or total < best[1]):
            best = (k, total)
    return None if best is None else best[0]


def recogniser(
    data: Data, train: np.ndarray, test: np.ndarray, inner: list[np.ndarray], per_task: bool = False
) -> tuple:
    """Nearest centroid on inner rows; the threshold: the 1st percentile of the inner held-out
    rows' best similarity (``per_task``: each task's own, the 1st percentile of its own rows'
    similarity to its centroid, as ``router train`` now writes it). Returns (predicted task per
    test row or -1, the thresholds)."""
    make = tfidf()

    def fit(rows: np.ndarray) -> tuple:
        vec = make()
        x = vec.fit_transform([data.texts[i] for i in rows])
        tasks = sorted(set(data.origin[rows].tolist()))
        cent = np.vstack([np.asarray(x[data.origin[rows] == t].mean(axis=0)) for t in tasks])
        cent /= np.linalg.norm(cent, axis=1, keepdims=True)
        return vec, cent, np.array(tasks)

    sims, own = [], []
    for held in inner:
        rest = np.setdiff1d(train, held)
        vec, cent, tasks = fit(rest)
        s = np.asarray(vec.transform([data.texts[i] for i in held]) @ cent.T)
        sims.append(s.max(axis=1))
        own.append(s[np.arange(len(held)), np.searchsorted(tasks, data.origin[held])])
    vec, cent, tasks = fit(train)
    s = np.asarray(vec.transform([data.texts[i] for i in test]) @ cent.T)
    nearest = s.argmax(axis=1)
    if per_task:
        origin, mine = data.origin[np.concatenate(inner)], np.concatenate(own)
        thresholds = np.array([float(np.percentile(mine[origin == t], 1)) for t in tasks])
    else:
        thresholds = np.full(len(tasks), float(np.percentile(np.concatenate(sims), 1)))
    task = tasks[nearest]
    task[s.max(axis=1) < thresholds[nearest]] = -1
    return task, thresholds.round(3).tolist()


def main(argv: list[str]) -> None:
    root = Path(argv[0]) if argv and not argv[0].startswith("-") else Path("/work/shared/data")
    refit = "--refit" in argv
    # --per-task-thresholds: each task its own recognition threshold (router train's method since
    # leave_one_out.py measured it); --balanced: each file weighs the same in every model's fit and
    # calibration (router train's balance_files, not the default).
    balanced = "--balanced" in argv
    per_task = "--per-task-thresholds" in argv
    data = Data(root)
    fit_predict = logreg(tfidf(), balance=balanced)
    name = "lr-word1000-balanced" if balanced else "lr-word1000"
    p_outer = second_stage(data, oof(data, name, fit_predict), "platt", balance=balanced)
    sets = {k: (rows, cand) for k, (_, rows, cand) in enumerate(data.sets)}
    names = [name for name, _, _ in data.sets]
    n = len(data.texts)
    choice_task = np.zeros(n, dtype=int)  # knob index per row, per-task method
    choice_one = np.zeros(n, dtype=int)
    recognised = np.zeros(n, dtype=int)
    log = []
    for f, test in enumerate(data.folds):
        train = np.setdiff1d(np.arange(n), test)
        inner = [g for i, g in enumerate(data.folds) if i != f]
        if refit:
            p_in = np.zeros_like(p_outer)
            for held in inner:
                p_in[held] = fit_predict(data, np.setdiff1d(train, held), held)
            # Platt cross-fitted within the inner folds.
            p_in[train] = second_stage_rows(data, p_in, inner)
        else:
            p_in = p_outer
        in_groups = {k: (np.intersect1d(rows, train), cand) for k, (rows, cand) in sets.items()}
        one = pick_knob(data, p_in, in_groups)
        per = {k: pick_knob(data, p_in, {k: g}) for k, g in in_groups.items()}
        task, threshold = recogniser(data, train, test, inner, per_task=per_task)
        recognised[test] = task
        for k in sets:
            rows = test[data.origin[test] == k]
            choice_one[rows] = one if one is not None else len(KNOB) - 1
        for i, row in enumerate(test):
            t = int(task[i])
            knob = per.get(t) if t >= 0 else None
            choice_task[row] = knob if knob is not None else (one if one is not None else 0)
        log.append((f, one, per, threshold))
        print(f"fold {f}: one {KNOB[one] if one is not None else None}, per task "
              f"{ {names[k]: (KNOB[v] if v is not None else None) for k, v in per.items()} }, "
              f"thresholds {threshold}", flush=True)  # fmt: skip
    print(f"recogniser accuracy {np.mean(recognised == data.origin):.4f}, "
          f"unrecognised {np.mean(recognised == -1):.4f}")  # fmt: skip
    for name, rows, cand in data.sets:
        y, c = data.y[np.ix_(rows, cand)], data.cost[np.ix_(rows, cand)]
        strong = data.models.index(STRONG)
        q_s, c_s = np.mean(data.y[rows, strong]), np.mean(data.cost[rows, strong]) * 1000
        chain = hull(single_points({str(j): y[:, j].tolist() for j in range(len(cand))},
                                   {str(j): c[:, j].tolist() for j in range(len(cand))}))  # fmt: skip
        exp, ref = data.expected[np.ix_(rows, cand)], refs(data, rows, cand)
        pp = p_outer[np.ix_(rows, cand)]
        for label, knobs in (("one setting", choice_one[rows]), ("per task", choice_task[rows])):
            pick = np.zeros(len(rows), dtype=int)
            for kk in np.unique(knobs):
                sel = knobs == kk
                pick[sel] = choose(RULE, KNOB[kk], pp[sel], exp[sel], ref[sel])
            q = y[np.arange(len(rows)), pick].mean()
            cost = c[np.arange(len(rows)), pick].mean() * 1000
            h = hull_quality(chain, cost)
            share = f"{cost / c_s * 100:.0f}% of gpt-4's cost"
            print(f"{name:20s} {label:12s} q {q:.3f} ({q / q_s * 100:.0f}% of gpt-4) ${cost:.2f}/1k "
                  f"{share}, hull {h:.3f} ({(q - h) * 100:+.1f} pt)")  # fmt: skip


def second_stage_rows(data: Data, p: np.ndarray, folds: list[np.ndarray]) -> np.ndarray:
    """Platt per model, cross-fitted over ``folds`` (the inner folds); returns rows of their union."""
    from compare_methods import _logit
    from sklearn.linear_model import LogisticRegression

    rows = np.concatenate(folds)
    out = np.zeros_like(p)
    z = _logit(p)
    for held in folds:
        fit_rows = np.setdiff1d(rows, held)
        for j in range(len(data.models)):
            y = data.y[fit_rows, j]
            known = ~np.isnan(y)
            clf = LogisticRegression(C=1.0, max_iter=2000)
            clf.fit(z[fit_rows][known][:, [j]], y[known])
            out[held, j] = clf.predict_proba(z[held][:, [j]])[:, 1]
    return out[np.sort(rows)]


if __name__ == "__main__":
    main(sys.argv[1:])
