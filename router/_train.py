"""``router train``: learn each model's probability of success per prompt, and prove it on held-out folds.

The method (chosen by cross-validation on RouterBench and RouteLLM training splits; the figures
are in docs/adequacy.md and examples/routerbench/compare_methods.py reproduces them): TF-IDF over
word uni- and bigrams of the prompt's last 1,000 characters, one L2-regularized logistic
regression per model, each recalibrated by Platt scaling fitted on held-out folds; routes weigh
those predictions against cost (``cost_weight``). It is fitted with scikit-learn
(``pip install 'router-sdk[train]'``); routing reads the weights with numpy alone.

Everything reported is measured on folds the model was not fitted on: calibration per model, and
with ``--target`` the setting that reaches the target quality at the lowest cost.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from policies.adequacy import (
    DEFAULT_MAX_CHARS,
    FORMAT,
    NEIGHBOUR_BAND,
    NEIGHBOUR_CHARS,
    NEIGHBOUR_HASHES,
    NEIGHBOUR_JACCARD,
    NEIGHBOUR_SEED,
    OUTCOME_SCALE,
    OUTCOME_UNKNOWN,
    TOKEN_PATTERN,
    VERSION,
    VERSION_WITHOUT_NEIGHBOURS,
    _hash_parameters,
    choose,
    encode_floats,
    minhash,
    near_matches,
    prompt_fingerprint,
    reference_cost,
    shingle_filter,
    shingles,
)
from policies.tokens import estimate_prompt_tokens
from router._eval import Point, best_single, hull, hull_quality, oracle, single_points
from router._labeled import LabeledData

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# A task's centroid keeps its largest terms only: the file stays small and recognition as good
# (held-out accuracy in docs/adequacy.md).
TASK_TERMS: Final = 2000
# A task's own prompts: the percentile of their held-out similarity to its centroid below which a
# prompt is of none of the tasks (chosen by leaving each training file out in turn: docs/adequacy.md).
TASK_PERCENTILE: Final = 1.0
# How the neighbour memory's weights are learned (``_neighbour_memory``; chosen by cross-validation,
# docs/adequacy.md): per (task, model), each task on its own rows.
NEIGHBOUR_VARIANT: Final = "task"
THRESHOLDS: Final = tuple(round(i / 100, 2) for i in range(101))
# cost_weight is not bounded by 1: a weight of 2 gives up 2 points of success for the dearest price.
GRIDS: Final = {
    "max_shortfall": THRESHOLDS,
    "min_success": THRESHOLDS,
    "cost_weight": (*THRESHOLDS, 1.25, 1.5, 2.0, 3.0, 5.0),
}
DEFAULTS: Final = {"max_shortfall": 0.05, "min_success": 0.5, "cost_weight": 0.1}
# The gate settings --target can tune, the default first: cost_weight (predicted success priced
# against cost) did best in cross-validation (docs/adequacy.md, examples/routerbench/compare_methods.py).
SETTINGS: Final = ("cost_weight", "max_shortfall", "min_success")


class TrainError(ValueError):
    """Training can't proceed; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Target:
    """``--target "0.95 of gpt-4o"``: a fraction of a reference model's quality."""

    fraction: float
    model: str

    @classmethod
    def parse(cls, text: str) -> Target:
        match = re.fullmatch(r"\s*([0-9.]+)\s*(%?)\s+of\s+(\S+)\s*", text)
        if match is None:
            raise TrainError(f"--target {text!r}: write it as '0.95 of gpt-4o' (or '95% of gpt-4o').")
        fraction = float(match.group(1)) / (100 if match.group(2) else 1)
        if not 0 < fraction <= 1.0:
            raise TrainError(f"--target {text!r}: the fraction must be in (0, 1].")
        return cls(fraction, match.group(3))


@dataclass(frozen=True, slots=True)
class Calibration:
    model: str
    rows: int
    brier: float
    ece: float
    bins: tuple[tuple[float, float, int], ...]  # (mean predicted, observed, count)


@dataclass(frozen=True, slots=True)
class SetResult:
    """Cross-validated figures on one source file at the chosen threshold."""

    source: str
    rows: int
    route: Point
    best: Point
    hull_quality: float | None
    oracle: Point
    task_setting: float | None = None  # this file's own suggestion (cost_weight: auto), if any
    task_route: Point | None = None  # the route's figures at it


@dataclass(frozen=True, slots=True)
class TrainReport:
    models: tuple[str, ...]
    rows: int
    folds: int
    calibration: tuple[Calibration, ...]
    threshold: float | None
    setting: str
    target: Target | None
    target_quality: float | None
    sets: tuple[SetResult, ...] = field(default=())
    task_accuracy: float | None = None  # held-out share of prompts recognised as their own file's task

    def to_dict(self) -> dict[str, Any]:
        def point(p: Point) -> dict[str, Any]:
            return {
                "name": p.name,
                "quality": round(p.quality, 6),
                "cost_per_1k_usd": round(p.cost_per_1k, 9),
            }

        return {
            "models": list(self.models),
            "rows": self.rows,
            "folds": self.folds,
            "suggested": None if self.threshold is None else {self.setting: self.threshold},
            "target": None if self.target is None else f"{self.target.fraction:g} of {self.target.model}",
            "target_quality": None if self.target_quality is None else round(self.target_quality, 6),
            "calibration": [
                {
                    "model": c.model,
                    "rows": c.rows,
                    "brier": round(c.brier, 6),
                    "ece": round(c.ece, 6),
                    "bins": [
                        {"predicted": round(p, 4), "observed": round(o, 4), "rows": n} for p, o, n in c.bins
                    ],
                }
                for c in self.calibration
            ],
            "sets": [
                {
                    "source": s.source,
                    "rows": s.rows,
                    "route": point(s.route),
                    "best_single": point(s.best),
                    "hull_quality_at_route_cost": None
                    if s.hull_quality is None
                    else round(s.hull_quality, 6),
                    "oracle": point(s.oracle),
                    "task_suggested": None if s.task_setting is None else {self.setting: s.task_setting},
                    "task_route": None if s.task_route is None else point(s.task_route),
                }
                for s in self.sets
            ],
            "task_accuracy": None if self.task_accuracy is None else round(self.task_accuracy, 6),
        }


