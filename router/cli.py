"""The ``router`` command: demo, validate, explain, models, spend, schema.

typer and rich are imported here only, so ``import router`` never pays for them; each command
imports what it needs when it runs, so ``router schema`` does not pay for the catalog either.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from router._cli_adequacy import eval_command, train_command
from router._cli_batch import batch_app
from router._cli_fake import fake_command
from router._cli_grammar import (
    JsonOption,
    PolicyArgument,
    PolicyOption,
    RouterApp,
    console,
    fail,
    load_policy_argument,
    plural,
    policy_argument,
    print_json,
    usd_json,
    usd_text,
)

if TYPE_CHECKING:
    from rich.console import Console

    from policies.plan import Plan
    from policies.schema import Policy
    from router._spend import SpendRow

app = RouterApp(
    name="router",
    help="Route OpenAI chat completions to the cheapest adequate model, by policy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

RequestArgs = Annotated[
    list[Path],
    typer.Argument(
        metavar="[POLICY] REQUEST",
        show_default=False,
        help="The policy file (or --policy FILE, or $ROUTER_POLICY), then a JSON file holding create()'s"
        ' keyword arguments: {"model": "auto", "messages": [...], ...}.',
    ),
]

# What explain puts in every API-key variable unless --check-keys: never sent anywhere.
_PLACEHOLDER_KEY: Final = "router-explain-placeholder"


@app.command()
def demo(
    policy: PolicyArgument = None,
    policy_option: PolicyOption = None,
    live: Annotated[
        bool, typer.Option("--live", help="Call the real providers whose API keys are in the environment.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON record per request.")] = False,
    picture: Annotated[
        Path,
        typer.Option(
            "--picture",
            metavar="DIR",
            help="Write router-demo.html/.svg (and .png with matplotlib) here.",
        ),
    ] = Path("."),
    no_picture: Annotated[bool, typer.Option("--no-picture", help="Write no picture.")] = False,
) -> None:
    """Run a scripted workload against fake providers and show where each request went.

    Without a policy it uses the demo's own; with one, the workload uses that policy's routes.
    """
    from router._demo import run_demo

    path = policy_argument(policy, policy_option, required=False)
    if path is not None and not path.is_file():
        raise fail(f"{path}: no such policy file")
    code = run_demo(live=live, policy_path=path, as_json=as_json, picture_dir=None if no_picture else picture)
    raise typer.Exit(code)


@app.command()
def validate(
    policy: PolicyArgument = None, policy_option: PolicyOption = None, as_json: JsonOption = False
) -> None:
    """Check a policy file and its models against the catalog; one file:line: key: message per problem.

    Beyond what loading checks, this looks at prices, capabilities and benchmark scores: a model
    'cheapest' cannot rank, an unknown benchmark, a fallback the route's requirements exclude.
    Every problem is reported in one pass. Exit 1 if there is any problem.
    """
    from policies.loader import PolicyError, load_policy
    from policies.validate import validate_policy

    path = policy_argument(policy, policy_option)
    assert path is not None
    if not path.is_file():
        raise fail(f"{path}: no such policy file")
    problems = validate_policy(path)
    loaded = None
    if not problems:
        try:
            loaded = load_policy(path)  # only for the summary: validate_policy has just read it
        except PolicyError as exc:  # the file changed between the two reads
            problems = list(exc.problems)
    if as_json:
        counts = {} if loaded is None else _counts(loaded)
        print_json(
            {
                "policy": str(path),
                "ok": not problems,
                **counts,
                "problems": [
                    {"file": p.file, "line": p.line, "key": p.key, "message": p.message, "text": str(p)}
                    for p in problems
                ],
            }
        )
        raise typer.Exit(1 if problems else 0)
    if problems:
        for problem in problems:
            typer.echo(str(problem), err=True)
        raise fail(f"{path}: {plural(len(problems), 'problem')}")
    assert loaded is not None
    counts = _counts(loaded)
    typer.echo(f"{path}: ok ({', '.join(plural(n, k.removesuffix('s')) for k, n in counts.items())})")


def _counts(policy: Policy) -> dict[str, int]:
    return {"models": len(policy.models), "routes": len(policy.routes), "features": len(policy.features)}


@app.command()
def explain(
    paths: RequestArgs,
    policy_option: PolicyOption = None,
    feature: Annotated[
        str | None, typer.Option("--feature", help="Plan for this feature (overrides metadata.feature).")
    ] = None,
    check_keys: Annotated[
        bool,
        typer.Option(
            "--check-keys",
            help="Reject models whose API key is not set in this environment (default: assume every key is).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as one JSON object.")] = False,
) -> None:
    """Show how the policy would route a request, without calling any provider.

    Prints the rules that applied, the models in the order they would be tried with each one's
    expected cost, and every rejected model with the reason.
    """
    from policies.plan import UnknownModelError
    from router._engine import Engine
    from router._exceptions import InvalidRequestError
    from router._request import normalize

    if len(paths) > 2:
        raise fail("explain takes a policy file and a request file, no more")
    request = paths[-1]
    policy, loaded = load_policy_argument(paths[0] if len(paths) == 2 else None, policy_option)
    kwargs = _read_request(request, feature)
    env: Mapping[str, str] = os.environ if check_keys else _EveryKeySet()
    engine = Engine(loaded, env=env)
    try:
        normalized = normalize(kwargs, None)
    except InvalidRequestError as exc:
        raise fail(f"{request}: not a valid request: {exc.detail}") from None
    except (TypeError, ValueError) as exc:
        raise fail(f"{request}: not a valid request: {exc}") from None
    try:
        plan = engine.planner.plan(normalized.route)
    except UnknownModelError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    model, feature_name = normalized.route.model, normalized.route.feature
    from router._cli_deployments import deployment_rows, print_deployments

    pools = deployment_rows(engine, plan, normalized.route)  # models with several deployments (issue 18)
    if as_json:
        record = {"policy": str(policy), "request": str(request), "model": model, "feature": feature_name}
        typer.echo(
            json.dumps(
                {**record, **_plan_record(plan), **({"deployments": pools} if pools else {})}, indent=2
            )
        )
        return
    _print_plan(console(), plan, model, feature_name, loaded)
    print_deployments(console(), pools, explain=True)


@app.command()
def models(
    policy: PolicyArgument = None, policy_option: PolicyOption = None, as_json: JsonOption = False
) -> None:
    """Show the catalog as the policy sees it: prices, context, capabilities, quality."""
    from rich.table import Table

    from policies.validate import policy_catalog

    policy, loaded = load_policy_argument(policy, policy_option)
    catalog = policy_catalog(loaded)
    if as_json:
        print_json(
            {
                "policy": str(policy),
                "models": [
                    {
                        "model": name,
                        "provider": info.provider,
                        "input_cost_per_mtok": usd_json(info.input_cost_per_mtok),
                        "cached_input_cost_per_mtok": usd_json(info.cached_input_cost_per_mtok),
                        "output_cost_per_mtok": usd_json(info.output_cost_per_mtok),
                        "context_window": info.context_window,
                        "max_output_tokens": info.max_output_tokens,
                        "supports": sorted(info.supports),
                        "quality": dict(info.quality),
                    }
                    for name, info in catalog.items()
                ],
            }
        )
        return
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
    for name, info in catalog.items():
        table.add_row(
            name,
            info.provider,
            _money(info.input_cost_per_mtok),
            _money(info.cached_input_cost_per_mtok),
            _money(info.output_cost_per_mtok),
            f"{info.context_window:,}" if info.context_window else "?",
            f"{info.max_output_tokens:,}" if info.max_output_tokens else "?",
            ", ".join(sorted(info.supports)) or "-",
            ", ".join(f"{k} {v:g}" for k, v in info.quality.items()) or "-",
        )
    console().print(table)
    from router._cli_deployments import deployment_rows, print_deployments
    from router._engine import Engine

    print_deployments(
        console(), deployment_rows(Engine(loaded, env=_EveryKeySet()), None, None), explain=False
    )


@app.command()
def spend(
    policy: PolicyArgument = None,
    policy_option: PolicyOption = None,
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            help="Ledger URL (memory://, sqlite:///path, redis://host:port/db); overrides the policy's.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    at: Annotated[
        float | None, typer.Option("--at", hidden=True, help="Report as of these Unix seconds (tests).")
    ] = None,
) -> None:
    """Show each budget's spend in its current window: spent, reserved, limit, percent, reset time.

    Periods the ledger holds beyond the current ones (earlier windows, budgets since removed from
    the policy) follow. The policy is optional with --ledger. A read-only report: it creates no file,
    and a SQLite ledger that does not exist yet is an error (exit 2).
    """
    import time

    from router._budgets import BudgetBook
    from router._spend import spend_rows
    from router.ledger import LedgerError, iso_utc, open_guarded_ledger, parse_ledger_url, redact_url

    now = time.time() if at is None else at
    loaded = None
    if policy_argument(policy, policy_option, required=False) is not None:
        policy, loaded = load_policy_argument(policy, policy_option)
    book = BudgetBook(loaded) if loaded is not None else None
    url = ledger if ledger is not None else (loaded.ledger if loaded is not None else None)
    # Only the redacted URL is ever printed: in the header, --json and every error.
    shown = redact_url(url) if url else "(default)"
    try:
        target = parse_ledger_url(url)
        where = target.describe()
        if target.kind == "sqlite" and not os.path.exists(target.location):
            # Opening would create it: a report must leave the disk as it found it.
            raise fail(
                f"router spend: cannot read the ledger {shown}: {target.location} does not exist —"
                " nothing has been recorded there yet (check --ledger, the policy's ledger:, $ROUTER_LEDGER)",
                2,
            )
        opened = open_guarded_ledger(url, journal=loaded.ledger_journal if loaded is not None else None)
        try:
            current = opened.totals(book.current_lines(now), now=now) if book is not None else {}
            report = opened.report(now=now)
        finally:
            opened.close()
    except (LedgerError, ValueError) as exc:
        typer.echo(f"router spend: cannot read the ledger {shown}: {exc}", err=True)
        raise typer.Exit(2) from None
    rows = spend_rows(book, current, report, now)
    if as_json:
        record = {
            "ledger": where,
            "policy": None if policy is None else str(policy),
            "at": iso_utc(now),
            "budgets": [row.to_dict() for row in rows],
        }
        typer.echo(json.dumps(record, indent=2))
        return
    _print_spend(console(), rows, where, now)


@app.command()
def schema() -> None:
    """Print the policy file's JSON Schema (for editor completion and validation)."""
    from policies.loader import policy_json_schema

    typer.echo(json.dumps(policy_json_schema(), indent=2))


