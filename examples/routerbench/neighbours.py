"""Near-duplicate neighbours' outcomes as a learned feature, scored like compare_methods.py.

    nice -n 10 python examples/routerbench/neighbours.py /work/shared/data   (FOLD_SEED=1: second split)
    ... --variant=pooled --variant=task --variant=hier:10 --variant=same-task --variant=near-l2:10
        (router train's memory with each way of learning its weights; see _neighbour_memory)

Some training prompts nearly repeat others: RouterBench's Winogrande comes in twins (one trigger
word changed, the answer flipped) and a model biased toward one option gets one twin right and the
other wrong; MMLU holds exact repeats. For a prompt, the *neighbour* is the training prompt whose
ending (the text after its last blank line, last 400 characters: few-shot prompts share their
examples) shares the most word bigrams with it (Jaccard), if that reaches a threshold. Each model's
prediction then moves by a learned amount for "the neighbour was right" / "the neighbour was
wrong" on that model, in two tiers (an exact repeat, Jaccard >= 0.95; a near one), on top of the
default's Platt-calibrated logit (a logistic regression with that logit as a fixed offset, so a
prompt without a neighbour is predicted exactly as by the default). Everything is cross-fitted:
for a held-out fold the neighbours come from the other folds, and the weights are fitted on the
other folds' rows with *their* neighbours drawn from neither their own fold nor the held-out one.

Per set: margin over the hull and cost at 95% of GPT-4 (the cost_weight rule, as the table), the
held-out AUC averaged over the set's models, and the share of held-out rows with a neighbour.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_methods import Data, _logit, evaluate, logreg, oof, second_stage, tfidf

RULE = "tokutility0.5"
EXACT = 0.95


def ending(text: str, chars: int = 400) -> str:
    text = text.strip()
    cut = text.rfind("\n\n")
    return (text[cut + 2 :] if cut >= 0 else text)[-chars:].lower()


def shingles(text: str) -> set[str]:
    words = re.findall(r"\w+", text)
    return {" ".join(words[i : i + 2]) for i in range(max(1, len(words) - 1))}


def candidates(texts: list[str], floor: float) -> list[list[tuple[float, int]]]:
    """Per row: every other row whose ending's bigram Jaccard reaches ``floor``, most similar first."""
    sets = [shingles(ending(t)) for t in texts]
    index: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for x in s:
            index[x].append(i)
    out = []
    for i, s in enumerate(sets):
        seen: set[int] = set()
        for x in s:
            rows = index[x]
            if len(rows) <= 200:  # a near-duplicate shares some rare bigram
                seen.update(rows)
        seen.discard(i)
        found = []
        for j in seen:
            common = len(s & sets[j])
            jac = common / (len(s) + len(sets[j]) - common)
            if jac >= floor:
                found.append((jac, j))
        found.sort(reverse=True)
        out.append(found)
    return out


def neighbour(
    cands: list[tuple[float, int]], allowed: Callable[[int], bool], floor: float
) -> tuple[float, int]:
    for jac, j in cands:
        if jac < floor:
            break
        if allowed(j):
            return jac, j
    return 0.0, -1


def features(data: Data, jac: float, nb: int, j: int) -> np.ndarray:
    """[exact ok, exact failed, near ok, near failed] of neighbour ``nb`` on model ``j``."""
    f = np.zeros(4)
    if nb < 0 or np.isnan(data.y[nb, j]):
        return f
    y = data.y[nb, j]
    tier = 0 if jac >= EXACT else 2
    f[tier], f[tier + 1] = y, 1 - y
    return f


