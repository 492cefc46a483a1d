"""Labeled data files: CSV and JSONL read into prompts and outcomes; bad files name the row and column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router._labeled import DataError, load_labeled


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_with_outcomes_costs_and_metadata_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.csv",
        'sample_id,prompt,a,b,a|total_cost\n1,"Hi, there",1,0.0,0.002\n2,"Bye",true,,\n',
    )
    data = load_labeled([path])
    assert data.prompts == ("Hi, there", "Bye")
    assert data.models == ("a", "b")
    assert data.outcomes == {"a": (1.0, 1.0), "b": (0.0, None)}
    assert data.costs["a"] == (0.002, None)
    assert data.costs["b"] == (None, None)
    assert data.messages[0] == ({"role": "user", "content": "Hi, there"},)


def test_a_prompt_may_be_a_json_list_of_messages(tmp_path: Path) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    path = write(tmp_path / "d.jsonl", json.dumps({"prompt": messages, "a": 0.5}) + "\n\n")
    data = load_labeled([path])
    assert data.messages[0] == tuple(messages)
    assert data.prompts[0] == "Be brief.\n2+2?"
    assert data.outcomes["a"] == (0.5,)


def test_a_file_without_a_prompt_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "question,a\nhi,1\n")
    with pytest.raises(DataError, match=r"no 'prompt' column \(columns: question, a\)"):
        load_labeled([path])


def test_a_non_numeric_outcome_names_its_row_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "prompt,a\nhi,1\nho,maybe\n")
    with pytest.raises(DataError, match=r"d.csv:row 3, column 'a': outcome 'maybe' is not a number"):
        load_labeled([path])


def test_an_outcome_outside_zero_to_one_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", '{"prompt": "x", "a": 3}\n')
    with pytest.raises(DataError, match=r"d.jsonl:1, column 'a': outcome 3 is outside \[0, 1\]"):
        load_labeled([path])


def test_an_unknown_model_is_refused_with_the_models_the_file_has(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "prompt,a,b\nhi,1,0\n")
    with pytest.raises(DataError, match=r"unknown model 'gpt-4o'.*models in this file: a, b"):
        load_labeled([path], ["gpt-4o"])


def test_a_bad_jsonl_line_and_a_bad_cost_name_their_place(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"d.jsonl:2: not a JSON object"):
        load_labeled([write(tmp_path / "d.jsonl", '{"prompt": "x", "a": 1}\n{oops\n')])
    with pytest.raises(DataError, match=r"column 'a\|total_cost': cost 'cheap' is not a number"):
        load_labeled([write(tmp_path / "c.csv", "prompt,a,a|total_cost\nhi,1,cheap\n")])


def test_several_files_are_read_as_one_set_remembering_the_origin(tmp_path: Path) -> None:
    one = write(tmp_path / "one.csv", "prompt,a\nx,1\n")
    two = write(tmp_path / "two.csv", "prompt,a,b\ny,0,1\n")
    data = load_labeled([one, two])
    assert data.origin == (0, 1)
    assert data.outcomes == {"a": (1.0, 0.0), "b": (None, 1.0)}


def test_the_shared_routerbench_file_reads_in_this_format() -> None:
    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "routerbench" / "mbpp_train.csv"
    if not path.exists():
        pytest.skip("shared data not beside this checkout")
    data = load_labeled([path])
    assert len(data) == 299
    assert "gpt-4-1106-preview" in data.models and len(data.models) == 11
    assert all(c is not None for c in data.costs["gpt-4-1106-preview"])