class _EveryKeySet(Mapping[str, str]):
    """This process's environment, in which every unset (or empty) variable reads as a placeholder.

    ``explain`` is about the policy, not this machine: without it, every model whose key is
    missing here would show as rejected and hide the decision the policy makes where keys are set.
    Variables that are set keep their values; iterating yields nothing, so nothing can list or copy
    the placeholders as if they were real.
    """

    def __getitem__(self, key: str) -> str:
        from providers.registry import PROVIDERS

        if key in {row.api_base_env for row in PROVIDERS.values()}:
            return os.environ[key]  # an endpoint, not a key: only a real value means anything
        return os.environ.get(key) or _PLACEHOLDER_KEY

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _read_request(path: Path, feature: str | None) -> dict[str, Any]:
    """The create() keyword arguments from a JSON file; any problem exits 1 with a message naming it."""

    def fail(message: str) -> typer.Exit:
        typer.echo(f"{path}: {message}", err=True)
        return typer.Exit(1)

    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(f"is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise fail(f"cannot read the request file: {exc.strerror or type(exc).__name__}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        typer.echo(f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})", err=True)
        raise typer.Exit(1) from None
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "text" if isinstance(data, str) else json.dumps(data)
        raise fail(
            "must be a JSON object of create() keyword arguments, like"
            f' {{"model": "auto", "messages": [...]}} (got {kind})'
        )
    messages = data.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise fail('needs "messages": a list of message objects, as create() takes them')
    if not isinstance(data.get("model"), str):
        raise fail('needs "model": a route (such as "auto") or a model of the policy, as text')
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise fail('"metadata" must be an object')
    if feature is not None:
        data["metadata"] = {**(metadata or {}), "feature": feature}
    return data


