"""``router eval``: a route's quality and cost on labeled data, against single models, hull and oracle.

Every prompt is replayed through the real planner of the route (filters, ranking, learned
adequacy — no provider is called); the model it would send the prompt to is scored with that
model's recorded outcome and cost. The yardsticks (RouterBench's):

- each single model: always send everything to it;
- the *zero-router hull*: the best quality reachable at each cost by mixing single models at
  random (the upper concave hull of their cost/quality points) — a router must beat this line;
- the *oracle*: the cheapest model that got each prompt right (the ceiling).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from policies.adequacy import Adequacy
from policies.plan import Planner, describe_request, route_models
from policies.tokens import estimate_prompt_tokens
from providers.catalog import ModelInfo
from router._labeled import LabeledData

if TYPE_CHECKING:
    from policies.schema import Policy


@dataclass(frozen=True, slots=True)
class Point:
    """Quality (mean outcome) and cost per 1,000 prompts, in USD."""

    name: str
    quality: float
    cost_per_1k: float


@dataclass(frozen=True, slots=True)
class RoutePoint:
    """The route at one threshold: its point and where its prompts went."""

    setting: float | None  # the swept setting's value (None: as configured)
    point: Point
    share: Mapping[str, float]  # model -> fraction of prompts
    hull_quality: float | None  # the hull at the route's cost (None below the cheapest model)

    @property
    def above_hull(self) -> float | None:
        return None if self.hull_quality is None else self.point.quality - self.hull_quality


@dataclass(frozen=True, slots=True)
class Report:
    route: str
    rows: int
    skipped: int
    singles: tuple[Point, ...]
    hull: tuple[Point, ...]
    oracle: Point
    best: Point
    result: RoutePoint
    sweep: tuple[RoutePoint, ...] = ()
    swept: str = "max_shortfall"
    overlap: int = 0
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        def point(p: Point) -> dict[str, Any]:
            return {
                "name": p.name,
                "quality": round(p.quality, 6),
                "cost_per_1k_usd": round(p.cost_per_1k, 9),
            }

        def route_point(r: RoutePoint) -> dict[str, Any]:
            above = r.above_hull
            return {
                "setting": r.setting,
                **point(r.point),
                "hull_quality": None if r.hull_quality is None else round(r.hull_quality, 6),
                "above_hull": None if above is None else round(above, 6),
                "share": {m: round(s, 6) for m, s in r.share.items()},
            }

        return {
            "route": self.route,
            "rows": self.rows,
            "skipped_rows": self.skipped,
            "route_result": route_point(self.result),
            "quality_vs_best": round(self.result.point.quality / self.best.quality, 6)
            if self.best.quality
            else None,
            "cost_vs_best": round(self.result.point.cost_per_1k / self.best.cost_per_1k, 6)
            if self.best.cost_per_1k
            else None,
            "best_single": point(self.best),
            "singles": [point(p) for p in self.singles],
            "hull": [point(p) for p in self.hull],
            "oracle": point(self.oracle),
            "swept": self.swept,
            "sweep": [route_point(r) for r in self.sweep],
            "training_overlap_rows": self.overlap,
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- pure yardsticks


def hull(points: Sequence[Point]) -> tuple[Point, ...]:
    """The zero-router hull: single models on the upper concave hull of (cost, quality), cost rising."""
    ordered = sorted(points, key=lambda p: (p.cost_per_1k, -p.quality))
    chain: list[Point] = []
    for p in ordered:
        if chain and p.quality <= chain[-1].quality:
            continue  # costs more and is no better: never on the hull
        while len(chain) >= 2:
            a, b = chain[-2], chain[-1]
            # b lies on or below the segment a-p: mixing a and p beats it.
            cross = (b.cost_per_1k - a.cost_per_1k) * (p.quality - a.quality) - (b.quality - a.quality) * (
                p.cost_per_1k - a.cost_per_1k
            )
            if cross >= 0:
                chain.pop()
            else:
                break
        chain.append(p)
    return tuple(chain)


def hull_quality(chain: Sequence[Point], cost_per_1k: float) -> float | None:
    """The best quality random mixing of single models reaches at this cost (None below the cheapest)."""
    if not chain or cost_per_1k < chain[0].cost_per_1k - 1e-12:
        return None
    for a, b in pairwise(chain):
        if cost_per_1k <= b.cost_per_1k:
            span = b.cost_per_1k - a.cost_per_1k
            return (
                a.quality
                if span <= 0
                else a.quality + (b.quality - a.quality) * (cost_per_1k - a.cost_per_1k) / span
            )
    return chain[-1].quality


def oracle(outcomes: Mapping[str, Sequence[float]], costs: Mapping[str, Sequence[float]]) -> Point:
    """Per prompt, the cheapest model with the best outcome: the most any router could do."""
    models = list(outcomes)
    rows = len(outcomes[models[0]])
    quality = cost = 0.0
    for i in range(rows):
        top = max(outcomes[m][i] for m in models)
        cost += min(costs[m][i] for m in models if outcomes[m][i] == top)
        quality += top
    return Point("oracle", quality / rows, cost / rows * 1000)


def single_points(
    outcomes: Mapping[str, Sequence[float]], costs: Mapping[str, Sequence[float]]
) -> tuple[Point, ...]:
    return tuple(
        Point(m, sum(outcomes[m]) / len(outcomes[m]), sum(costs[m]) / len(costs[m]) * 1000) for m in outcomes
    )


def best_single(singles: Sequence[Point]) -> Point:
    return max(singles, key=lambda p: (p.quality, -p.cost_per_1k))


# --------------------------------------------------------------------------- replay through the planner


def cost_table(
    data: LabeledData, models: Sequence[str], catalog: Mapping[str, ModelInfo], output_tokens: int
) -> dict[str, list[float]]:
    """Each call's cost: the data's own when it has one, else the prompt's tokens at catalog prices."""
    table: dict[str, list[float]] = {}
    prompt_tokens = [estimate_prompt_tokens(list(m)) for m in data.messages]
    for model in models:
        recorded = data.costs.get(model, ())
        column: list[float] = []
        for i in range(len(data)):
            value = recorded[i] if i < len(recorded) else None
            if value is None:
                info = catalog.get(model)
                value = info.cost_usd(prompt_tokens[i], output_tokens, 0) if info is not None else None
                if value is None:
                    raise ValueError(
                        f"model {model!r} has no cost column ({model}|total_cost) and no known price: "
                        "set input_cost_per_mtok/output_cost_per_mtok for it in the policy."
                    )
            column.append(value)
        table[model] = column
    return table