def _sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise TrainError("router train needs scikit-learn: pip install 'router-sdk[train]'.") from None
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    return TfidfVectorizer, LogisticRegression


@dataclass(frozen=True, slots=True)
class Settings:
    max_features: int = 50_000
    c: float = 1.0
    max_chars: int = DEFAULT_MAX_CHARS
    folds: int = 5
    seed: int = 0
    min_df: int = 2
    ngram_max: int = 2  # word uni- and bigrams (1: unigrams only)
    calibrate: bool = True  # Platt scaling per model, fitted on held-out folds
    # Each input file weighs the same in every model's fit (and calibration), rather than each row:
    # measured by leaving each file out (docs/adequacy.md) and not made the default.
    balance_files: bool = False
    output_tokens: int = 256  # what routing expects a reply to take (cost_weight's reference length)
    # The neighbour memory (a near-duplicate training prompt's outcomes as a learned feature):
    # version 4 files; off: a version 3 file, which older routers read too.
    neighbours: bool = True


def _texts(data: LabeledData, settings: Settings) -> list[str]:
    return [p[-settings.max_chars :] for p in data.prompts]


def _vectorizer(settings: Settings) -> Any:
    import numpy as np

    tfidf, _ = _sklearn()
    return tfidf(
        lowercase=True,
        token_pattern=TOKEN_PATTERN,
        ngram_range=(1, settings.ngram_max),
        sublinear_tf=True,
        norm="l2",
        min_df=settings.min_df,
        max_features=settings.max_features,
        dtype=np.float64,
    )


def _labels(values: Sequence[float | None]) -> tuple[list[int], list[float], list[float]]:
    """Rows, labels and weights for a logistic fit: a score s counts as s of a success, 1-s of a failure."""
    rows: list[int] = []
    labels: list[float] = []
    weights: list[float] = []
    for i, value in enumerate(values):
        if value is None:
            continue
        if value in (0.0, 1.0):
            rows.append(i)
            labels.append(value)
            weights.append(1.0)
        else:
            rows += [i, i]
            labels += [1.0, 0.0]
            weights += [value, 1.0 - value]
    return rows, labels, weights


class _Docs:
    """The rows as the classifiers see them: prompt text, or (rows from a production ledger) term
    counts under a fixed vocabulary. With a fixed vocabulary, text rows are counted with it too and
    only the IDF weights are refitted, so the new file keeps the featurizer — and the ledger's rows
    recorded under it stay usable for the next retraining."""

    def __init__(
        self,
        texts: Sequence[str],
        settings: Settings,
        counted: Sequence[tuple[Any, Any] | None] | None = None,
        featurizer: Mapping[str, Any] | None = None,
    ) -> None:
        self.texts = texts
        self.settings = settings
        self.featurizer = featurizer
        self._matrix: Any = None
        if featurizer is not None:
            self._matrix = _count_matrix(texts, counted or [None] * len(texts), featurizer)

    def fit(self, rows: Sequence[int]) -> tuple[Any, Any]:
        """A fitted transform and the rows' matrix under it."""
        if self._matrix is None:
            vectorizer = _vectorizer(self.settings)
            return vectorizer, vectorizer.fit_transform([self.texts[i] for i in rows])
        from sklearn.feature_extraction.text import TfidfTransformer

        transformer = TfidfTransformer(norm="l2", sublinear_tf=True)
        return transformer, transformer.fit_transform(self._matrix[list(rows)])

    def transform(self, fitted: Any, rows: Sequence[int]) -> Any:
        if self._matrix is None:
            return fitted.transform([self.texts[i] for i in rows])
        return fitted.transform(self._matrix[list(rows)])

    def featurizer_of(self, fitted: Any) -> dict[str, Any]:
        """The artifact's featurizer section."""
        if self.featurizer is not None:
            return {**self.featurizer, "idf": encode_floats(fitted.idf_)}
        vocabulary = sorted(fitted.vocabulary_, key=fitted.vocabulary_.__getitem__)
        return {
            "kind": "tfidf",
            "lowercase": True,
            "token_pattern": TOKEN_PATTERN,
            "ngram_range": [1, self.settings.ngram_max],
            "sublinear_tf": True,
            "norm": "l2",
            "max_chars": self.settings.max_chars,
            "vocabulary": vocabulary,
            "idf": encode_floats(fitted.idf_),
        }


