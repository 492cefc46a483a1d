"""The neighbour memory: a near-duplicate training prompt's recorded outcome moves each model's
prediction by its learned weights; without a near-duplicate, predictions are the default's."""

from __future__ import annotations

import base64
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.adequacy import (
    NEIGHBOUR_HASHES,
    OUTCOME_UNKNOWN,
    Adequacy,
    AdequacyError,
    AdequacyGate,
    ending,
    near_matches,
)
from tests.adequacy_helpers import (
    FEW_SHOT,
    OTHER_TWIN,
    TWIN,
    UNRELATED,
    hand_artifact,
    memory_artifact,
    signatures,
)

pytest.importorskip("numpy")


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_the_ending_is_after_the_last_blank_line_and_at_most_400_characters() -> None:
    assert ending(FEW_SHOT + TWIN) == TWIN.lower()
    assert ending("x " * 500) == ("x " * 500).strip()[-400:]
    # few-shot examples up front don't change a prompt's signature; its question does
    with_shots, bare, other = signatures(FEW_SHOT + TWIN, TWIN, OTHER_TWIN)
    assert (with_shots == bare).all() and not (bare == other).all()
    assert signatures("", "  \n\n ") == [None, None]


def test_signatures_agree_in_about_the_share_of_shared_bigrams() -> None:
    import re

    def bigrams(t: str) -> set[tuple[str, str]]:
        w = re.findall(r"\w+", t.lower())
        return set(itertools.pairwise(w))

    a, b = bigrams(TWIN), bigrams(OTHER_TWIN)
    jaccard = len(a & b) / len(a | b)  # 33 of 37 distinct bigrams ("too large" -> "too small"): 0.89
    assert jaccard == pytest.approx(33 / 37)
    one, two, far = signatures(TWIN, OTHER_TWIN, UNRELATED)
    assert abs(int((one == two).sum()) / NEIGHBOUR_HASHES - jaccard) < 0.15
    assert int((one == far).sum()) < near_matches(NEIGHBOUR_HASHES)
    # 0.8 of 64 bytes, plus chance agreement (1 in 256): 52
    assert near_matches(64) == 52


def test_a_near_duplicate_that_was_right_lowers_a_biased_models_prediction_as_learned() -> None:
    # cheap got TWIN right; near twins flip for it (near ok -2.0): its twin is predicted to fail
    artifact = memory_artifact(
        {"cheap": [250, 0], "strong": [250, 250]},
        {"cheap": [1.0, -1.0, -2.0, 2.0], "strong": [0.5, -0.5, 0.3, -0.3]},
    )
    adequacy = Adequacy(artifact)
    assert adequacy.neighbours is not None and adequacy.neighbours.find(OTHER_TWIN) == (0, 1)
    plain = Adequacy(hand_artifact()).predict(OTHER_TWIN)  # no "easy"/"hard": cheap 0.5, strong sigmoid(2)
    assert plain == pytest.approx({"cheap": 0.5, "strong": sigmoid(2.0)})
    assert adequacy.predict(OTHER_TWIN) == pytest.approx(
        {"cheap": sigmoid(0.0 - 2.0), "strong": sigmoid(2.0 + 0.3)}
    )
    # an exact repeat (few-shot examples aside) takes the exact tier's weights
    assert adequacy.neighbours.find(FEW_SHOT + TWIN) == (0, 0)
    assert adequacy.predict(FEW_SHOT + TWIN) == pytest.approx(
        {"cheap": sigmoid(0.0 + 1.0), "strong": sigmoid(2.0 + 0.5)}
    )


def test_a_near_duplicate_that_failed_raises_the_prediction_by_the_failure_weight() -> None:
    artifact = memory_artifact({"cheap": [0, 0]}, {"cheap": [1.0, -1.0, -2.0, 2.0]})
    assert Adequacy(artifact).predict(OTHER_TWIN)["cheap"] == pytest.approx(sigmoid(2.0))


def test_without_a_near_duplicate_predictions_and_verdicts_are_the_defaults() -> None:
    artifact = memory_artifact(
        {"cheap": [250, 250], "strong": [0, 0]}, {"cheap": [5.0, -5.0, -5.0, 5.0], "strong": [5.0] * 4}
    )
    with_memory, without = Adequacy(artifact), Adequacy(hand_artifact())
    for text in (
        "an easy one",
        "a hard proof of something else entirely",
        UNRELATED.replace("sum", "product of"),
    ):
        if text != UNRELATED:
            assert with_memory.predict(text) == without.predict(text)
    costs = {"cheap": 0.001, "strong": 0.01}
    gates = [AdequacyGate(a, cost_weight=0.1) for a in (with_memory, without)]
    verdicts = [g.verdicts("an easy one", ["cheap", "strong"], costs) for g in gates]
    assert verdicts[0] == verdicts[1]


