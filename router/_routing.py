"""The decision record attached to every response as ``response.routing``: what was chosen and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

from policies.plan import Candidate
from providers.tiers import tier_of


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    # Why the provider's reported usage was not believed (negative, fractional, beyond the model's
    # limits); the figures above are then this request's worst case, and that is what was charged.
    suspect: str | None = None
    # The tier the provider says it served ("flex", "standard"; providers.tiers.reported_tier): the
    # tokens are priced at it. None when the provider did not say (priced at the tier asked for).
    # Not part of equality: two usages are equal when their token figures are.
    service_tier: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call to one model. ``error`` is the error class (``"server"``, ...) or None on success."""

    model: str
    provider: str
    error: str | None = None
    status: int | None = None
    message: str | None = None
    latency_ms: float = 0.0
    wait_s: float = 0.0
    # Wall-clock start (Unix seconds), for logs and trace spans.
    started_at: float = 0.0
    # Streams only: from the start of the call to its first content chunk.
    ttft_ms: float | None = None
    # Streams only: unreadable events skipped (the stream still ended properly, or this attempt failed).
    malformed_events: int = 0
    # The deployment called, when the model lists several (policy deployments:), and why it was picked.
    deployment: str | None = None
    picked_by: str | None = None

    @property
    def service_tier(self) -> str:
        """The tier this attempt asked for: ``flex`` for a model's flex deployment (``<model>@flex``)."""
        return tier_of(self.model)


@dataclass(frozen=True, slots=True)
class BudgetEvent:
    """A budget threshold crossed, a cap that refused the request, or a model skipped to stay under it."""

    # "warning" | "exceeded" | "downgraded" | "overrun" (the bill passed the reservation) |
    # "estimated" (charged the worst case: cancelled after it was sent) | "ledger_error" (the ledger
    # failed before the call) | "journaled" (after it)
    kind: str
    scope: str  # the feature, or "*" for the policy-wide budget
    window: str  # hour | day | week | month | total
    limit_usd: float
    spent_usd: float
    reserved_usd: float = 0.0
    threshold: float | None = None  # warnings: the warn_at fraction crossed
    model: str | None = None  # downgraded: the model that no longer fits
    resets_at: float | None = None  # Unix seconds; None for the total window
    # overrun: how much the provider's bill passed this call's reservation (settled and counted in full)
    overrun_usd: float | None = None
    amount_usd: float | None = None  # estimated / journaled: what this request was charged
    detail: str | None = None  # ledger_error / journaled: the LedgerError's message


@dataclass(frozen=True, slots=True)
class RoutingRecord:
    """Why this model answered: the plan, every attempt, and what it cost."""

    request_id: str
    model: str | None
    provider: str | None
    feature: str
    route: str | None
    strategy: str
    requested: str
    candidates: tuple[Candidate, ...] = ()
    rejected: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    rules: tuple[str, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    usage: Usage | None = None
    cost_usd: float | None = None
    latency_ms: float = 0.0
    started_at: float = 0.0
    stream: bool = False
    budget_events: tuple[BudgetEvent, ...] = ()
    # The deployment that answered, when the model lists several (policy deployments:).
    deployment: str | None = None

    @property
    def service_tier(self) -> str | None:
        """The tier the answer was billed at: the one the provider reported, else the one asked for."""
        if self.model is None:
            return None
        reported = self.usage.service_tier if self.usage is not None else None
        return reported or tier_of(self.model)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, for logs and the CLI."""
        return {
            "request_id": self.request_id,
            "model": self.model,
            "provider": self.provider,
            "feature": self.feature,
            "route": self.route,
            "strategy": self.strategy,
            "requested": self.requested,
            "candidates": [asdict(c) for c in self.candidates],
            "rejected": dict(self.rejected),
            "rules": list(self.rules),
            "attempts": [{**asdict(a), "service_tier": a.service_tier} for a in self.attempts],
            "usage": asdict(self.usage) if self.usage else None,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_ms,
            "started_at": self.started_at,
            "stream": self.stream,
            "budget_events": [asdict(e) for e in self.budget_events],
            "deployment": self.deployment,
            "service_tier": self.service_tier,
        }
