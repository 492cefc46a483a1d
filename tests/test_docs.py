"""The documentation's runnable blocks run as written, in order, against the fake providers.

A fenced block preceded by ``<!-- runnable -->`` is run (``bash`` in a shell, ``python`` by the
interpreter); ``<!-- runnable: file NAME -->`` writes the block to NAME first. Each page runs in a
fresh directory, its shell state (the environment ``eval "$(router fake --env)"`` sets) carried from
one block to the next, as a reader copying the commands into one terminal would.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_MARKED = re.compile(
    r"<!-- runnable(?::\s*file\s+(?P<file>\S+))?\s*-->\n```(?P<lang>\w+)[^\n]*\n(?P<code>.*?)```", re.S
)
_ENV_DUMP = "__ROUTER_DOCS_ENV__"


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    code: str
    file: str | None


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(page.name, text.count("\n", 0, m.start()) + 1, m["lang"], m["code"], m["file"])
        for m in _MARKED.finditer(text)
    ]


RUNNABLE = {page.relative_to(ROOT).as_posix(): found for page in PAGES if (found := blocks(page))}


def test_the_quickstart_is_marked_runnable_from_the_fakes_to_the_app() -> None:
    quickstart = RUNNABLE["docs/quickstart.md"]
    assert "router fake --env" in quickstart[0].code
    assert [b.file for b in quickstart if b.file] == ["policy.yaml", "app.py"]
    assert any("python app.py" in b.code for b in quickstart)


def _shim(folder: Path) -> None:
    """``router`` and ``python`` as a reader's venv has them, but running this checkout's code."""
    folder.mkdir()
    for name, command in (("router", f"{shlex.quote(sys.executable)} -m router"), ("python", sys.executable)):
        path = folder / name
        path.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        path.chmod(0o755)


def _run_shell(code: str, env: dict[str, str], cwd: Path, where: str) -> dict[str, str]:
    """Run a bash block; return the environment it leaves (so exports carry to the next block)."""
    script = f"set -euo pipefail\n{code}\necho {_ENV_DUMP}\nenv -0\n"
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (
        f"{where} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    dumped = done.stdout.split(f"{_ENV_DUMP}\n", 1)[1]
    return dict(item.split("=", 1) for item in dumped.split("\0") if "=" in item)


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(RUNNABLE))
def test_the_runnable_blocks_of_a_page_run_in_order_against_the_fakes(page: str, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _shim(bin_dir)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": f"{ROOT}:{ROOT / 'fakes'}",
        "PYTHONWARNINGS": "ignore",
        "COLUMNS": "120",
    }
    try:
        for block in RUNNABLE[page]:
            where = f"{page}:{block.line}"
            if block.file is not None:
                (work / block.file).write_text(block.code, encoding="utf-8")
            elif block.lang in ("bash", "sh", "console"):
                env = _run_shell(block.code, env, work, where)
            elif block.lang == "python":
                done = subprocess.run(
                    [sys.executable, "-c", block.code],
                    cwd=work,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert done.returncode == 0, f"{where} failed:\n{done.stderr[-3000:]}"
            else:
                pytest.fail(f"{where}: a runnable block must be bash or python, or name a file")
    finally:
        pid = env.get("ROUTER_FAKE_PID")
        if pid:
            os.kill(int(pid), signal.SIGTERM)
    if "ROUTER_FAKE_PID" in env:
        # The commands ran against the fakes: nothing could have reached a real provider.
        assert env["OPENAI_BASE_URL"].startswith("http://127.0.0.1:")


_UNKNOWN_KEY = re.compile(r"^\S+:\d+: (?P<path>[\w.*-]+): (?P<message>unknown key '(?P<key>\w+)'.*)$", re.M)


def _nested(path: list[str], value: object) -> object:
    return value if not path else {path[0]: _nested(path[1:], value)}


def test_every_unknown_key_message_shown_in_the_docs_is_the_loaders_own() -> None:
    from policies.loader import PolicyError, policy_from_dict

    shown = [(page, m) for page in PAGES for m in _UNKNOWN_KEY.finditer(page.read_text(encoding="utf-8"))]
    assert shown, "the docs show no sample unknown-key message any more: drop this test"
    for page, match in shown:
        data = _nested(match["path"].split("."), "x")
        with pytest.raises(PolicyError) as info:
            policy_from_dict(data)  # type: ignore[arg-type]
        messages = [p.message for p in info.value.problems if p.key == match["path"]]
        assert match["message"] in messages, f"{page.name}: {match['message']!r} is not what the loader says"


def test_the_json_schema_accepts_environment_references_where_the_loader_does() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from policies.loader import policy_json_schema

    validator = jsonschema.Draft202012Validator(policy_json_schema())
    model = {"provider": "openai", "context_window": "${CTX:-128000}", "input_cost_per_mtok": "${PRICE}"}
    assert list(validator.iter_errors({"models": {"m": model}})) == []
    assert list(validator.iter_errors({"models": {"m": {**model, "context_window": "lots"}}}))
