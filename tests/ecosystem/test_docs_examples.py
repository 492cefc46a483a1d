"""docs/libraries.md promises runnable examples: each runs, after the page's setup, in a fresh interpreter."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "libraries.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
SETUP, EXAMPLES = BLOCKS[0], BLOCKS[1:]
LIBRARIES = ("agents", "instructor", "langchain_openai", "pydantic_ai")


def library_of(example: str) -> str:
    """The library an example is about: the one of LIBRARIES it imports."""
    (name,) = {name for name in LIBRARIES if re.search(rf"^(from|import) {name}\b", example, re.M)}
    return name


def test_the_page_has_a_setup_and_one_example_per_library() -> None:
    assert "FakeProviders().start()" in SETUP
    assert sorted(library_of(e) for e in EXAMPLES) == list(LIBRARIES)


@pytest.mark.parametrize("example", EXAMPLES, ids=library_of)
def test_example_runs_against_the_fake_providers(example: str, tmp_path: Path) -> None:
    if importlib.util.find_spec(library_of(example)) is None:
        pytest.skip(f"{library_of(example)} is not installed")
    script = tmp_path / "example.py"
    script.write_text(SETUP + "\n" + example + "\nfake.stop()\n")
    done = subprocess.run(
        [sys.executable, "-W", "ignore", str(script)],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'fakes'}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The fake's answers reached the library's output: a minimal instance ("example") or its text.
    assert "example" in done.stdout or "[gemini-2.5-flash-lite]" in done.stdout, done.stdout
