"""Planning: from a policy and one request to the ranked models to try. Pure: no I/O, no clock.

``Planner.plan`` runs once per request. What depends only on the route and the feature (their
required capabilities and quality floors) is worked out the first time a pair is seen and
reused; per request only the request's own needs, its size, provider health and the budget
are checked, then the survivors are ranked by the route's strategy.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from policies.filters import (
    LOGPROBS,
    REQUEST_FILTERS,
    SEVERAL_CHOICES,
    STATIC_FILTERS,
    BudgetCheck,
    Filter,
    NoObservations,
    Observations,
    PlanContext,
    bounded_for_budget,
    fits_context,
    fits_every_context,
    healthy,
    serves_request,
    within_budget,
)
from policies.rankings import RANKINGS
from policies.tokens import PromptSize, has_images
from providers.base import NATIVE_RESPONSES, NativeResponses
from providers.catalog import ModelInfo
from providers.tiers import FLEX, flex_name

if TYPE_CHECKING:
    from policies.adequacy import Adequacy, AdequacyGate
    from policies.schema import FeatureSpec, Policy, RouteSpec

DEFAULT_FEATURE: Final = "default"
DEFAULT_MAX_SHORTFALL: Final = 0.05
_NO_HEALTH: Final[Mapping[str, str]] = MappingProxyType({})
_NO_OBSERVATIONS: Final = NoObservations()
_NO_FOLLOWERS: Final[Mapping[str, Candidate]] = MappingProxyType({})


class UnknownModelError(LookupError):
    """``model=`` names neither a route, an alias nor a model of the policy."""

    def __init__(self, requested: str, routes: tuple[str, ...], models: tuple[str, ...]) -> None:
        self.requested = requested
        self.routes = routes
        self.models = models
        super().__init__(
            f"The model {requested!r} is not in the policy. Use one of its routes "
            f"({', '.join(routes) or 'none defined'}) or models ({', '.join(models)}), "
            "or add it under models: (or aliases:) in the policy file."
        )


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What planning needs to know about one request."""

    model: str
    feature: str = DEFAULT_FEATURE
    stream: bool = False
    needs: frozenset[str] = frozenset()
    prompt: PromptSize | None = None
    max_output_tokens: int | None = None  # per choice
    choices: int = 1  # OpenAI's n: each choice is billed for its output, the prompt once
    # The caller's ``service_tier``: "flex" asks for flex, any other value for none; None = the policy's.
    service_tier: str | None = None


_NO_NEEDS: Final[frozenset[str]] = frozenset()