def _count_matrix(
    texts: Sequence[str], counted: Sequence[tuple[Any, Any] | None], featurizer: Mapping[str, Any]
) -> Any:
    """Every row's term counts under ``featurizer``: text rows counted as routing counts them."""
    import numpy as np
    from scipy import sparse  # type: ignore[import-untyped]
    from sklearn.feature_extraction.text import CountVectorizer

    vocabulary = list(featurizer["vocabulary"])
    max_chars = int(featurizer.get("max_chars", DEFAULT_MAX_CHARS))
    low, high = featurizer.get("ngram_range", (1, 2))
    counter = CountVectorizer(
        vocabulary={term: i for i, term in enumerate(vocabulary)},
        lowercase=bool(featurizer.get("lowercase", True)),
        token_pattern=featurizer.get("token_pattern", TOKEN_PATTERN),
        ngram_range=(int(low), int(high)),
        dtype=np.float64,
    )
    from_text = counter.transform(
        [t[-max_chars:] if c is None else "" for t, c in zip(texts, counted, strict=True)]
    )
    data: list[float] = []
    indices: list[int] = []
    indptr = [0]
    for row in counted:
        if row is not None:
            idx, counts = row
            keep = idx < len(vocabulary)
            indices += idx[keep].tolist()
            data += counts[keep].astype(float).tolist()
        indptr.append(len(indices))
    recorded = sparse.csr_matrix((data, indices, indptr), shape=(len(texts), len(vocabulary)))
    return (from_text + recorded).tocsr()


def _fit(
    docs: _Docs, data: LabeledData, models: Sequence[str], rows: Sequence[int], settings: Settings
) -> tuple[Any, dict[str, tuple[Any, float]], Any]:
    """A featurizer, one classifier per model fitted on ``rows``, and the rows' matrix."""
    import numpy as np

    _, logistic = _sklearn()
    vectorizer, matrix = docs.fit(rows)
    fitted: dict[str, tuple[Any, float]] = {}
    for model in models:
        values = [data.outcomes[model][i] for i in rows]
        local, labels, weights = _labels(values)
        if settings.balance_files:
            weights = _balanced(weights, [data.origin[rows[k]] for k in local])
        if not local:
            # A model only a few rows label (production feedback) may have none in a fold.
            fitted[model] = (None, 0.5)
            continue
        prior = float(np.average(labels, weights=weights))
        if len(set(labels)) < 2 or prior in (0.0, 1.0):
            fitted[model] = (None, prior)  # always right (or wrong) here: a constant
            continue
        classifier = logistic(C=settings.c, max_iter=5000)
        classifier.fit(matrix[local], labels, sample_weight=weights)
        fitted[model] = (classifier, prior)
    return vectorizer, fitted, matrix


def _balanced(weights: Sequence[float], origin: Sequence[int]) -> list[float]:
    """``weights`` rescaled so that each file's rows weigh the same in total (the mean weight stays 1)."""
    totals: dict[int, float] = {}
    for w, o in zip(weights, origin, strict=True):
        totals[o] = totals.get(o, 0.0) + w
    mean = sum(totals.values()) / len(totals)
    return [w * mean / totals[o] if totals[o] > 0 else w for w, o in zip(weights, origin, strict=True)]


def _predict(
    docs: _Docs, vectorizer: Any, fitted: Mapping[str, tuple[Any, float]], rows: Sequence[int]
) -> dict[str, npt.NDArray[np.float64]]:
    import numpy as np

    matrix = docs.transform(vectorizer, rows)
    out: dict[str, npt.NDArray[np.float64]] = {}
    for model, (classifier, prior) in fitted.items():
        out[model] = (
            np.full(len(rows), prior) if classifier is None else classifier.predict_proba(matrix)[:, 1]
        )
    return out


def _calibration(model: str, predicted: Sequence[float], observed: Sequence[float | None]) -> Calibration:
    pairs = [(p, o) for p, o in zip(predicted, observed, strict=True) if o is not None]
    bins: list[tuple[float, float, int]] = []
    ece = 0.0
    for b in range(10):
        low, high = b / 10, (b + 1) / 10
        members = [(p, o) for p, o in pairs if low <= p < high or (b == 9 and p == 1.0)]
        if not members:
            continue
        mean_p = sum(p for p, _ in members) / len(members)
        mean_o = sum(o for _, o in members) / len(members)
        bins.append((mean_p, mean_o, len(members)))
        ece += len(members) / len(pairs) * abs(mean_p - mean_o)
    brier = sum((p - o) ** 2 for p, o in pairs) / len(pairs)
    return Calibration(model, len(pairs), brier, ece, tuple(bins))


