"""Learned adequacy: the featurizer matches scikit-learn's, predictions match its classifiers, the
file round-trips, bad files say what to do, and the gate rejects with a reason."""

from __future__ import annotations

import itertools
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
from tests.adequacy_helpers import hand_artifact, task_artifact, write_hand_artifact

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
    vectorizer, fitted, _ = _fit(docs, data, ("weak", "strong"), list(range(len(CORPUS))), settings)
    expected = _predict(docs, vectorizer, fitted, [len(CORPUS), len(CORPUS) + 1])
    adequacy = Adequacy(artifact)

    def calibrated(model: str, p: float) -> float:
        # The file's Platt map (fitted on held-out folds) applied to the classifier's probability.
        c = artifact["models"][model].get("calibration", {"a": 1.0, "b": 0.0})
        return 1.0 / (1.0 + math.exp(-(c["a"] * math.log(p / (1.0 - p)) + c["b"])))

    assert "calibration" in artifact["models"]["weak"]
    for i, text in enumerate(["Prove this theorem", "What is the capital?"]):
        got = adequacy.predict(text)
        assert got["weak"] == pytest.approx(calibrated("weak", float(expected["weak"][i])), abs=1e-5)
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


def test_a_vocabulary_too_large_for_4_byte_ids_names_the_file_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("numpy")
    import policies.adequacy

    monkeypatch.setattr(policies.adequacy, "_MAX_IDS", 3)  # the hand file's two words and two ids more
    path = tmp_path / "big.json"
    path.write_text(json.dumps(hand_artifact()))
    with pytest.raises(AdequacyError, match="2 words in the vocabulary, more than the 1 a file may have"):
        Adequacy.load(path)
    monkeypatch.setattr(policies.adequacy, "_MAX_IDS", 4)
    Adequacy.load(path)  # exactly at the limit: loads


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


@given(st.lists(st.integers(0, 2**31 - 1), min_size=2, max_size=20))
def test_a_bigrams_key_is_its_two_ids_as_read_by_the_strided_view_over_the_id_bytes(ids: list[int]) -> None:
    np = pytest.importorskip("numpy")
    from policies.adequacy import _pair_key

    raw = np.array(ids, dtype=np.int32).tobytes()
    view = np.ndarray((len(ids) - 1,), np.int64, raw, 0, (4,))
    pairs = list(itertools.pairwise(ids))
    assert view.tolist() == [_pair_key(a, b) for a, b in pairs]
    assert len(set(view.tolist())) == len(set(pairs))  # distinct pairs, distinct keys


def test_term_counts_beyond_what_counting_can_give_still_predict_by_log_count_plus_one() -> None:
    np = pytest.importorskip("numpy")
    adequacy = Adequacy(hand_artifact())  # max_chars 4000: counted frequencies come from a table
    idx = np.array([1], dtype=np.intp)  # "hard"
    for count in (3, 4001, 10**6):  # within the table, just past it, far past it
        # one term, L2-normalized: its weight is 1 whatever its count, so the logit is its coefficient
        got = adequacy.predict_counts(idx, np.array([count], dtype=np.intp))
        assert got["cheap"] == pytest.approx(1.0 / (1.0 + math.exp(3.0)), abs=1e-12)
    two = np.array([0, 1], dtype=np.intp)  # "easy" and "hard": their weights follow log(count) + 1
    for counts in ((1, 3), (2, 4001), (5, 10**6)):
        tf = [math.log(c) + 1.0 for c in counts]
        logit = (3.0 * tf[0] - 3.0 * tf[1]) / math.hypot(*tf)
        got = adequacy.predict_counts(two, np.array(counts, dtype=np.intp))
        assert got["cheap"] == pytest.approx(1.0 / (1.0 + math.exp(-logit)), abs=1e-12)


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
    # (The neighbour memory remembers prompts with text only, so it differs between the two: off.)
    settings = Settings(min_df=1, folds=2, neighbours=False)
    first, _ = train(labeled(CORPUS), costs, settings=settings)
    base = Adequacy(first)
    featurizer = {k: v for k, v in first["featurizer"].items() if k != "idf"}
    # Half the rows as text, half as the counts routing recorded for them: the same file results.
    counted = [None if i % 2 else base.counts(t) for i, t in enumerate(CORPUS)]
    prompts = [t if i % 2 else "" for i, t in enumerate(CORPUS)]
    again, _ = train(labeled(prompts), costs, settings=settings, counted=counted, featurizer=featurizer)
    retrained = Adequacy(again)
    assert retrained.featurizer_id == base.featurizer_id
    for model in ("weak", "strong"):  # the same classifiers
        assert first["models"][model]["coef"] == again["models"][model]["coef"]
        assert first["models"][model]["intercept"] == pytest.approx(again["models"][model]["intercept"])
    # Their calibration is fitted on held-out folds, whose vocabularies differ (a fold fitted from
    # text learns its own; counted rows keep the file's), so the predictions agree closely, not exactly.
    for text in ("Prove this theorem", "What is the capital?", *CORPUS[:3]):
        assert retrained.predict(text) == pytest.approx(base.predict(text), abs=0.02)