GATE_SETTINGS = ("cost_weight", "max_shortfall", "min_success")


def swept_setting(policy: Policy, route: str, feature: str | None) -> str:
    """The gate setting a sweep varies: the one the feature or route sets (cost_weight, then
    max_shortfall, then min_success), else cost_weight (the default method's setting)."""
    specs = [
        s for s in (policy.features.get(feature) if feature else None, policy.routes[route]) if s is not None
    ]
    for key in GATE_SETTINGS:
        if any(getattr(s, key) is not None for s in specs):
            return key
    return "cost_weight"


def sweep_values(policy: Policy, route: str, feature: str | None) -> list[float]:
    setting = swept_setting(policy, route, feature)
    if setting == "min_success":
        return [i / 20 for i in range(21)]
    if setting == "cost_weight":
        return [0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0]
    return [0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0]


def _with_setting(policy: Policy, route: str, feature: str | None, value: float) -> Policy:
    """The policy with the swept gate setting at ``value`` (on the feature when it sets its own)
    and the other gate settings cleared."""
    key = swept_setting(policy, route, feature)
    update: dict[str, float | None] = {k: None for k in GATE_SETTINGS}
    update[key] = value
    feature_spec = policy.features.get(feature) if feature else None
    if feature_spec is not None and getattr(feature_spec, key) is not None:
        features = dict(policy.features)
        features[feature] = feature_spec.model_copy(update=update)  # type: ignore[index]
        return policy.model_copy(update={"features": features})
    routes = dict(policy.routes)
    routes[route] = routes[route].model_copy(update=update)
    return policy.model_copy(update={"routes": routes})