def test_an_unknown_outcome_or_a_model_outside_the_memory_is_not_moved() -> None:
    artifact = memory_artifact({"cheap": [OUTCOME_UNKNOWN, 0]}, {"cheap": [1.0, -1.0, -2.0, 2.0]})
    predicted = Adequacy(artifact).predict(OTHER_TWIN)
    assert predicted == pytest.approx({"cheap": 0.5, "strong": sigmoid(2.0)})  # strong: not in the memory


def test_the_gate_judges_on_the_moved_predictions_and_says_so() -> None:
    artifact = memory_artifact({"cheap": [250, 0]}, {"cheap": [1.0, -1.0, -2.0, 2.0]})
    gate = AdequacyGate(Adequacy(artifact), min_success=0.3)
    rejected, judged = gate.verdicts(OTHER_TWIN, ["cheap", "strong"])
    assert judged["cheap"] == pytest.approx(sigmoid(-2.0))
    assert rejected == {
        "cheap": "predicted success 0.12 < 0.30 (a near-duplicate of a training prompt: its outcomes counted)"
    }
    # the planner passes the term counts' predictions; the gate moves them itself
    counts = gate.adequacy.counts(OTHER_TWIN)
    unmoved = gate.adequacy.predict_counts(*counts)
    assert gate.judge(OTHER_TWIN, ["cheap", "strong"], counts=counts, predicted=unmoved)[0] == rejected


def test_the_file_round_trips_through_json(tmp_path: Path) -> None:
    artifact = memory_artifact({"cheap": [250, 0]}, {"cheap": [1.0, -1.0, -2.0, 2.0]})
    path = tmp_path / "a.json"
    path.write_text(json.dumps(artifact), encoding="utf-8")
    loaded = Adequacy.load(path)
    assert loaded.predict(OTHER_TWIN) == Adequacy(artifact).predict(OTHER_TWIN)
    assert loaded.neighbours is not None and loaded.neighbours.rows == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"signatures": "AAAA"}, "signatures are not whole rows"),
        ({"band": 3}, "in bands of 3"),
        ({"models": {"cheap": {"outcomes": "AA==", "weights": [0, 0, 0, 0]}}}, "1 outcomes for 2"),
        ({"models": {"cheap": {"outcomes": "AAA=", "weights": [0]}}}, "4 weights expected"),
    ],
)
def test_a_malformed_neighbour_memory_names_the_file_and_the_way_out(
    change: dict[str, Any], message: str
) -> None:
    artifact = memory_artifact({"cheap": [250, 0]}, {"cheap": [1.0, -1.0, -2.0, 2.0]})
    artifact["neighbours"] = {**artifact["neighbours"], **change}
    with pytest.raises(AdequacyError, match="malformed neighbours section") as info:
        Adequacy(artifact, source="n.json")
    assert message in str(info.value) and "n.json" in str(info.value) and "--no-neighbours" in str(info.value)


def test_version_3_files_are_read_and_predict_as_before() -> None:
    v3 = {**hand_artifact(), "version": 3}
    adequacy = Adequacy(v3)
    assert adequacy.neighbours is None
    assert adequacy.predict(OTHER_TWIN) == pytest.approx({"cheap": 0.5, "strong": sigmoid(2.0)})


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=600))
def test_on_ascii_text_the_byte_table_finds_the_regexs_words(text: str) -> None:
    import re

    from policies.adequacy import _ending, _words

    assert _words(text) == [w.encode() for w in re.findall(r"\w+", _ending(text).lower())]


def test_non_ascii_endings_are_read_by_the_regex_in_lower_case() -> None:
    from policies.adequacy import _words

    assert _words("Über die Brücke, ÉCOLE_1 é") == [
        w.encode() for w in ("über", "die", "brücke", "école_1", "é")
    ]


def task_memory_artifact() -> dict[str, Any]:
    """``task_artifact`` (tasks "quiz": the word easy, "proof": hard) with the memory of TWIN (row 0,
    cheap right) and UNRELATED: pooled near weights (-2, +2), "quiz"'s own (+1, -1); "proof" has
    none of its own."""
    from tests.adequacy_helpers import task_artifact

    artifact = task_artifact(threshold=0.5)
    memory = memory_artifact({"cheap": [250, 0]}, {"cheap": [0.0, 0.0, -2.0, 2.0]})["neighbours"]
    memory["models"]["cheap"]["tasks"] = {"quiz": [0.0, 0.0, 1.0, -1.0]}
    artifact["neighbours"] = memory
    return artifact


