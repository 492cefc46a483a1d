"""A small adequacy file built by hand, so that tests know every prediction in advance.

Vocabulary: "easy" and "hard". The cheap model succeeds on easy prompts (logit +3 on "easy",
-3 on "hard"); the strong model succeeds on both (intercept +2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from policies.adequacy import FORMAT, VERSION, encode_floats


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
    import base64

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
