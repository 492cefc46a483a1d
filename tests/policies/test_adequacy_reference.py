"""The hot path's counting, prediction and gate give what the straightforward computation gives.

``Adequacy.counts`` counts token ids in one pass (ASCII prompts split by a byte table, not the
regex), ``predict_task`` gathers one table of per-term weights, and the gate and planner reuse
per-route work: the reference below does each step the plain way (scikit-learn's token pattern,
n-grams as strings, a dense TF-IDF vector, each model's dot product and calibration, the gate's
rules as docs/adequacy.md states them) on random files and random prompts, ASCII and not.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

np = pytest.importorskip("numpy")

from policies.adequacy import (  # noqa: E402
    DEFAULT_COST_WEIGHT,
    DEFAULT_MAX_CHARS,
    FORMAT,
    TOKEN_PATTERN,
    Adequacy,
    AdequacyGate,
    decode_floats,
    encode_floats,
    prompt_text,
)

# Words prompts are made of: ASCII and not, one-character runs (not tokens, yet they sit between
# two tokens), digits and underscores, and case that lowercasing changes (the Kelvin sign becomes
# an ASCII "k"; "İ" becomes two characters).
WORDS = ["alpha", "beta", "gamma", "x1", "_u", "42", "café", "straße", "δέλτα", "ok", "a", "b", "k", "rare"]
SPELLINGS = ["", "upper", "title"]
SEPARATORS = [" ", ", ", "\n", "-", "'", ". ", " a ", "é", "  ", "\t", "K", "İ", "?!"]


def make_artifact(seed: int, options: Mapping[str, Any]) -> dict[str, Any]:
    """A random adequacy file: a vocabulary of unigrams and bigrams of WORDS (some bigrams of words
    that are no unigram of it), random IDF and weights, optional calibration and tasks."""
    rng = np.random.default_rng(seed)
    words = [w for w in WORDS if len(w) > 1]
    unigrams = [w for w in words if rng.random() < 0.7]
    bigrams = [f"{a} {b}" for a in words for b in words if rng.random() < 0.5]
    vocabulary = unigrams + (bigrams if options["ngram_max"] == 2 else [])
    size = len(vocabulary)
    featurizer: dict[str, Any] = {
        "vocabulary": vocabulary,
        "idf": encode_floats(rng.uniform(1.0, 6.0, size)),
        "ngram_range": [1, options["ngram_max"]],
        "lowercase": options["lowercase"],
        "sublinear_tf": options["sublinear"],
        "max_chars": options["max_chars"],
    }
    if options["pattern"] is not None:
        featurizer["token_pattern"] = options["pattern"]
    models = {}
    for name in ("m0", "m1", "m2", "m3"):
        spec: dict[str, Any] = {
            "coef": encode_floats(rng.normal(0.0, 2.0, size)),
            "intercept": float(rng.normal(0.0, 1.0)),
        }
        if options["version"] >= 2:
            spec["calibration"] = {"a": float(rng.uniform(0.5, 1.5)), "b": float(rng.normal(0.0, 0.3))}
        models[name] = spec
    if options["twins"]:  # two models predicted alike: ties broken as the rules say
        models["m3"] = dict(models["m1"])
    artifact: dict[str, Any] = {
        "format": FORMAT,
        "version": options["version"],
        "featurizer": featurizer,
        "models": models,
    }
    if options["version"] >= 2:
        artifact["reference_tokens"] = 300
        artifact["suggested"] = {"cost_weight": 0.2}
    if options["version"] >= 3 and size:
        tasks = []
        for t in range(3):
            terms = np.sort(rng.choice(size, size=max(1, size // 3), replace=False)).astype("<i4")
            tasks.append(
                {
                    "name": f"task{t}",
                    "terms": base64.b64encode(terms.tobytes()).decode("ascii"),
                    "weights": encode_floats(rng.uniform(0.0, 1.0, len(terms))),
                    "suggested": {"cost_weight": float(rng.uniform(0.0, 2.0))},
                }
            )
        artifact["tasks"] = tasks
        artifact["task_threshold"] = float(rng.uniform(0.05, 0.5))
    return artifact


def reference_counts(artifact: Mapping[str, Any], text: str) -> Counter[int]:
    """scikit-learn's analyzer, written out: cut, lowercase, its token pattern, n-grams as strings."""
    featurizer = artifact["featurizer"]
    vocabulary = {term: i for i, term in enumerate(featurizer["vocabulary"])}
    text = text[-int(featurizer.get("max_chars", DEFAULT_MAX_CHARS)) :]
    if featurizer.get("lowercase", True):
        text = text.lower()
    tokens = re.findall(featurizer.get("token_pattern", TOKEN_PATTERN), text)
    grams = list(tokens)
    if featurizer.get("ngram_range", [1, 2])[1] == 2:
        grams += [f"{a} {b}" for a, b in pairwise(tokens)]
    return Counter(vocabulary[g] for g in grams if g in vocabulary)