def train(
    data: LabeledData,
    costs: Mapping[str, Sequence[float]],
    *,
    models: Sequence[str] | None = None,
    target: Target | None = None,
    settings: Settings = Settings(),
    setting: str = "cost_weight",
    counted: Sequence[tuple[Any, Any] | None] | None = None,
    featurizer: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], TrainReport]:
    """Cross-validate, then fit on everything; returns the artifact (a JSON-able dict) and the report.

    ``counted`` and ``featurizer``: rows from a production ledger (``ledger_rows``) carry term counts
    under that featurizer instead of text; then the new file keeps that featurizer.
    """
    import numpy as np

    names = tuple(models or data.models)
    for model in names:
        if model not in data.outcomes or all(v is None for v in data.outcomes[model]):
            raise TrainError(f"model {model!r} has no known outcome in the training rows.")
    if target is not None and target.model not in names:
        raise TrainError(
            f"--target names {target.model!r}, which is not among the models ({', '.join(names)})."
        )
    if settings.folds < 2:
        raise TrainError("--folds must be at least 2.")
    if featurizer is not None:
        settings = replace(settings, max_chars=int(featurizer.get("max_chars", DEFAULT_MAX_CHARS)))
    texts = _texts(data, settings)
    docs = _Docs(texts, settings, counted, featurizer)
    n = len(texts)
    if n < settings.folds * 2:
        raise TrainError(f"{n} rows are too few for {settings.folds}-fold cross-validation.")
    # Tasks: one per input file with rows a router has a choice on (production rows have one
    # model's outcome each and are no task). Recognised by the nearest centroid (cosine) of their
    # prompts' TF-IDF vectors; cross-validated below like everything else.
    origin = np.asarray(data.origin)
    multi = np.array([sum(data.outcomes[m][i] is not None for m in names) >= 2 for i in range(n)])
    task_ids = np.array(sorted({int(o) for o in origin[multi]}), dtype=int) if n else np.zeros(0, int)
    similarities = np.zeros((n, len(task_ids)))
    # Out-of-fold predictions: every figure below is on rows the classifiers never saw.
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(n)
    held_out: dict[str, npt.NDArray[np.float64]] = {m: np.zeros(n) for m in names}
    for fold in range(settings.folds):
        test = order[fold :: settings.folds]
        mask = np.ones(n, dtype=bool)
        mask[test] = False
        train_rows = np.flatnonzero(mask)
        vectorizer, fitted, matrix = _fit(docs, data, names, train_rows.tolist(), settings)
        predicted = _predict(docs, vectorizer, fitted, test.tolist())
        for m in names:
            held_out[m][test] = predicted[m]
        if len(task_ids) > 1:
            centroids = _centroids(matrix, origin[train_rows], task_ids, TASK_TERMS)
            similarities[test] = np.asarray(docs.transform(vectorizer, test.tolist()) @ centroids)
    platt: dict[str, tuple[float, float]] = {}
    if settings.calibrate:
        # Each fold's predictions recalibrated by a map fitted on the other folds' (cross-fitting):
        # still out of sample. The file's map is fitted on every held-out prediction.
        folds = [order[fold :: settings.folds] for fold in range(settings.folds)]
        held_out, platt = _platt(held_out, data, names, folds, settings.balance_files)
    neighbours: dict[str, Any] | None = None
    neighbour_stats: dict[str, Any] = {}
    if settings.neighbours:
        fold_of = np.zeros(n, dtype=np.intp)
        for fold in range(settings.folds):
            fold_of[order[fold :: settings.folds]] = fold
        # Each row's task (its file) if the file will have tasks: the memory's weights per task.
        row_tasks = np.where(np.isin(origin, task_ids), origin, -1) if len(task_ids) > 1 else None
        neighbours, held_out, neighbour_stats = _neighbour_memory(
            data, names, held_out, fold_of, settings.folds, row_tasks, _task_names(data.sources, task_ids)
        )
    calibration = tuple(_calibration(m, held_out[m].tolist(), data.outcomes[m]) for m in names)
    tokens = [estimate_prompt_tokens(list(m)) for m in data.messages]
    reference_tokens = _reference_tokens(tokens, data.origin)
    out = settings.output_tokens
    # cost_weight prices against the dearest model's cost moved toward the typical length
    # (policies.adequacy.reference_cost): per row, the row's dearest cost times this.
    scale = [reference_cost(1.0, (t, out), reference_tokens) for t in tokens]

    # Rows with an outcome for at least two models are where a router has a choice to make.
    complete = [i for i in range(n) if sum(data.outcomes[m][i] is not None for m in names) >= 2]
    mean_cost = {}
    for m in names:
        known = [costs[m][i] for i in range(n) if data.outcomes[m][i] is not None]
        mean_cost[m] = sum(known) / len(known)
    by_cost = sorted(names, key=lambda m: mean_cost[m])
    threshold = target_quality = None
    if target is not None and complete:
        scored = [i for i in complete if data.outcomes[target.model][i] is not None]
        reference = sum(data.outcomes[target.model][i] or 0.0 for i in scored) / len(scored)
        target_quality = target.fraction * reference
        threshold = _threshold(held_out, data, costs, scale, scored, by_cost, target, setting)
    task_names = _task_names(data.sources, task_ids)
    task_settings: dict[int, float | None] = {}
    if target is not None and len(task_ids) > 1:
        for t in task_ids.tolist():
            members = [i for i in complete if origin[i] == t and data.outcomes[target.model][i] is not None]
            if members:
                task_settings[t] = _threshold(held_out, data, costs, scale, members, by_cost, target, setting)
    in_task = np.isin(origin, task_ids) & multi
    # "None of these", per task: a prompt is of its nearest task (cosine) only if it is as like
    # that task's centroid as 99% of the task's own held-out prompts were. Tasks differ in spread
    # (templated prompts sit close to their centroid, a many-subject file far from its), so one
    # threshold for all is too loose for the tight ones: another kind of prompt sharing a
    # template's words would take their setting (leave_one_out.py measures it).
    own = np.zeros(len(task_ids))
    for j, t in enumerate(task_ids.tolist()):
        members = in_task & (origin == t)
        if members.any():
            own[j] = float(np.percentile(similarities[members, j], TASK_PERCENTILE))
    # Read by routers before per-task thresholds: the loosest task's.
    task_threshold = float(own.min()) if len(own) else 0.0
    task_accuracy = None
    if len(task_ids) > 1:
        nearest = similarities.argmax(axis=1)
        ok = similarities[np.arange(n), nearest] >= own[nearest]
        recognised = np.where(ok, task_ids[nearest], -1)
        task_accuracy = float(np.mean(recognised[in_task] == origin[in_task]))
    default = DEFAULTS[setting]
    sets = _per_set(
        held_out,
        data,
        costs,
        scale,
        complete,
        by_cost,
        threshold if threshold is not None else default,
        setting,
        {source: task_settings.get(t) for t, source in enumerate(data.sources)},
    )

    vectorizer, fitted, matrix = _fit(docs, data, names, list(range(n)), settings)
    tasks_section = []
    if len(task_ids) > 1:
        centroids = _centroids(matrix, origin, task_ids, TASK_TERMS)
        for j, t in enumerate(task_ids.tolist()):
            terms = np.flatnonzero(centroids[:, j])
            tasks_section.append(
                {
                    "name": task_names[t],
                    "rows": int(np.sum(origin == t)),
                    "terms": base64.b64encode(terms.astype("<i4").tobytes()).decode("ascii"),
                    "weights": encode_floats(centroids[terms, j].tolist()),
                    "suggested": None if task_settings.get(t) is None else {setting: task_settings[t]},
                    "threshold": float(own[j]),
                }
            )
    featurizer_section = docs.featurizer_of(vectorizer)
    size = len(featurizer_section["vocabulary"])
    artifact: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION if neighbours is not None else VERSION_WITHOUT_NEIGHBOURS,
        "method": ("tfidf-logreg-platt" if platt else "tfidf-logreg") + ("-neighbours" if neighbours else ""),
        "reference_tokens": reference_tokens,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "featurizer": featurizer_section,
        "models": {
            m: {
                "coef": encode_floats(classifier.coef_[0] if classifier is not None else np.zeros(size)),
                "intercept": float(classifier.intercept_[0]) if classifier is not None else _logit(prior),
                "prior": prior,
                "rows": sum(1 for v in data.outcomes[m] if v is not None),
                **({"calibration": dict(zip("ab", platt[m], strict=True))} if m in platt else {}),
            }
            for m, (classifier, prior) in fitted.items()
        },
        "suggested": None if threshold is None else {setting: threshold},
        "target": None if target is None else f"{target.fraction:g} of {target.model}",
        **({"tasks": tasks_section, "task_threshold": task_threshold} if tasks_section else {}),
        **({"neighbours": neighbours} if neighbours is not None else {}),
        "training": {
            "files": [Path(s).name for s in data.sources],
            "rows": n,
            "settings": {
                "C": settings.c,
                "max_features": settings.max_features,
                "min_df": settings.min_df,
                "balance_files": settings.balance_files,
            },
            "fingerprints": " ".join(sorted({prompt_fingerprint(p) for p in data.prompts if p})),
        },
        "cross_validation": {
            "folds": settings.folds,
            "calibration": {
                c.model: {"brier": round(c.brier, 6), "ece": round(c.ece, 6)} for c in calibration
            },
            **({"task_accuracy": round(task_accuracy, 6)} if task_accuracy is not None else {}),
            **(
                {"with_neighbour": round(neighbour_stats["held_out_with_neighbour"], 6)}
                if neighbour_stats
                else {}
            ),
        },
    }
    report = TrainReport(
        models=names,
        rows=n,
        folds=settings.folds,
        calibration=calibration,
        threshold=threshold,
        setting=setting,
        target=target,
        target_quality=target_quality,
        sets=sets,
        task_accuracy=task_accuracy,
    )
    return artifact, report


