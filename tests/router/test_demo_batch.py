"""``router demo`` ends with a routed batch job over the three fake providers at half price."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from router.cli import app


def test_the_demo_ends_with_a_batch_job_split_across_three_providers_at_half_price() -> None:
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    batch = result.output[result.output.index("a batch job of 200 lines") :]
    assert "(completed)" in batch
    for model in ("claude-haiku-4-5", "gemini-2.5-flash-lite", "gpt-4o-mini"):
        assert re.search(rf"{model}\s+│\s+\d+\s+│\s+\d+", batch), model
    assert "(50% less)" in batch
