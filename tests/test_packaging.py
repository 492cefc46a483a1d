"""``pip install .`` installs the product only: the fake providers are their own distribution (fakes/).

Builds both wheels as pip would (an isolated build with the declared setuptools) and reads what
each would install; setuptools must not warn about the configuration (license, package data).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_WARNINGS = (
    "SetuptoolsDeprecationWarning",
    "is absent from the `packages` configuration",
    "License classifiers",
)


def _wheel(project: Path, into: Path) -> tuple[list[str], str]:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", str(project), "-w", str(into)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 and "Installing build dependencies: finished with status 'error'" in done.stdout:
        pytest.skip(f"pip could not fetch the build backend (no package index?): {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = into.glob("*.whl")
    return zipfile.ZipFile(wheel).namelist(), done.stdout + done.stderr


@pytest.mark.slow
def test_the_product_wheel_holds_no_fake_provider_code_and_builds_without_warnings(tmp_path: Path) -> None:
    names, log = _wheel(ROOT, tmp_path / "product")
    packages = {name.split("/")[0] for name in names if not name.startswith("router_sdk-")}
    assert packages == {"router", "policies", "providers"}
    assert not [n for n in names if n.startswith("router_fakes/") or "/fake/" in n]
    assert {"providers/data/quality.json", "router/data/demo.yaml", "router/py.typed"} <= set(names)
    assert not [w for w in _WARNINGS if w in log], log[-3000:]
    metadata = next(n for n in names if n.endswith("/METADATA"))
    text = zipfile.ZipFile(next((tmp_path / "product").glob("*.whl"))).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text


@pytest.mark.slow
def test_the_fakes_are_a_wheel_of_their_own(tmp_path: Path) -> None:
    names, log = _wheel(ROOT / "fakes", tmp_path / "fakes")
    assert {"router_fakes/__init__.py", "router_fakes/server.py", "router_fakes/py.typed"} <= set(names)
    assert {name.split("/")[0] for name in names if not name.startswith("router_fakes-")} == {"router_fakes"}
    assert not [w for w in _WARNINGS if w in log], log[-3000:]