def _task_names(sources: Sequence[str], task_ids: Any) -> dict[int, str]:
    """Each task's name: its file's stem (``mmlu.csv`` -> ``mmlu``), numbered if two files share one."""
    names: dict[int, str] = {}
    for t in task_ids.tolist():
        stem = Path(sources[t]).stem
        names[t] = stem if stem not in names.values() else f"{stem}-{t + 1}"
    return names


def _centroids(matrix: Any, origin: Any, task_ids: Any, terms: int | None) -> npt.NDArray[np.float64]:
    """(vocabulary, tasks): each task's mean TF-IDF vector, cut to its ``terms`` largest weights
    (all: None) and put at unit length, so that a prompt's dot product with it is their cosine."""
    import numpy as np

    out = np.zeros((matrix.shape[1], len(task_ids)))
    for j, t in enumerate(task_ids.tolist()):
        mean = np.asarray(matrix[origin == t].mean(axis=0)).ravel()
        if terms is not None and np.count_nonzero(mean) > terms:
            mean[np.argsort(mean)[:-terms]] = 0.0
        norm = np.linalg.norm(mean)
        out[:, j] = mean / norm if norm > 0 else mean
    return out


def _platt(
    held_out: Mapping[str, npt.NDArray[np.float64]],
    data: LabeledData,
    names: Sequence[str],
    folds: Sequence[npt.NDArray[np.intp]],
    balance: bool = False,
) -> tuple[dict[str, npt.NDArray[np.float64]], dict[str, tuple[float, float]]]:
    """Platt scaling per model on held-out predictions: p' = sigmoid(a * logit(p) + b).

    Logistic regressions fitted with L2 on TF-IDF are over- or under-confident by different
    amounts per model (held-out slopes of 0.8-1.0 on RouterBench); the gates compare models'
    predictions, so each is put on the scale of its observed success rate. Returns the
    cross-fitted predictions and each model's (a, b) on all rows.
    """
    import numpy as np

    _, logistic = _sklearn()
    out: dict[str, npt.NDArray[np.float64]] = {}
    maps: dict[str, tuple[float, float]] = {}
    n = len(data)
    for m in names:
        z = np.log(np.clip(held_out[m], 1e-6, 1 - 1e-6) / np.clip(1 - held_out[m], 1e-6, 1))
        local, labels, weights = _labels(data.outcomes[m])
        if balance and local:
            weights = _balanced(weights, [data.origin[i] for i in local])
        if len(set(labels)) < 2:
            out[m] = held_out[m]
            continue
        rows = np.asarray(local)
        x, y, w = z[rows].reshape(-1, 1), np.asarray(labels), np.asarray(weights)
        calibrated = held_out[m].copy()
        for test in folds:
            in_test = np.zeros(n, dtype=bool)
            in_test[test] = True
            keep = ~in_test[rows]
            a, b = _fit_platt(logistic, x[keep], y[keep], w[keep])
            calibrated[test] = 1.0 / (1.0 + np.exp(-(a * z[test] + b)))
        out[m] = calibrated
        maps[m] = _fit_platt(logistic, x, y, w)
    return out, maps