def _plan_record(plan: Plan) -> dict[str, Any]:
    """A plan as plain JSON data; token fields are read with defaults so older planners still work."""
    return {
        "route": plan.route,
        "strategy": plan.strategy,
        "rules": list(plan.rules),
        "candidates": [
            {
                "rank": rank,
                "model": c.model,
                "provider": c.provider,
                # To the nano-dollar, without float noise (0.0003051000000004).
                "expected_cost_usd": usd_json(c.expected_cost_usd),
                "prompt_tokens": getattr(c, "prompt_tokens", None),
                "output_tokens": getattr(c, "output_tokens", None),
                "fallback": bool(getattr(c, "fallback", False)),
            }
            for rank, c in enumerate(plan.candidates, start=1)
        ],
        "rejected": dict(plan.rejected),
    }


def _print_plan(console: Console, plan: Plan, model: str, feature: str, policy: Policy) -> None:
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    target = f"route [bold]{escape(plan.route)}[/]" if plan.route else "[bold]that model directly[/]"
    console.print(f"model=[bold]{escape(model)}[/] → {target} (strategy [bold]{escape(plan.strategy)}[/])")
    known = feature in policy.features
    note = "" if known else " [dim](not in the policy: no feature settings apply)[/]"
    console.print(f"feature: [bold]{escape(feature)}[/]{note}")
    for rule in plan.rules:
        console.print(Text(f"  • {rule}"))
    record = _plan_record(plan)
    if record["candidates"]:
        table = Table(title="Candidates, in the order they would be tried", title_justify="left")
        for column in ("rank", "model", "provider", "expected cost", "prompt tokens", "output tokens"):
            right = column in ("rank", "expected cost", "prompt tokens", "output tokens")
            table.add_column(column, justify="right" if right else "left")
        for row in record["candidates"]:
            table.add_row(
                str(row["rank"]),
                Text(row["model"] + (" (fallback)" if row["fallback"] else "")),
                Text(row["provider"]),
                usd_text(row["expected_cost_usd"]),
                _count(row["prompt_tokens"]),
                _count(row["output_tokens"]),
            )
        console.print(table)
    else:
        console.print("[bold red]No model can serve this request[/]: it would fail with NoCandidateError.")
    if record["rejected"]:
        table = Table(title="Rejected", title_justify="left")
        table.add_column("model")
        table.add_column("reason")
        for name, reason in record["rejected"].items():
            table.add_row(Text(name), Text(reason))
        console.print(table)