def test_a_prompt_recognised_as_a_task_moves_by_that_tasks_weights_else_by_the_pooled_ones() -> None:
    adequacy = Adequacy(task_memory_artifact())
    assert adequacy.neighbours is not None and adequacy.neighbours.per_task
    quiz, proof = "easy " + OTHER_TWIN, "hard " + OTHER_TWIN
    for text, task in ((quiz, "quiz"), (proof, "proof"), (OTHER_TWIN, None)):
        assert adequacy.neighbours.find(text) == (0, 1)
        counts = adequacy.counts(text)
        assert adequacy.task_of(*counts) == adequacy.predict_task(*counts)[1] == task
    assert adequacy.predict(quiz)["cheap"] == pytest.approx(sigmoid(3.0 + 1.0))  # quiz's own weight
    assert adequacy.predict(proof)["cheap"] == pytest.approx(sigmoid(-3.0 - 2.0))  # no own weights: pooled
    assert adequacy.predict(OTHER_TWIN)["cheap"] == pytest.approx(sigmoid(0.0 - 2.0))  # no task: pooled
    assert adequacy.predict(quiz)["strong"] == pytest.approx(sigmoid(2.0))  # not in the memory


def test_the_gate_uses_the_task_it_is_given_or_recognises_it_only_for_a_neighbour() -> None:
    adequacy = Adequacy(task_memory_artifact())
    gate = AdequacyGate(adequacy, min_success=0.9)
    quiz = "easy " + OTHER_TWIN
    counts = adequacy.counts(quiz)
    unmoved = adequacy.predict_counts(*counts)
    judged = [
        gate.judge(quiz, ["cheap", "strong"], counts=counts, predicted=unmoved, **task)[1]["cheap"]
        for task in ({}, {"task": "quiz"}, {"task": None}, {"task": "proof"})
    ]
    assert judged == pytest.approx([sigmoid(4.0), sigmoid(4.0), sigmoid(1.0), sigmoid(1.0)])
    recognised: list[Any] = []
    memory = adequacy.neighbours
    assert memory is not None
    without = "easy riddles about winter trees, please, in rhyme"
    assert memory.find(without) is None
    # the task is asked for only when a neighbour was found
    memory.moved(without, unmoved, lambda: recognised.append(1) or "quiz")
    assert recognised == []
    memory.moved(quiz, unmoved, lambda: recognised.append(1) or "quiz")
    assert recognised == [1]


def brute_force(rows: Any, query: Any) -> tuple[int, int] | None:
    """The earliest training row agreeing with the query's signature in the most bytes, if >= 52."""
    agree = [int((row == query).sum()) for row in rows]
    best = max(agree)
    if best < near_matches(NEIGHBOUR_HASHES):
        return None
    return agree.index(best), 0 if best == NEIGHBOUR_HASHES else 1


