"""router eval and router train from the command line, on small files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from router.cli import app
from tests.adequacy_helpers import write_hand_artifact

runner = CliRunner()
pytest.importorskip("numpy")

POLICY = """
models:
  cheap:  {provider: openai_compatible, api_base: "http://c.test/v1", input_cost_per_mtok: 1,
            output_cost_per_mtok: 1}
  strong: {provider: openai_compatible, api_base: "http://s.test/v1", input_cost_per_mtok: 10,
            output_cost_per_mtok: 10}
routes:
  auto: {strategy: cheapest, candidates: [cheap, strong], adequacy: adequacy.json, min_success: 0.7}
"""
DATA = (
    "prompt,cheap,strong,cheap|total_cost,strong|total_cost\n"
    "an easy one,1,1,0.001,0.01\nanother easy one,1,1,0.001,0.01\n"
    "a hard one,0,1,0.001,0.01\na hard one again,0,0,0.001,0.01\n"
)


def setup(tmp_path: Path) -> tuple[Path, Path]:
    write_hand_artifact(tmp_path / "adequacy.json")
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "d.csv").write_text(DATA)
    return tmp_path / "policy.yaml", tmp_path / "d.csv"


def test_eval_prints_the_route_against_single_models_the_hull_and_the_oracle(tmp_path: Path) -> None:
    policy, data = setup(tmp_path)
    result = runner.invoke(app, ["eval", str(data), "--policy", str(policy), "--route", "auto"])
    assert result.exit_code == 0, result.output
    assert "route auto on 4 prompts" in result.output
    assert "12.50 points above it" in result.output
    assert "cheap 50%, strong 50%" in result.output


def test_eval_json_sweep_and_html_plot(tmp_path: Path) -> None:
    policy, data = setup(tmp_path)
    plot = tmp_path / "curve.html"
    result = runner.invoke(
        app, ["eval", str(data), "--policy", str(policy), "--sweep", "--json", "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["route_result"]["quality"] == 0.75
    assert report["best_single"]["name"] == "strong"
    assert len(report["sweep"]) == 21
    assert plot.read_text().startswith("<!doctype html>") and "<svg" in plot.read_text()


def test_eval_with_a_malformed_file_says_row_and_column(tmp_path: Path) -> None:
    policy, data = setup(tmp_path)
    data.write_text("prompt,cheap,strong\nx,1,yes-ish\n")
    result = runner.invoke(app, ["eval", str(data), "--policy", str(policy)])
    assert result.exit_code == 1
    assert "row 2, column 'strong': outcome 'yes-ish' is not a number" in result.output


def test_eval_names_an_unknown_route(tmp_path: Path) -> None:
    policy, data = setup(tmp_path)
    result = runner.invoke(app, ["eval", str(data), "--policy", str(policy), "--route", "nope"])
    assert result.exit_code == 1 and "route 'nope' is not in" in result.output


def test_train_writes_an_artifact_a_route_can_use_and_reports_held_out_figures(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    policy, _ = setup(tmp_path)
    rows = ["prompt,cheap,strong,cheap|total_cost,strong|total_cost"]
    for i in range(40):
        rows.append(f"easy question number {i},1,1,0.001,0.01")
        rows.append(f"hard proof number {i},0,1,0.001,0.01")
    data = tmp_path / "train.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "learned.json"
    result = runner.invoke(
        app, ["train", str(data), "--out", str(out), "--target", "0.95 of strong", "--folds", "4", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["models"] == ["cheap", "strong"]
    assert report["suggested"] is not None and set(report["suggested"]) == {"cost_weight"}
    (s,) = report["sets"]
    # held out, the learned route is as good as the strong model at well under its cost
    assert s["route"]["quality"] >= 0.95 * s["best_single"]["quality"]
    assert s["route"]["cost_per_1k_usd"] < 0.75 * s["best_single"]["cost_per_1k_usd"]
    artifact = json.loads(out.read_text())
    assert artifact["format"] == "router-adequacy" and artifact["training"]["rows"] == 80
    # the file goes straight into a policy
    (tmp_path / "policy.yaml").write_text(POLICY.replace("adequacy.json", "learned.json"))
    check = runner.invoke(app, ["eval", str(data), "--policy", str(policy), "--json"])
    assert check.exit_code == 0, check.output
    assert "training data" in check.output  # evaluating on the training set warns


def test_train_no_neighbours_writes_a_version_3_file_and_by_default_version_4(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    rows = ["prompt,cheap,strong,cheap|total_cost,strong|total_cost"]
    for i in range(10):
        rows.append(f"the _ in riddle {i} was too big,{i % 2},1,0.001,0.01")
        rows.append(f"the _ in riddle {i} was too small,{1 - i % 2},1,0.001,0.01")
    data = tmp_path / "train.csv"
    data.write_text("\n".join(rows) + "\n")
    versions = {}
    for flags in ([], ["--no-neighbours"]):
        out = tmp_path / f"a{len(flags)}.json"
        result = runner.invoke(app, ["train", str(data), "--out", str(out), "--folds", "2", *flags])
        assert result.exit_code == 0, result.output
        artifact = json.loads(out.read_text())
        versions[bool(flags)] = (artifact["version"], "neighbours" in artifact)
    assert versions == {False: (4, True), True: (3, False)}


def test_train_refuses_a_bad_target(tmp_path: Path) -> None:
    _, data = setup(tmp_path)
    result = runner.invoke(
        app, ["train", str(data), "--out", str(tmp_path / "o.json"), "--target", "most of it"]
    )
    assert result.exit_code == 1 and "write it as '0.95 of gpt-4o'" in result.output


def test_eval_png_plot_is_a_png_picture(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")  # the [plot] extra
    policy, data = setup(tmp_path)
    plot = tmp_path / "curve.png"
    result = runner.invoke(app, ["eval", str(data), "--policy", str(policy), "--sweep", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and plot.stat().st_size > 10_000


def test_eval_png_plot_without_matplotlib_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    policy, data = setup(tmp_path)
    plot = tmp_path / "curve.png"
    result = runner.invoke(app, ["eval", str(data), "--policy", str(policy), "--plot", str(plot)])
    assert result.exit_code != 0
    assert "pip install 'router-sdk[plot]'" in result.output and not plot.exists()


def test_explain_names_the_recognised_task_and_its_weight_with_cost_weight_auto(tmp_path: Path) -> None:
    from tests.adequacy_helpers import task_artifact

    (tmp_path / "adequacy.json").write_text(json.dumps(task_artifact()))
    (tmp_path / "policy.yaml").write_text(POLICY.replace("min_success: 0.7", "cost_weight: auto"))
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"model": "auto", "messages": [{"role": "user", "content": "a hard one"}]}))
    result = runner.invoke(app, ["explain", str(tmp_path / "policy.yaml"), str(request), "--json"])
    assert result.exit_code == 0, result.output
    rules = json.loads(result.stdout)["rules"]
    assert any(r.startswith("adequacy sha256:") and r.endswith("cost_weight 5 (task proof)") for r in rules)
