"""router train's method on small hand-made data: Platt calibration on held-out folds, the
reference length cost_weight prices against, and the artifact they go into."""

from __future__ import annotations

from pathlib import Path

import pytest

from router._labeled import LabeledData


def labeled(
    prompts: list[str], outcomes: dict[str, list[float]], origin: list[int] | None = None
) -> LabeledData:
    n = len(prompts)
    return LabeledData(
        ("a.csv", "b.csv", "c.csv"),
        tuple(prompts),
        tuple(({"role": "user", "content": p},) for p in prompts),
        {m: tuple(v) for m, v in outcomes.items()},
        {m: (None,) * n for m in outcomes},
        tuple(origin or [0] * n),
    )


def test_the_reference_length_is_the_median_of_each_files_median() -> None:
    from router._train import _reference_tokens

    # files' medians: 2, 15, 100 -> 15 (the big first file does not set it alone)
    assert _reference_tokens([1, 2, 3, 2, 2, 10, 20, 100], [0, 0, 0, 0, 0, 1, 1, 2]) == 15.0


def test_platt_scaling_sharpens_timid_held_out_predictions() -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("sklearn")
    from router._train import _platt

    y = [1.0, 0.0] * 30
    data = labeled([f"p{i}" for i in range(60)], {"m": y})
    timid = np.array([0.6 if v else 0.4 for v in y])  # right every time, but barely confident
    folds = [np.arange(60)[f::3] for f in range(3)]
    calibrated, maps = _platt({"m": timid}, data, ["m"], folds)
    a, b = maps["m"]
    assert a > 1.0 and abs(b) < 0.1  # a steeper map, centred where the outcomes are balanced
    assert calibrated["m"][0] > 0.75 and calibrated["m"][1] < 0.25
    # every row's calibrated value came from a map fitted on the other folds: all rows moved
    assert np.all(np.abs(calibrated["m"] - timid) > 0.1)


def test_train_writes_a_version_4_file_with_calibration_and_the_reference_length() -> None:
    pytest.importorskip("sklearn")
    from policies.adequacy import VERSION, Adequacy
    from policies.tokens import estimate_prompt_tokens
    from router._train import Settings, Target, train

    prompts = [f"easy question number {i}" for i in range(20)] + [f"hard proof number {i}" for i in range(20)]
    outcomes = {"cheap": [1.0] * 20 + [0.0] * 20, "strong": [1.0] * 40}
    costs = {"cheap": [0.001] * 40, "strong": [0.01] * 40}
    artifact, report = train(
        labeled(prompts, outcomes),
        costs,
        target=Target(0.95, "strong"),
        settings=Settings(folds=4, min_df=1, output_tokens=16),
    )
    assert artifact["version"] == VERSION == 4 and artifact["method"] == "tfidf-logreg-platt-neighbours"
    # one file: the median of its prompts' estimated tokens
    lengths = sorted(estimate_prompt_tokens([{"role": "user", "content": p}]) for p in prompts)
    assert artifact["reference_tokens"] == (lengths[19] + lengths[20]) / 2
    assert set(artifact["models"]["cheap"]["calibration"]) == {"a", "b"}
    assert "calibration" not in artifact["models"]["strong"]  # always right: a constant, nothing to map
    assert report.setting == "cost_weight" and report.threshold is not None
    (s,) = report.sets
    assert s.route.quality >= 0.95 and s.route.cost_per_1k < 0.75 * s.best.cost_per_1k
    adequacy = Adequacy(artifact)
    assert adequacy.suggested == {"cost_weight": report.threshold}
    assert adequacy.predict("hard proof")["cheap"] < 0.5 < adequacy.predict("easy question")["cheap"]
    assert "tasks" not in artifact  # one file: one task, and the global suggestion is its own


