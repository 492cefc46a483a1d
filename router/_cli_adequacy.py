"""``router eval`` and ``router train``: learned adequacy from the command line.

Kept apart from ``router.cli`` so that its other commands never import the data, evaluation or
training code; ``router.cli`` registers these two.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from policies.schema import Policy
    from router._eval import Report
    from router._labeled import LabeledData

DataArg = Annotated[
    list[Path],
    typer.Argument(help="Labeled data: CSV or JSONL with a prompt column and one outcome column per model."),
]
PolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--policy", envvar="ROUTER_POLICY", dir_okay=False, help="The policy file (default: $ROUTER_POLICY)."
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _policy(path: Path | None) -> Policy:
    from policies.loader import PolicyError, load_policy

    if path is None:
        raise _fail("No policy: pass --policy FILE or set ROUTER_POLICY.")
    try:
        return load_policy(path)
    except PolicyError as exc:
        raise _fail(str(exc)) from None


def eval_command(
    data: DataArg,
    policy: PolicyOption = None,
    route: Annotated[
        str, typer.Option("--route", help="The route to evaluate (a route name of the policy).")
    ] = "auto",
    feature: Annotated[str | None, typer.Option("--feature", help="Plan as this feature.")] = None,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            help="Also vary the route's gate setting (cost_weight, max_shortfall or min_success) and "
            "report the curve.",
        ),
    ] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the cost/quality picture: FILE.html or FILE.png.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Replay labeled prompts through a route's planner: its quality and cost against single models,
    the zero-router hull and the oracle. No provider is called."""
    from policies.adequacy import Adequacy, AdequacyError
    from policies.validate import policy_catalog
    from router._eval import evaluate, sweep_values
    from router._labeled import DataError, load_labeled

    loaded = _policy(policy)
    if route not in loaded.routes:
        raise _fail(f"route {route!r} is not in {policy} (routes: {', '.join(loaded.routes) or 'none'}).")
    try:
        labeled = load_labeled(data)
        catalog = policy_catalog(loaded)
        spec = loaded.routes[route]
        feature_spec = loaded.features.get(feature) if feature else None
        adequacy_path = (feature_spec.adequacy if feature_spec else None) or spec.adequacy
        adequacy = None
        if adequacy_path is not None:
            resolved = Path(adequacy_path)
            if not resolved.is_absolute() and loaded.source:
                resolved = Path(loaded.source).parent / resolved
            adequacy = Adequacy.load(resolved)
        thresholds = sweep_values(loaded, route, feature) if sweep else []
        report = evaluate(
            loaded, catalog, route, labeled, feature=feature, sweep=thresholds, adequacy=adequacy
        )
    except (DataError, AdequacyError, ValueError) as exc:
        raise _fail(f"router eval: {exc}") from None
    if plot is not None:
        from router._eval_plot import write_plot

        try:
            write_plot(report, plot)
        except ValueError as exc:
            raise _fail(f"router eval: {exc}") from None
    for note in report.notes:
        typer.echo(f"warning: {note}", err=True)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    _print_report(report, plot)


