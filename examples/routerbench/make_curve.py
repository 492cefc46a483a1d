"""Redraw docs/img/adequacy-curve.svg: a held-out ``router eval --sweep`` on RouterBench ARC.

Only the shared *training* splits are read. Every fifth row of each RouterBench training file is
held out; an adequacy file is trained with ``router train``'s defaults on the other four fifths of
the three files, and ``router eval --sweep`` draws the route's curve on ARC's held-out fifth:

    python examples/routerbench/make_curve.py /work/shared/data/routerbench
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SOURCES = ("arc_challenge_train.csv", "mbpp_train.csv", "winogrande_train.csv")


def main(data_dir: Path) -> None:
    from policies.loader import load_policy
    from policies.validate import policy_catalog
    from router._eval import evaluate, sweep_values
    from router._eval_plot import svg
    from router._labeled import load_labeled

    csv.field_size_limit(sys.maxsize)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rest: list[dict[str, str]] = []
        header: list[str] = []
        for name in SOURCES:
            with (data_dir / name).open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                header = list(reader.fieldnames or [])
                rows = list(reader)
            held = [r for i, r in enumerate(rows) if i % 5 == 0]
            rest += [r for i, r in enumerate(rows) if i % 5]
            if name.startswith("arc"):
                write(folder / "arc-heldout.csv", header, held)
        write(folder / "train.csv", header, rest)
        subprocess.run(
            [
                sys.executable, "-m", "router", "train", str(folder / "train.csv"),
                "--policy", str(ROOT / "examples" / "routerbench" / "policy.yaml"),
                "--target", "0.95 of gpt-4-1106-preview", "--out", str(folder / "adequacy.json"),
            ],
            check=True,
        )  # fmt: skip
        text = (ROOT / "examples" / "routerbench" / "policy.yaml").read_text()
        (folder / "policy.yaml").write_text(text)
        policy = load_policy(folder / "policy.yaml")
        data = load_labeled([folder / "arc-heldout.csv"])
        report = evaluate(
            policy,
            policy_catalog(policy),
            "routerbench",
            data,
            sweep=sweep_values(policy, "routerbench", None),
        )
        (ROOT / "docs" / "img" / "adequacy-curve.svg").write_text(svg(report) + "\n")
        for r in report.sweep:
            above = "-" if r.above_hull is None else f"{r.above_hull * 100:+.1f} pt"
            print(f"{r.setting:g}: {r.point.quality:.3f} at ${r.point.cost_per_1k:.3f}/1k, vs hull {above}")
        best = report.best
        print(f"as configured: {report.result.point}; best single {best.name} {best.quality:.3f}")


def write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/routerbench"))