def test_cost_weight_puts_the_best_priced_model_first_and_keeps_likelier_ones_as_retries() -> None:
    pytest.importorskip("numpy")
    adequacy = Adequacy(hand_artifact())  # hard: cheap 0.047, strong 0.881; easy: cheap 0.953
    costs = {"cheap": 0.001, "strong": 0.01}
    gate = AdequacyGate(adequacy, cost_weight=0.3)
    # hard: cheap scores 0.047 - 0.3 * 0.1 = 0.017, strong 0.881 - 0.3 = 0.581: strong first
    rejected, _ = gate.verdicts("a hard question", ["cheap", "strong"], costs)
    assert rejected == {
        "cheap": "predicted success 0.05 at 10% of the dearest's cost scores 0.02 < strong's 0.58"
        " (cost_weight 0.3)"
    }
    # easy: cheap 0.953 - 0.03 beats strong 0.581, and strong is no likelier: rejected
    assert set(gate.verdicts("easy", ["cheap", "strong"], costs)[0]) == {"strong"}
    # a weight of 1: cheap scores 0.047 - 0.1 = -0.053 > strong's -0.119, so cheap answers first and
    # strong, likelier, stays as the retry
    assert AdequacyGate(adequacy, cost_weight=1.0).verdicts("hard", ["cheap", "strong"], costs)[0] == {}
    # without costs (or for a model without one) nothing is priced
    assert gate.verdicts("hard", ["cheap", "strong"])[0] == {}
    assert gate.verdicts("hard", ["cheap", "strong"], {"cheap": 0.001, "strong": None})[0] == {}


def test_cost_weight_weighs_a_long_prompts_price_more_than_the_typical_prompts() -> None:
    pytest.importorskip("numpy")
    from policies.adequacy import reference_cost

    artifact = {**hand_artifact(), "reference_tokens": 100}
    gate = AdequacyGate(Adequacy(artifact), cost_weight=0.5)
    costs = {"cheap": 0.001, "strong": 0.01}
    # the typical length: hard goes to strong (0.881 - 0.5 > 0.047 - 0.05)
    assert set(gate.verdicts("hard", ["cheap", "strong"], costs, (100, 50))[0]) == {"cheap"}
    # a hundred times the typical length (15,000 tokens with the reply against 150): the reference is
    # the dearest's cost times sqrt(1/100), so strong scores 0.881 - 5 and cheap 0.047 - 0.5: cheap
    # first, strong kept as the retry
    assert reference_cost(0.01, (14950, 50), 100.0) == pytest.approx(0.001)
    assert gate.verdicts("hard", ["cheap", "strong"], costs, (14950, 50))[0] == {}
    assert reference_cost(0.01, (14950, 50), None) == 0.01  # a version 1 file: the dearest's cost
    assert reference_cost(0.01, (100, 50), 100.0) == pytest.approx(0.01)  # the typical length


def test_choose_with_cost_weight_is_the_gate_followed_by_cheapest() -> None:
    from policies.adequacy import choose

    predicted = {"cheap": 0.7, "mid": 0.85, "strong": 0.9}
    costs = {"cheap": 1.0, "mid": 2.0, "strong": 10.0}
    order = ["cheap", "mid", "strong"]
    # scores at 0.1: cheap 0.69, mid 0.83, strong 0.80 -> mid
    assert choose(predicted, order, cost_weight=0.1, costs=costs) == "mid"
    assert choose(predicted, order, cost_weight=0.0, costs=costs) == "strong"
    assert choose(predicted, order, cost_weight=2.0, costs=costs) == "cheap"
    # scale 0.25 (a prompt 4x the typical length) quadruples the weight: cheap 0.66, mid 0.77,
    # strong 0.5 -> mid; scale 0.05 (20x): cheap 0.5, mid 0.45, strong -1.1 -> cheap
    assert choose(predicted, order, cost_weight=0.1, costs=costs, scale=0.25) == "mid"
    assert choose(predicted, order, cost_weight=0.1, costs=costs, scale=0.05) == "cheap"
    # other settings filter first: min_success 0.8 leaves mid and strong
    assert choose(predicted, order, cost_weight=2.0, costs=costs, min_success=0.8) == "mid"


def test_a_version_1_file_is_still_read_and_predicts_uncalibrated() -> None:
    pytest.importorskip("numpy")
    v1 = {**hand_artifact(), "version": 1}
    assert Adequacy(v1).predict("hard") == pytest.approx(Adequacy(hand_artifact()).predict("hard"))
    assert Adequacy(v1).reference_tokens is None
    with pytest.raises(AdequacyError, match="reads versions 1, 2, 3, 4"):
        Adequacy({**hand_artifact(), "version": 5})


def test_a_files_calibration_maps_each_models_logit() -> None:
    pytest.importorskip("numpy")
    artifact = hand_artifact()
    artifact["models"]["cheap"]["calibration"] = {"a": 0.5, "b": 1.0}
    predicted = Adequacy(artifact).predict("hard")
    # cheap's logit on "hard" is -3; calibrated: 0.5 * -3 + 1 = -0.5
    assert predicted["cheap"] == pytest.approx(1 / (1 + math.exp(0.5)))
    assert predicted["strong"] == pytest.approx(1 / (1 + math.exp(-2)))