def _print_report(report: Report, plot: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    result = report.result
    table = Table(
        title=f"route {report.route} on {report.rows:,} prompts"
        + (f" ({report.skipped} skipped: outcomes missing)" if report.skipped else "")
    )
    for column in ("", "quality", "cost / 1k prompts", "vs best single"):
        table.add_column(column, justify="left" if not column else "right")
    best = report.best

    def row(name: str, quality: float, cost: float) -> None:
        ratio = (
            f"{quality / best.quality:.1%} quality, {cost / best.cost_per_1k:.1%} cost"
            if best.quality and best.cost_per_1k
            else "-"
        )
        table.add_row(name, f"{quality:.3f}", f"${cost:.4f}", ratio)

    row(f"route {report.route}", result.point.quality, result.point.cost_per_1k)
    for p in sorted(report.singles, key=lambda p: p.cost_per_1k):
        row(p.name + (" (best)" if p is best else ""), p.quality, p.cost_per_1k)
    row("oracle", report.oracle.quality, report.oracle.cost_per_1k)
    console.print(table)
    above = result.above_hull
    if above is None:
        console.print("The route is cheaper than every single model: no hull to compare with at its cost.")
    else:
        word = "above" if above >= 0 else "below"
        console.print(
            f"At ${result.point.cost_per_1k:.4f} per 1k prompts the zero-router hull reaches "
            f"{result.hull_quality:.3f}: "
            f"the route is {abs(above) * 100:.2f} points {word} it."
        )
    console.print("Where prompts went: " + ", ".join(f"{m} {s:.0%}" for m, s in result.share.items()))
    if report.sweep:
        sweep = Table(title=f"{report.swept} swept")
        for column in (report.swept, "quality", "cost / 1k", "vs hull"):
            sweep.add_column(column, justify="right")
        for r in report.sweep:
            vs = "-" if r.above_hull is None else f"{r.above_hull * 100:+.2f} pt"
            sweep.add_row(f"{r.setting:g}", f"{r.point.quality:.3f}", f"${r.point.cost_per_1k:.4f}", vs)
        console.print(sweep)
    if plot is not None:
        console.print(f"Picture written to {plot}")


def train_command(
    data: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Labeled data: CSV or JSONL with a prompt column and one outcome column per model "
            "(optional with --from-ledger)."
        ),
    ] = None,
    *,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the adequacy file (JSON).")],
    models: Annotated[
        str | None,
        typer.Option("--models", help="Comma-separated model columns to learn (default: every one)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="Find the gate setting reaching this quality at the lowest cost, e.g. '0.95 of gpt-4o'.",
        ),
    ] = None,
    policy: PolicyOption = None,
    folds: Annotated[int, typer.Option("--folds", help="Cross-validation folds.")] = 5,
    setting: Annotated[
        str,
        typer.Option(
            "--setting",
            help="The gate setting --target tunes: cost_weight (default), max_shortfall or min_success.",
        ),
    ] = "cost_weight",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    from_ledger: Annotated[
        str | None,
        typer.Option(
            "--from-ledger",
            help="Also train on the outcomes recorded with client.feedback() in this ledger "
            "(a path or a sqlite:///, redis:// URL).",
        ),
    ] = None,
    no_neighbours: Annotated[
        bool,
        typer.Option(
            "--no-neighbours",
            help="Leave out the neighbour memory (a near-duplicate training prompt's outcomes as a "
            "learned feature): a smaller version 3 file that older routers read too.",
        ),
    ] = False,
) -> None:
    """Learn each model's probability of success per prompt from labeled data; report cross-validated
    calibration and (with --target) the threshold to use; write a portable adequacy file."""
    from router._labeled import DataError, load_labeled
    from router._train import SETTINGS, Settings, Target, TrainError, train, write_artifact
    from router.ledger import LedgerError

    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    counted = featurizer = None
    try:
        parsed_target = Target.parse(target) if target else None
        if not data and from_ledger is None:
            raise TrainError("give labeled data files, --from-ledger LEDGER, or both.")
        labeled = load_labeled(data, names) if data else None
        if from_ledger is not None:
            from router._train_ledger import combine, describe, has_counts, ledger_rows

            url = from_ledger if "://" in from_ledger else f"sqlite:///{Path(from_ledger).resolve()}"
            recorded = ledger_rows(url)
            labeled, counts = combine(labeled, recorded)
            if has_counts(counts):
                counted, featurizer = counts, recorded.featurizer
            if not as_json:
                typer.echo(describe(recorded))
        assert labeled is not None
        loaded = _policy(policy) if policy is not None else None
        costs = _training_costs(labeled, loaded)
        # Routing assumes the policy's reply length; cost_weight's reference length includes it.
        output_tokens = loaded.expected_output_tokens if loaded is not None else 256
        if setting not in SETTINGS:
            raise TrainError(f"--setting {setting!r}: use cost_weight, max_shortfall or min_success.")
        artifact, report = train(
            labeled,
            costs,
            models=names,
            target=parsed_target,
            settings=Settings(folds=folds, output_tokens=output_tokens, neighbours=not no_neighbours),
            setting=setting,
            counted=counted,
            featurizer=featurizer,
        )
    except (DataError, TrainError, LedgerError, ValueError) as exc:
        raise _fail(f"router train: {exc}") from None
    digest = write_artifact(artifact, out)
    if as_json:
        typer.echo(json.dumps({"out": str(out), "sha256": digest, **report.to_dict()}, indent=2))
        return
    typer.echo(f"Wrote {out} (sha256:{digest[:12]}): {len(report.models)} models, {report.rows:,} prompts.")
    typer.echo(
        f"Cross-validated calibration ({report.folds} folds; Brier score, expected calibration error):"
    )
    for c in report.calibration:
        typer.echo(f"  {c.model:40s} brier {c.brier:.3f}  ece {c.ece:.3f}  ({c.rows:,} rows)")
    if report.target is not None:
        if report.threshold is None:
            typer.echo(
                f"No {report.setting} reaches {report.target_quality:.3f} on held-out folds; "
                "routes using this file must set their own."
            )
        else:
            typer.echo(
                f"{report.setting} {report.threshold:g} reaches {report.target_quality:.3f} "
                f"({report.target.fraction:g} of {report.target.model}) at the lowest held-out cost; "
                "written to the file as its suggestion (for routes that set none of cost_weight, "
                "max_shortfall and min_success)."
            )
    for s in report.sets:
        hull = "-" if s.hull_quality is None else f"{s.hull_quality:.3f}"
        typer.echo(
            f"  {s.source}: route {s.route.quality:.3f} at ${s.route.cost_per_1k:.4f}/1k; best single "
            f"{s.best.name} {s.best.quality:.3f} at ${s.best.cost_per_1k:.4f}; "
            f"hull at the route's cost {hull}; "
            f"oracle {s.oracle.quality:.3f} at ${s.oracle.cost_per_1k:.4f}"
        )
    if report.task_accuracy is not None:
        typer.echo(
            f"Tasks (one per file; held out, {report.task_accuracy:.1%} of prompts recognised as their "
            "file's): each file's own suggestion, for routes with cost_weight: auto:"
        )
        for s in report.sets:
            if s.task_setting is None or s.task_route is None:
                typer.echo(f"  {s.source}: no {report.setting} reaches the target; auto uses the global one")
                continue
            typer.echo(
                f"  {s.source}: {report.setting} {s.task_setting:g}: route {s.task_route.quality:.3f} "
                f"at ${s.task_route.cost_per_1k:.4f}/1k"
            )


def _training_costs(labeled: LabeledData, policy: Policy | None) -> dict[str, list[float]]:
    """Each row's cost per model: the data's own, else its tokens at the policy's prices."""
    from policies.tokens import estimate_prompt_tokens
    from policies.validate import policy_catalog

    catalog = policy_catalog(policy) if policy is not None else {}
    output = policy.expected_output_tokens if policy is not None else 256
    tokens = [estimate_prompt_tokens(list(m)) for m in labeled.messages]
    costs: dict[str, list[float]] = {}
    for model in labeled.models:
        column = []
        for i, outcome in enumerate(labeled.outcomes[model]):
            value = labeled.costs[model][i]
            if value is None and outcome is not None:
                info = catalog.get(model)
                value = info.cost_usd(tokens[i], output, 0) if info is not None else None
                if value is None:
                    raise ValueError(
                        f"model {model!r} has no {model}|total_cost column and no price: pass --policy "
                        "with its input_cost_per_mtok/output_cost_per_mtok."
                    )
            column.append(value or 0.0)
        costs[model] = column
    return costs
