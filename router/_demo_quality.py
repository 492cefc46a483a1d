"""``router demo``'s equal-quality section: the learned-adequacy route on held-out labeled prompts.

The demo's main workload has no labeled answers, so it can only compare cost. This section does
what ``router eval`` does, with the same code (router._eval.evaluate), on a sample of RouterBench
training prompts that the shipped adequacy file was *not* trained on (see
examples/routerbench/make_demo_data.py), so its figures are out-of-sample. No provider is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router._eval import Point, Report

ROUTE = "routerbench"
NO_NUMPY = (
    "Equal-quality comparison skipped: learned adequacy needs numpy "
    '(pip install -e ".[adequacy]", which make demo does).'
)


def data_files() -> tuple[Path, Path]:
    """The section's policy and held-out labeled prompts, shipped with the fake providers."""
    base = resources.files("router_fakes") / "data"
    return Path(str(base / "demo-adequacy.yaml")), Path(str(base / "demo-heldout.csv"))


def evaluate_demo(policy_path: Path, data_path: Path) -> Report:
    """``router eval DATA --policy P --route routerbench``'s report, from the same functions."""
    from policies.adequacy import Adequacy
    from policies.loader import load_policy
    from policies.validate import policy_catalog
    from router._eval import evaluate
    from router._labeled import load_labeled

    policy = load_policy(policy_path)
    adequacy_path = policy.routes[ROUTE].adequacy
    assert adequacy_path is not None, "the demo's route uses an adequacy file"
    adequacy = Adequacy.load(policy_path.parent / adequacy_path)
    return evaluate(policy, policy_catalog(policy), ROUTE, load_labeled([data_path]), adequacy=adequacy)


@dataclass(frozen=True, slots=True)
class Headline:
    """The figures the demo prints, all taken from one ``router eval`` report."""

    rows: int
    route: Point
    strongest: Point  # the best single model (GPT-4 on RouterBench)
    cheapest: Point  # the cheapest single model

    @property
    def quality_ratio(self) -> float:
        return self.route.quality / self.strongest.quality

    @property
    def cost_ratio(self) -> float:
        return self.route.cost_per_1k / self.strongest.cost_per_1k

    def text(self) -> str:
        s, c, r = self.strongest, self.cheapest, self.route
        return (
            f"Equal quality, on {self.rows} held-out labeled RouterBench prompts (the adequacy file was not"
            f" trained on them): the learned-adequacy route answered {r.quality:.1%} correctly,"
            f" {self.quality_ratio:.0%} of always-{s.name}'s {s.quality:.1%}, at ${r.cost_per_1k:.2f} per 1k"
            f" prompts, {self.cost_ratio:.0%} of {s.name}-only's ${s.cost_per_1k:.2f}. The cheapest single"
            f" model, {c.name}, costs ${c.cost_per_1k:.2f} per 1k but answers {c.quality:.1%} correctly."
            f" Same figures: router eval {{data}} --policy {{policy}} --route {ROUTE}."
        )


def headline(report: Report) -> Headline:
    cheapest = min(report.singles, key=lambda p: (p.cost_per_1k, -p.quality))
    return Headline(report.rows, report.result.point, report.best, cheapest)


def quality_section() -> str:
    """The section's text: the headline and where to reproduce it, or a one-line hint without numpy."""
    try:
        import numpy  # noqa: F401  (learned adequacy's predictions need it)
    except ImportError:
        return NO_NUMPY
    policy_path, data_path = data_files()
    text = headline(evaluate_demo(policy_path, data_path)).text()
    return text.replace("{data}", str(data_path)).replace("{policy}", str(policy_path))