def _fit_platt(logistic: Any, x: Any, y: Any, w: Any) -> tuple[float, float]:
    if len(set(y.tolist())) < 2:
        return 1.0, 0.0  # nothing to calibrate against: the identity
    model = logistic(C=1.0, max_iter=1000)
    model.fit(x, y, sample_weight=w)
    return float(model.coef_[0][0]), float(model.intercept_[0])


def _reference_tokens(tokens: Sequence[int], origin: Sequence[int]) -> float:
    """The training prompts' typical length: the median of each file's median, so that one large
    file does not set it alone."""
    import numpy as np

    by_file: dict[int, list[int]] = {}
    for t, o in zip(tokens, origin, strict=True):
        by_file.setdefault(o, []).append(t)
    return float(np.median([np.median(v) for v in by_file.values()]))


def _logit(p: float) -> float:
    import math

    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _score(
    held_out: Mapping[str, Any],
    data: LabeledData,
    costs: Mapping[str, Sequence[float]],
    scale: Sequence[float],
    rows: Sequence[int],
    by_cost: Sequence[str],
    threshold: float,
    setting: str,
) -> Point:
    """The gate's choices on ``rows``, each among the models that row has an outcome for."""
    quality = cost = 0.0
    for i in rows:
        order = [m for m in by_cost if data.outcomes[m][i] is not None]
        chosen = choose(
            {m: float(held_out[m][i]) for m in order},
            order,
            costs={m: costs[m][i] for m in order},
            scale=scale[i],
            **{setting: threshold},
        )
        quality += data.outcomes[chosen][i] or 0.0
        cost += costs[chosen][i]
    return Point(f"{setting} {threshold:g}", quality / len(rows), cost / len(rows) * 1000)


def _threshold(
    held_out: Mapping[str, Any],
    data: LabeledData,
    costs: Mapping[str, Sequence[float]],
    scale: Sequence[float],
    rows: Sequence[int],
    by_cost: Sequence[str],
    target: Target,
    setting: str,
) -> float | None:
    """The setting that reaches the target on held-out folds at the lowest cost (None: none does).

    With several input files the target holds for each of them (its own reference quality), so
    that a task the cheap models are good at cannot buy the quality another one loses.
    """
    groups: dict[int, list[int]] = {}
    for i in rows:
        groups.setdefault(data.origin[i], []).append(i)
    goals = {
        source: target.fraction * sum(data.outcomes[target.model][i] or 0.0 for i in members) / len(members)
        for source, members in groups.items()
    }
    best: tuple[float, float] | None = None
    for threshold in GRIDS[setting]:
        points = {
            s: _score(held_out, data, costs, scale, m, by_cost, threshold, setting) for s, m in groups.items()
        }
        if any(points[s].quality + 1e-12 < goals[s] for s in groups):
            continue
        cost = sum(points[s].cost_per_1k * len(groups[s]) for s in groups) / len(rows)
        if best is None or cost < best[1]:
            best = (threshold, cost)
    return None if best is None else best[0]


def _per_set(
    held_out: Mapping[str, Any],
    data: LabeledData,
    costs: Mapping[str, Sequence[float]],
    scale: Sequence[float],
    rows: Sequence[int],
    by_cost: Sequence[str],
    threshold: float,
    setting: str,
    task_settings: Mapping[str, float | None] | None = None,
) -> tuple[SetResult, ...]:
    results = []
    for index, source in enumerate(data.sources):
        members = [i for i in rows if data.origin[i] == index]
        if not members:
            continue
        # Only the models this file labels take part in its yardsticks.
        present = [m for m in by_cost if all(data.outcomes[m][i] is not None for i in members)]
        if not present:  # production feedback: one model's outcome per row, no yardsticks
            continue
        outcomes = {m: [float(data.outcomes[m][i] or 0.0) for i in members] for m in present}
        set_costs = {m: [costs[m][i] for i in members] for m in present}
        singles = single_points(outcomes, set_costs)
        route = _score(held_out, data, costs, scale, members, present, threshold, setting)
        own = (task_settings or {}).get(source)
        task_route = (
            None if own is None else _score(held_out, data, costs, scale, members, present, own, setting)
        )
        results.append(
            SetResult(
                source=Path(source).name,
                rows=len(members),
                route=route,
                best=best_single(singles),
                hull_quality=hull_quality(hull(singles), route.cost_per_1k),
                oracle=oracle(outcomes, set_costs),
                task_setting=own,
                task_route=task_route,
            )
        )
    return tuple(results)


