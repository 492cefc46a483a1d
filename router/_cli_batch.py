"""``router batch``: submit, status, results, cancel, list and resume routed batch jobs.

Each command builds a ``router.OpenAI`` for the policy and uses the same ``client.files`` /
``client.batches`` calls a program would (docs/batch.md); jobs live in the job store beside the
ledger, so any command on the machine sees every job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from router._openai import OpenAI

batch_app = typer.Typer(
    name="batch",
    help="Routed batch jobs: each line to its cheapest adequate model, at batch prices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

PolicyOpt = Annotated[
    Path,
    typer.Option("--policy", "-p", envvar="ROUTER_POLICY", dir_okay=False, help="The policy YAML file."),
]
LedgerOpt = Annotated[
    str | None,
    typer.Option("--ledger", help="Ledger URL; the job store lives beside it. Overrides the policy's."),
]
IdArg = Annotated[str, typer.Argument(help="The batch id (batch_rtr_...).")]


def _client(policy: Path, ledger: str | None) -> OpenAI:
    from policies.loader import PolicyError
    from router._openai import OpenAI

    try:
        return OpenAI(policy=policy, ledger=ledger)
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _call(what: str, call: Any) -> Any:
    """One client call; openai errors (refused budget, unknown id, bad file) as one line and exit 1."""
    import openai

    try:
        return call()
    except openai.APIError as exc:
        raise _fail(f"router batch {what}: {exc.message}") from None


@batch_app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="An openai batch input file (JSONL).", dir_okay=False)],
    policy: PolicyOpt,
    feature: Annotated[
        str | None, typer.Option("--feature", help="The feature of lines whose metadata names none.")
    ] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Plan every line at batch prices, reserve the job's worst case, and submit it per provider."""
    if not file.is_file():
        raise _fail(f"router batch submit: no file {file}")
    client = _client(policy, ledger)
    try:
        uploaded = _call("submit", lambda: client.files.create(file=file, purpose="batch"))
        metadata = {"feature": feature} if feature else None
        batch = _call(
            "submit",
            lambda: client.batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata=metadata,
            ),
        )
        typer.echo(batch.id)
        _print_status(client, batch.id)
    finally:
        client.close()


@batch_app.command()
def status(
    batch_id: IdArg,
    policy: PolicyOpt,
    ledger: LedgerOpt = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Poll until the job ends, redrawing the view.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls with --watch.")] = 30.0,
) -> None:
    """Poll the providers (resuming the job if needed) and show its progress per model."""
    client = _client(policy, ledger)
    try:
        if not watch:
            _print_status(client, batch_id)
            return
        watch_job(client, batch_id, interval, sleep=_sleep)
    finally:
        client.close()


# What --watch waits with between polls; tests replace it with one that moves the fake providers' clock.
_sleep: Callable[[float], None] = time.sleep


def watch_job(
    client: OpenAI,
    batch_id: str,
    interval: float,
    *,
    sleep: Callable[[float], None],
    max_polls: int | None = None,
) -> int:
    """Redraw the job's progress after each poll until it ends (or after ``max_polls``); the polls made."""
    from rich.live import Live

    polls = 0
    with Live(_status_table(client, batch_id), refresh_per_second=1) as live:
        while _call("status", lambda: client.batches.retrieve(batch_id)).status not in (
            "completed",
            "cancelled",
        ):
            polls += 1
            if max_polls is not None and polls >= max_polls:
                break
            sleep(interval)
            live.update(_status_table(client, batch_id))
        live.update(_status_table(client, batch_id))
    return polls


@batch_app.command()
def results(
    batch_id: IdArg,
    policy: PolicyOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the output JSONL.")],
    errors: Annotated[
        Path | None, typer.Option("--errors", help="Where to write the failed lines (JSONL).")
    ] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Write the answers (one line per custom_id, openai's batch output format) once the job has ended."""
    client = _client(policy, ledger)
    try:
        batch = _call("results", lambda: client.batches.retrieve(batch_id))
        if batch.status not in ("completed", "cancelled"):
            raise _fail(
                f"router batch results: {batch_id} is {batch.status}; wait with "
                f"`router batch status {batch_id} --policy {policy} --watch`"
            )
        written = 0
        if batch.output_file_id:
            data = client.files.content(batch.output_file_id).content
            output.write_bytes(data)
            written = data.count(b"\n")
        else:
            output.write_bytes(b"")
        failed = 0
        if batch.error_file_id:
            data = client.files.content(batch.error_file_id).content
            failed = data.count(b"\n")
            if errors is not None:
                errors.write_bytes(data)
        typer.echo(
            f"{written} answers -> {output}; {failed} failed" + (f" -> {errors}" if errors and failed else "")
        )
    finally:
        client.close()


@batch_app.command()
def cancel(batch_id: IdArg, policy: PolicyOpt, ledger: LedgerOpt = None) -> None:
    """Cancel the job: providers stop its batches; lines already answered are kept."""
    client = _client(policy, ledger)
    try:
        batch = _call("cancel", lambda: client.batches.cancel(batch_id))
        typer.echo(f"{batch.id}: {batch.status}")
    finally:
        client.close()


@batch_app.command(name="list")
def list_jobs(policy: PolicyOpt, ledger: LedgerOpt = None) -> None:
    """The jobs in the store, newest first (status as last recorded; `status` polls)."""
    client = _client(policy, ledger)
    try:
        for batch in client.batches.list():
            counts = batch.request_counts
            done = f"{counts.completed}/{counts.total} done, {counts.failed} failed" if counts else ""
            typer.echo(f"{batch.id}  {batch.status:<12} {done}")
    finally:
        client.close()


@batch_app.command()
def resume(
    batch_id: Annotated[str | None, typer.Argument(help="One job; default: every unfinished one.")] = None,
    *,
    policy: PolicyOpt,
    ledger: LedgerOpt = None,
) -> None:
    """Carry on jobs a stopped process left: submit what no provider has, poll what they have."""
    from router.batch._resources import service_for

    client = _client(policy, ledger)
    try:
        if batch_id is not None:
            _print_status(client, batch_id)
            return
        for job in service_for(client).resume_all():
            _print_status(client, job.id)
    finally:
        client.close()


def _status_table(client: OpenAI, batch_id: str) -> Table:
    from rich.table import Table

    from router.batch._resources import service_for

    batch = _call("status", lambda: client.batches.retrieve(batch_id))
    counts = batch.request_counts
    title = f"{batch.id}: {batch.status}" + (
        f" — {counts.completed} answered, {counts.failed} failed of {counts.total}" if counts else ""
    )
    table = Table(title=title)
    for column in ("model", "lines", "answered", "failed", "cost", "at standard prices"):
        table.add_column(column, justify="left" if column == "model" else "right")
    rows = service_for(client).breakdown(batch_id)
    total = standard = 0.0
    for model, row in sorted(rows.items()):
        total += row["cost_usd"]
        standard += row["standard_usd"]
        table.add_row(
            model,
            str(int(row["lines"])),
            str(int(row["succeeded"])),
            str(int(row["failed"])),
            f"${row['cost_usd']:.6f}",
            f"${row['standard_usd']:.6f}",
        )
    if standard > 0:
        table.caption = (
            f"saved ${standard - total:.6f} ({(1 - total / standard):.0%}) against standard prices"
        )
    return table


def _print_status(client: OpenAI, batch_id: str) -> None:
    import shutil

    from rich.console import Console

    # Wide enough for the model names whatever the terminal says (a pipe, a CI log).
    Console(width=max(120, shutil.get_terminal_size((120, 40)).columns)).print(
        _status_table(client, batch_id)
    )