def test_train_on_two_files_recognises_each_task_and_suggests_each_its_own_setting() -> None:
    pytest.importorskip("sklearn")
    from policies.adequacy import Adequacy, AdequacyGate
    from router._train import Settings, Target, train

    # file a: trivia the cheap model always gets right; file b: proofs it always gets wrong
    prompts = [f"trivia quiz question {i}" for i in range(20)] + [
        f"prove lemma theorem {i}" for i in range(20)
    ]
    outcomes = {"cheap": [1.0] * 20 + [0.0] * 20, "strong": [1.0] * 40}
    costs = {"cheap": [0.001] * 40, "strong": [0.01] * 40}
    artifact, report = train(
        labeled(prompts, outcomes, [0] * 20 + [1] * 20),
        costs,
        target=Target(0.95, "strong"),
        settings=Settings(folds=4, min_df=1, output_tokens=16),
    )
    assert [t["name"] for t in artifact["tasks"]] == ["a", "b"]
    # each task's threshold is the 1st percentile of its own held-out prompts: its least typical
    # prompt may fall below it (and get the global setting)
    assert report.task_accuracy is not None and report.task_accuracy >= 0.95
    a, b = (s.task_setting for s in report.sets)
    assert a is not None and b is not None and a > b  # trivia may price strong out; proofs may not
    assert all(s.task_route is not None and s.task_route.quality >= 0.95 for s in report.sets)
    # on trivia its own setting costs no more than the global one (which must also serve proofs)
    trivia = report.sets[0]
    assert trivia.task_route is not None and trivia.task_route.cost_per_1k <= trivia.route.cost_per_1k
    adequacy = Adequacy(artifact)
    gate = AdequacyGate(adequacy, auto=True)
    assert gate.resolve(adequacy.counts("trivia quiz question 7")) == (a, "a")
    assert gate.resolve(adequacy.counts("prove lemma theorem 7")) == (b, "b")
    assert adequacy.task_of(*adequacy.counts("zebra")) is None  # no known word: the global setting
    assert artifact["cross_validation"]["task_accuracy"] == round(report.task_accuracy, 6)


def test_each_file_weighs_the_same_so_an_unknown_prompt_gets_the_models_average_over_files() -> None:
    pytest.importorskip("sklearn")
    from policies.adequacy import Adequacy
    from router._train import Settings, train

    # m fails the 30 prompts of file a and answers the 10 of file b, all worded alike: its
    # prediction is its prior, by rows 10/40, by files (0 + 1) / 2. (Without the neighbour memory:
    # the prompts repeat each other, and a repeat's recorded outcome would move the prediction.)
    prompts = ["solve this task"] * 40
    outcomes = {"m": [0.0] * 30 + [1.0] * 10, "n": [1.0, 0.0] * 20}
    costs = {"m": [0.001] * 40, "n": [0.01] * 40}
    origin = [0] * 30 + [1] * 10
    predicted = {}
    for balance in (True, False):
        artifact, _ = train(
            labeled(prompts, outcomes, origin),
            costs,
            settings=Settings(folds=4, min_df=1, output_tokens=16, balance_files=balance, neighbours=False),
        )
        predicted[balance] = Adequacy(artifact).predict("solve this task")["m"]
        assert artifact["training"]["settings"]["balance_files"] is balance
    assert 0.4 < predicted[True] < 0.6
    assert predicted[False] < 0.35


def test_each_task_has_its_own_threshold_so_a_tight_task_does_not_take_a_prompt_of_another_kind() -> None:
    pytest.importorskip("sklearn")
    from policies.adequacy import Adequacy
    from router._train import Settings, Target, train

    # file a: one template, every prompt alike; file b: prompts with few words in common. A prompt
    # sharing only a's closing line is far less like a's centroid than a's own prompts are, though
    # more like it than b's prompts are like b's: with one threshold for both it would be taken for a.
    template = "answer with the letter of the correct choice please only one letter"
    prompts = [f"{template} quiz {i}" for i in range(24)]
    words = [
        "river",
        "cloud",
        "stone",
        "apple",
        "engine",
        "violin",
        "sugar",
        "planet",
        "market",
        "garden",
        "winter",
        "bridge",
    ]
    prompts += [f"{words[i % 12]} {words[(i * 5 + 3) % 12]} {words[(i * 7 + 1) % 12]} {i}" for i in range(24)]
    outcomes = {"cheap": [1.0] * 24 + [0.0, 1.0] * 12, "strong": [1.0] * 48}
    costs = {"cheap": [0.001] * 48, "strong": [0.01] * 48}
    artifact, report = train(
        labeled(prompts, outcomes, [0] * 24 + [1] * 24),
        costs,
        target=Target(0.95, "strong"),
        settings=Settings(folds=4, min_df=1, output_tokens=16),
    )
    a, b = (t["threshold"] for t in artifact["tasks"])
    assert a > 2 * b  # the templated file's prompts sit far closer to their centroid
    assert artifact["task_threshold"] == b  # what routers without per-task thresholds read
    assert report.task_accuracy is not None and report.task_accuracy >= 0.95
    adequacy = Adequacy(artifact)
    assert adequacy.task_of(*adequacy.counts(f"{template} quiz 99")) == "a"
    assert adequacy.task_of(*adequacy.counts("river stone winter")) == "b"
    assert adequacy.task_of(*adequacy.counts("tell me a story about a dragon, answer please")) is None