def _print_spend(console: Console, rows: list[SpendRow], where: str, now: float) -> None:
    from rich.table import Table
    from rich.text import Text

    from router.ledger import iso_utc

    console.print(Text(f"ledger: {where} (as of {iso_utc(now)})"))
    if not rows:
        console.print("No budgets in the policy and no spend in the ledger.")
        return
    table = Table()
    for column in ("feature", "window", "period (UTC)", "spent", "reserved", "limit", "used", "resets (UTC)"):
        right = column in ("spent", "reserved", "limit", "used")
        table.add_column(column, justify="right" if right else "left")
    for row in rows:
        percent = row.percent
        table.add_row(
            Text("* (all features)" if row.scope == "*" else row.scope),
            row.window + ("" if row.current else " (past)"),
            "-" if row.window == "total" else _minute(row.period_start),
            usd_text(row.spent_usd),
            usd_text(row.reserved_usd),
            "-" if row.limit_usd is None else usd_text(row.limit_usd),
            "-" if percent is None else f"{percent:.1f}%",
            "never" if row.resets_at is None else _minute(row.resets_at),
        )
    console.print(table)


def _minute(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def _money(value: float | None) -> str:
    return "unknown" if value is None else usd_text(value).removeprefix("$")


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


# eval and train live in their own module: the other commands never import the data or training code.
# A sub-command module registers with one line like these and uses router._cli_grammar's arguments.
app.command(name="eval")(eval_command)
app.command(name="train")(train_command)
app.add_typer(batch_app, name="batch")
app.command(name="fake")(fake_command)


def main() -> None:
    try:
        app()
    except SystemExit as done:
        if "litellm" in sys.modules:
            _exit_now(done.code)
        raise


def _exit_now(code: object) -> None:
    """Exit without the interpreter's teardown, which takes seconds once litellm's thousands of
    modules are loaded (the demo's exit lagged ~5 s behind its summary). Output and log handlers are
    flushed first; nothing else of the router needs teardown once its clients are closed."""
    import logging

    if isinstance(code, str):
        print(code, file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
