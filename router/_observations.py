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
        self._feature_output: dict[str, float] = {}
        self._latency: dict[str, float] = {}

    def expected_output_tokens(self, feature: str, model: str) -> float | None:
        """This model's average for the feature, else the feature's average over all models.

        Falling back to the feature's average (not to the policy default) keeps the ranking fair:
        a model observed once must not look cheaper only because the others are still assumed
        to write the default number of tokens.
        """
        seen = self._output.get((feature, model))
        return seen if seen is not None else self._feature_output.get(feature)

    def latency_ms(self, model: str) -> float | None:
        return self._latency.get(model)

    def record(self, feature: str, model: str, completion_tokens: int | None, latency_ms: float) -> None:
        if completion_tokens is not None:
            self._output[(feature, model)] = _moving(self._output.get((feature, model)), completion_tokens)
            self._feature_output[feature] = _moving(self._feature_output.get(feature), completion_tokens)
        self._latency[model] = _moving(self._latency.get(model), latency_ms)


def _moving(previous: float | None, value: float) -> float:
    return float(value) if previous is None else previous + _ALPHA * (value - previous)
