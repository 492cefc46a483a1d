"""A small adequacy file built by hand, so that tests know every prediction in advance.

Vocabulary: "easy" and "hard". The cheap model succeeds on easy prompts (logit +3 on "easy",
-3 on "hard"); the strong model succeeds on both (intercept +2).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from policies.adequacy import (
    FORMAT,
    NEIGHBOUR_HASHES,
    NEIGHBOUR_SEED,
    VERSION,
    _hash_parameters,
    encode_floats,
    signature,
)


def hand_artifact(
    cheap: str = "cheap", strong: str = "strong", threshold: float | None = 0.7
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "method": "tfidf-logreg",
        "featurizer": {
            "kind": "tfidf",
            "lowercase": True,
            "token_pattern": r"(?u)\b\w\w+\b",
            "ngram_range": [1, 2],
            "sublinear_tf": True,
            "norm": "l2",
            "max_chars": 4000,
            "vocabulary": ["easy", "hard"],
            "idf": encode_floats([1.0, 1.0]),
        },
        "models": {
            cheap: {"coef": encode_floats([3.0, -3.0]), "intercept": 0.0, "prior": 0.5, "rows": 10},
            strong: {"coef": encode_floats([0.0, 0.0]), "intercept": 2.0, "prior": 0.88, "rows": 10},
        },
        "suggested_min_success": threshold,
        "training": {"files": ["hand.csv"], "rows": 2, "fingerprints": ""},
    }


def write_hand_artifact(path: Path, **kwargs: Any) -> Path:
    path.write_text(json.dumps(hand_artifact(**kwargs)), encoding="utf-8")
    return path


def task_artifact(threshold: float = 0.5) -> dict[str, Any]:
    """``hand_artifact`` with a third term, "poem" (no model's weight), and two tasks (version 3):
    "quiz", whose centroid is "easy" (suggesting cost_weight 0), and "proof", whose centroid is
    "hard" (suggesting cost_weight 5); the file's global suggestion is cost_weight 0.3."""
    artifact = hand_artifact(threshold=None)
    artifact["featurizer"] = {**artifact["featurizer"], "vocabulary": ["easy", "hard", "poem"]}
    artifact["featurizer"]["idf"] = encode_floats([1.0, 1.0, 1.0])
    artifact["models"]["cheap"]["coef"] = encode_floats([3.0, -3.0, 0.0])
    artifact["models"]["strong"]["coef"] = encode_floats([0.0, 0.0, 0.0])
    artifact["suggested"] = {"cost_weight": 0.3}

    def term(index: int) -> str:
        return base64.b64encode(index.to_bytes(4, "little")).decode("ascii")

    artifact["tasks"] = [
        {"name": "quiz", "rows": 5, "terms": term(0), "weights": encode_floats([1.0]),
         "suggested": {"cost_weight": 0.0}},
        {"name": "proof", "rows": 5, "terms": term(1), "weights": encode_floats([1.0]),
         "suggested": {"cost_weight": 5.0}},
    ]  # fmt: skip
    artifact["task_threshold"] = threshold
    return artifact


# The neighbour memory: two training prompts, a twin and an unrelated one.

TWIN = (
    "The trophy would not fit into the brown suitcase that my aunt gave me last summer "
    "because the _ was far too large for it, so we left it at the hotel.\nA) trophy\nB) suitcase"
)
OTHER_TWIN = TWIN.replace("too large", "too small")
UNRELATED = "Write a Python function that returns the sum of the squares of a list of integers."
FEW_SHOT = "Answer like this.\n\nThe cat sat on the mat.\nA) cat\nB) mat\nAnswer: A\n\n"


def signatures(*texts: str) -> Any:
    parameters = _hash_parameters(NEIGHBOUR_HASHES, NEIGHBOUR_SEED)
    return [signature(t, parameters) for t in texts]


def memory_artifact(outcomes: dict[str, list[int]], weights: dict[str, list[float]]) -> dict[str, Any]:
    """``hand_artifact`` (cheap: +3 per "easy", -3 per "hard"; strong: 2.0) with a neighbour memory
    of two training prompts, TWIN (row 0) and UNRELATED (row 1), their outcomes (bytes: 250 = right,
    0 = wrong, 255 = unknown) and per model [exact ok, exact failed, near ok, near failed]."""
    import numpy as np

    rows = np.stack(signatures(TWIN, UNRELATED))
    artifact = hand_artifact()
    artifact["neighbours"] = {
        "kind": "minhash-word-bigrams",
        "ending_chars": 400,
        "hashes": NEIGHBOUR_HASHES,
        "band": 4,
        "seed": NEIGHBOUR_SEED,
        "jaccard": 0.8,
        "signatures": base64.b64encode(rows.tobytes()).decode("ascii"),
        "models": {
            m: {
                "outcomes": base64.b64encode(bytes(outcomes[m])).decode("ascii"),
                "weights": weights[m],
            }
            for m in outcomes
        },
    }
    return artifact
