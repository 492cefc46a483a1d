"""Learned adequacy: the featurizer matches scikit-learn's, predictions match its classifiers, the
file round-trips, bad files say what to do, and the gate rejects with a reason."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.adequacy import (
    Adequacy,
    AdequacyError,
    AdequacyGate,
    decode_floats,
    encode_floats,
    prompt_fingerprint,
    prompt_text,
)
from tests.adequacy_helpers import hand_artifact, write_hand_artifact

CORPUS = [
    "What is the capital of France? Answer with one word.",
    "Prove that the square root of two is irrational, step by step.",
    "Translate 'good morning' into Spanish.",
    "Write a Python function that merges two sorted lists in linear time.",
    "What is 2 + 2? Answer with one number.",
    "Explain the proof of Fermat's last theorem for n = 4 in detail.",
    "Name a colour of the sky. Answer with one word.",
    "Derive the closed form of the Fibonacci sequence and prove it by induction.",
] * 3


def test_featurizer_matches_scikit_learns_tfidf_exactly() -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("sklearn")
    from router._labeled import LabeledData
    from router._train import Settings, train

    outcomes = {"m": tuple(float(i % 2) for i in range(len(CORPUS)))}
    data = LabeledData(
        ("c.csv",),
        tuple(CORPUS),
        tuple(({"role": "user", "content": t},) for t in CORPUS),
        outcomes,
        {"m": (0.001,) * len(CORPUS)},
        (0,) * len(CORPUS),
    )
    artifact, _ = train(data, {"m": [0.001] * len(CORPUS)}, settings=Settings(min_df=1, folds=2))
    adequacy = Adequacy(artifact)

    from sklearn.feature_extraction.text import TfidfVectorizer

    reference = TfidfVectorizer(
        token_pattern=r"(?u)\b\w\w+\b", ngram_range=(1, 2), sublinear_tf=True, min_df=1
    )
    matrix = reference.fit_transform(CORPUS)
    for row, text in enumerate(["Prove that two is irrational", *CORPUS[:4]]):
        idx, weights = adequacy.features(text)
        ours = dict(zip((artifact["featurizer"]["vocabulary"][i] for i in idx), weights, strict=True))
        vector = reference.transform([text]).toarray()[0]
        theirs = {term: vector[i] for term, i in reference.vocabulary_.items() if vector[i]}
        assert ours.keys() == theirs.keys()
        assert all(math.isclose(ours[t], theirs[t], rel_tol=1e-5) for t in ours), row
    assert matrix.shape[0] == len(CORPUS)
    assert np is not None


def test_predictions_match_the_fitted_classifier() -> None:
    pytest.importorskip("sklearn")
    from router._labeled import LabeledData
    from router._train import Settings, _Docs, _fit, _predict, train

    hard = [
        1.0 if "prove" in t.lower() or "derive" in t.lower() or "explain" in t.lower() else 0.0
        for t in CORPUS
    ]
    data = LabeledData(
        ("c.csv",),
        tuple(CORPUS),
        tuple(({"role": "user", "content": t},) for t in CORPUS),
        {"weak": tuple(1.0 - h for h in hard), "strong": (1.0,) * len(CORPUS)},
        {"weak": (0.001,) * len(CORPUS), "strong": (0.01,) * len(CORPUS)},
        (0,) * len(CORPUS),
    )
    settings = Settings(min_df=1, folds=2)
    artifact, _ = train(
        data, {"weak": [0.001] * len(CORPUS), "strong": [0.01] * len(CORPUS)}, settings=settings
    )
    probes = ["Prove this theorem", "What is the capital?"]
    docs = _Docs([*CORPUS, *probes], settings)
    vectorizer, fitted = _fit(docs, data, ("weak", "strong"), list(range(len(CORPUS))), settings)
    expected = _predict(docs, vectorizer, fitted, [len(CORPUS), len(CORPUS) + 1])
    adequacy = Adequacy(artifact)
    for i, text in enumerate(["Prove this theorem", "What is the capital?"]):
        got = adequacy.predict(text)
        assert got["weak"] == pytest.approx(float(expected["weak"][i]), abs=1e-5)
        assert got["strong"] == pytest.approx(float(expected["strong"][i]), abs=1e-5)
    assert adequacy.predict("Prove this theorem")["weak"] < adequacy.predict("What is the capital?")["weak"]


def test_the_file_round_trips_with_its_digest(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    path = write_hand_artifact(tmp_path / "a.json")
    loaded = Adequacy.load(path)
    import hashlib

    assert loaded.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.short_digest == f"sha256:{loaded.digest[:12]}"
    assert loaded.models == ("cheap", "strong")
    easy = loaded.predict("an easy one")
    assert easy["cheap"] == pytest.approx(1 / (1 + math.exp(-3.0)))
    assert easy["strong"] == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert loaded.predict("a hard one")["cheap"] == pytest.approx(1 / (1 + math.exp(3.0)))
    assert loaded.predict("nothing known")["cheap"] == pytest.approx(0.5)
    assert list(decode_floats(encode_floats([1.5, -2.25]))) == [1.5, -2.25]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "pickle"}, "not an adequacy file"),
        ({"version": 99}, "version 99"),
        ({"models": {"x": {"coef": "AAAA"}}}, "malformed"),
        ({"featurizer": {"vocabulary": ["a"], "idf": encode_floats([1.0, 2.0])}}, "differ in length"),
    ],
)
def test_a_bad_file_names_itself_and_what_to_do(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    pytest.importorskip("numpy")
    data = {**hand_artifact(), **change}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(AdequacyError, match=message) as info:
        Adequacy.load(path)
    assert str(path) in str(info.value)


def test_a_missing_or_non_json_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(AdequacyError, match="router train"):
        Adequacy.load(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(AdequacyError, match="not JSON"):
        Adequacy.load(tmp_path / "x.json")


def test_the_gate_rejects_models_below_the_threshold_with_the_prediction() -> None:
    pytest.importorskip("numpy")
    gate = AdequacyGate(Adequacy(hand_artifact()), min_success=0.8)
    rejected, predicted = gate.verdicts("a hard question", ["cheap", "strong", "unknown"])
    assert rejected == {"cheap": "predicted success 0.05 < 0.80"}
    assert set(predicted) == {"cheap", "strong"}  # a model the file doesn't know is not judged
    assert gate.verdicts("an easy question", ["cheap", "strong"])[0] == {}


def test_when_no_model_reaches_the_threshold_best_keeps_the_likeliest_and_fail_keeps_none() -> None:
    pytest.importorskip("numpy")
    adequacy = Adequacy(hand_artifact())
    best, _ = AdequacyGate(adequacy, min_success=0.99).verdicts("hard", ["cheap", "strong"])
    assert set(best) == {"cheap"}  # strong (0.88) is the likeliest: kept
    fail, _ = AdequacyGate(adequacy, min_success=0.99, on_inadequate="fail").verdicts(
        "hard", ["cheap", "strong"]
    )
    assert set(fail) == {"cheap", "strong"}


def test_prompt_text_joins_every_messages_text_parts() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Look:"}, {"type": "image_url", "image_url": {}}],
        },
    ]
    assert prompt_text(messages) == "Be brief.\nLook:"
    assert prompt_text("plain") == "plain"
    assert prompt_text(None) == ""
    assert prompt_fingerprint("a") == prompt_fingerprint("a") != prompt_fingerprint("b")


def test_max_shortfall_rejects_models_predicted_too_far_below_the_likeliest() -> None:
    pytest.importorskip("numpy")
    gate = AdequacyGate(Adequacy(hand_artifact()), max_shortfall=0.1)
    rejected, _ = gate.verdicts("hard", ["cheap", "strong"])
    assert rejected == {"cheap": "predicted success 0.05, 0.83 below strong's 0.88 (max_shortfall 0.1)"}
    # easy: cheap 0.95 is the likeliest; strong 0.88 is within 0.1 of it and stays a candidate
    assert gate.verdicts("easy", ["cheap", "strong"])[0] == {}
    assert AdequacyGate(Adequacy(hand_artifact()), max_shortfall=0.05).verdicts("easy", ["cheap", "strong"])[
        0
    ] == {"strong": "predicted success 0.88, 0.07 below cheap's 0.95 (max_shortfall 0.05)"}


def test_choose_is_the_gate_followed_by_cheapest() -> None:
    from policies.adequacy import choose

    predicted = {"cheap": 0.7, "mid": 0.85, "strong": 0.9}
    order = ["cheap", "mid", "strong"]
    assert choose(predicted, order, max_shortfall=0.25) == "cheap"
    assert choose(predicted, order, max_shortfall=0.1) == "mid"
    assert choose(predicted, order, max_shortfall=0.0) == "strong"
    assert choose(predicted, order, min_success=0.8) == "mid"
    assert choose(predicted, order, min_success=0.95) == "strong"  # none passes: the likeliest


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_the_fast_token_pattern_finds_exactly_scikit_learns_tokens(text: str) -> None:
    import re

    from policies.adequacy import _FAST_TOKEN, TOKEN_PATTERN

    assert re.findall(_FAST_TOKEN, text) == re.findall(TOKEN_PATTERN, text)


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=300))
def test_on_ascii_text_the_ascii_token_matcher_finds_the_same_tokens(text: str) -> None:
    import re

    from policies.adequacy import _FAST_TOKEN, TOKEN_PATTERN

    assert re.findall(_FAST_TOKEN, text, re.ASCII) == re.findall(TOKEN_PATTERN, text)


def test_rows_given_as_term_counts_train_the_same_classifiers_as_their_text() -> None:
    """What a production ledger keeps (term counts under a file's featurizer) is as good as the text."""
    pytest.importorskip("sklearn")
    from router._labeled import LabeledData
    from router._train import Settings, train

    hard = [1.0 if "prove" in t.lower() or "explain" in t.lower() else 0.0 for t in CORPUS]

    def labeled(prompts: list[str]) -> LabeledData:
        return LabeledData(
            ("c.csv",),
            tuple(prompts),
            tuple(({"role": "user", "content": t},) for t in prompts),
            {"weak": tuple(1.0 - h for h in hard), "strong": (1.0,) * len(CORPUS)},
            {"weak": (0.001,) * len(CORPUS), "strong": (0.01,) * len(CORPUS)},
            (0,) * len(CORPUS),
        )

    costs = {"weak": [0.001] * len(CORPUS), "strong": [0.01] * len(CORPUS)}
    settings = Settings(min_df=1, folds=2)
    first, _ = train(labeled(CORPUS), costs, settings=settings)
    base = Adequacy(first)
    featurizer = {k: v for k, v in first["featurizer"].items() if k != "idf"}
    # Half the rows as text, half as the counts routing recorded for them: the same file results.
    counted = [None if i % 2 else base.counts(t) for i, t in enumerate(CORPUS)]
    prompts = [t if i % 2 else "" for i, t in enumerate(CORPUS)]
    again, _ = train(labeled(prompts), costs, settings=settings, counted=counted, featurizer=featurizer)
    retrained = Adequacy(again)
    assert retrained.featurizer_id == base.featurizer_id
    for text in ("Prove this theorem", "What is the capital?", *CORPUS[:3]):
        assert retrained.predict(text) == pytest.approx(base.predict(text), abs=1e-5)
