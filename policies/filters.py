"""Filters: may this model serve this request? Each returns None to pass, or the reason it rejects.

Every filter is a small pure callable ``(model, context) -> str | None`` (tenacity's stop/wait
style), so each can be tested alone with a hand-made context. The planner applies them in
order and records the first reason that rejects a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol

from policies.tokens import TRUST_FACTOR
from providers.catalog import ModelInfo

if TYPE_CHECKING:
    from policies.plan import RouteRequest

# How a missing capability reads in a reason: "no tool support".
CAPABILITY_WORDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "tools": "tool",
        "parallel_tools": "parallel tool call",
        "vision": "vision",
        "json_schema": "json_schema",
        "streaming": "streaming",
        "responses": "native Responses API",
        "prefill": "prefill",
    }
)

NO_PRICE: Final = "no price: can't be budgeted — set input_cost_per_mtok/output_cost_per_mtok"
CATALOG_FREE: Final = (
    "priced $0 by the catalog, not by the policy: can't be budgeted — set input_cost_per_mtok: 0 and"
    " output_cost_per_mtok: 0 if it really is free"
)

BudgetCheck = Callable[[ModelInfo, float], "str | None"]
"""Called with a model and this request's worst-case cost on it; returns a reason to reject, or None."""


class Observations(Protocol):
    """What the client has learnt from earlier calls (read-only for planning)."""

    def expected_output_tokens(self, feature: str, model: str) -> float | None: ...

    def latency_ms(self, model: str) -> float | None: ...


class NoObservations:
    """Nothing observed yet: policy defaults apply."""

    def expected_output_tokens(self, feature: str, model: str) -> float | None:
        return None

    def latency_ms(self, model: str) -> float | None:
        return None


@dataclass(frozen=True, slots=True)
class PlanContext:
    """Everything a filter or ranking may look at, besides the model itself."""

    request: RouteRequest
    requires: frozenset[str] = frozenset()
    floors: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    health: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    budget: BudgetCheck | None = None
    observed: Observations = field(default_factory=NoObservations)
    expected_output_tokens: int = 256
    # A budget covers this request (the feature's or the policy-wide one), and the models whose
    # prices the policy itself states (so a $0 there is a declaration, not a gap in the catalog).
    budgeted: bool = False
    declared_prices: frozenset[str] = frozenset()


class Filter(Protocol):
    def __call__(self, model: ModelInfo, context: PlanContext) -> str | None: ...


# Request needs that are not capabilities a policy declares, but what a provider's API cannot do at
# all: ``n`` > 1 and ``logprobs``. Every API the router speaks answers ``n`` choices (OpenAI's and
# OpenAI-compatible servers' ``n``, Gemini's ``candidateCount``) and log probabilities, but
# Anthropic's Messages API, which answers one choice per call and no logprobs: sent there, ``n=3``
# came back as one choice and ``logprobs=True`` as none, silently.
SEVERAL_CHOICES: Final = "several_choices"
LOGPROBS: Final = "logprobs"
# Each such need: the providers whose API cannot meet it, and the reason routing shows.
UNABLE_PROVIDERS: Final[Mapping[str, tuple[frozenset[str], str]]] = MappingProxyType(
    {
        SEVERAL_CHOICES: (frozenset({"anthropic"}), "answers one choice per call, n={choices} asked"),
        LOGPROBS: (frozenset({"anthropic"}), "returns no logprobs"),
    }
)


def _missing(needed: frozenset[str], model: ModelInfo, choices: int = 1) -> str | None:
    missing = needed - model.supports
    if not missing:
        return None
    reasons = [
        f"no {CAPABILITY_WORDS.get(c, c)} support" for c in sorted(missing) if c not in UNABLE_PROVIDERS
    ]
    reasons += [
        reason.format(choices=choices)
        for need, (providers, reason) in UNABLE_PROVIDERS.items()
        if need in missing and model.provider in providers
    ]
    return ", ".join(reasons) or None


def healthy(model: ModelInfo, context: PlanContext) -> str | None:
    """Skip a model the resilience layer has put in cooldown."""
    return context.health.get(model.name)


def has_required_capabilities(model: ModelInfo, context: PlanContext) -> str | None:
    """The route's and the feature's ``require:``."""
    reason = _missing(context.requires, model)
    return f"{reason} (required by the policy)" if reason else None


def serves_request(model: ModelInfo, context: PlanContext) -> str | None:
    """What the request itself needs: tools, parallel tool calls, images, a JSON schema, streaming,
    several choices (``n`` > 1)."""
    request = context.request
    return _missing(request.needs, model, request.choices)


def meets_quality(model: ModelInfo, context: PlanContext) -> str | None:
    """Quality floors; a model with no published score for a named benchmark does not pass."""
    for benchmark, floor in context.floors.items():
        score = model.quality.get(benchmark)
        if score is None:
            return f"no {benchmark} score (floor {floor:g})"
        if score < floor:
            return f"{benchmark} {score:g} < {floor:g}"
    return None