def twins(pairs: int, seed: int = 3) -> tuple[list[str], dict[str, list[float]]]:
    """Winogrande-like twins: two prompts differing in their last word. "biased" gets a random one
    of each pair right and the other wrong (the words say nothing); "steady" gets both or neither."""
    import random

    rng = random.Random(seed)
    prompts: list[str] = []
    outcomes: dict[str, list[float]] = {"biased": [], "steady": []}
    for _ in range(pairs):
        words = " ".join(f"w{rng.randrange(10**6)}" for _ in range(12))
        prompts += [f"{words} because the _ was big", f"{words} because the _ was small"]
        first = float(rng.random() < 0.5)
        outcomes["biased"] += [first, 1.0 - first]
        both = float(rng.random() < 0.5)
        outcomes["steady"] += [both, both]
    return prompts, outcomes


def test_train_learns_that_a_biased_models_twins_flip_and_a_steady_ones_agree() -> None:
    pytest.importorskip("sklearn")
    from policies.adequacy import Adequacy
    from router._train import Settings, train

    prompts, outcomes = twins(60)
    costs = {"biased": [0.001] * 120, "steady": [0.01] * 120}
    artifact, _ = train(labeled(prompts, outcomes), costs, settings=Settings(folds=5, min_df=1))
    weights = {m: s["weights"] for m, s in artifact["neighbours"]["models"].items()}
    exact_ok, exact_fail, near_ok, near_fail = weights["biased"]
    assert near_ok < -1.0 and near_fail > 1.0  # a twin right: this one wrong, and the other way
    assert exact_ok == exact_fail == 0.0  # no exact repeats to learn from: no effect
    assert weights["steady"][2] > 1.0 and weights["steady"][3] < -1.0
    # a third variant of pair 0 nearly repeats both twins: one of them is its neighbour
    adequacy = Adequacy(artifact)
    assert adequacy.neighbours is not None
    variant = prompts[0].replace("was big", "was huge")
    found = adequacy.neighbours.find(variant)
    assert found is not None and found[0] in (0, 1) and found[1] == 1
    plain = adequacy.predict_counts(*adequacy.counts(variant))
    moved = adequacy.predict(variant)
    assert (moved["biased"] < plain["biased"]) == (outcomes["biased"][found[0]] == 1.0)
    assert (moved["steady"] > plain["steady"]) == (outcomes["steady"][found[0]] == 1.0)