def reference_predict(artifact: Mapping[str, Any], text: str) -> tuple[dict[str, float], str | None]:
    """A dense L2-normalized TF-IDF vector, each model's logistic regression then calibration, and
    the task whose centroid has the largest dot product with the vector (if it reaches the threshold)."""
    featurizer = artifact["featurizer"]
    counts = reference_counts(artifact, text)
    idf = decode_floats(featurizer["idf"]).astype(np.float64)
    vector = np.zeros(len(idf))
    for i, count in counts.items():
        tf = math.log(count) + 1.0 if featurizer.get("sublinear_tf", True) else float(count)
        vector[i] = tf * idf[i]
    norm = float(np.linalg.norm(vector))
    if norm > 0:
        vector /= norm
    predicted = {}
    for name, spec in artifact["models"].items():
        logit = float(decode_floats(spec["coef"]).astype(np.float64) @ vector) + float(spec["intercept"])
        calibration = spec.get("calibration") or {}
        logit = calibration.get("a", 1.0) * logit + calibration.get("b", 0.0)
        predicted[name] = 1.0 / (1.0 + math.exp(-logit))
    task = None
    if counts and artifact.get("tasks"):
        similarity = []
        for spec in artifact["tasks"]:
            centroid = np.zeros(len(idf))
            terms = np.frombuffer(base64.b64decode(spec["terms"]), dtype="<i4")
            centroid[terms] = decode_floats(spec["weights"])
            similarity.append(float(centroid @ vector))
        best = max(range(len(similarity)), key=similarity.__getitem__)
        if similarity[best] >= artifact["task_threshold"]:
            task = artifact["tasks"][best]["name"]
    return predicted, task


def reference_rejected(
    predicted: Mapping[str, float],
    names: Sequence[str],
    *,
    min_success: float | None,
    max_shortfall: float | None,
    cost_weight: float | None,
    costs: Mapping[str, float | None] | None,
    tokens: tuple[int, int] | None,
    reference_tokens: float | None,
    on_inadequate: str,
) -> set[str]:
    """The gate's rules as documented: the floor, the shortfall from the likeliest, then (cost_weight)
    the best ``p - w * cost / reference`` goes first and every model no likelier than it is dropped;
    if none is left, ``best`` keeps the likeliest."""
    judged = {n: predicted[n] for n in names if n in predicted}
    if not judged:
        return set()
    likeliest = max(judged, key=judged.__getitem__)
    rejected = set()
    for name, p in judged.items():
        if (min_success is not None and p < min_success) or (
            max_shortfall is not None and p < judged[likeliest] - max_shortfall
        ):
            rejected.add(name)
    if cost_weight is not None and costs is not None:
        priced = {
            n: c for n, c in costs.items() if c is not None and c >= 0 and n in judged and n not in rejected
        }
        dearest = max(priced.values(), default=0.0)
        if len(priced) >= 2 and dearest > 0:
            reference = dearest
            if tokens is not None and reference_tokens is not None:
                reference *= math.sqrt((reference_tokens + tokens[1]) / max(tokens[0] + tokens[1], 1))
            score = {n: judged[n] - cost_weight * c / reference for n, c in priced.items()}
            first = max(score, key=score.__getitem__)
            rejected |= {n for n in priced if n != first and judged[n] <= judged[first]}
    if rejected == set(judged) and on_inadequate == "best":
        rejected.discard(likeliest)
    return rejected


options = st.fixed_dictionaries(
    {
        "version": st.sampled_from([1, 2, 3]),
        "ngram_max": st.sampled_from([1, 2]),
        "lowercase": st.booleans(),
        "sublinear": st.booleans(),
        "max_chars": st.sampled_from([7, 40, 1000]),
        "pattern": st.sampled_from([None, None, None, r"(?u)\b\w+\b"]),
        "twins": st.booleans(),
    }
)


def spelled(pair: tuple[str, str]) -> str:
    word, spelling = pair
    return word.upper() if spelling == "upper" else word.title() if spelling == "title" else word


