"""The ``router`` command's one grammar, shared by every sub-command (and by modules that add one).

Every command takes the policy the same way: positionally (``router spend budget.yaml``), as
``--policy FILE``, or from ``$ROUTER_POLICY``, in that order of precedence. A sub-command module
registers with one line, ``app.command(name="x")(x_command)``, and declares
``policy: PolicyArgument = None, policy_option: PolicyOption = None``, then calls
``load_policy_argument(policy, policy_option)``. Help shows no ``{policy}``/``<bool>`` noise;
money prints to the nano-dollar without float noise; tables are never folded when piped.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from rich.console import Console

    from policies.schema import Policy

__all__ = [
    "JsonOption",
    "PolicyArgument",
    "PolicyOption",
    "RouterApp",
    "console",
    "fail",
    "load_policy_argument",
    "plural",
    "policy_argument",
    "usd_json",
    "usd_text",
]

_F = TypeVar("_F", bound=Callable[..., Any])
ENV_VAR: Final = "ROUTER_POLICY"
_NANO: Final = Decimal("0.000000001")

PolicyArgument = Annotated[
    Path | None,
    typer.Argument(
        metavar="POLICY",
        show_default=False,
        help=f"The policy YAML file (or --policy FILE, or ${ENV_VAR}).",
    ),
]
PolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        envvar=ENV_VAR,
        metavar="FILE",
        show_default=False,
        help="The policy file, given as an option instead.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """One line on stderr and the exit code: what every command does with a problem it can name."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def policy_argument(positional: Path | None, option: Path | None, *, required: bool = True) -> Path | None:
    """The policy file: the positional one, else ``--policy``/``$ROUTER_POLICY``; None if optional."""
    path = positional if positional is not None else option
    if path is None and required:
        raise fail(
            f"No policy: pass the policy file (router COMMAND POLICY), --policy FILE, or set {ENV_VAR}."
        )
    return path


def load_policy_argument(positional: Path | None, option: Path | None) -> tuple[Path, Policy]:
    """The policy file chosen by the grammar, loaded; any problem is one ``file:line: ...`` line, exit 1."""
    from policies.loader import PolicyError, load_policy

    path = policy_argument(positional, option)
    assert path is not None
    if not path.is_file():
        raise fail(f"{path}: no such policy file" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        return path, load_policy(path)
    except PolicyError as exc:
        raise fail(str(exc)) from None


def plural(count: int, noun: str) -> str:
    """``1 route``, ``2 routes``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _nano(value: float) -> Decimal:
    # repr is the shortest decimal that reads back as this float: no binary noise enters the Decimal.
    return Decimal(repr(value)).quantize(_NANO)


def usd_json(value: float | None) -> float | None:
    """Dollars for JSON, rounded to the nano-dollar: ``0.0001563``, never ``0.00015629999999999998``."""
    return None if value is None else float(_nano(value))


def usd_text(value: float | None, *, unknown: str = "unknown") -> str:
    """``$0.0001563``, ``$1.50``, ``$0.00``: to the nano-dollar, no trailing zeros beyond the cents."""
    if value is None:
        return unknown
    amount = _nano(value)
    text = f"{amount:,f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{'-' if amount < 0 else ''}${whole.lstrip('-')}.{fraction}"


def print_json(record: Any) -> None:
    typer.echo(json.dumps(record, indent=2))


def console() -> Console:
    """A terminal's width on a terminal; piped or redirected, wide enough that nothing is folded."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(width=max(120, shutil.get_terminal_size((120, 40)).columns))
    return Console(width=100_000, no_color=True, highlight=False)


# Contexts and parameters are typed Any: typer 0.2x vendors its own click, older typer uses click's.
def _quiet_flags(params: Sequence[Any]) -> None:
    """Flags (``--json``, ``--help``) show no ``<bool>`` type in help: they take no value."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif param.param_type_name == "argument" and param.nargs != 1 and param.metavar:
            # A list argument named by its metavar ("[POLICY] REQUEST") needs no "<list[Path]>" too.
            param.display_type_rich = lambda ctx: None


class Command(TyperCommand):
    """A sub-command whose help reads ``POLICY REQUEST``, not ``{policy} {request}``."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        # typer writes a required argument as {name}; a user reads "POLICY REQUEST" more easily. A
        # metavar that names several ("[POLICY] REQUEST") drops the "..." typer adds for a list.
        return [
            re.sub(r"^\{(.+)\}(\.\.\.)?$", lambda m: m[1] + ("" if " " in m[1] else m[2] or ""), piece)
            for piece in super().collect_usage_pieces(ctx)
        ]

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _quiet_flags(params)
        return params


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _quiet_flags(params)
        return params


class RouterApp(typer.Typer):
    """``typer.Typer`` whose commands default to ``Command``: a sub-command module's one-line
    registration gets the same help style."""

    def __init__(self, **kwargs: Any) -> None:
        # markdown: a docstring's hard-wrapped lines read as one paragraph, as in --help they should.
        super().__init__(cls=Group, **{"rich_markup_mode": "markdown", **kwargs})

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[_F], _F]:
        decorator: Callable[[_F], _F] = super().command(name, cls=cls or Command, **kwargs)
        return decorator