def write_artifact(artifact: Mapping[str, Any], path: str | Path) -> str:
    """Write the adequacy file; returns its sha256 (what ``route.decided`` records)."""
    import hashlib

    raw = json.dumps(artifact, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    Path(path).write_bytes(raw)
    return hashlib.sha256(raw).hexdigest()


def _neighbour_candidates(signatures: Any, near: int) -> list[list[tuple[int, int]]]:
    """Per memory row: the other rows sharing an LSH band with it whose signatures agree in at least
    ``near`` bytes, as (agreeing bytes, row), best first, then earliest row (``Neighbours.find``)."""
    import numpy as np

    n, hashes = signatures.shape
    bands = signatures.view("<u4") if n else np.zeros((0, hashes // NEIGHBOUR_BAND), np.uint32)
    firsts: list[Any] = []
    seconds: list[Any] = []
    for b in range(bands.shape[1]):
        keys = bands[:, b]
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], n]
        for start, end in zip(
            starts[ends - starts > 1].tolist(), ends[ends - starts > 1].tolist(), strict=True
        ):
            members = order[start:end]
            i, j = np.triu_indices(len(members), 1)
            firsts.append(members[i])
            seconds.append(members[j])
    out: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    if not firsts:
        return out
    pairs = np.unique(np.stack([np.concatenate(firsts), np.concatenate(seconds)], axis=1), axis=0)
    agree = np.count_nonzero(signatures[pairs[:, 0]] == signatures[pairs[:, 1]], axis=1)
    keep = agree >= near
    for (a, b), m in zip(pairs[keep].tolist(), agree[keep].tolist(), strict=True):
        out[a].append((m, b))
        out[b].append((m, a))
    for found in out:
        found.sort(key=lambda item: (-item[0], item[1]))
    return out


def _fit_offset(x: Any, offset: Any, y: Any, l2: Any = 1.0, prior: Any = None) -> Any:
    """A logistic regression without intercept whose logit adds to a fixed ``offset`` (the default's
    calibrated logit): Newton's method with an L2 penalty (a number, or one per weight) toward
    ``prior`` (default zero); ``y`` may be a score in [0, 1]."""
    import numpy as np

    centre = np.zeros(x.shape[1]) if prior is None else np.asarray(prior, dtype=np.float64)
    penalty = np.broadcast_to(np.asarray(l2, dtype=np.float64), centre.shape)
    w = centre.copy()
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(offset + x @ w)))
        gradient = x.T @ (p - y) + penalty * (w - centre)
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-9:
            break
    return w


