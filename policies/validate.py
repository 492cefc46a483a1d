"""Checks of a policy against the model catalog: what loading alone cannot see.

The loader checks a policy against itself (keys, types, names that refer to each other), and it
runs at every client start, so it must not depend on anything that changes under the user's feet.
Whether a route can ever do what it says depends on prices, capabilities and benchmark scores, which
come from litellm's price map and change when litellm is upgraded. These checks read that catalog and
are run by ``router validate`` (in CI, after an upgrade, while editing a policy), reported in the
loader's ``file:line: key: message`` form so an editor can jump to each one.

The capability and quality verdicts are the planner's own static filters (``policies.filters``), so
"can never be used" here means exactly what the router would decide on every request.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

from policies._explain import closest, listing
from policies._issue import Path
from policies.filters import STATIC_FILTERS, PlanContext, priced_for_budget
from policies.loader import (
    LoadedPolicy,
    PolicyError,
    Positions,
    Problem,
    load_policy_with_positions,
    parse_policy_with_positions,
)
from policies.plan import RouteRequest
from policies.schema import Policy
from providers.catalog import ModelInfo, resolve_model

__all__ = ["check_policy", "policy_catalog", "validate_policy", "validate_policy_text"]

# How many per-model reasons a "no model can ever serve" message lists before summarising the rest.
_REASONS_SHOWN: Final = 6
_PRICES: Final = ("input_cost_per_mtok", "output_cost_per_mtok")


def validate_policy(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem in a policy file, the loader's and the catalog's, in file order; [] when it is sound.

    ``env`` supplies ``${NAME}`` references (default: os.environ), as for ``load_policy``.
    """
    try:
        loaded = load_policy_with_positions(path, env=env)
    except PolicyError as exc:
        return list(exc.problems)
    return _check_loaded(loaded)


def validate_policy_text(
    text: str, *, source: str = "<string>", env: Mapping[str, str] | None = None
) -> list[Problem]:
    """``validate_policy`` for YAML text, e.g. from an editor buffer; ``source`` names it in problems."""
    try:
        loaded = parse_policy_with_positions(text, source=source, env=env)
    except PolicyError as exc:
        return list(exc.problems)
    return _check_loaded(loaded)


def policy_catalog(policy: Policy) -> dict[str, ModelInfo]:
    """Each model's catalog entry as the router would build it: litellm's map, shipped scores, overrides."""
    return {
        name: resolve_model(
            name, provider=spec.provider, model=spec.model, overrides=spec.catalog_overrides()
        )
        for name, spec in policy.models.items()
    }


def check_policy(
    policy: Policy,
    positions: Positions | None = None,
    *,
    catalog: Mapping[str, ModelInfo] | None = None,
) -> list[Problem]:
    """The catalog-aware checks alone, for a policy that has already loaded.

    Without ``positions`` (a policy built from a dict) problems carry no line. ``catalog`` defaults
    to ``policy_catalog(policy)``; pass one to check against other figures (a client's own, a test's).
    """
    where = positions if positions is not None else Positions(policy.source or "<policy>")
    models = dict(catalog) if catalog is not None else policy_catalog(policy)
    known = sorted({bench for info in models.values() for bench in info.quality})
    problems: list[Problem] = []
    for name, route in policy.routes.items():
        base: Path = ("routes", name)
        if route.strategy == "cheapest":
            problems += _unpriced(policy, name, models, where)
        problems += _unknown_benchmarks(base, route.min_quality, known, where)
        # The rest is judged on the known floors, so a misspelt benchmark hides no other problem.
        problems += _unreachable_in_route(policy, name, models, where, _known(route.min_quality, known))
    for name, feature in policy.features.items():
        base = ("features", name)
        problems += _unknown_benchmarks(base, feature.min_quality, known, where)
        floors = _known(feature.min_quality, known)
        problems += _unservable_feature(name, feature.require, floors, models, where)
    problems += _adequacy_files(policy, where)
    problems += _flexless(policy, models, where)
    problems += _unbudgetable(policy, models, where)
    problems += _environment(policy, where)
    unique = dict.fromkeys(problems)
    return sorted(unique, key=lambda p: (p.line is None, p.line or 0))


def _known(floors: Mapping[str, float] | None, known: list[str]) -> dict[str, float]:
    """The floors on benchmarks some model has a score for (the others are reported on their own)."""
    return {bench: floor for bench, floor in (floors or {}).items() if bench in known}


