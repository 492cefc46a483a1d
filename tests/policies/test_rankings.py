"""Rankings as pure functions: deterministic, ties in listed order."""

from policies.rankings import cheapest, fastest, ordered
from tests.policies.helpers import make_candidate, make_context


class _Latencies:
    def __init__(self, values: dict[str, float]) -> None:
        self._values = values

    def expected_output_tokens(self, feature: str, model: str) -> float | None:
        return None

    def latency_ms(self, model: str) -> float | None:
        return self._values.get(model)


def test_cheapest_orders_by_expected_cost_and_keeps_listed_order_on_ties() -> None:
    ranked = cheapest(
        [
            make_candidate("a", 0.3),
            make_candidate("b", 0.1),
            make_candidate("c", 0.3),
            make_candidate("d", 0.1),
        ],
        make_context(),
    )
    assert [c.model for c in ranked] == ["b", "d", "a", "c"]


def test_ordered_keeps_the_policys_order() -> None:
    assert [c.model for c in ordered([make_candidate("z", 9), make_candidate("a", 1)], make_context())] == [
        "z",
        "a",
    ]


def test_fastest_orders_by_observed_latency_and_tries_unmeasured_models_first() -> None:
    context = make_context(observed=_Latencies({"a": 300.0, "b": 120.0}))
    candidates = [make_candidate("a", 1), make_candidate("b", 1), make_candidate("new", 1)]
    assert [c.model for c in fastest(candidates, context)] == ["new", "b", "a"]