def _neighbour_memory(
    data: LabeledData,
    names: Sequence[str],
    held_out: Mapping[str, npt.NDArray[np.float64]],
    fold_of: npt.NDArray[np.intp],
    folds: int,
    tasks: npt.NDArray[np.intp] | None = None,
    task_names: Mapping[int, str] | None = None,
    *,
    variant: str = NEIGHBOUR_VARIANT,
) -> tuple[dict[str, Any] | None, dict[str, npt.NDArray[np.float64]], dict[str, Any]]:
    """The neighbour memory and its learned weights, and the held-out predictions with it.

    Cross-fitted like everything else: a row's neighbour always comes from other folds than its
    own, as a routed prompt's comes from the training data; for the held-out figures, the weights
    used on a fold are fitted on the other folds' rows, whose neighbours come from neither their
    own fold nor the held-out one.

    ``tasks``: each row's task (its file's index; -1: none), and ``task_names``. Near repeats mean
    opposite things in different data (Winogrande's twins flip, MBPP's few repeats agree), so with
    tasks each (task, model) gets its own weights, fitted on that task's rows only (L2 toward zero:
    a task with few near repeats keeps weights near zero, not another task's); a routed prompt
    recognised as no task gets the weights pooled over every row. ``variant`` selects what
    examples/routerbench/neighbours.py compares: ``task`` (the default, as above), ``pooled`` (one
    set per model), ``hier:L`` (per task, L2 of strength L toward the pooled weights), ``near-l2:L``
    (pooled, the near weights' L2 at L), ``same-task`` (pooled; a neighbour counts only within the
    row's task). Returns (section or None: no prompt has text, the held-out predictions,
    statistics for the report)."""
    import numpy as np

    kind, _, strength = variant.partition(":")
    if kind not in ("task", "pooled", "hier", "near-l2", "same-task"):
        raise ValueError(f"unknown neighbour variant {variant!r}")
    if tasks is None or task_names is None or kind in ("pooled", "near-l2"):
        per_task: list[int] = []
    else:
        per_task = sorted({int(t) for t in tasks.tolist() if t >= 0 and int(t) in task_names})
    if kind == "same-task":
        per_task = []
    task_of = tasks if tasks is not None else np.full(len(data), -1, dtype=np.intp)
    l2: Any = 1.0
    if kind == "near-l2":
        l2 = np.array([1.0, 1.0, float(strength), float(strength)])
    parameters = _hash_parameters(NEIGHBOUR_HASHES, NEIGHBOUR_SEED)
    memory: list[int] = []
    signatures: list[Any] = []
    bigrams: list[Any] = []
    for i, prompt in enumerate(data.prompts):
        h = shingles(prompt) if prompt else None
        if h is not None:
            memory.append(i)
            signatures.append(minhash(h, parameters))
            bigrams.append(h)
    if not memory:
        return None, dict(held_out), {}
    # The shingle filter: a slot per bigram, in a table of at least 4 slots per distinct bigram.
    distinct = np.unique(np.concatenate(bigrams))
    filter_bits = max(10, math.ceil(math.log2(4 * len(distinct))))
    matrix = np.stack(signatures)
    index = np.asarray(memory)
    near = near_matches(NEIGHBOUR_HASHES)
    local = _neighbour_candidates(matrix, near)
    candidates: list[list[tuple[int, int]]] = [[] for _ in range(len(data))]
    for k, found in enumerate(local):
        candidates[memory[k]] = [(m, int(index[r])) for m, r in found]
    if kind == "same-task":
        candidates = [
            [(m, r) for m, r in found if task_of[r] == task_of[i]] for i, found in enumerate(candidates)
        ]
    # Outcomes as the file stores them (a byte each), so that training sees what routing will.
    stored = {
        m: np.array([_outcome_byte(data.outcomes[m][i]) for i in memory], dtype=np.uint8) for m in names
    }
    position = np.full(len(data), -1)
    position[index] = np.arange(len(memory))

    def neighbour(i: int, banned: tuple[int, ...]) -> tuple[int, int] | None:
        for agree, row in candidates[i]:
            if int(fold_of[row]) not in banned:
                return row, 0 if agree == NEIGHBOUR_HASHES else 1
        return None

    def features(found: Sequence[tuple[int, int] | None], model: str) -> Any:
        x = np.zeros((len(found), 4))
        for k, hit in enumerate(found):
            if hit is None:
                continue
            value = int(stored[model][position[hit[0]]])
            if value == OUTCOME_UNKNOWN:
                continue
            ok = value / OUTCOME_SCALE
            x[k, 2 * hit[1]] = ok
            x[k, 2 * hit[1] + 1] = 1.0 - ok
        return x

    def fit(rows: Any, x: Any, model: str, select: Any, prior: Any = None, penalty: Any = l2) -> Any:
        y = np.array([np.nan if (v := data.outcomes[model][i]) is None else v for i in rows.tolist()])
        use = select & ~np.isnan(y) & (x.sum(axis=1) > 0)
        if use.sum() < 10:  # too few near-duplicates to learn from: the prior (no effect, or pooled)
            return np.zeros(4) if prior is None else prior
        return _fit_offset(x[use], logits[model][rows[use]], y[use], penalty, prior)

    def fit_all(rows: Any, found: Sequence[tuple[int, int] | None]) -> dict[int, dict[str, Any]]:
        """Per model: the pooled weights (key -1) and each task's."""
        out: dict[int, dict[str, Any]] = {-1: {}, **{t: {} for t in per_task}}
        everyone = np.ones(len(rows), dtype=bool)
        row_tasks = task_of[rows]
        for m in names:
            x = features(found, m)
            pooled = out[-1][m] = fit(rows, x, m, everyone)
            for t in per_task:
                if kind == "hier":
                    out[t][m] = fit(rows, x, m, row_tasks == t, pooled, float(strength))
                else:
                    out[t][m] = fit(rows, x, m, row_tasks == t)
        return out

    logits = {m: _logits(held_out[m]) for m in names}
    n = len(data)
    adjusted = {m: held_out[m].copy() for m in names}
    found_test = np.zeros(n, dtype=bool)
    for f in range(folds):
        test = np.flatnonzero(fold_of == f)
        train_rows = np.flatnonzero(fold_of != f)
        train_found = [neighbour(i, (f, int(fold_of[i]))) for i in train_rows.tolist()]
        test_found = [neighbour(i, (f,)) for i in test.tolist()]
        found_test[test] = [hit is not None for hit in test_found]
        fitted = fit_all(train_rows, train_found)
        test_tasks = task_of[test]
        for m in names:
            x = features(test_found, m)
            shift = x @ fitted[-1][m]
            for t in per_task:
                mine = test_tasks == t
                shift[mine] = x[mine] @ fitted[t][m]
            adjusted[m][test] = 1.0 / (1.0 + np.exp(-(logits[m][test] + shift)))
    everyone = np.arange(n)
    found_all = [neighbour(i, (int(fold_of[i]),)) for i in range(n)]
    weights = fit_all(everyone, found_all)
    names_of = task_names or {}

    def rounded(w: Any) -> list[float]:
        return [round(float(v), 6) for v in w]

    section = {
        "kind": "minhash-word-bigrams",
        "ending_chars": NEIGHBOUR_CHARS,
        "hashes": NEIGHBOUR_HASHES,
        "band": NEIGHBOUR_BAND,
        "seed": NEIGHBOUR_SEED,
        "jaccard": NEIGHBOUR_JACCARD,
        "signatures": base64.b64encode(matrix.tobytes()).decode("ascii"),
        "filter": shingle_filter(distinct, filter_bits),
        "models": {
            m: {
                "outcomes": base64.b64encode(stored[m].tobytes()).decode("ascii"),
                "weights": rounded(weights[-1][m]),
                # Per task (the recogniser's names): what a prompt recognised as that task uses.
                **({"tasks": {names_of[t]: rounded(weights[t][m]) for t in per_task}} if per_task else {}),
            }
            for m in names
        },
    }
    stats = {"rows": len(memory), "held_out_with_neighbour": float(found_test.mean()) if n else 0.0}
    return section, adjusted, stats


def _outcome_byte(value: float | None) -> int:
    """An outcome as the neighbour memory stores it: 0-250 for a score in [0, 1], 255 unknown."""
    return OUTCOME_UNKNOWN if value is None else round(OUTCOME_SCALE * value)


def _logits(p: Any) -> Any:
    import numpy as np

    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))
