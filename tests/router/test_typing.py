"""The clients' constructors are typed: ``mypy --strict`` catches a misspelt option."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = textwrap.dedent(
    """
    import router

    good = router.OpenAI(policy="policy.yaml", api_key="sk", max_retries=1, timeout=3.0, ledger=None)
    agood = router.AsyncOpenAI(policy="policy.yaml", api_key="sk", base_url="http://x/v1")
    copied: router.OpenAI = good.with_options(timeout=2.0)
    bad = router.OpenAI(api_kee="sk")
    abad = router.AsyncOpenAI(max_retrys=2)
    worse = router.OpenAI(timeout="soon")
    """
)


def test_mypy_strict_rejects_misspelt_and_mistyped_constructor_options(tmp_path: Path) -> None:
    source = tmp_path / "router_typing_snippet.py"
    source.write_text(SNIPPET)
    # The default cache (.mypy_cache in the working directory): the second run takes seconds.
    out, err, status = mypy_api.run(["--strict", "--no-error-summary", str(source)])
    # Only the snippet's errors (mypy may replay a cached module under the path it had then).
    errors = [line for line in out.splitlines() if f"{source.name}:" in line and ": error:" in line]
    lines = {int(line.split(":")[1]) for line in errors}
    assert status == 1, out + err
    assert lines == {7, 8, 9}, out  # the three bad calls, and nothing else
    assert 'Unexpected keyword argument "api_kee"' in out
    assert 'Unexpected keyword argument "max_retrys"' in out