def describe_request(model: str, feature: str, body: Mapping[str, Any], stream: bool) -> RouteRequest:
    """The capabilities a request needs and its size, from the body as the openai client sends it."""
    messages = body.get("messages") or ()
    tools = body.get("tools") or None
    needs: set[str] = set()
    if tools:
        needs.add("tools")
        if body.get("parallel_tool_calls") is True and len(tools) > 1:
            needs.add("parallel_tools")
    if has_images(messages):
        needs.add("vision")
    response_format = body.get("response_format")
    # None first: Mapping's ABC check is a Python-level call, on every request without the field.
    if (
        response_format is not None
        and isinstance(response_format, Mapping)
        and response_format.get("type") == "json_schema"
    ):
        needs.add("json_schema")
    if stream:
        needs.add("streaming")
    choices = int(body.get("n") or 1)
    if choices > 1:
        needs.add(SEVERAL_CHOICES)  # not every API answers n choices (policies.filters)
    if body.get("logprobs") is True:
        needs.add(LOGPROBS)
    native = body.get(NATIVE_RESPONSES)
    if isinstance(native, NativeResponses) and native.required:
        needs.add("responses")  # a Responses API call only a native Responses server can serve
    # Both given: which one a provider honours varies (older servers ignore max_completion_tokens),
    # so the larger bounds what it may bill.
    limit: int | None = None
    for value in (body.get("max_completion_tokens"), body.get("max_tokens")):
        if value:
            limit = int(value) if limit is None else max(limit, int(value))
    tier = body.get("service_tier")
    return RouteRequest(
        model=model,
        feature=feature,
        stream=stream,
        needs=frozenset(needs) if needs else _NO_NEEDS,
        prompt=PromptSize(messages, tools),
        max_output_tokens=limit,
        choices=choices,
        service_tier=tier if isinstance(tier, str) else None,
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model the request may be sent to, in rank order, with what it is expected to cost."""

    model: str
    provider: str
    expected_cost_usd: float | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """The ranked candidates, the rejected models with the reason for each, and the rules applied."""

    route: str | None
    strategy: str
    candidates: tuple[Candidate, ...]
    rejected: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    rules: tuple[str, ...] = ()
    # Learned adequacy judged this request: the file, and the prompt's term counts under it (what
    # the ledger keeps for ``router train --from-ledger``; router._feedback).
    adequacy: Adequacy | None = None
    adequacy_counts: tuple[Any, Any] | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    """A resolved ``model=``: the models to consider and how to order them."""

    route: str | None
    strategy: str
    candidates: tuple[str, ...]
    fallbacks: tuple[str, ...]
    requires: frozenset[str]
    floors: Mapping[str, float]
    expected_output_tokens: int
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Static:
    """A target's verdicts that do not depend on the request: per (target, feature), computed once."""

    target: _Target
    context_requires: frozenset[str]
    context_floors: Mapping[str, float]
    eligible: tuple[tuple[ModelInfo, bool], ...]  # (model, is_fallback), in listed order
    rejected: Mapping[str, str]
    rules: tuple[str, ...]
    gate: AdequacyGate | None = None
    # A budget covers these requests, and some eligible model has no known output limit: then a
    # request without max_tokens cannot be bounded on it (policies.filters.bounded_for_budget).
    budgeted: bool = False
    unbounded: bool = False
    flex: bool = False  # the route or feature asks for the flex tier (service_tier: flex)
    # Per request these decide whether fits_context can reject anything (filters.fits_every_context).
    min_window: int | None = None
    min_max_output: int | None = None
    # Per eligible model, what a candidate is built from: (model, provider, input and output price,
    # is_fallback). Read once per model per request, so looked up here once.
    rows: tuple[tuple[str, str, float | None, float | None, bool], ...] = ()


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
        # Adequacy files are read here, once, so that a missing or bad one fails the client's
        # construction (with its path) and planning stays free of I/O.
        self._adequacy: dict[str, Adequacy] = {}
        specs: list[RouteSpec | FeatureSpec] = [*policy.routes.values(), *policy.features.values()]
        for spec in specs:
            if spec.adequacy is not None and spec.adequacy not in self._adequacy:
                self._adequacy[spec.adequacy] = load_adequacy(spec.adequacy, policy.source)
        self._targets: dict[str, _Target] = {name: self._route_target(name) for name in policy.routes}
        # Models whose prices the policy states itself: there, $0 means free (policies.filters).
        self._declared_prices = frozenset(
            name
            for name, spec in policy.models.items()
            if spec.input_cost_per_mtok is not None and spec.output_cost_per_mtok is not None
        )
        # Memoized pure results, keyed by (model=, feature); bounded by routes x features in the policy.
        self._static: dict[tuple[str, str], _Static] = {}

    # ------------------------------------------------------------------ resolution

    def _route_target(self, name: str) -> _Target:
        spec = self.policy.routes[name]
        candidates = spec.candidates if spec.candidates is not None else tuple(self.policy.models)
        fallbacks = tuple(f for f in spec.fallbacks if f not in candidates)
        rules = [f"route {name}: {spec.strategy} over {', '.join(candidates)}"]
        if fallbacks:
            rules.append(f"route {name}: then fallbacks {', '.join(fallbacks)}")
        if spec.require:
            rules.append(f"route {name} requires {', '.join(spec.require)}")
        floors = dict(spec.min_quality or {})
        if floors:
            rules.append(f"route {name} min_quality " + ", ".join(f"{b} ≥ {v:g}" for b, v in floors.items()))
        return _Target(
            route=name,
            strategy=spec.strategy,
            candidates=candidates,
            fallbacks=fallbacks,
            requires=frozenset(spec.require),
            floors=MappingProxyType(floors),
            expected_output_tokens=spec.expected_output_tokens or self.policy.expected_output_tokens,
            rules=tuple(rules),
        )

    def _target(self, requested: str) -> _Target:
        alias = self.policy.aliases.get(requested)
        if alias is not None and alias in self._targets:
            target = self._targets[alias]
            return replace(target, rules=(f"alias {requested} → route {alias}", *target.rules))
        if alias is not None and alias in self.catalog:
            requested = alias
        route_target = self._targets.get(requested)
        if route_target is not None:
            return route_target
        if requested in self.catalog:
            fallbacks = tuple(f for f in self.policy.fallbacks if f != requested)
            rules = [f"model {requested} named directly"]
            if fallbacks:
                rules.append(f"then the policy's fallbacks {', '.join(fallbacks)}")
            return _Target(
                route=None,
                strategy="direct",
                candidates=(requested,),
                fallbacks=fallbacks,
                requires=frozenset(),
                floors=MappingProxyType({}),
                expected_output_tokens=self.policy.expected_output_tokens,
                rules=tuple(rules),
            )
        raise UnknownModelError(requested, tuple(self._targets), tuple(self.catalog))

    def _static_for(self, requested: str, feature: str) -> _Static:
        key = (requested, feature)
        static = self._static.get(key)
        if static is None:
            static = self._static[key] = self._build_static(self._target(requested), feature)
        return static

    def _build_static(self, target: _Target, feature_name: str) -> _Static:
        requires = set(target.requires)
        floors = dict(target.floors)
        rules = list(target.rules)
        feature = self.policy.features.get(feature_name)
        if feature is not None:
            if feature.require:
                requires.update(feature.require)
                rules.append(f"feature {feature_name} requires {', '.join(feature.require)}")
            for benchmark, floor in (feature.min_quality or {}).items():
                floors[benchmark] = max(floor, floors.get(benchmark, floor))
            if feature.min_quality:
                rules.append(
                    f"feature {feature_name} min_quality "
                    + ", ".join(f"{b} ≥ {v:g}" for b, v in feature.min_quality.items())
                )
        budgeted = self.policy.budget is not None or (feature is not None and feature.budget is not None)
        context = PlanContext(
            request=RouteRequest(model=""),
            requires=frozenset(requires),
            floors=MappingProxyType(floors),
            budgeted=budgeted,
            declared_prices=self._declared_prices,
        )
        eligible: list[tuple[ModelInfo, bool]] = []
        rejected: dict[str, str] = {}
        for name, is_fallback in [(n, False) for n in target.candidates] + [
            (n, True) for n in target.fallbacks
        ]:
            model = self.catalog[name]
            reason = self._unavailable.get(name)
            for check in STATIC_FILTERS:
                if reason is not None:
                    break
                reason = check(model, context)
            if reason is None and target.strategy == "cheapest" and not is_fallback and not model.priced:
                reason = "no known price, so 'cheapest' cannot rank it (set its prices in the policy)"
            if reason is None:
                eligible.append((model, is_fallback))
            else:
                rejected[name] = reason
        gate = self._gate(target, feature)
        if gate is not None and not gate.auto:
            rules.append(gate.describe())  # with auto, the weight is per request: _gate_candidates
        route = self.policy.routes.get(target.route) if target.route is not None else None
        tiers = [spec.service_tier for spec in (feature, route) if spec is not None and spec.service_tier]
        return _Static(
            target=target,
            context_requires=frozenset(requires),
            context_floors=MappingProxyType(floors),
            eligible=tuple(eligible),
            rejected=MappingProxyType(rejected),
            rules=tuple(rules),
            gate=gate,
            budgeted=budgeted,
            unbounded=budgeted
            and any(m.max_output_tokens is None and m.context_window is None for m, _ in eligible),
            flex=bool(tiers) and tiers[0] == FLEX,
            min_window=min((w for m, _ in eligible if (w := m.context_window) is not None), default=None),
            min_max_output=min(
                (o for m, _ in eligible if (o := m.max_output_tokens) is not None), default=None
            ),
            rows=tuple(
                (m.name, m.provider, m.input_cost_per_mtok, m.output_cost_per_mtok, f) for m, f in eligible
            ),
        )

    def _gate(self, target: _Target, feature: FeatureSpec | None) -> AdequacyGate | None:
        """The adequacy file and threshold for a (route, feature): the feature's settings win."""
        route = self.policy.routes.get(target.route) if target.route is not None else None
        specs = [spec for spec in (feature, route) if spec is not None]
        path = next((s.adequacy for s in specs if s.adequacy is not None), None)
        if path is None:
            return None
        adequacy = self._adequacy[path]
        min_success = next((s.min_success for s in specs if s.min_success is not None), None)
        max_shortfall = next((s.max_shortfall for s in specs if s.max_shortfall is not None), None)
        cost_weight = next((s.cost_weight for s in specs if s.cost_weight is not None), None)
        if min_success is None and max_shortfall is None and cost_weight is None:
            # None set: what `router train --target` found on held-out folds, else a 5-point margin.
            suggested = adequacy.suggested
            min_success = suggested.get("min_success")
            cost_weight = suggested.get("cost_weight")
            max_shortfall = suggested.get(
                "max_shortfall",
                DEFAULT_MAX_SHORTFALL if min_success is None and cost_weight is None else None,
            )
        on_inadequate = next((s.on_inadequate for s in specs if s.on_inadequate is not None), "best")
        from policies.adequacy import AdequacyGate  # a policy without adequacy: never imported

        if cost_weight == "auto":
            # Per request: the suggestion for the task recognised in the prompt (AdequacyGate.resolve).
            return AdequacyGate(adequacy, min_success, max_shortfall, on_inadequate, None, auto=True)
        return AdequacyGate(adequacy, min_success, max_shortfall, on_inadequate, cost_weight)

    # ------------------------------------------------------------------ planning

    def plan(
        self,
        request: RouteRequest,
        *,
        health: Mapping[str, str] = _NO_HEALTH,
        budget: BudgetCheck | None = None,
        observed: Observations = _NO_OBSERVATIONS,
    ) -> Plan:
        """Rank the models that may serve ``request``; reject the others with a reason each."""
        static = self._static_for(request.model, request.feature)
        target = static.target
        context = _new_context(
            request,
            static.context_requires,
            static.context_floors,
            health,
            budget,
            observed,
            target.expected_output_tokens,
            static.budgeted,
        )
        # The static rejections are shared, read-only: copied only when this request adds one.
        rejected: Mapping[str, str] = static.rejected
        added: dict[str, str] | None = None
        prompt = request.prompt
        prompt_tokens = prompt.best if prompt is not None else 0
        checks = _active_filters(
            request,
            health,
            budget,
            static.unbounded,
            not fits_every_context(request, static.min_window, static.min_max_output),
        )
        # What every candidate's expected cost shares: its output tokens unless observations say
        # otherwise per model (then _output_for asks them).
        choices = request.choices
        output = request.max_output_tokens
        per_model = output is None and observed is not _NO_OBSERVATIONS
        if output is None and not per_model:
            output = target.expected_output_tokens
        ranked: list[Candidate] = []
        fallbacks: list[Candidate] = []
        # With an adequacy gate, the ranked candidates are built after it (most are rejected): until
        # then, each is (model, provider, expected cost, output tokens).
        gate = static.gate if prompt is not None else None
        pending: list[tuple[str, str, float | None, int]] = []
        for (name, provider, price_in, price_out, is_fallback), (model, _) in zip(
            static.rows, static.eligible, strict=True
        ):
            if checks:
                reason = None
                for check in checks:
                    reason = check(model, context)
                    if reason is not None:
                        break
                if reason is not None:
                    if added is None:
                        added = dict(rejected)
                    added[name] = reason
                    continue
            tokens = _output_for(request, context, name) if per_model else output
            assert tokens is not None
            cost = None
            if price_in is not None and price_out is not None:
                cost = (prompt_tokens * price_in + tokens * choices * price_out) / 1_000_000
            if gate is not None and not is_fallback:
                pending.append((name, provider, cost, tokens))
                continue
            candidate = _new_candidate(name, provider, cost, prompt_tokens, tokens, is_fallback)
            (fallbacks if is_fallback else ranked).append(candidate)
        rules = static.rules
        counts = None
        if gate is not None and pending:
            assert prompt is not None
            if added is None:
                added = dict(rejected)
            kept, gate_rules, counts = _gate_candidates(gate, prompt.messages, pending, prompt_tokens, added)
            ranked = [_new_candidate(n, p, c, prompt_tokens, t, False) for n, p, c, t in kept]
            rules = (*rules, *gate_rules)
        flex = static.flex if request.service_tier is None else request.service_tier == FLEX
        followers: Mapping[str, Candidate] = _NO_FOLLOWERS
        if flex:
            if added is None:
                added = dict(rejected)
            ranked, fallbacks, followers, rule = self._flex(ranked, fallbacks, context, checks, added)
            rules = (*rules, rule)
        ordered = RANKINGS[target.strategy](ranked, context)
        if followers:
            ordered = _then_standard(ordered, followers)
            fallbacks = _then_standard(fallbacks, followers)
        if prompt is not None:
            rules = (*rules, _prompt_rule(prompt.best, prompt.counted))
        if request.needs:
            rules = (*rules, _needs_rule(request.needs))
        return _new_plan(
            target.route,
            target.strategy,
            (*ordered, *fallbacks),
            rejected if added is None else MappingProxyType(added),
            rules,
            static.gate.adequacy if counts is not None and static.gate is not None else None,
            counts,
        )

    def _flex(
        self,
        ranked: list[Candidate],
        fallbacks: list[Candidate],
        context: PlanContext,
        checks: tuple[Filter, ...],
        rejected: dict[str, str],
    ) -> tuple[list[Candidate], list[Candidate], dict[str, Candidate], str]:
        """A flex request: each candidate with a flex deployment (``<model>@flex``, router._tiers) is
        replaced by it, priced at flex prices so that the ranking sees them; the standard candidate
        is kept to follow it (``_then_standard``). The flex deployment passes the request's filters
        itself (its own breaker, its worst case at flex prices)."""
        request = context.request
        prompt_tokens = request.prompt.best if request.prompt is not None else 0
        followers: dict[str, Candidate] = {}

        def swap(candidate: Candidate) -> Candidate:
            info = self.catalog.get(flex_name(candidate.model))
            if info is None:
                return candidate
            reason = next((r for check in checks if (r := check(info, context)) is not None), None)
            if reason is not None:
                rejected[info.name] = reason
                return candidate
            followers[info.name] = candidate
            return _candidate(info, request, context, prompt_tokens, candidate.fallback)

        ranked = [swap(c) for c in ranked]
        fallbacks = [swap(c) for c in fallbacks]
        if followers:
            rule = f"service tier flex: {', '.join(followers)} at flex prices, each then at standard"
        else:
            rule = "service tier flex: no candidate offers it now (standard prices)"
        return ranked, fallbacks, followers, rule


def _then_standard(candidates: Sequence[Candidate], followers: Mapping[str, Candidate]) -> list[Candidate]:
    """Each flex candidate followed at once by the same model at the standard tier: a flex 429 or
    timeout moves on to it (docs/flex.md)."""
    out: list[Candidate] = []
    for candidate in candidates:
        out.append(candidate)
        follower = followers.get(candidate.model)
        if follower is not None:
            out.append(follower)
    return out


def route_models(policy: Policy, route: str) -> tuple[str, ...]:
    """Every model a route may send a request to: its candidates (all models if none), then fallbacks."""
    spec = policy.routes[route]
    candidates = spec.candidates if spec.candidates is not None else tuple(policy.models)
    return tuple(dict.fromkeys((*candidates, *spec.fallbacks)))


def load_adequacy(path: str, source: str | None) -> Adequacy:
    """An adequacy file named in the policy, relative to the policy file's folder."""
    from policies.adequacy import Adequacy, AdequacyError  # a policy without adequacy: never imported

    resolved = Path(path)
    if not resolved.is_absolute() and source is not None and not source.startswith("<"):
        resolved = Path(source).parent / resolved
    try:
        return Adequacy.load(resolved)
    except AdequacyError as exc:
        raise AdequacyError(f"{exc} (named by adequacy: in {source or 'the policy'})") from None


def _gate_candidates(
    gate: AdequacyGate,
    messages: Sequence[Mapping[str, Any]],
    ranked: list[tuple[str, str, float | None, int]],
    prompt_tokens: int,
    rejected: dict[str, str],
) -> tuple[list[tuple[str, str, float | None, int]], tuple[str, ...], tuple[Any, Any]]:
    """Drop the candidates predicted to fail this request; the rules say what was predicted (and,
    with ``cost_weight: auto``, which task's weight was used). ``ranked``: each candidate as (model,
    provider, expected cost, output tokens), all of ``prompt_tokens``; the kept ones are returned."""
    text = gate.prompt_text(messages)
    counts = gate.adequacy.counts(text)
    predicted_all, task = gate.adequacy.predict_task(*counts)
    # With auto, the weight and its rule per task, worked out once per gate (AdequacyGate.rule_for).
    weight, described = gate.rule_for(task) if gate.auto else (gate.cost_weight, "")
    costs = tokens = None
    if weight is not None:
        costs = {name: cost for name, _, cost, _ in ranked}
        dearest = max(ranked, key=_cost_or_zero)
        tokens = (prompt_tokens, dearest[3])
    reasons, predicted, counts = gate.judge(
        text,
        [name for name, _, _, _ in ranked],
        costs,
        tokens,
        counts=counts,
        cost_weight=weight,
        predicted=predicted_all,
        task=task,  # recognised with the predictions: the neighbour memory's weights are per task
    )
    rejected.update(reasons)
    shown = ", ".join(map("%s %.2f".__mod__, predicted.items()))  # f"{name} {p:.2f}", in C
    rule = f"predicted success: {shown or 'no candidate is in the adequacy file'}"
    floor = gate.min_success
    kept = floor is not None and [n for n, p in predicted.items() if p < floor and n not in reasons]
    if kept:
        rule += f" (none reaches {floor:.2f}: {kept[0]}, the most likely, is kept)"
    rules = (described, rule) if gate.auto else (rule,)
    return [c for c in ranked if c[0] not in reasons], rules, counts


def _cost_or_zero(candidate: tuple[str, str, float | None, int]) -> float:
    """A pending candidate's expected cost, 0 when unknown: what finds the dearest."""
    return candidate[2] or 0.0


def _active_filters(
    request: RouteRequest,
    health: Mapping[str, str],
    budget: BudgetCheck | None,
    unbounded: bool = False,
    context_at_risk: bool = True,
) -> tuple[Filter, ...]:
    """The request filters that can reject anything for this request, in REQUEST_FILTERS order.

    Skipping the ones with nothing to check (no cooldowns, no special needs, no budget, a prompt far
    from every window) keeps planning within its microsecond budget; the verdicts are the same.
    """
    key = (
        bool(health),
        bool(request.needs),
        budget is not None,
        unbounded and request.max_output_tokens is None,
        context_at_risk,
    )
    return _ACTIVE[key]


def _filters_for(
    health: bool, needs: bool, budget: bool, unbounded: bool, context_at_risk: bool
) -> tuple[Filter, ...]:
    return tuple(
        check
        for check in REQUEST_FILTERS
        if (check is not fits_context or context_at_risk)
        and (check is not healthy or health)
        and (check is not serves_request or needs)
        and (check is not within_budget or budget)
        and (check is not bounded_for_budget or unbounded)
    )


# Every combination of the five flags above, worked out at import: 32 entries, read-only.
_ACTIVE: Final[Mapping[tuple[bool, ...], tuple[Filter, ...]]] = MappingProxyType(
    {flags: _filters_for(*flags) for flags in itertools.product((False, True), repeat=5)}
)


def _output_for(request: RouteRequest, context: PlanContext, model: str) -> int:
    """The output tokens a request is expected to write on ``model``: its limit, else what was observed."""
    output = request.max_output_tokens
    if output is None:
        seen = context.observed.expected_output_tokens(request.feature, model)
        output = round(seen) if seen is not None else context.expected_output_tokens
    return output


@functools.lru_cache(maxsize=4096)
def _prompt_rule(tokens: int, counted: bool) -> str:
    return f"prompt {tokens:,} tokens ({'counted' if counted else 'estimated'})"


@functools.lru_cache(maxsize=256)
def _needs_rule(needs: frozenset[str]) -> str:
    return f"request needs {', '.join(sorted(needs))}"


# Planning builds ten or more of these frozen values per request; their generated __init__ sets each
# field through object.__setattr__, which costs twice what setting the slots directly does.
_new_object = object.__new__
_c = {name: Candidate.__dict__[name].__set__ for name in Candidate.__slots__}
_p = {name: Plan.__dict__[name].__set__ for name in Plan.__slots__}
_x = {name: PlanContext.__dict__[name].__set__ for name in PlanContext.__slots__}


def _new_candidate(
    model: str,
    provider: str,
    cost: float | None,
    prompt_tokens: int,
    output_tokens: int,
    fallback: bool,
    _set_model: Any = _c["model"],
    _set_provider: Any = _c["provider"],
    _set_cost: Any = _c["expected_cost_usd"],
    _set_prompt: Any = _c["prompt_tokens"],
    _set_output: Any = _c["output_tokens"],
    _set_fallback: Any = _c["fallback"],
) -> Candidate:
    """``Candidate(model, provider, cost, prompt_tokens, output_tokens, fallback)``, faster."""
    candidate: Candidate = _new_object(Candidate)
    _set_model(candidate, model)
    _set_provider(candidate, provider)
    _set_cost(candidate, cost)
    _set_prompt(candidate, prompt_tokens)
    _set_output(candidate, output_tokens)
    _set_fallback(candidate, fallback)
    return candidate


def _new_plan(
    route: str | None,
    strategy: str,
    candidates: tuple[Candidate, ...],
    rejected: Mapping[str, str],
    rules: tuple[str, ...],
    adequacy: Adequacy | None,
    adequacy_counts: tuple[Any, Any] | None,
    _set_route: Any = _p["route"],
    _set_strategy: Any = _p["strategy"],
    _set_candidates: Any = _p["candidates"],
    _set_rejected: Any = _p["rejected"],
    _set_rules: Any = _p["rules"],
    _set_adequacy: Any = _p["adequacy"],
    _set_counts: Any = _p["adequacy_counts"],
) -> Plan:
    """``Plan(...)`` with every field given, faster (see ``_new_candidate``)."""
    plan: Plan = _new_object(Plan)
    _set_route(plan, route)
    _set_strategy(plan, strategy)
    _set_candidates(plan, candidates)
    _set_rejected(plan, rejected)
    _set_rules(plan, rules)
    _set_adequacy(plan, adequacy)
    _set_counts(plan, adequacy_counts)
    return plan


def _new_context(
    request: RouteRequest,
    requires: frozenset[str],
    floors: Mapping[str, float],
    health: Mapping[str, str],
    budget: BudgetCheck | None,
    observed: Observations,
    expected_output_tokens: int,
    budgeted: bool,
    _set_request: Any = _x["request"],
    _set_requires: Any = _x["requires"],
    _set_floors: Any = _x["floors"],
    _set_health: Any = _x["health"],
    _set_budget: Any = _x["budget"],
    _set_observed: Any = _x["observed"],
    _set_expected: Any = _x["expected_output_tokens"],
    _set_budgeted: Any = _x["budgeted"],
    _set_declared: Any = _x["declared_prices"],
) -> PlanContext:
    """``PlanContext(...)`` for one request (no declared prices: only static filters read them)."""
    context: PlanContext = _new_object(PlanContext)
    _set_request(context, request)
    _set_requires(context, requires)
    _set_floors(context, floors)
    _set_health(context, health)
    _set_budget(context, budget)
    _set_observed(context, observed)
    _set_expected(context, expected_output_tokens)
    _set_budgeted(context, budgeted)
    _set_declared(context, _NO_PRICES)
    return context


_NO_PRICES: Final[frozenset[str]] = frozenset()


def _candidate(
    model: ModelInfo, request: RouteRequest, context: PlanContext, prompt_tokens: int, fallback: bool
) -> Candidate:
    output = _output_for(request, context, model.name)
    price_in = model.input_cost_per_mtok
    price_out = model.output_cost_per_mtok
    cost = None
    if price_in is not None and price_out is not None:
        cost = (prompt_tokens * price_in + output * request.choices * price_out) / 1_000_000
    return _new_candidate(model.name, model.provider, cost, prompt_tokens, output, fallback)
