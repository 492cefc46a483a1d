"""Rebuild the demo's equal-quality section data (fakes/router_fakes/data/): a held-out sample and an
adequacy file trained on the other rows only, so the figures ``router demo`` prints are out-of-sample.

Only RouterBench *training* splits are read (never test data). The split is seeded, so running this
again from the same files gives the same sample and, with the same scikit-learn, the same artifact:

    python examples/routerbench/make_demo_data.py /work/shared/data/routerbench

It runs, in order: a seeded split (100 held-out rows per source file), then, on the other rows of
each source (one file per source, so that each is a task with its own suggestion: cost_weight: auto)
    router train arc_challenge.csv mbpp.csv winogrande.csv --policy examples/routerbench/policy.yaml \
        --target "0.95 of gpt-4-1106-preview" --out fakes/router_fakes/data/demo-adequacy.json
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

SEED = 17
PER_SOURCE = 100
SOURCES = ("arc_challenge_train.csv", "mbpp_train.csv", "winogrande_train.csv")
ROOT = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("DEMO_OUT", ROOT / "fakes" / "router_fakes" / "data"))


def main(data_dir: Path) -> None:
    csv.field_size_limit(sys.maxsize)
    rng = random.Random(SEED)
    header: list[str] = []
    held_out: list[dict[str, str]] = []
    rest: dict[str, list[dict[str, str]]] = {}
    for name in SOURCES:
        with (data_dir / name).open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = list(reader)
        picked = set(rng.sample(range(len(rows)), PER_SOURCE))
        held_out += [r for i, r in enumerate(rows) if i in picked]
        rest[name] = [r for i, r in enumerate(rows) if i not in picked]
    held_prompts = {r["prompt"] for r in held_out}
    for name in SOURCES:  # no duplicate prompt on both sides
        rest[name] = [r for r in rest[name] if r["prompt"] not in held_prompts]
    with (OUT / "demo-heldout.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(held_out)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name in SOURCES:
            train_csv = Path(tmp) / name.replace("_train", "")
            with train_csv.open("w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, header)
                writer.writeheader()
                writer.writerows(rest[name])
            files.append(str(train_csv))
        command = [
            sys.executable, "-m", "router", "train", *files,
            "--policy", str(ROOT / "examples" / "routerbench" / "policy.yaml"),
            "--target", "0.95 of gpt-4-1106-preview",
            "--out", str(OUT / "demo-adequacy.json"),
        ]  # fmt: skip
        count = sum(len(r) for r in rest.values())
        print(f"{len(held_out)} held-out rows; training on the other {count}:", " ".join(command[1:]))
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/routerbench"))