def fit_offset(x: np.ndarray, offset: np.ndarray, y: np.ndarray, l2: float = 1.0) -> np.ndarray:
    """Logistic regression without intercept, ``offset`` fixed: Newton's method, L2 penalty."""
    w = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-(offset + x @ w)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def with_neighbours(
    data: Data, base: np.ndarray, floor: float, l2: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    cands = candidates(data.texts, min(floor, EXACT))
    fold_of = np.zeros(len(data.texts), dtype=int)
    for f, rows in enumerate(data.folds):
        fold_of[rows] = f
    z = _logit(base)
    out = z.copy()
    found = np.zeros(len(data.texts), dtype=bool)
    weights = []
    for f, test in enumerate(data.folds):
        train = np.setdiff1d(np.arange(len(z)), test)
        # training rows: neighbours from neither their own fold nor the held-out one
        tr_nb = [
            neighbour(cands[i], lambda k, g=fold_of[i], f=f: fold_of[k] not in (f, g), floor) for i in train
        ]
        te_nb = [neighbour(cands[i], lambda k, f=f: fold_of[k] != f, floor) for i in test]
        found[test] = [nb >= 0 for _, nb in te_nb]
        ws = []
        for j in range(len(data.models)):
            x = np.array([features(data, jac, nb, j) for jac, nb in tr_nb])
            y = data.y[train, j]
            use = ~np.isnan(y) & (x.sum(axis=1) > 0)
            w = fit_offset(x[use], z[train[use], j], y[use], l2) if use.sum() else np.zeros(4)
            ws.append(w)
            xt = np.array([features(data, jac, nb, j) for jac, nb in te_nb])
            out[test, j] = z[test, j] + xt @ w
        weights.append(ws)
    return 1 / (1 + np.exp(-out)), found, np.array(weights)


def auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    ok = ~np.isnan(y)
    if len(np.unique(y[ok])) < 2:
        return float("nan")
    return float(roc_auc_score(y[ok], p[ok]))


def show(label: str, data: Data, p: np.ndarray, found: np.ndarray | None) -> None:
    res = evaluate(data, p, RULE)
    cells = []
    for (name, rows, cand), r in zip(data.sets, res.values(), strict=True):
        a = np.nanmean([auc(data.y[rows, j], p[rows, j]) for j in cand])
        share = "" if found is None else f" nbr {found[rows].mean() * 100:.0f}%"
        cells.append(f"{name[:5]} {r['margin'] * 100:+.1f}pt {r['at95'] * 100:.0f}% auc {a:.3f}{share}")
    print(f"{label:24s} | " + " | ".join(cells), flush=True)


def product(data: Data, base: np.ndarray, variant: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What ``router train`` does (router/_train.py's _neighbour_memory: MinHash signatures, LSH
    bands, the same cross-fitting, each file a task) on these folds and base predictions;
    ``variant``: how the weights are learned (``_neighbour_memory``'s; default: router train's)."""
    from router._train import NEIGHBOUR_VARIANT, _neighbour_memory

    fold_of = np.zeros(len(data.texts), dtype=np.intp)
    for f, rows in enumerate(data.folds):
        fold_of[rows] = f
    held = {m: base[:, j] for j, m in enumerate(data.models)}
    tasks = np.asarray(data.origin, dtype=np.intp)
    names = {k: Path(source).stem for k, source in enumerate(data.labeled.sources)}
    _, adjusted, stats = _neighbour_memory(
        data.labeled, data.models, held, fold_of, len(data.folds), tasks, names,
        variant=variant or NEIGHBOUR_VARIANT,
    )  # fmt: skip
    p = np.column_stack([adjusted[m] for m in data.models])
    # which held-out rows found a neighbour: any model's prediction moved
    found = np.abs(p - base).max(axis=1) > 1e-12
    print(f"  [memory: {stats}]")
    return p, found


def main(argv: list[str]) -> None:
    root = Path(argv[0]) if argv and not argv[0].startswith("-") else Path("/work/shared/data")
    data = Data(root)
    base = second_stage(data, oof(data, "lr-word1000", logreg(tfidf())), "platt")
    show("default (LR + Platt)", data, base, None)
    variants = [a.split("=", 1)[1] for a in argv if a.startswith("--variant=")]
    for variant in variants or [None]:
        p, found = product(data, base, variant)
        show(f"memory {variant or 'router train'}", data, p, found)
    if "--product" in argv or variants:
        return
    for floor in (0.5, 0.6, 0.7, 0.8):
        p, found, w = with_neighbours(data, base, floor)
        show(f"neighbours J>={floor:g}", data, p, found)
        mean = w.mean(axis=0)
        for j, name in enumerate(data.models):
            exact, near = f"{mean[j, 0]:+.2f} {mean[j, 1]:+.2f}", f"{mean[j, 2]:+.2f} {mean[j, 3]:+.2f}"
            print(f"    {name[:34]:34s} exact ok/fail {exact}  near ok/fail {near}")


if __name__ == "__main__":
    main(sys.argv[1:])