def test_held_out_a_rows_neighbour_comes_from_another_fold_and_its_weights_from_the_others() -> None:
    np = pytest.importorskip("numpy")
    from router._train import _neighbour_memory

    prompts, outcomes = twins(60)
    data = labeled(prompts, outcomes)
    base = {m: np.full(120, 0.5) for m in outcomes}  # the words know nothing
    # 5 folds, each pair's twins in different folds, except pair 0's, both in fold 0
    fold_of = np.array([(i // 2 + i % 2) % 5 for i in range(120)])
    fold_of[1] = 0
    section, held_out, stats = _neighbour_memory(data, list(outcomes), base, fold_of, 5)
    assert section is not None and stats["rows"] == 120
    # pair 0's twin was never in another fold: no neighbour, the base prediction
    assert held_out["biased"][0] == held_out["biased"][1] == 0.5
    assert stats["held_out_with_neighbour"] == pytest.approx(118 / 120)
    y = np.array(outcomes["biased"])
    brier = float(np.mean((held_out["biased"] - y) ** 2))
    assert brier < 0.1  # against 0.25 for the base: the twin's outcome, flipped, held out
    steady = float(np.mean((held_out["steady"] - np.array(outcomes["steady"])) ** 2))
    assert steady < 0.1


def test_without_neighbours_train_writes_a_version_3_file_older_routers_read() -> None:
    pytest.importorskip("sklearn")
    from policies.adequacy import Adequacy
    from router._train import Settings, train

    prompts, outcomes = twins(10)
    costs = {"biased": [0.001] * 20, "steady": [0.01] * 20}
    data = labeled(prompts, outcomes)
    artifact, _ = train(data, costs, settings=Settings(folds=2, min_df=1, neighbours=False))
    assert artifact["version"] == 3 and "neighbours" not in artifact
    assert artifact["method"] == "tfidf-logreg-platt"
    assert Adequacy(artifact).neighbours is None
    with_memory, _ = train(data, costs, settings=Settings(folds=2, min_df=1))
    # the same predictor underneath: without a neighbour, the same predictions
    assert with_memory["models"] == artifact["models"]


def test_the_neighbour_memory_round_trips_through_the_written_file(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from policies.adequacy import Adequacy
    from router._train import Settings, train, write_artifact

    prompts, outcomes = twins(20)
    costs = {"biased": [0.001] * 40, "steady": [0.01] * 40}
    artifact, _ = train(labeled(prompts, outcomes), costs, settings=Settings(folds=4, min_df=1))
    digest = write_artifact(artifact, tmp_path / "a.json")
    loaded = Adequacy.load(tmp_path / "a.json")
    assert loaded.digest == digest and loaded.neighbours is not None and loaded.neighbours.rows == 40
    for text in (prompts[3], prompts[3].replace("was", "is"), "nothing like the training data"):
        assert loaded.predict(text) == pytest.approx(Adequacy(artifact).predict(text))


def test_each_task_learns_its_own_neighbour_weights_and_a_task_with_few_near_repeats_none() -> None:
    """Twins flip in one file and agree in another: pooled weights would average the two; per task,
    each file's near repeats count their own way, and a file with too few near repeats to learn from
    (under 10) gets no effect rather than another file's weights."""
    np = pytest.importorskip("numpy")
    from router._train import _neighbour_memory

    flipping, flips = twins(60, seed=3)
    agreeing, agrees = twins(60, seed=4)
    agrees["biased"] = agrees["steady"]  # here the biased model gets both twins right, or neither
    few, few_outcomes = twins(3, seed=5)
    prompts = flipping + agreeing + few
    outcomes = {m: flips[m] + agrees[m] + few_outcomes[m] for m in flips}
    data = labeled(prompts, outcomes, [0] * 120 + [1] * 120 + [2] * 6)
    base = {m: np.full(len(prompts), 0.5) for m in outcomes}
    fold_of = np.array([(i // 2 + i % 2) % 5 for i in range(len(prompts))])
    tasks = np.asarray(data.origin)
    names = {0: "flip", 1: "agree", 2: "few"}
    section, held_out, _ = _neighbour_memory(data, list(outcomes), base, fold_of, 5, tasks, names)
    assert section is not None
    biased = section["models"]["biased"]
    assert biased["tasks"]["flip"][2] < -1.0 < 1.0 < biased["tasks"]["agree"][2]  # near, neighbour right
    assert biased["tasks"]["few"] == [0.0, 0.0, 0.0, 0.0]
    assert abs(biased["weights"][2]) < min(-biased["tasks"]["flip"][2], biased["tasks"]["agree"][2])
    y = np.array(outcomes["biased"])
    for rows in (slice(0, 120), slice(120, 240)):  # held out, each task's twins predicted its way
        assert float(np.mean((held_out["biased"][rows] - y[rows]) ** 2)) < 0.1
    assert (held_out["biased"][240:] == 0.5).all()
    _, pooled, _ = _neighbour_memory(data, list(outcomes), base, fold_of, 5, tasks, names, variant="pooled")
    assert float(np.mean((pooled["biased"][:240] - y[:240]) ** 2)) > 0.2  # the two ways cancel out


def test_train_on_several_files_writes_neighbour_weights_per_task_named_as_the_recogniser() -> None:
    pytest.importorskip("sklearn")
    from policies.adequacy import Adequacy
    from router._train import Settings, train

    prompts, outcomes = twins(30)
    data = labeled(prompts, outcomes, [0] * 30 + [1] * 30)
    costs = {"biased": [0.001] * 60, "steady": [0.01] * 60}
    artifact, _ = train(data, costs, settings=Settings(folds=3, min_df=1))
    names = [t["name"] for t in artifact["tasks"]]
    assert names == ["a", "b"] and artifact["version"] == 4
    for spec in artifact["neighbours"]["models"].values():
        assert sorted(spec["tasks"]) == names and all(len(w) == 4 for w in spec["tasks"].values())
    memory = Adequacy(artifact).neighbours
    assert memory is not None and memory.per_task


def test_the_memorys_shingle_filter_lets_every_training_prompt_through() -> None:
    pytest.importorskip("sklearn")
    from policies.adequacy import Adequacy
    from router._train import Settings, train

    prompts, outcomes = twins(20)
    costs = {"biased": [0.001] * 40, "steady": [0.01] * 40}
    artifact, _ = train(labeled(prompts, outcomes), costs, settings=Settings(folds=4, min_df=1))
    assert artifact["neighbours"]["filter"]["bits"] >= 10
    memory = Adequacy(artifact).neighbours
    assert memory is not None
    assert all(memory.find(p) is not None for p in prompts)
    assert memory.find("an unrelated request about a different subject entirely, in other words") is None
