"""The planner's hand-written constructors (``_new_candidate``, ``_new_plan``, ``_new_context``) build
the same values as the dataclasses' own ``__init__``.

They set slots directly for speed, so a field added to, removed from or renamed in ``Candidate``,
``Plan`` or ``PlanContext`` must be followed there by hand; these tests fail until it is.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.filters import NoObservations, PlanContext
from policies.plan import Candidate, Plan, _new_candidate, _new_context, _new_plan
from tests.policies.helpers import make_request

# What _new_context leaves out: only static filters read it, and it is empty for a request.
CONTEXT_FIXED = {"declared_prices": frozenset()}
CONSTRUCTORS: list[tuple[type[Any], Callable[..., Any], dict[str, Any]]] = [
    (Candidate, _new_candidate, {}),
    (Plan, _new_plan, {}),
    (PlanContext, _new_context, CONTEXT_FIXED),
]

names = st.text(min_size=1, max_size=8)
costs = st.none() | st.floats(min_value=0, max_value=100, allow_nan=False)
counts = st.integers(min_value=0, max_value=1_000_000)
candidates = st.builds(
    Candidate,
    model=names,
    provider=names,
    expected_cost_usd=costs,
    prompt_tokens=counts,
    output_tokens=counts,
    fallback=st.booleans(),
)
# Values the dataclasses only hold (compared by identity): one object each, shared by both sides.
ADEQUACY = object()
BUDGET = object()
OBSERVED = NoObservations()
REQUESTS = (make_request(), make_request("two", tools=[{"type": "function"}], stream=True))

candidate_fields = st.fixed_dictionaries(
    {
        "model": names,
        "provider": names,
        "cost": costs,
        "prompt_tokens": counts,
        "output_tokens": counts,
        "fallback": st.booleans(),
    }
)
plan_fields = st.fixed_dictionaries(
    {
        "route": st.none() | names,
        "strategy": names,
        "candidates": st.lists(candidates, max_size=3).map(tuple),
        "rejected": st.dictionaries(names, names, max_size=3).map(MappingProxyType),
        "rules": st.lists(names, max_size=3).map(tuple),
        "adequacy": st.sampled_from([None, ADEQUACY]),
        "adequacy_counts": st.none() | st.tuples(counts, counts),
    }
)
context_fields = st.fixed_dictionaries(
    {
        "request": st.sampled_from(REQUESTS),
        "requires": st.frozensets(st.sampled_from(["tools", "vision", "json_schema"])),
        "floors": st.dictionaries(names, st.floats(min_value=0, max_value=100), max_size=3),
        "health": st.dictionaries(names, st.sampled_from(["open", "half_open"]), max_size=3),
        "budget": st.sampled_from([None, BUDGET]),
        "observed": st.just(OBSERVED),
        "expected_output_tokens": counts,
        "budgeted": st.booleans(),
    }
)


def _parameters(constructor: Callable[..., Any]) -> list[str]:
    """The constructor's value parameters (its ``_set_*`` defaults are bound setters, not values)."""
    return [name for name in inspect.signature(constructor).parameters if not name.startswith("_")]


def test_each_constructor_takes_every_field_of_its_dataclass_in_order() -> None:
    for cls, constructor, fixed in CONSTRUCTORS:
        fields = [f.name for f in dataclasses.fields(cls) if f.name not in fixed]
        parameters = _parameters(constructor)
        if cls is Candidate:  # the one parameter named for brevity
            parameters = ["expected_cost_usd" if p == "cost" else p for p in parameters]
        assert parameters == fields, cls.__name__
        assert set(cls.__slots__) == {f.name for f in dataclasses.fields(cls)}, cls.__name__


def test_each_constructor_sets_every_field_to_its_own_value() -> None:
    # A distinct marker per parameter: a slot set from the wrong argument, or left unset, shows.
    for cls, constructor, fixed in CONSTRUCTORS:
        markers = {name: object() for name in _parameters(constructor)}
        built = constructor(*markers.values())
        expected = [*markers.values(), *fixed.values()]
        assert [getattr(built, f.name) for f in dataclasses.fields(cls)] == expected, cls.__name__


@settings(deadline=None)  # a loaded machine must not fail it
@given(candidate_fields)
def test_new_candidate_equals_the_dataclass_init(values: dict[str, Any]) -> None:
    fields = {**values, "expected_cost_usd": values["cost"]}
    del fields["cost"]
    built, expected = _new_candidate(**values), Candidate(**fields)
    assert built == expected
    assert hash(built) == hash(expected)


@settings(deadline=None)  # a loaded machine must not fail it
@given(plan_fields)
def test_new_plan_equals_the_dataclass_init(values: dict[str, Any]) -> None:
    assert _new_plan(**values) == Plan(**values)


@settings(deadline=None)  # a loaded machine must not fail it
@given(context_fields)
def test_new_context_equals_the_dataclass_init(values: dict[str, Any]) -> None:
    assert _new_context(**values) == PlanContext(**values)
