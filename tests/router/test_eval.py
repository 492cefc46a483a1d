"""router eval's yardsticks on hand-computed data: hull, oracle, single models, and a route's choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.schema import Policy
from policies.validate import policy_catalog
from router._eval import Point, evaluate, hull, hull_quality, oracle
from router._labeled import load_labeled
from tests.adequacy_helpers import write_hand_artifact


def test_the_hull_keeps_only_points_no_random_mix_beats() -> None:
    points = [Point("a", 0.5, 1.0), Point("b", 0.6, 5.0), Point("c", 0.9, 4.0), Point("d", 0.7, 2.0)]
    chain = hull(points)
    # b costs more than c and is worse; d lies below the a-c segment (0.5 + 0.4/3 = 0.633 < 0.7? no: above)
    assert [p.name for p in chain] == ["a", "d", "c"]
    assert hull_quality(chain, 1.0) == pytest.approx(0.5)
    assert hull_quality(chain, 3.0) == pytest.approx(0.8)
    assert hull_quality(chain, 10.0) == pytest.approx(0.9)
    assert hull_quality(chain, 0.5) is None


def test_a_point_under_the_segment_of_its_neighbours_is_not_on_the_hull() -> None:
    chain = hull([Point("a", 0.5, 1.0), Point("mid", 0.55, 2.0), Point("c", 0.9, 3.0)])
    assert [p.name for p in chain] == ["a", "c"]


def test_the_oracle_takes_the_cheapest_correct_model_per_prompt() -> None:
    outcomes = {"cheap": [1.0, 0.0, 0.0], "strong": [1.0, 1.0, 0.0]}
    costs = {"cheap": [1.0, 1.0, 1.0], "strong": [10.0, 10.0, 10.0]}
    point = oracle(outcomes, costs)
    assert point.quality == pytest.approx(2 / 3)
    # cheap for the first, strong for the second, cheap for the third (nobody right: cheapest)
    assert point.cost_per_1k == pytest.approx((1 + 10 + 1) / 3 * 1000)


def policy(tmp_path: Path, **route: object) -> Policy:
    spec = {
        "models": {
            "cheap": {
                "provider": "openai_compatible",
                "api_base": "http://c.test/v1",
                "input_cost_per_mtok": 1,
                "output_cost_per_mtok": 1,
            },
            "strong": {
                "provider": "openai_compatible",
                "api_base": "http://s.test/v1",
                "input_cost_per_mtok": 10,
                "output_cost_per_mtok": 10,
            },
        },
        "routes": {"auto": {"strategy": "cheapest", "candidates": ["cheap", "strong"], **route}},
        "source": str(tmp_path / "policy.yaml"),
    }
    return Policy.model_validate(spec)


DATA = (
    "prompt,cheap,strong,cheap|total_cost,strong|total_cost\n"
    "an easy one,1,1,0.001,0.01\n"
    "another easy one,1,1,0.001,0.01\n"
    "a hard one,0,1,0.001,0.01\n"
    "a hard one again,0,0,0.001,0.01\n"
)


def test_a_route_with_learned_adequacy_sends_hard_prompts_to_the_strong_model(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    write_hand_artifact(tmp_path / "adequacy.json")
    (tmp_path / "d.csv").write_text(DATA)
    data = load_labeled([tmp_path / "d.csv"])
    p = policy(tmp_path, adequacy="adequacy.json", min_success=0.7)
    report = evaluate(p, policy_catalog(p), "auto", data, sweep=[0.0, 0.99])
    # easy -> cheap (p 0.95), hard -> strong (cheap 0.05 < 0.7): 3 of 4 right at (2*1 + 2*10)/4 per call
    assert report.result.share == {"cheap": 0.5, "strong": 0.5}
    assert report.result.point.quality == pytest.approx(0.75)
    assert report.result.point.cost_per_1k == pytest.approx((0.001 * 2 + 0.01 * 2) / 4 * 1000)
    singles = {s.name: (s.quality, s.cost_per_1k) for s in report.singles}
    assert singles == {"cheap": (0.5, pytest.approx(1.0)), "strong": (0.75, pytest.approx(10.0))}
    assert report.best.name == "strong"
    assert report.oracle.quality == pytest.approx(0.75)
    # the hull at the route's cost 5.5 mixes cheap and strong: 0.5 + 0.25 * 4.5/9 = 0.625
    assert report.result.hull_quality == pytest.approx(0.625)
    assert report.result.above_hull == pytest.approx(0.125)
    # min_success 0: everything to cheap; 0.99: nobody passes, so the likeliest answers each prompt:
    # cheap (0.95 vs 0.88) the easy ones, strong (0.88 vs 0.05) the hard ones
    assert [r.share for r in report.sweep] == [{"cheap": 1.0}, {"cheap": 0.5, "strong": 0.5}]


def test_eval_refuses_a_route_whose_models_have_no_column(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("prompt,cheap\nx,1\n")
    p = policy(tmp_path)
    with pytest.raises(ValueError, match="no outcome column for it"):
        evaluate(p, policy_catalog(p), "auto", load_labeled([tmp_path / "d.csv"]))


def test_eval_warns_when_the_data_was_in_the_training_set(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    from policies.adequacy import Adequacy, prompt_fingerprint
    from tests.adequacy_helpers import hand_artifact

    artifact = hand_artifact()
    artifact["training"]["fingerprints"] = prompt_fingerprint("an easy one")
    (tmp_path / "d.csv").write_text(DATA)
    p = policy(tmp_path)
    report = evaluate(
        p, policy_catalog(p), "auto", load_labeled([tmp_path / "d.csv"]), adequacy=Adequacy(artifact)
    )
    assert report.overlap == 1
    assert "1 of 4 prompts were in the adequacy file's training data" in report.notes[0]
