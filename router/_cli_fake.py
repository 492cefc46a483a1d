"""``router fake``: the fake providers for trying a policy without keys, and the environment to use.

``eval "$(router fake --env)"`` starts them in the background and sets, in the calling shell, the
variables that move each provider's default endpoint to them (``OPENAI_BASE_URL``,
``GEMINI_API_BASE``, ``ANTHROPIC_BASE_URL``) and fake keys: a policy that names no ``api_base``
then runs unchanged, and with real keys (in a fresh shell) against the real providers.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Final

import typer

from router._cli_grammar import fail

FAKE_KEY: Final = "fake-key"
_FAKES_MODULE: Final = "router_fakes"


def environment(url: str) -> dict[str, str]:
    """The variables that point the three providers' default endpoints at the fakes at ``url``."""
    return {
        "OPENAI_BASE_URL": f"{url}/openai/v1",
        "GEMINI_API_BASE": f"{url}/gemini",
        "ANTHROPIC_BASE_URL": f"{url}/anthropic",
        "OPENAI_API_KEY": FAKE_KEY,
        "GEMINI_API_KEY": FAKE_KEY,
        "ANTHROPIC_API_KEY": FAKE_KEY,
        "ROUTER_FAKE_URL": url,
    }


def _exports(variables: dict[str, str]) -> str:
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items())


def fakes_process_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a ``python -m router_fakes`` child: ours, with the folder this process
    found ``router_fakes`` in put first on PYTHONPATH (a checkout's fakes/ is on our sys.path, as
    under pytest, but not necessarily in the child's)."""
    env = dict(os.environ if env is None else env)
    spec = importlib.util.find_spec(_FAKES_MODULE)
    if spec is not None and spec.submodule_search_locations:
        folder = str(Path(next(iter(spec.submodule_search_locations))).parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (folder, env.get("PYTHONPATH")) if p)
    return env


def _require_fakes() -> None:
    if importlib.util.find_spec(_FAKES_MODULE) is None:
        raise fail(
            "router fake needs the fake providers, which pip install . does not install:"
            " make demo installs them (or pip install ./fakes from a checkout)"
        )


def fake_command(
    env_only: Annotated[
        bool,
        typer.Option(
            "--env",
            help='Start them in the background and print only export lines, for eval "$(router fake --env)".',
        ),
    ] = False,
    port: Annotated[int, typer.Option("--port", help="The port to listen on (0: any free one).")] = 0,
) -> None:
    """Start the fake OpenAI, Gemini and Anthropic providers and print the environment that uses them.

    In the foreground (stop with Ctrl-C) by default; --env runs them in the background and prints
    export lines, including ROUTER_FAKE_PID to stop them with kill.
    """
    _require_fakes()
    command = [sys.executable, "-m", _FAKES_MODULE, "--port", str(port)]
    # The server's stdout is our pipe, never the caller's: $(...) returns as soon as we exit.
    child = subprocess.Popen(
        command,
        env=fakes_process_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if env_only else None,
        text=True,
        start_new_session=env_only,
    )
    assert child.stdout is not None
    first = child.stdout.readline().strip()
    url = first.rpartition(" ")[2]
    if not url.startswith("http://"):
        child.kill()
        raise fail(f"router fake: the fake providers did not start ({first or 'no output'})")
    variables = environment(url)
    if env_only:
        child.stdout.close()
        typer.echo(_exports({**variables, "ROUTER_FAKE_PID": str(child.pid)}))
        typer.echo("# stop them with: kill $ROUTER_FAKE_PID")
        return
    typer.echo(f"Fake OpenAI, Gemini and Anthropic providers listening on {url}")
    typer.echo("In another shell, run:\n")
    typer.echo(_exports(variables))
    typer.echo("\nCtrl-C stops them.")
    try:
        child.wait()
    except KeyboardInterrupt:
        child.terminate()
        child.wait()
