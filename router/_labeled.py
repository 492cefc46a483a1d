"""Labeled routing data: prompts with each model's outcome, read from CSV or JSONL.

The format (docs/adequacy.md): a ``prompt`` column (text, or a JSON list of chat messages); one
column per model, named as in the policy, holding the outcome (1/0, true/false, or a score in
[0, 1]; blank = unknown); optionally ``<model>|total_cost`` (USD for that call). A few metadata
columns (``sample_id``, ``id``, ``eval_name``, ``subject``, ``category``, ``split``) are carried
along; every other column is a model, so a typo shows up as an error rather than a silent skip.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from policies.adequacy import prompt_text

METADATA_COLUMNS: Final = frozenset(
    {"sample_id", "id", "eval_name", "subject", "category", "split", "source"}
)
COST_SUFFIX: Final = "|total_cost"
_TRUE: Final = frozenset({"1", "1.0", "true", "yes"})
_FALSE: Final = frozenset({"0", "0.0", "false", "no"})


class DataError(ValueError):
    """A labeled data file that can't be read; the message names the file, row and column."""


@dataclass(frozen=True, slots=True)
class LabeledData:
    """Prompts (as text and as chat messages), outcomes and optional costs per model."""

    sources: tuple[str, ...]
    prompts: tuple[str, ...]
    messages: tuple[tuple[Mapping[str, Any], ...], ...]
    outcomes: Mapping[str, tuple[float | None, ...]]
    costs: Mapping[str, tuple[float | None, ...]]
    origin: tuple[int, ...]  # which of ``sources`` each row came from

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.outcomes)

    def __len__(self) -> int:
        return len(self.prompts)


def _outcome(value: Any, where: str, column: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip().lower()
        if not text or text in {"nan", "null", "none"}:
            return None
        if text in _TRUE:
            return 1.0
        if text in _FALSE:
            return 0.0
        try:
            number = float(text)
        except ValueError:
            raise DataError(
                f"{where}, column {column!r}: outcome {value!r} is not a number; use 1/0, true/false "
                "or a score between 0 and 1 (blank = unknown)."
            ) from None
    if math.isnan(number):
        return None
    if not 0.0 <= number <= 1.0:
        raise DataError(f"{where}, column {column!r}: outcome {number:g} is outside [0, 1].")
    return number


def _cost(value: Any, where: str, column: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(
            f"{where}, column {column!r}: cost {value!r} is not a number of US dollars."
        ) from None
    if math.isnan(number):
        return None
    if number < 0 or math.isinf(number):
        raise DataError(f"{where}, column {column!r}: cost {number:g} must be a finite amount ≥ 0.")
    return number


def _messages(value: Any, where: str) -> tuple[Mapping[str, Any], ...]:
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped.startswith("[") and stripped.rstrip().endswith("]"):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if isinstance(parsed, list) and parsed and all(isinstance(m, dict) for m in parsed):
                return tuple(parsed)
        return ({"role": "user", "content": value},)
    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value):
        return tuple(value)
    raise DataError(f"{where}, column 'prompt': expected text or a list of chat messages, got {value!r:.60}.")


def _rows(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, row) pairs; ``where`` reads "file:line" for error messages."""
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        with path.open(encoding="utf-8") as file:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: not a JSON object ({exc.msg}).") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{number}: each line must be a JSON object.")
                yield f"{path}:{number}", row
        return
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        for row in reader:
            # The reader's line number is the record's last line; rows are numbered from the header (1).
            yield f"{path}:row {reader.line_num}", row


def load_labeled(paths: Sequence[str | Path], models: Sequence[str] | None = None) -> LabeledData:
    """Read one or more labeled files; ``models`` restricts (and requires) the model columns."""
    prompts: list[str] = []
    messages: list[tuple[Mapping[str, Any], ...]] = []
    origin: list[int] = []
    outcomes: dict[str, list[float | None]] = {}
    costs: dict[str, list[float | None]] = {}
    sources: list[str] = []
    for index, raw_path in enumerate(paths):
        path = Path(raw_path)
        if not path.is_file():
            raise DataError(f"{path}: no such file.")
        sources.append(str(path))
        columns: list[str] | None = None
        for where, row in _rows(path):
            if columns is None:
                columns = list(row)
                if "prompt" not in columns:
                    raise DataError(
                        f"{path}: no 'prompt' column (columns: {', '.join(columns[:8])}"
                        f"{', …' if len(columns) > 8 else ''}); the first row must name a 'prompt' column."
                    )
                found = [
                    c for c in columns if c != "prompt" and c not in METADATA_COLUMNS and COST_SUFFIX not in c
                ]
                for model in models or ():
                    if model not in found:
                        raise DataError(
                            f"{path}: unknown model {model!r}: no column of that name "
                            f"(models in this file: {', '.join(found) or 'none'})."
                        )
                wanted = list(models) if models else found
                for model in wanted:
                    if model not in outcomes:
                        outcomes[model] = [None] * len(prompts)
                        costs[model] = [None] * len(prompts)
            message_list = _messages(row.get("prompt"), where)
            messages.append(message_list)
            prompts.append(prompt_text(list(message_list)))
            origin.append(index)
            for model, values in outcomes.items():
                values.append(_outcome(row.get(model), where, model) if model in row else None)
                cost_column = model + COST_SUFFIX
                costs[model].append(
                    _cost(row.get(cost_column), where, cost_column) if cost_column in row else None
                )
    if not prompts:
        raise DataError(f"{', '.join(map(str, paths))}: no rows.")
    if not outcomes:
        raise DataError(f"{', '.join(map(str, paths))}: no model columns besides 'prompt'.")
    return LabeledData(
        sources=tuple(sources),
        prompts=tuple(prompts),
        messages=tuple(messages),
        outcomes={m: tuple(v) for m, v in outcomes.items()},
        costs={m: tuple(v) for m, v in costs.items()},
        origin=tuple(origin),
    )