def replay(
    policy: Policy,
    catalog: Mapping[str, ModelInfo],
    route: str,
    feature: str | None,
    data: LabeledData,
    rows: Sequence[int],
    outcomes: Mapping[str, Sequence[float]],
    costs: Mapping[str, Sequence[float]],
    threshold: float | None = None,
) -> tuple[Point, dict[str, float]]:
    """Route every row through the real planner; score the model each one would go to."""
    if threshold is not None:
        policy = _with_setting(policy, route, feature, threshold)
    planner = Planner(policy, catalog)
    quality = cost = 0.0
    counts: dict[str, int] = {}
    for position, i in enumerate(rows):
        request = describe_request(route, feature or "default", {"messages": list(data.messages[i])}, False)
        plan = planner.plan(request)
        if not plan.candidates:
            counts["(none)"] = counts.get("(none)", 0) + 1
            continue
        chosen = plan.candidates[0].model
        counts[chosen] = counts.get(chosen, 0) + 1
        quality += outcomes[chosen][position]
        cost += costs[chosen][position]
    n = len(rows)
    share = {m: c / n for m, c in sorted(counts.items(), key=lambda kv: -kv[1])}
    return Point(route, quality / n, cost / n * 1000), share


def evaluate(
    policy: Policy,
    catalog: Mapping[str, ModelInfo],
    route: str,
    data: LabeledData,
    *,
    feature: str | None = None,
    sweep: Sequence[float] = (),
    adequacy: Adequacy | None = None,
) -> Report:
    """The route's figures on ``data``, with every yardstick; ``sweep`` thresholds draw its curve."""
    models = route_models(policy, route)
    missing = [m for m in models if m not in data.outcomes]
    if missing:
        raise ValueError(
            f"route {route!r} can send prompts to {', '.join(missing)}, but the data has no outcome column "
            f"for {'it' if len(missing) == 1 else 'them'} (columns: {', '.join(data.models)}): "
            "add the column(s) or remove the model(s) from the route."
        )
    keep = [i for i in range(len(data)) if all(data.outcomes[m][i] is not None for m in models)]
    if not keep:
        raise ValueError("no row has an outcome for every model of the route.")
    outcomes = {m: [float(data.outcomes[m][i]) for i in keep] for m in models}  # type: ignore[arg-type]
    spec = policy.routes[route]
    output_tokens = spec.expected_output_tokens or policy.expected_output_tokens
    full_costs = cost_table(data, models, catalog, output_tokens)
    costs = {m: [full_costs[m][i] for i in keep] for m in models}
    singles = single_points(outcomes, costs)
    chain = hull(singles)
    point, share = replay(policy, catalog, route, feature, data, keep, outcomes, costs)
    result = RoutePoint(None, point, share, hull_quality(chain, point.cost_per_1k))
    curve = []
    for threshold in sweep:
        p, s = replay(policy, catalog, route, feature, data, keep, outcomes, costs, threshold)
        curve.append(
            RoutePoint(
                threshold, replace(p, name=f"{route} @ {threshold:g}"), s, hull_quality(chain, p.cost_per_1k)
            )
        )
    overlap = adequacy.trained_on(data.prompts[i] for i in keep) if adequacy is not None else 0
    notes = []
    if overlap:
        notes.append(
            f"{overlap} of {len(keep)} prompts were in the adequacy file's training data: these figures "
            "are optimistic. Evaluate on data the file was not trained on."
        )
    return Report(
        route=route,
        rows=len(keep),
        skipped=len(data) - len(keep),
        singles=singles,
        hull=chain,
        oracle=oracle(outcomes, costs),
        best=best_single(singles),
        result=result,
        sweep=tuple(curve),
        swept=swept_setting(policy, route, feature),
        overlap=overlap,
        notes=tuple(notes),
    )
