"""Planning: from a policy and one request to the ranked models to try. Pure: no I/O, no clock.

The router calls ``Planner.plan`` once per request; everything that can be worked out ahead
of time (route tables, per-model catalog entries) is worked out when the Planner is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from policies.schema import Policy
from providers.catalog import ModelInfo

DEFAULT_FEATURE: Final = "default"


class UnknownModelError(LookupError):
    """``model=`` names neither a route, an alias nor a model of the policy."""

    def __init__(self, requested: str, routes: tuple[str, ...], models: tuple[str, ...]) -> None:
        self.requested = requested
        self.routes = routes
        self.models = models
        super().__init__(
            f"The model {requested!r} is not in the policy. Use one of its routes "
            f"({', '.join(routes) or 'none defined'}) or models ({', '.join(models)}), "
            "or add it under models: in the policy file."
        )


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What planning needs to know about one request."""

    model: str
    feature: str = DEFAULT_FEATURE
    stream: bool = False


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model the request may be sent to, in rank order."""

    model: str
    provider: str
    expected_cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The ranked candidates, the rejected models with the reason for each, and the rules applied."""

    route: str | None
    strategy: str
    candidates: tuple[Candidate, ...]
    rejected: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Route:
    name: str
    strategy: str
    candidates: tuple[str, ...]
    fallbacks: tuple[str, ...]


class Planner:
    """Turns requests into plans for one policy and catalog.

    ``unavailable`` names models that cannot be called at all in this process (no API key,
    say) with the reason; they are rejected with that reason in every plan.
    """

    def __init__(
        self,
        policy: Policy,
        catalog: Mapping[str, ModelInfo],
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        self.policy = policy
        self.catalog = catalog
        self._unavailable = dict(unavailable or {})
        all_models = tuple(policy.models)
        self._routes: dict[str, _Route] = {
            name: _Route(
                name=name,
                strategy=spec.strategy,
                candidates=spec.candidates if spec.candidates is not None else all_models,
                fallbacks=spec.fallbacks,
            )
            for name, spec in policy.routes.items()
        }

    def plan(self, request: RouteRequest) -> Plan:
        route = self._routes.get(request.model)
        if route is not None:
            order = _unique(route.candidates + route.fallbacks)
            rules = (f"route {route.name}: {route.strategy} over {', '.join(order)}",)
            return self._filter(route.name, route.strategy, order, rules)
        if request.model in self.catalog:
            rules = (f"model {request.model} named directly",)
            return self._filter(None, "direct", (request.model,), rules)
        raise UnknownModelError(request.model, tuple(self._routes), tuple(self.catalog))

    def _filter(
        self, route: str | None, strategy: str, order: tuple[str, ...], rules: tuple[str, ...]
    ) -> Plan:
        candidates: list[Candidate] = []
        rejected: dict[str, str] = {}
        for name in order:
            reason = self._unavailable.get(name)
            if reason is not None:
                rejected[name] = reason
                continue
            candidates.append(Candidate(model=name, provider=self.catalog[name].provider))
        return Plan(
            route=route,
            strategy=strategy,
            candidates=tuple(candidates),
            rejected=MappingProxyType(rejected),
            rules=rules,
        )


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))