def sentences(words: list[str], separators: list[str]) -> st.SearchStrategy[str]:
    word = st.tuples(st.sampled_from(words), st.sampled_from(SPELLINGS)).map(spelled)
    parts = st.lists(st.tuples(word, st.sampled_from(separators)), max_size=40)
    return parts.map(lambda pairs: "".join(w + s for w, s in pairs))


prompts = st.one_of(
    sentences([w for w in WORDS if w.isascii()], [s for s in SEPARATORS if s.isascii()]),  # the byte path
    sentences(WORDS, SEPARATORS),
    st.text(max_size=60),
)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), options=options, texts=st.lists(prompts, min_size=1, max_size=4))
def test_counts_and_predictions_match_the_straightforward_computation(
    seed: int, options: dict[str, Any], texts: list[str]
) -> None:
    artifact = make_artifact(seed, options)
    adequacy = Adequacy(artifact)
    for text in texts:
        idx, counts = adequacy.counts(text)
        assert dict(zip(idx.tolist(), counts.tolist(), strict=True)) == reference_counts(artifact, text)
        assert len(set(idx.tolist())) == len(idx)  # each term once
        predicted, task = adequacy.predict_task(idx, counts)
        expected, expected_task = reference_predict(artifact, text)
        assert predicted.keys() == expected.keys()
        for name, p in predicted.items():
            assert math.isclose(p, expected[name], rel_tol=1e-12, abs_tol=1e-15), (name, p, expected[name])
        assert task == expected_task
        assert adequacy.predict(text) == predicted


