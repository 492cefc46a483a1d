"""Ideas for the within-set margins, scored like compare_methods.py (5-fold CV, training splits only).

    nice -n 10 python examples/routerbench/ideas.py /work/shared/data [--balanced]
        [--refit[=structure,char]]

On the default predictor's out-of-fold predictions (compare_methods.py's cache; Platt cross-fitted),
per set: the curve's best margin over the zero-router hull and the cheapest cost reaching 95% of
GPT-4 (``tokutility0.5``: routing's cost_weight rule), for

- ``files weighed equally``: each file the same total weight in every model's fit and calibration,
  (router train's ``balance_files``, measured for prompts of a kind no file holds: leave_one_out.py);
- ``shrink-A``: each prediction shrunk toward its model's success rate on the prompt's own file
  (measured on the training folds): ``A * p + (1 - A) * prior`` — per-prompt signal is weak, so a
  noisy prediction should move the choice less;
- ``hull-only``: per file, only the models on that file's hull (training folds) are candidates —
  a mix of hull models plus per-prompt overrides among them, never a model off the hull;
- ``structure``: the word features plus a few of the prompt's structure (answer options counted,
  mean option length, digits, code-like characters, length), per-model LR (a refit);
- ``char3-5``: hashed character 3-5-grams of the last 1,000 characters instead of words (a refit).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_methods import STRONG, Data, evaluate, logreg, oof, second_stage, tfidf

from router._eval import hull, single_points

RULE = "tokutility0.5"


def file_priors(data: Data, p: np.ndarray) -> np.ndarray:
    """Per row and model: the model's success rate on the row's file, measured without the row's fold."""
    out = np.zeros_like(p)
    for test in data.folds:
        train = np.setdiff1d(np.arange(len(p)), test)
        for k in np.unique(data.origin):
            rows_train = train[data.origin[train] == k]
            rows_test = test[data.origin[test] == k]
            known = (~np.isnan(data.y[rows_train])).sum(axis=0)
            prior = np.nansum(data.y[rows_train], axis=0) / np.maximum(known, 1)
            out[rows_test] = np.where(known > 0, prior, 0.5)
    return out


def hull_only(data: Data, p: np.ndarray) -> np.ndarray:
    """Models off their file's hull (on the training folds) predicted at 0: never chosen."""
    out = p.copy()
    for test in data.folds:
        train = np.setdiff1d(np.arange(len(p)), test)
        for _, rows, cand in data.sets:
            rt = np.intersect1d(rows, train)
            y, c = data.y[np.ix_(rt, cand)], data.cost[np.ix_(rt, cand)]
            chain = hull(single_points({str(j): y[:, k].tolist() for k, j in enumerate(cand)},
                                       {str(j): c[:, k].tolist() for k, j in enumerate(cand)}))  # fmt: skip
            on = {int(point.name) for point in chain}
            off = [j for j in cand if j not in on]
            te = np.intersect1d(rows, test)
            out[np.ix_(te, off)] = 0.0
    return out


def structure(data: Data) -> np.ndarray:
    """A few dense features of the prompt's structure (its last 1,000 characters)."""
    rows = []
    for text in data.texts:
        tail = text[-1000:]
        options = re.findall(r"^\s*[A-H][).:]\s*(.*)$", tail, flags=re.MULTILINE)
        rows.append(
            [
                len(options) / 4,
                np.log1p(np.mean([len(o) for o in options])) / 5 if options else 0.0,
                np.log1p(len(text)) / 10,
                sum(ch.isdigit() for ch in tail) / max(len(tail), 1) * 10,
                sum(ch in "{}()[];=_<>" for ch in tail) / max(len(tail), 1) * 10,
                float("def " in tail or "function" in tail),
            ]
        )
    return np.array(rows)


def with_structure(make: object) -> object:
    from scipy import sparse  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression

    def fit_predict(data: Data, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        dense = structure(data)
        vec = make()  # type: ignore[operator]
        xtr = sparse.hstack([vec.fit_transform([data.texts[i] for i in train]), dense[train]]).tocsr()
        xte = sparse.hstack([vec.transform([data.texts[i] for i in test]), dense[test]]).tocsr()
        out = np.zeros((len(test), len(data.models)))
        for j in range(len(data.models)):
            y = data.y[train, j]
            known = ~np.isnan(y)
            clf = LogisticRegression(C=1.0, max_iter=5000)
            clf.fit(xtr[known], y[known])
            out[:, j] = clf.predict_proba(xte)[:, 1]
        return out

    return fit_predict


def show(label: str, res: dict) -> None:
    cells = [f"{s[:5]} {r['margin'] * 100:+.1f}pt {r['at95'] * 100:.0f}%" for s, r in res.items()]
    print(f"{label:28s} | " + " | ".join(cells), flush=True)


def main(argv: list[str]) -> None:
    root = Path(argv[0]) if argv and not argv[0].startswith("-") else Path("/work/shared/data")
    data = Data(root)
    base = second_stage(data, oof(data, "lr-word1000", logreg(tfidf())), "platt")
    show("default (LR + Platt)", evaluate(data, base, RULE))
    if "--balanced" in argv:
        balanced = oof(data, "lr-word1000-balanced", logreg(tfidf(), balance=True))
        p = second_stage(data, balanced, "platt", balance=True)
        show("files weighed equally", evaluate(data, p, RULE))
    priors = file_priors(data, base)
    for a in (0.75, 0.5, 0.25) if "--no-shrink" not in argv else ():
        show(f"shrink-{a:g}", evaluate(data, a * base + (1 - a) * priors, RULE))
    show("hull-only", evaluate(data, hull_only(data, base), RULE))
    show("hull-only + shrink-0.5", evaluate(data, hull_only(data, 0.5 * base + 0.5 * priors), RULE))
    refit = next((a.partition("=")[2] or "structure,char" for a in argv if a.startswith("--refit")), "")
    if "structure" in refit:
        p = second_stage(data, oof(data, "lr-word1000-structure", with_structure(tfidf())), "platt")
        show("structure", evaluate(data, p, RULE))
    if "char" in refit:
        chars = logreg(tfidf(1000, "char_wb", (3, 5), max_features=2**17))
        p = second_stage(data, oof(data, "lr-char3-5", chars), "platt")
        show("char3-5", evaluate(data, p, RULE))
    strong = data.models.index(STRONG)
    print(f"(GPT-4 column {strong}; {len(data.texts)} rows)")


if __name__ == "__main__":
    main(sys.argv[1:])
