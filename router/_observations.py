"""What a client learns from its own calls, for ranking: typical output size and latency.

Per client, never global: two clients in one process learn separately. Updates are a few
float operations; under threads an update may occasionally be lost, which only nudges an
average, never a decision's safety.
"""

from __future__ import annotations

from typing import Final

# Weight of the newest observation in the moving averages.
_ALPHA: Final = 0.2


class Observations:
    """Exponentially weighted averages of completion tokens (per feature and model) and latency."""

    def __init__(self) -> None:
        self._output: dict[tuple[str, str], float] = {}
        self._latency: dict[str, float] = {}

    def expected_output_tokens(self, feature: str, model: str) -> float | None:
        return self._output.get((feature, model))

    def latency_ms(self, model: str) -> float | None:
        return self._latency.get(model)

    def record(self, feature: str, model: str, completion_tokens: int | None, latency_ms: float) -> None:
        if completion_tokens is not None:
            key = (feature, model)
            previous = self._output.get(key)
            self._output[key] = (
                float(completion_tokens)
                if previous is None
                else previous + _ALPHA * (completion_tokens - previous)
            )
        previous_latency = self._latency.get(model)
        self._latency[model] = (
            latency_ms
            if previous_latency is None
            else previous_latency + _ALPHA * (latency_ms - previous_latency)
        )