@pytest.mark.parametrize("few", [48, 0, 10**6])
def test_a_lookup_finds_what_comparing_every_row_finds(few: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Templated prompts share LSH bands by the dozen: candidates compared in Python (few) or in
    numpy (many) give the earliest best row, as comparing with every training prompt does."""
    import random

    import numpy as np

    import policies.adequacy as module

    monkeypatch.setattr(module, "_FEW_CANDIDATES", few)
    rng = random.Random(5)
    words = [f"w{i}" for i in range(12)]
    template = "Question: which of these is the odd one out in the list below, and why is it so? "
    texts = [template + " ".join(rng.choice(words) for _ in range(rng.randrange(2, 9))) for _ in range(300)]
    texts += texts[:20]  # exact repeats: the earliest row is found
    rows = np.stack(signatures(*texts))
    artifact = memory_artifact({"cheap": [250, 0]}, {"cheap": [0.0] * 4})
    artifact["neighbours"]["signatures"] = base64.b64encode(rows.tobytes()).decode("ascii")
    artifact["neighbours"]["models"]["cheap"]["outcomes"] = base64.b64encode(bytes(len(texts))).decode()
    memory = Adequacy(artifact).neighbours
    assert memory is not None
    queries = texts[:40] + [t.replace(" w3", " w11") for t in texts[:100]] + [template + "w1 w2 zz"]
    found = 0
    for text in queries:
        (query,) = signatures(text)
        expected = brute_force(rows, query)
        assert memory.find(text) == expected, text
        found += expected is not None and expected[1] == 1
    assert found >= 20  # near ones, not only exact repeats


def test_a_task_whose_weights_are_all_zero_is_not_moved_nor_noted() -> None:
    artifact = task_memory_artifact()
    artifact["neighbours"]["models"]["cheap"]["tasks"]["quiz"] = [0.0, 0.0, 0.0, 0.0]
    adequacy = Adequacy(artifact)
    assert adequacy.neighbours is not None
    quiz = "easy " + OTHER_TWIN
    plain = adequacy.predict_counts(*adequacy.counts(quiz))
    assert adequacy.neighbours.find(quiz) == (0, 1)
    assert adequacy.neighbours.moved(quiz, plain, "quiz") == (plain, None)
    assert adequacy.neighbours.moved(quiz, plain, lambda: "quiz") == (plain, None)
    moved, note = adequacy.neighbours.moved(quiz, plain, None)  # pooled: -2 for a right neighbour
    assert moved["cheap"] == pytest.approx(sigmoid(3.0 - 2.0)) and note is not None


def test_a_request_whose_bigrams_the_training_endings_lack_is_not_hashed_and_finds_what_it_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np

    import policies.adequacy as module
    from policies.adequacy import shingle_filter, shingles

    artifact = memory_artifact({"cheap": [250, 0]}, {"cheap": [0.0, 0.0, -2.0, 2.0]})
    unfiltered = Adequacy(artifact).neighbours
    bigrams = np.unique(np.concatenate([shingles(TWIN), shingles(UNRELATED)]))
    artifact["neighbours"]["filter"] = shingle_filter(bigrams, 12)
    filtered = Adequacy(json.loads(json.dumps(artifact))).neighbours
    assert filtered is not None and unfiltered is not None
    hashed: list[int] = []
    real = module.minhash
    monkeypatch.setattr(module, "minhash", lambda h, p: hashed.append(len(h)) or real(h, p))
    texts = [TWIN, OTHER_TWIN, FEW_SHOT + TWIN, UNRELATED, UNRELATED.replace("sum", "product")]
    assert [filtered.find(t) for t in texts] == [unfiltered.find(t) for t in texts] == [
        (0, 0), (0, 1), (0, 0), (1, 0), None
    ]  # fmt: skip
    hashed.clear()
    foreign = "Translate into French: the weather is lovely in the mountains this week."
    assert filtered.find(foreign) is None and hashed == []  # stopped at the filter
    assert unfiltered.find(foreign) is None and len(hashed) == 1


@given(st.text(alphabet=st.sampled_from("ab cÉ\n_1"), max_size=80) | st.text(max_size=300))
def test_a_lookups_bigrams_are_the_trainings_shingles_in_any_order(text: str) -> None:
    """``find`` reads the bigrams as overlapping windows on the words' CRCs (the order reversed):
    the same multiset of numbers as ``shingles``, which training hashes and fills the filter with,
    and the same with the plain computation a big-endian machine would use."""
    import numpy as np

    import policies.adequacy as module
    from policies.adequacy import _bigrams, _words, shingles

    words = _words(text)
    expected = shingles(text)
    if not words:
        assert expected is None
        return
    assert expected is not None
    fast = _bigrams(words)
    assert fast.dtype == np.uint64 and sorted(fast.tolist()) == sorted(expected.tolist())
    parameters = module._hash_parameters(NEIGHBOUR_HASHES, 3)
    assert (module.minhash(fast, parameters) == module.minhash(expected, parameters)).all()
    paired = module._PAIRED_VIEW
    try:
        module._PAIRED_VIEW = False
        assert sorted(_bigrams(words).tolist()) == sorted(expected.tolist())
    finally:
        module._PAIRED_VIEW = paired


def test_the_filter_counts_a_lookups_bigrams_as_the_training_side_sets_them() -> None:
    """A request made of training endings' bigrams passes the filter; one sharing none stops."""
    import numpy as np

    from policies.adequacy import shingle_filter, shingles

    artifact = memory_artifact({"cheap": [250, 0]}, {"cheap": [0.0, 0.0, -2.0, 2.0]})
    trained = shingles(TWIN)
    assert trained is not None
    artifact["neighbours"]["filter"] = shingle_filter(np.unique(trained), 16)
    memory = Adequacy(artifact).neighbours
    assert memory is not None
    assert memory.find(OTHER_TWIN) == (0, 1) and memory.find(TWIN) == (0, 0)
    assert memory.find(UNRELATED) is None  # row 1, but none of its bigrams is in the filter


@given(
    st.lists(st.sampled_from(["a", "b c", "\n", "\n\n", " ", "x" * 97]), max_size=40).map("".join),
)
def test_the_ending_is_what_the_whole_prompts_last_blank_line_leaves(text: str) -> None:
    """``_ending`` looks for the blank line only near the end: the same ending as searching it all."""
    from policies.adequacy import NEIGHBOUR_CHARS, _ending

    stripped = text.strip()
    cut = stripped.rfind("\n\n")
    assert _ending(text) == (stripped[cut + 2 :] if cut >= 0 else stripped)[-NEIGHBOUR_CHARS:]