def _adequacy_files(policy: Policy, where: Positions) -> list[Problem]:
    """An adequacy file that can't be read fails every client built from the policy; one that knows
    none of a route's models judges nothing."""
    from policies.adequacy import AdequacyError
    from policies.plan import load_adequacy, route_models

    problems = []
    sections: list[tuple[str, str, Any]] = [("routes", n, s) for n, s in policy.routes.items()]
    sections += [("features", n, s) for n, s in policy.features.items()]
    for section, name, spec in sections:
        if spec.adequacy is None:
            continue
        path: Path = (section, name, "adequacy")
        try:
            adequacy = load_adequacy(spec.adequacy, policy.source)
        except AdequacyError as exc:
            problems.append(where.problem(path, str(exc)))
            continue
        if section == "routes":
            known = [m for m in route_models(policy, name) if m in adequacy.models]
            if not known:
                problems.append(
                    where.problem(
                        path,
                        f"the adequacy file knows none of route '{name}''s models (it knows "
                        f"{', '.join(adequacy.models[:6])}{', …' if len(adequacy.models) > 6 else ''}), "
                        "so it judges nothing — train it on data with columns named as the route's models",
                    )
                )
    return problems


def _flexless(policy: Policy, models: Mapping[str, ModelInfo], where: Positions) -> list[Problem]:
    """A route or feature that asks for flex where none of its models has a flex tier is served at
    standard prices: worth saying, since its author expects half price (docs/flex.md)."""
    from policies.plan import route_models
    from providers.registry import provider_spec
    from providers.tiers import FLEX, offers_flex

    def flex(name: str) -> bool:
        spec = policy.models[name]
        declared = spec.flex_input_cost_per_mtok is not None and spec.flex_output_cost_per_mtok is not None
        return offers_flex(
            spec.provider, provider_spec(spec.provider).adapter, models[name].supports_flex, declared
        )

    sections: list[tuple[str, str, Any, tuple[str, ...]]] = [
        ("routes", n, s, route_models(policy, n)) for n, s in policy.routes.items()
    ]
    sections += [("features", n, s, tuple(policy.models)) for n, s in policy.features.items()]
    problems = []
    for section, name, spec, candidates in sections:
        if spec.service_tier == FLEX and not any(flex(model) for model in candidates):
            problems.append(
                where.problem(
                    (section, name, "service_tier"),
                    f"none of {', '.join(candidates)} has a flex tier, so these requests are served at"
                    " standard prices — add a model with flex prices (an OpenAI model such as gpt-5-mini,"
                    " or flex_input_cost_per_mtok and flex_output_cost_per_mtok under models.<name>)",
                )
            )
    return problems


def _check_loaded(loaded: LoadedPolicy) -> list[Problem]:
    return check_policy(loaded.policy, loaded.positions)


def _unpriced(policy: Policy, route: str, models: Mapping[str, ModelInfo], where: Positions) -> list[Problem]:
    """Under ``cheapest`` the planner rejects a candidate without both prices on every request.

    An unknown price is never taken as zero (that would make the model win every ranking), so
    such a candidate is dead weight until its prices are written into the policy.
    """
    spec = policy.routes[route]
    listed: Iterable[tuple[str, Path]]
    if spec.candidates is None:
        # Every model is a candidate; nothing names it in the route, so point at the strategy.
        listed = ((name, ("routes", route, "strategy")) for name in policy.models)
    else:
        listed = ((name, ("routes", route, "candidates", i)) for i, name in enumerate(spec.candidates))
    problems = []
    for name, path in listed:
        info = models[name]
        missing = [key for key in _PRICES if getattr(info, key) is None]
        if missing:
            problems.append(
                where.problem(
                    path,
                    f"model '{name}' has no known price, so 'cheapest' cannot rank it — set"
                    f" {' and '.join(missing)} under models.{name}",
                )
            )
    return problems


def _unbudgetable(policy: Policy, models: Mapping[str, ModelInfo], where: Positions) -> list[Problem]:
    """Under a budget the planner rejects every model without a known price (policies.filters).

    A feature may use any route, so with any budget in the policy each unpriced model is one that
    budgeted requests can never use — the reason the planner would give, on the model's own entry.
    """
    budgets = (["budget"] if policy.budget is not None else []) + [
        f"features.{name}.budget" for name, spec in policy.features.items() if spec.budget is not None
    ]
    if not budgets:
        return []
    declared = frozenset(
        name
        for name, spec in policy.models.items()
        if spec.input_cost_per_mtok is not None and spec.output_cost_per_mtok is not None
    )
    context = PlanContext(request=RouteRequest(model=""), budgeted=True, declared_prices=declared)
    problems = []
    for name in policy.models:
        reason = priced_for_budget(models[name], context)
        if reason is not None:
            problems.append(
                where.problem(
                    ("models", name),
                    f"model '{name}' can never serve a request under {listing(budgets)}: {reason}"
                    f" (under models.{name})",
                    key=True,
                )
            )
    return problems