def priced_for_budget(model: ModelInfo, context: PlanContext) -> str | None:
    """Under a budget, a model must have a known price: an unknown one would reserve and settle $0.

    A free model says so in the policy (``input_cost_per_mtok: 0``); a $0 that only the catalog
    claims (litellm lists some paid models at $0) is treated as unknown.
    """
    if not context.budgeted:
        return None
    if not model.priced:
        return NO_PRICE
    if (
        not model.input_cost_per_mtok
        and not model.output_cost_per_mtok
        and model.name not in context.declared_prices
    ):
        return CATALOG_FREE
    return None


def fits_context(model: ModelInfo, context: PlanContext) -> str | None:
    """Prompt plus requested output within the context window; requested output within max output.

    Counts exactly only when the estimate is too close to the limit to trust (policies.tokens).
    A model whose window is unknown passes: the provider's own context error moves the request on.
    """
    requested = context.request.max_output_tokens or 0
    if requested and model.max_output_tokens is not None and requested > model.max_output_tokens:
        return f"max output {model.max_output_tokens:,} < {requested:,} requested"
    window = model.context_window
    prompt = context.request.prompt
    if window is None or prompt is None:
        return None
    needed = prompt.tokens_against(max(window - requested, 1)) + requested
    if needed > window:
        return f"context {window:,} < {needed:,} needed"
    return None


def fits_every_context(request: RouteRequest, min_window: int | None, min_max_output: int | None) -> bool:
    """Whether ``fits_context`` passes every model whose smallest window and max output are these,
    without counting the prompt: then planning skips the check per model (same verdicts, less time).

    Holds when the requested output is within the smallest max output and the prompt, by the same
    test ``PromptSize.tokens_against`` applies, fits the smallest window beside it.
    """
    requested = request.max_output_tokens or 0
    if requested and min_max_output is not None and requested > min_max_output:
        return False
    prompt = request.prompt
    if min_window is None or prompt is None:
        return True
    room = min_window - requested
    if room < 1:
        return False
    if prompt.counted:
        return prompt.best <= room
    return prompt.estimate * TRUST_FACTOR <= room


def worst_case_tokens(model: ModelInfo, context: PlanContext) -> tuple[int, int]:
    """(prompt, output) tokens at most billed for this request on this model; output over all choices.

    The prompt is billed once, the output once per choice (``n``). Each choice writes at most the
    request's limit (the larger of ``max_tokens`` and ``max_completion_tokens``, which include
    reasoning tokens), else the model's max output, else what the window leaves after the smallest
    prompt the request can be (the exact count if one was made, else nothing).
    """
    request = context.request
    prompt = request.prompt
    output = request.max_output_tokens or model.max_output_tokens
    if output is None and model.context_window is not None:
        smallest = prompt.best if prompt is not None and prompt.counted else 0
        output = max(model.context_window - smallest, 1)
    if output is None:
        # Nothing bounds it: the policy's assumption. Under a budget such a model is refused
        # (bounded_for_budget) unless the request sets max_tokens.
        output = context.expected_output_tokens
    return (prompt.upper_bound if prompt is not None else 0), output * request.choices


def worst_case_cost(model: ModelInfo, context: PlanContext) -> float | None:
    """This request's most expensive outcome on this model: every token it may be billed for."""
    if not model.priced:
        return None
    assert model.input_cost_per_mtok is not None and model.output_cost_per_mtok is not None
    # Bounds, not estimates: a budget reservation must cover whatever the provider will bill.
    prompt, output = worst_case_tokens(model, context)
    return (prompt * model.input_cost_per_mtok + output * model.output_cost_per_mtok) / 1_000_000


def bounded_for_budget(model: ModelInfo, context: PlanContext) -> str | None:
    """Under a budget, a request's output must be bounded: by max_tokens, or the model's known limits."""
    if (
        context.budgeted
        and context.request.max_output_tokens is None
        and model.max_output_tokens is None
        and model.context_window is None
    ):
        return (
            "no output limit: can't be budgeted — set max_output_tokens (or context_window) under"
            f" models.{model.name}, or send max_tokens"
        )
    return None


def within_budget(model: ModelInfo, context: PlanContext) -> str | None:
    """The budget layer's verdict on this request's worst case; no budget, no opinion."""
    if context.budget is None:
        return None
    worst = worst_case_cost(model, context)
    if worst is None:
        return NO_PRICE
    return context.budget(model, worst)


# Order decides which reason is recorded: the cheapest checks first, the budget last. Health comes
# after what the request needs, so a model rejected for its health is one that could serve the
# request once it recovers: when only such models are left, the router answers 429/503 with a
# Retry-After, not a 400 (router._pipeline.Session.exhausted).
STATIC_FILTERS: Final[tuple[Filter, ...]] = (has_required_capabilities, meets_quality, priced_for_budget)
REQUEST_FILTERS: Final[tuple[Filter, ...]] = (
    serves_request,
    fits_context,
    healthy,
    bounded_for_budget,
    within_budget,
)
