"""Compare adequacy methods by cross-validation on the shared *training* splits (never test data).

    nice -n 10 python examples/routerbench/compare_methods.py /work/shared/data [METHOD ...]

Every method predicts, out of fold (5 folds over the pooled rows, the same folds for all), each
model's success on each prompt; every decision rule then turns those predictions into one model per
prompt along its knob. Per set (ARC, MBPP, Winogrande: RouterBench's 11 models; MMLU: RouteLLM's
pair, priced from tokens at examples/routerbench/policy.yaml's prices) it prints the curve's best
margin over the zero-router hull, the cheapest cost reaching 95% of GPT-4's quality, and the
figures at ONE knob value chosen as ``router train --target`` chooses it (on the same folds).
The figures in docs/adequacy.md's method table come from this script.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from policies.loader import load_policy  # noqa: E402
from policies.tokens import estimate_prompt_tokens  # noqa: E402
from policies.validate import policy_catalog  # noqa: E402
from router._cli_adequacy import _training_costs  # noqa: E402
from router._eval import hull, hull_quality, oracle, single_points  # noqa: E402
from router._labeled import load_labeled  # noqa: E402

FILES = (
    "routerbench/arc_challenge_train.csv",
    "routerbench/mbpp_train.csv",
    "routerbench/winogrande_train.csv",
    "routellm/mmlu.csv",
)
STRONG = "gpt-4-1106-preview"
FOLDS = 5
SEED = int(os.environ.get("FOLD_SEED", "0"))  # another seed: another split into folds (noise check)
CACHE = Path("/tmp/adequacy-methods-cache") / f"seed{SEED}"


class Data:
    def __init__(self, root: Path) -> None:
        policy = load_policy(ROOT / "examples" / "routerbench" / "policy.yaml")
        labeled = load_labeled([root / f for f in FILES])
        self.labeled = labeled
        self.models = list(labeled.models)
        self.texts = list(labeled.prompts)
        self.origin = np.array(labeled.origin)
        n, m = len(self.texts), len(self.models)
        self.y = np.full((n, m), np.nan)
        for j, name in enumerate(self.models):
            self.y[:, j] = [np.nan if v is None else v for v in labeled.outcomes[name]]
        costs = _training_costs(labeled, policy)
        self.cost = np.array([costs[name] for name in self.models]).T
        # What the planner sees per request: the prompt's estimated tokens at the policy's prices.
        catalog = policy_catalog(policy)
        tokens = np.array([estimate_prompt_tokens(list(msgs)) for msgs in labeled.messages])
        out = policy.expected_output_tokens
        self.tokens = tokens
        self.prices = np.array(
            [[catalog[n].input_cost_per_mtok, catalog[n].output_cost_per_mtok] for n in self.models]
        )
        self.out_tokens = out
        # The reference prompt: the median of the files' median token counts (one big file doesn't rule).
        medians = [np.median(tokens[self.origin == k]) for k in range(len(labeled.sources))]
        self.ref_tokens = float(np.median(medians))
        self.expected = np.array(
            [
                (tokens * catalog[name].input_cost_per_mtok + out * catalog[name].output_cost_per_mtok) / 1e6
                for name in self.models
            ]
        ).T
        self.sets = []
        for index, source in enumerate(labeled.sources):
            rows = np.flatnonzero(self.origin == index)
            present = [j for j in range(m) if not np.isnan(self.y[rows, j]).all()]
            keep = rows[~np.isnan(self.y[np.ix_(rows, present)]).any(axis=1)]
            self.sets.append((Path(source).stem.replace("_train", ""), keep, present))
        rng = np.random.default_rng(SEED)
        order = rng.permutation(n)
        self.folds = [order[f::FOLDS] for f in range(FOLDS)]


# --------------------------------------------------------------------------- predictors


def tfidf(max_chars: int = 1000, analyzer: str = "word", ngram: tuple[int, int] = (1, 2), **kw: Any) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    if analyzer == "word":
        return lambda: TfidfVectorizer(
            token_pattern=r"(?u)\b\w\w+\b", ngram_range=ngram, sublinear_tf=True, min_df=2,
            max_features=kw.get("max_features", 50_000),
            preprocessor=lambda t: t[-max_chars:].lower(),
        )  # fmt: skip
    return lambda: TfidfVectorizer(
        analyzer=analyzer, ngram_range=ngram, sublinear_tf=True, min_df=2,
        max_features=kw.get("max_features", 100_000), preprocessor=lambda t: t[-max_chars:].lower(),
    )  # fmt: skip


def oof(
    data: Data, name: str, fit_predict: Callable[[Data, np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Out-of-fold predictions (rows x models), cached by name."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    p = np.zeros_like(data.y)
    for test in data.folds:
        mask = np.ones(len(data.texts), dtype=bool)
        mask[test] = False
        p[test] = fit_predict(data, np.flatnonzero(mask), test)
    np.save(path, p)
    print(f"  [{name}: {time.perf_counter() - started:.0f} s]", file=sys.stderr)
    return p


def logreg(make: Any, c: float = 1.0, label: str = "own", balance: bool = False) -> Any:
    """One logistic regression per model; label 'own' = the model's success, 'as-strong' = the model
    does at least as well as GPT-4 on the prompt (RouteLLM's strong-vs-weak label, per model).
    ``balance``: each file weighs the same in each model's fit (router train's balance_files)."""

    def fit_predict(data: Data, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        from sklearn.linear_model import LogisticRegression

        vec = make()
        xtr = vec.fit_transform([data.texts[i] for i in train])
        xte = vec.transform([data.texts[i] for i in test])
        out = np.zeros((len(test), len(data.models)))
        strong = data.y[:, data.models.index(STRONG)]
        for j in range(len(data.models)):
            y = data.y[train, j]
            if label == "as-strong" and data.models[j] != STRONG:
                y = np.where(np.isnan(strong[train]), np.nan, (y >= strong[train]).astype(float))
                y[np.isnan(data.y[train, j])] = np.nan
            known = ~np.isnan(y)
            weight = file_weights(data, train[known]) if balance else None
            clf = LogisticRegression(C=c, max_iter=5000)
            clf.fit(xtr[known], y[known], sample_weight=weight)
            out[:, j] = clf.predict_proba(xte)[:, 1]
        return out

    return fit_predict


def knn(make: Any, k: int = 20, prior_weight: float = 2.0) -> Any:
    """Cosine kNN over the TF-IDF vectors: neighbours' mean outcome, shrunk to the model's prior."""

    def fit_predict(data: Data, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        vec = make()
        xtr = vec.fit_transform([data.texts[i] for i in train])
        xte = vec.transform([data.texts[i] for i in test])
        out = np.zeros((len(test), len(data.models)))
        ytr = data.y[train]
        known = ~np.isnan(ytr)
        prior = np.nanmean(ytr, axis=0)
        filled = np.where(known, ytr, 0.0)
        for start in range(0, len(test), 2000):
            sims = (xte[start : start + 2000] @ xtr.T).toarray()
            top = np.argpartition(-sims, k, axis=1)[:, :k]
            s = filled[top]  # (b, k, m)
            cnt = known[top].sum(axis=1)
            out[start : start + 2000] = (s.sum(axis=1) + prior_weight * prior) / (cnt + prior_weight)
        return out

    return fit_predict


# --------------------------------------------------------------------------- decision rules


def choose(
    rule: str, knob: float, p: np.ndarray, cost: np.ndarray, ref: np.ndarray | None = None
) -> np.ndarray:
    """The chosen column per row, ``p`` and ``cost`` restricted to the candidates (cost: expected)."""
    order = np.argsort(cost, axis=1, kind="stable")
    if rule == "utility":  # argmax p - knob * cost / the dearest candidate's cost
        u = p - knob * cost / cost.max(axis=1, keepdims=True)
        return np.argmax(u, axis=1)
    if rule == "absutility":  # argmax p - knob * cost / the set's mean dearest cost (cost per prompt varies)
        return np.argmax(p - knob * cost / cost.max(axis=1).mean(), axis=1)
    # p - knob * cost / the dearest's cost (moved toward) the reference length
    if rule == "refutility" or rule.startswith("tokutility"):
        assert ref is not None
        return np.argmax(p - knob * cost / ref[:, None], axis=1)
    if rule == "logutility":  # argmax p - knob * log10(cost / the dearest's)
        u = p - knob * np.log10(cost / cost.max(axis=1, keepdims=True))
        return np.argmax(u, axis=1)
    if rule == "min_success":
        ok = p >= knob
    elif rule == "max_shortfall":
        ok = p >= p.max(axis=1, keepdims=True) - knob
    else:
        raise ValueError(rule)
    ok_sorted = np.take_along_axis(ok, order, axis=1)
    first = np.argmax(ok_sorted, axis=1)
    chosen = order[np.arange(len(p)), first]
    none = ~ok_sorted.any(axis=1)
    chosen[none] = np.argmax(p[none], axis=1)
    return chosen


KNOBS = {
    "min_success": [i / 100 for i in range(101)],
    "max_shortfall": [i / 200 for i in range(101)],
    "utility": [i / 100 for i in range(0, 101)] + [1.5, 2, 3, 5, 10],
    "logutility": [i / 400 for i in range(0, 101)],
    "refutility": [i / 100 for i in range(0, 101)] + [1.25, 1.5, 2, 3, 5, 10],
    "tokutility": [i / 100 for i in range(0, 101)] + [1.25, 1.5, 2, 3, 5, 10],
    "tokutility0.5": [i / 100 for i in range(0, 101)] + [1.25, 1.5, 2, 3, 5, 10],
    "tokutility0.25": [i / 100 for i in range(0, 101)] + [1.25, 1.5, 2, 3, 5, 10],
    "absutility": [i / 100 for i in range(0, 101)] + [1.5, 2, 3, 5, 10],
}


def evaluate(data: Data, p: np.ndarray, rule: str) -> dict[str, Any]:
    """Per set: the curve over the rule's knob, its margin over the hull, cost at 95% of GPT-4, and
    the figures at the single knob value that reaches 95% on every set at the lowest pooled cost."""
    per_set = {}
    curves: dict[str, list[tuple[float, float]]] = {}
    for name, rows, cand in data.sets:
        y, c = data.y[np.ix_(rows, cand)], data.cost[np.ix_(rows, cand)]
        singles = single_points({str(j): y[:, j].tolist() for j in range(len(cand))},
                                {str(j): c[:, j].tolist() for j in range(len(cand))})  # fmt: skip
        chain = hull(singles)
        strong = cand.index(data.models.index(STRONG))
        q_strong, c_strong = y[:, strong].mean(), c[:, strong].mean() * 1000
        best = max(singles, key=lambda s: s.quality)
        orc = oracle({str(j): y[:, j].tolist() for j in range(len(cand))},
                     {str(j): c[:, j].tolist() for j in range(len(cand))})  # fmt: skip
        curve = []
        exp = data.expected[np.ix_(rows, cand)]
        dearest = np.array(cand)[np.argmax(exp, axis=1)]
        ref = (data.ref_tokens * data.prices[dearest, 0] + data.out_tokens * data.prices[dearest, 1]) / 1e6
        if rule.startswith("tokutility"):  # the dearest's cost scaled to the reference length
            t = data.tokens[rows] + data.out_tokens
            power = float(rule.removeprefix("tokutility") or 1)  # tokutility0.5: square root
            ref = exp.max(axis=1) * ((data.ref_tokens + data.out_tokens) / t) ** power
        for knob in KNOBS[rule]:
            pick = choose(rule, knob, p[np.ix_(rows, cand)], exp, ref)
            q = y[np.arange(len(rows)), pick].mean()
            cost = c[np.arange(len(rows)), pick].mean() * 1000
            curve.append((q, cost))
        curves[name] = curve
        margins = [q - h for q, cost in curve if (h := hull_quality(chain, cost)) is not None]
        reach = [cost for q, cost in curve if q >= 0.95 * q_strong - 1e-12]
        per_set[name] = {
            "rows": len(rows), "strong": (q_strong, c_strong), "best": (best.quality, best.cost_per_1k),
            "oracle": (orc.quality, orc.cost_per_1k), "chain": chain,
            "margin": max(margins) if margins else float("nan"),
            "at95": min(reach) / c_strong if reach else float("nan"),
        }  # fmt: skip
    # One knob for every set (router train --target's choice): reaches 95% of GPT-4 on each set.
    chosen = None
    for k in range(len(KNOBS[rule])):
        if all(curves[s][k][0] >= 0.95 * per_set[s]["strong"][0] - 1e-12 for s in curves):
            total = sum(curves[s][k][1] * per_set[s]["rows"] for s in curves)
            if chosen is None or total < chosen[1]:
                chosen = (k, total)
    for s in per_set:
        if chosen is None:
            per_set[s]["one"] = None
            continue
        q, cost = curves[s][chosen[0]]
        h = hull_quality(per_set[s]["chain"], cost)
        per_set[s]["one"] = (KNOBS[rule][chosen[0]], q, cost, h)
    return per_set


def show(label: str, rule: str, res: dict[str, Any], verbose: bool = False) -> None:
    """One line per (method, rule): per set, the best margin over the hull, the cost at 95% of
    GPT-4 (its share of GPT-4-only), and at the one shared knob: quality/cost and margin."""
    cells = []
    for s, r in res.items():
        one, tail = r["one"], ""
        if one is not None:
            margin = float("nan") if one[3] is None else (one[1] - one[3]) * 100
            tail = f" @{one[0]:g}: {one[1]:.3f}/${one[2]:.2f} h{margin:+.1f}"
        cells.append(f"{s[:4]} {r['margin'] * 100:+.1f}pt {r['at95'] * 100:.0f}%{tail}")
    print(f"{label:38s} {rule:13s} | " + " | ".join(cells), flush=True)
    if verbose:
        for s, r in res.items():
            (qs, cs), (qb, cb), (qo, co) = r["strong"], r["best"], r["oracle"]
            print(f"    {s}: rows {r['rows']} gpt-4 {qs:.3f}/${cs:.2f} best {qb:.3f}/${cb:.2f}", end="")
            print(f" oracle {qo:.3f}/${co:.3f}")


def methods() -> dict[str, Any]:
    word = tfidf()
    return {
        "lr-word1000": logreg(word),
        "lr-word1000-C0.3": logreg(word, c=0.3),
        "lr-word1000-C3": logreg(word, c=3.0),
        "lr-word4000": logreg(tfidf(4000)),
        "lr-char1000": logreg(tfidf(1000, "char_wb", (2, 5))),
        "lr-word1000-asstrong": logreg(word, label="as-strong"),
        "lr-word1000-balanced": logreg(word, balance=True),
        "knn20-word1000": knn(word, 20),
        "knn50-word1000": knn(word, 50),
    }


RULES = ["min_success", "max_shortfall", "utility", "logutility"]


def main(argv: Sequence[str]) -> None:
    root = Path(argv[0]) if argv else Path("/work/shared/data")
    wanted = list(argv[1:])
    data = Data(root)
    table = methods()
    first = True
    names = wanted or list(table)
    for name in names:
        base, _, post = name.partition("+")
        p = oof(data, base, table[base])
        if post == "platt" or post == "stack":
            p = second_stage(data, p, post)
        elif post.startswith("blend-"):  # e.g. lr-word1000+blend-knn50-word1000
            other = post.removeprefix("blend-")
            p = (p + oof(data, other, table[other])) / 2
        elif post.startswith("stackwith-"):  # every model's logit from both methods
            other = post.removeprefix("stackwith-")
            p = second_stage(data, p, "stack", _logit(oof(data, other, table[other])))
        for rule in RULES:
            show(name, rule, evaluate(data, p, rule), verbose=first)
            first = False


# --------------------------------------------------------------------------- second stages (cross-fitted)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def file_weights(data: Data, rows: np.ndarray) -> np.ndarray:
    """Per row of ``rows``: a weight making each file's rows weigh the same in total."""
    files, counts = np.unique(data.origin[rows], return_counts=True)
    per_file = dict(zip(files.tolist(), (len(rows) / len(files) / counts).tolist(), strict=True))
    return np.array([per_file[o] for o in data.origin[rows].tolist()])


def second_stage(
    data: Data, base: np.ndarray, kind: str, extra: np.ndarray | None = None, balance: bool = False
) -> np.ndarray:
    """Recalibrate out-of-fold predictions: for each fold, fit on the other folds' out-of-fold
    predictions, apply to this fold. 'platt': per model, a logistic map of its own logit;
    'stack': per model, a logistic regression over every model's logit (and ``extra`` columns)."""
    from sklearn.linear_model import LogisticRegression

    features = _logit(base) if extra is None else np.hstack([_logit(base), extra])
    out = np.zeros_like(base)
    for test in data.folds:
        mask = np.ones(len(base), dtype=bool)
        mask[test] = False
        for j in range(len(data.models)):
            y = data.y[mask, j]
            known = ~np.isnan(y)
            x = features[mask][:, [j]] if kind == "platt" else features[mask]
            xt = features[test][:, [j]] if kind == "platt" else features[test]
            clf = LogisticRegression(C=1.0 if kind == "platt" else 0.1, max_iter=2000)
            rows = np.flatnonzero(mask)[known]
            clf.fit(x[known], y[known], sample_weight=file_weights(data, rows) if balance else None)
            out[test, j] = clf.predict_proba(xt)[:, 1]
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