def _environment(policy: Policy, where: Positions) -> list[Problem]:
    """What depends on this machine rather than on the file: a log file's directory must exist."""
    problems = []
    logging = policy.logging
    if logging is not None and logging.file:
        folder = os.path.dirname(os.path.abspath(os.path.expanduser(logging.file)))
        if not os.path.isdir(folder):
            problems.append(
                where.problem(
                    ("logging", "file"),
                    f"the directory {folder} does not exist, so no client could open this log file"
                    " — create the directory or fix the path",
                )
            )
    return problems


def _unknown_benchmarks(
    base: Path, floors: Mapping[str, float] | None, known: list[str], where: Positions
) -> list[Problem]:
    """A floor on a benchmark no model of the policy has a score for fails every model.

    Most often a typo (``mmmlu``); a model without the score never passes a floor on it.
    """
    problems = []
    for bench in floors or {}:
        if bench in known:
            continue
        match = closest(bench, known)
        hint = f"did you mean '{match}'? " if match else ""
        known_text = f"known: {listing(known)}" if known else "no model has any score; add quality: to one"
        problems.append(
            where.problem(
                (*base, "min_quality", bench),
                f"unknown benchmark '{bench}': no model of the policy has a score for it, so every model"
                " fails this floor — fix the name or add the score under a model's quality:"
                f" ({hint}{known_text})",
                key=True,
            )
        )
    return problems


def _static_reason(
    info: ModelInfo, requires: Iterable[str], floors: Mapping[str, float] | None
) -> str | None:
    """Why the planner would reject this model for these requirements on every request; None if not."""
    context = PlanContext(
        request=RouteRequest(model=""),
        requires=frozenset(requires),
        floors=MappingProxyType(dict(floors or {})),
    )
    for check in STATIC_FILTERS:
        reason = check(info, context)
        if reason is not None:
            # Every requirement checked here is the policy's; saying so again only adds noise.
            return reason.removesuffix(" (required by the policy)")
    return None


def _summary(reasons: Mapping[str, str]) -> str:
    shown = [f"{name}: {reason}" for name, reason in list(reasons.items())[:_REASONS_SHOWN]]
    more = len(reasons) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def _unreachable_in_route(
    policy: Policy,
    route: str,
    models: Mapping[str, ModelInfo],
    where: Positions,
    floors: Mapping[str, float],
) -> list[Problem]:
    """Models a route lists but can never use, and routes no model can serve.

    Fallbacks go through the same requirement filters as candidates, so a fallback that lacks a
    required capability is never tried: a safety net with a hole in it. Candidates the route takes
    by default (no ``candidates:``) are filtered silently, since that is what ``require:`` is for;
    only names the route writes out are reported one by one.
    """
    spec = policy.routes[route]
    if not spec.require and not floors:
        return []
    entries: list[tuple[str, str, Path | None]] = []
    if spec.candidates is None:
        entries += [(name, "candidate", None) for name in policy.models]
    else:
        entries += [
            (name, "candidate", ("routes", route, "candidates", i)) for i, name in enumerate(spec.candidates)
        ]
    considered = {name for name, _, _ in entries}
    entries += [
        (name, "fallback", ("routes", route, "fallbacks", i))
        for i, name in enumerate(spec.fallbacks)
        if name not in considered
    ]
    reasons: dict[str, str] = {}
    for name, _, _ in entries:
        reason = _static_reason(models[name], spec.require, floors)
        if reason is not None:
            reasons[name] = reason
    if not reasons:
        return []
    if len(reasons) == len({name for name, _, _ in entries}):
        return [
            where.problem(
                ("routes", route),
                f"no model can ever serve route '{route}' ({_summary(reasons)}) — add a model that meets"
                " its require:/min_quality:, or relax them",
                key=True,
            )
        ]
    problems = []
    for name, role, path in entries:
        if path is None or name not in reasons:
            continue
        problems.append(
            where.problem(
                path,
                f"{role} '{name}' can never be used by route '{route}': {reasons[name]} — remove it, or"
                f" correct supports:/quality: under models.{name} if the catalog is wrong",
            )
        )
    return problems


def _unservable_feature(
    feature: str,
    requires: Iterable[str],
    floors: Mapping[str, float] | None,
    models: Mapping[str, ModelInfo],
    where: Positions,
) -> list[Problem]:
    """A feature whose own requirements no model of the policy meets fails every request, on any route."""
    requires = tuple(requires)
    if not requires and not floors:
        return []
    reasons = {name: _static_reason(info, requires, floors) for name, info in models.items()}
    if any(reason is None for reason in reasons.values()):
        return []
    failing = {name: reason for name, reason in reasons.items() if reason is not None}
    return [
        where.problem(
            ("features", feature),
            f"no model of the policy can ever serve feature '{feature}' ({_summary(failing)}) — add a"
            " model that meets its require:/min_quality:, or relax them",
            key=True,
        )
    ]
