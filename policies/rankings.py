"""Rankings: in which order to try the models that passed the filters.

Each is a pure callable ``(candidates, context) -> candidates``; ties keep the policy's listed
order, so a ranking is deterministic for a given request and set of observations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol

from policies.filters import PlanContext

if TYPE_CHECKING:
    from policies.plan import Candidate


class Ranking(Protocol):
    def __call__(self, candidates: Sequence[Candidate], context: PlanContext) -> list[Candidate]: ...


def ordered(candidates: Sequence[Candidate], context: PlanContext) -> list[Candidate]:
    """As listed in the policy."""
    return list(candidates)


def cheapest(candidates: Sequence[Candidate], context: PlanContext) -> list[Candidate]:
    """By the expected cost of this very request (its prompt tokens, its expected output).

    Candidates without a price never reach here: the planner rejects them for this strategy.
    """
    return sorted(candidates, key=lambda c: c.expected_cost_usd or 0.0)


def fastest(candidates: Sequence[Candidate], context: PlanContext) -> list[Candidate]:
    """By observed latency; models not yet observed go first, in listed order, so they get measured."""
    observed = context.observed

    def key(candidate: Candidate) -> float:
        latency = observed.latency_ms(candidate.model)
        return -1.0 if latency is None else latency

    return sorted(candidates, key=key)


RANKINGS: Final[Mapping[str, Ranking]] = MappingProxyType(
    {"ordered": ordered, "direct": ordered, "cheapest": cheapest, "fastest": fastest}
)