def test_a_prompt_is_recognised_as_the_task_of_its_nearest_centroid() -> None:
    pytest.importorskip("numpy")
    adequacy = Adequacy(task_artifact())
    assert adequacy.tasks == ("quiz", "proof")
    assert adequacy.task_of(*adequacy.counts("an easy one")) == "quiz"
    # "poem" is in no centroid: "poem hard" is 0.71 like proof (cosine), above the 0.5 threshold
    assert adequacy.task_of(*adequacy.counts("a poem, hard")) == "proof"


def test_a_prompt_like_no_task_enough_is_of_none_and_gets_the_global_setting() -> None:
    pytest.importorskip("numpy")
    adequacy = Adequacy(task_artifact())
    # poem x3 weighs 1 + ln 3 = 2.10 against easy's 1: cosine with quiz 1 / 2.32 = 0.43 < 0.5
    assert adequacy.task_of(*adequacy.counts("poem poem poem easy")) is None
    assert adequacy.task_of(*adequacy.counts("no known word")) is None
    assert Adequacy(task_artifact(threshold=0.4)).task_of(*adequacy.counts("poem poem poem easy")) == "quiz"
    gate = AdequacyGate(adequacy, auto=True)
    assert gate.resolve(adequacy.counts("poem poem poem easy")) == (0.3, None)
    assert (
        gate.describe(0.3, None)
        == f"adequacy {adequacy.short_digest} cost_weight 0.3 (no task recognised: global)"
    )


def test_a_tasks_own_threshold_overrides_the_files_and_files_without_one_use_the_files() -> None:
    pytest.importorskip("numpy")
    artifact = task_artifact(threshold=0.3)
    artifact["tasks"][1]["threshold"] = 0.8  # proof's own prompts sit close to its centroid
    adequacy = Adequacy(artifact)
    assert adequacy.task_thresholds == (0.3, 0.8)
    # "a poem, hard": 0.71 like proof, below proof's own 0.8 though above the file's 0.3
    assert adequacy.task_of(*adequacy.counts("a poem, hard")) is None
    assert adequacy.task_of(*adequacy.counts("hard")) == "proof"
    # quiz has no threshold of its own: the file's 0.3 (0.43 like quiz passes)
    assert adequacy.task_of(*adequacy.counts("poem poem poem easy")) == "quiz"
    assert Adequacy(task_artifact(threshold=0.3)).task_of(*adequacy.counts("a poem, hard")) == "proof"


def test_cost_weight_auto_uses_the_recognised_tasks_suggestion() -> None:
    pytest.importorskip("numpy")
    adequacy = Adequacy(task_artifact())
    costs = {"cheap": 0.001, "strong": 0.01}
    auto = AdequacyGate(adequacy, auto=True)
    assert auto.resolve(adequacy.counts("hard")) == (5.0, "proof")
    assert auto.resolve(adequacy.counts("easy")) == (0.0, "quiz")
    # hard, proof's weight 5: cheap 0.047 - 0.5 beats strong 0.881 - 5; strong (likelier) stays as retry
    assert auto.verdicts("hard", ["cheap", "strong"], costs)[0] == {}
    # the same prompt at the global 0.3: strong 0.58 beats cheap 0.02
    assert set(AdequacyGate(adequacy, cost_weight=0.3).verdicts("hard", ["cheap", "strong"], costs)[0]) == {
        "cheap"
    }
    assert auto.describe(5.0, "proof") == f"adequacy {adequacy.short_digest} cost_weight 5 (task proof)"
    assert auto.describe() == f"adequacy {adequacy.short_digest} cost_weight auto"


def test_a_version_2_file_is_still_read_and_auto_uses_its_global_suggestion() -> None:
    pytest.importorskip("numpy")
    v2 = {**hand_artifact(threshold=None), "version": 2, "suggested": {"cost_weight": 0.3}}
    adequacy = Adequacy(v2)
    assert adequacy.tasks == () and adequacy.task_of(*adequacy.counts("hard")) is None
    assert AdequacyGate(adequacy, auto=True).resolve(adequacy.counts("hard")) == (0.3, None)
    # no suggestion at all: the default weight
    bare = Adequacy({**hand_artifact(threshold=None), "version": 2})
    assert AdequacyGate(bare, auto=True).resolve(bare.counts("hard")) == (0.1, None)


def test_a_malformed_tasks_section_names_the_file() -> None:
    pytest.importorskip("numpy")
    artifact = task_artifact()
    del artifact["tasks"][0]["terms"]
    with pytest.raises(AdequacyError, match=r"malformed tasks section.*router train"):
        Adequacy(artifact, source="a.json")


def test_import_router_leaves_the_adequacy_module_for_the_first_policy_that_names_a_file() -> None:
    """The planner imports policies.adequacy (and numpy) only to load a file a policy names."""
    import subprocess
    import sys

    code = (
        "import sys, router, policies.plan\n"
        "sys.exit('policies.adequacy' in sys.modules or 'numpy' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