gate_settings = st.fixed_dictionaries(
    {
        "min_success": st.none() | st.floats(0.05, 0.95),
        "max_shortfall": st.none() | st.floats(0.0, 0.5),
        "cost_weight": st.none() | st.floats(0.0, 3.0) | st.just("auto"),
        "on_inadequate": st.sampled_from(["best", "fail"]),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    options=options,
    text=prompts,
    gate=gate_settings,
    names=st.lists(st.sampled_from(["m0", "m1", "m2", "m3", "unknown"]), min_size=1, max_size=5, unique=True),
    costs=st.lists(st.none() | st.floats(0.0, 0.01), min_size=5, max_size=5),
    tokens=st.none() | st.tuples(st.integers(0, 5000), st.integers(0, 2000)),
)
@example(  # a subnormal dearest cost: weight / reference overflowed to inf, and inf * 0.0 is NaN
    seed=0,
    options={"version": 1, "ngram_max": 1, "lowercase": False, "sublinear": False, "max_chars": 7,
             "pattern": None, "twins": False},
    text="",
    gate={"min_success": None, "max_shortfall": None, "cost_weight": "auto", "on_inadequate": "best"},
    names=["m0", "m1", "m2", "m3"],
    costs=[None, None, 0.0, 2.2250738585e-313, None],
    tokens=None,
)  # fmt: skip
def test_the_gate_rejects_what_its_rules_reject_on_the_reference_predictions(
    seed: int,
    options: dict[str, Any],
    text: str,
    gate: dict[str, Any],
    names: list[str],
    costs: list[float | None],
    tokens: tuple[int, int] | None,
) -> None:
    artifact = make_artifact(seed, options)
    adequacy = Adequacy(artifact)
    auto = gate["cost_weight"] == "auto"
    under_test = AdequacyGate(
        adequacy,
        gate["min_success"],
        gate["max_shortfall"],
        gate["on_inadequate"],
        None if auto else gate["cost_weight"],
        auto=auto,
    )
    priced = dict(zip(names, costs, strict=False))
    rejected, judged = under_test.verdicts(text, names, priced, tokens)

    expected, task = reference_predict(artifact, text)
    weight = gate["cost_weight"]
    if auto:
        suggested = artifact.get("suggested") or {}
        by_task = {t["name"]: t["suggested"] for t in artifact.get("tasks") or []}
        weight = by_task.get(task, suggested).get(
            "cost_weight", suggested.get("cost_weight", DEFAULT_COST_WEIGHT)
        )
    assert set(rejected) == reference_rejected(
        expected,
        names,
        min_success=gate["min_success"],
        max_shortfall=gate["max_shortfall"],
        cost_weight=weight,
        costs=priced,
        tokens=tokens,
        reference_tokens=artifact.get("reference_tokens"),
        on_inadequate=gate["on_inadequate"],
    )
    assert judged.keys() == {n for n in names if n != "unknown"}


def _plan_policy(folder: Path, artifact: Mapping[str, Any], route: Mapping[str, Any]) -> Any:
    from policies.schema import Policy

    (folder / "adequacy.json").write_text(json.dumps(artifact))
    models = {
        f"m{i}": {
            "provider": "openai_compatible",
            "api_base": "http://x/v1",
            "input_cost_per_mtok": [0.1, 2.5, 0.6, 1.2][i],
            "output_cost_per_mtok": [0.4, 10.0, 2.4, 4.0][i],
            "context_window": 100_000,
        }
        for i in range(4)
    }
    return Policy.model_validate(
        {
            "models": models,
            "routes": {"auto": {"strategy": "cheapest", "adequacy": "adequacy.json", **route}},
            "source": str(folder / "policy.yaml"),
        }
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    options=options,
    texts=st.lists(prompts, min_size=1, max_size=3),
    gate=gate_settings.filter(lambda g: g["cost_weight"] is not None),
)
def test_the_planner_chooses_as_the_reference_does(
    tmp_path: Path, seed: int, options: dict[str, Any], texts: list[str], gate: dict[str, Any]
) -> None:
    """Through ``Planner.plan`` (a cheapest route, its cost_weight fixed or auto): the candidates
    left, cheapest first, and the rule naming the task whose weight was used."""
    from policies.plan import Planner
    from providers.catalog import resolve_model
    from tests.policies.helpers import make_request

    artifact = make_artifact(seed, {**options, "version": 3})
    route = {key: value for key, value in gate.items() if value is not None}
    policy = _plan_policy(tmp_path, artifact, route)
    catalog = {
        name: resolve_model(
            name, provider=spec.provider, model=spec.model, overrides=spec.catalog_overrides()
        )
        for name, spec in policy.models.items()
    }
    planner = Planner(policy, catalog)
    for text in texts:
        request = make_request(text)
        plan = planner.plan(request)
        expected, task = reference_predict(artifact, prompt_text([{"role": "user", "content": text}]))
        weight = gate["cost_weight"]
        if weight == "auto":
            by_task = {t["name"]: t["suggested"] for t in artifact.get("tasks") or []}
            weight = by_task.get(task, artifact["suggested"]).get("cost_weight")
        assert request.prompt is not None
        prompt_tokens, output_tokens = request.prompt.best, policy.expected_output_tokens
        costs = {
            name: (prompt_tokens * spec.input_cost_per_mtok + output_tokens * spec.output_cost_per_mtok) / 1e6
            for name, spec in policy.models.items()
        }
        rejected = reference_rejected(
            expected,
            list(costs),
            min_success=gate["min_success"],
            max_shortfall=gate["max_shortfall"],
            cost_weight=weight,
            costs=costs,
            tokens=(prompt_tokens, output_tokens),
            reference_tokens=artifact["reference_tokens"],
            on_inadequate=gate["on_inadequate"],
        )
        assert set(plan.rejected) == rejected
        survivors = sorted((n for n in costs if n not in rejected), key=costs.__getitem__)
        assert [c.model for c in plan.candidates] == survivors
        if gate["cost_weight"] == "auto":
            rule = ("(task " + task + ")") if task is not None else "(no task recognised: global)"
            assert any(r.endswith(rule) for r in plan.rules)


def test_logits_beyond_what_exp_can_take_give_probabilities_of_zero_and_one() -> None:
    artifact = make_artifact(1, {**plain_options(), "version": 2})
    artifact["featurizer"]["vocabulary"] = ["alpha", "beta"]
    artifact["featurizer"]["idf"] = encode_floats([1.0, 1.0])
    for spec in artifact["models"].values():
        spec["coef"] = encode_floats([3000.0, -3000.0])
        spec["intercept"] = 0.0
        spec["calibration"] = {"a": 1.0, "b": 0.0}
    adequacy = Adequacy(artifact)
    assert set(adequacy.predict("alpha").values()) == {1.0}
    assert set(adequacy.predict("beta").values()) == {0.0}
    assert adequacy.predict("alpha") == reference_predict(artifact, "alpha")[0]
    # An intercept alone that far down: the prior, read at load, is 0 too.
    artifact["models"]["m0"]["intercept"] = -5000.0
    assert Adequacy(artifact).predict("nothing known")["m0"] == 0.0


def plain_options() -> dict[str, Any]:
    return {
        "ngram_max": 2,
        "lowercase": True,
        "sublinear": True,
        "max_chars": 1000,
        "pattern": None,
        "twins": False,
    }
