"""The ``router`` command: demo, validate, models, schema.

typer and rich are imported here only, so ``import router`` never pays for them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="router",
    help="Route OpenAI chat completions to the cheapest adequate model, by policy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

PolicyArg = Annotated[Path, typer.Argument(help="The policy YAML file.", exists=False, dir_okay=False)]


@app.command()
def demo(
    live: Annotated[
        bool, typer.Option("--live", help="Call the real providers whose API keys are in the environment.")
    ] = False,
    policy: Annotated[
        Path | None, typer.Option(help="A policy file to run the workload with instead of the demo's own.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON record per request.")] = False,
) -> None:
    """Run a scripted workload (~30 requests, three features) and show where each request went."""
    from router._demo import run_demo

    raise typer.Exit(run_demo(live=live, policy_path=policy, as_json=as_json))


@app.command()
def validate(policy: PolicyArg) -> None:
    """Check a policy file; print file:line: key: message for each problem (exit 1 if any)."""
    from policies.loader import PolicyError, load_policy

    try:
        loaded = load_policy(policy)
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"{policy}: cannot read the file: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{policy}: ok ({len(loaded.models)} models, {len(loaded.routes)} routes, "
        f"{len(loaded.features)} features)"
    )


@app.command()
def models(policy: PolicyArg) -> None:
    """Show the catalog as the policy sees it: prices, context, capabilities, quality."""
    from rich.console import Console
    from rich.table import Table

    from policies.loader import PolicyError, load_policy
    from providers.catalog import resolve_model

    try:
        loaded = load_policy(policy)
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    table = Table(title=f"Models in {policy}")
    for column in (
        "model",
        "provider",
        "in $/M",
        "cached $/M",
        "out $/M",
        "context",
        "max out",
        "capabilities",
        "quality",
    ):
        table.add_column(
            column, justify="right" if "$" in column or column in ("context", "max out") else "left"
        )
    for name, spec in loaded.models.items():
        info = resolve_model(
            name, provider=spec.provider, model=spec.model, overrides=spec.catalog_overrides()
        )
        table.add_row(
            name,
            spec.provider,
            _money(info.input_cost_per_mtok),
            _money(info.cached_input_cost_per_mtok),
            _money(info.output_cost_per_mtok),
            f"{info.context_window:,}" if info.context_window else "?",
            f"{info.max_output_tokens:,}" if info.max_output_tokens else "?",
            ", ".join(sorted(info.supports)) or "-",
            ", ".join(f"{k} {v:g}" for k, v in info.quality.items()) or "-",
        )
    Console().print(table)


@app.command()
def schema() -> None:
    """Print the policy file's JSON Schema (for editor completion and validation)."""
    from policies.loader import policy_json_schema

    typer.echo(json.dumps(policy_json_schema(), indent=2))


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g}"


def main() -> None:
    app()
