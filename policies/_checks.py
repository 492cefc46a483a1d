"""Checks that span sections: names a route or alias uses must exist, names must not collide, and so on.

They run on the plain data even when schema validation failed elsewhere, so that one run of the
loader reports every problem, and each check tolerates shapes that the schema will reject anyway.
Nothing here consults the model catalog: what depends on prices, capabilities or scores (which
change with litellm's price map) is ``policies.validate``'s job, so loading never fails because a
catalog was updated.
"""

from __future__ import annotations

from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from policies._convert import Converted
from policies._explain import closest, listing
from policies._issue import Issue, Path


class Report(Protocol):
    def __call__(self, path: Path, message: str, *, key: bool = False) -> None: ...


def _names(section: Any, key: str) -> list[tuple[int, str]]:
    items = section.get(key) if isinstance(section, dict) else None
    if not isinstance(items, list):
        return []
    return [(i, name) for i, name in enumerate(items) if isinstance(name, str)]


def _shown(conv: Converted, path: Path, name: str) -> str:
    """A name as a message may show it: never the value of a secret-looking variable."""
    return "a name hidden because it came from a secret variable" if path in conv.secret else f"'{name}'"


def _unknown_model(
    conv: Converted, path: Path, name: str, who: str, models: list[str], routes: list[str]
) -> str:
    shown = _shown(conv, path, name)
    if name in routes and path not in conv.secret:
        return (
            f"{who} names '{name}', which is a route, not a model — list models here (a route cannot"
            f" fall back to a route; known models: {listing(models)})"
        )
    match = None if path in conv.secret else closest(name, models)
    hint = f"did you mean '{match}'? " if match else ""
    return (
        f"{who} names model {shown}, which is not under models: — add it there or fix the name"
        f" ({hint}known: {listing(models)})"
    )


def _check_routes(conv: Converted, report: Report, models: list[str] | None, routes: dict[str, Any]) -> None:
    for route_name, route in routes.items():
        base: Path = ("routes", route_name)
        if models is not None and route_name in models:
            report(
                base,
                f"route '{route_name}' has the same name as a model, so model='{route_name}' would be"
                " ambiguous — rename the route",
                key=True,
            )
        if not isinstance(route, dict):
            continue
        if route.get("candidates") == []:
            report(
                (*base, "candidates"),
                "lists no models — name at least one, or remove candidates: to consider every model",
            )
        seen: dict[str, str] = {}
        for key in ("candidates", "fallbacks"):
            role = key[:-1]
            for index, name in _names(route, key):
                path: Path = (*base, key, index)
                if models is not None and name not in models:
                    who = f"route '{route_name}'"
                    report(path, _unknown_model(conv, path, name, who, models, list(routes)))
                elif name in seen:
                    earlier = seen[name]
                    where = f"a {earlier} and a {role}" if earlier != role else f"{role}s"
                    report(path, f"{_shown(conv, path, name)} is listed twice (as {where}) — remove one")
                seen.setdefault(name, role)


def _check_fallbacks(conv: Converted, report: Report, models: list[str] | None, routes: list[str]) -> None:
    """Top-level ``fallbacks:``: models tried after one named directly in ``model=``."""
    seen: set[str] = set()
    for index, name in _names(conv.data, "fallbacks"):
        path: Path = ("fallbacks", index)
        if models is not None and name not in models:
            report(path, _unknown_model(conv, path, name, "fallbacks", models, routes))
        elif name in seen:
            report(path, f"{_shown(conv, path, name)} is listed twice — remove one")
        seen.add(name)


def _check_aliases(conv: Converted, report: Report, models: list[str] | None, routes: list[str]) -> None:
    """``aliases:`` hand a ``model=`` name over to a route (or another model) of this policy.

    A target must be a route or a model, not another alias: one level keeps a request's way
    readable and rules out loops. An alias may share a model's name (that is its point: code naming
    gpt-4o-mini gets the route) but not a route's, which would leave two meanings for one name.
    """
    aliases = conv.data.get("aliases")
    if not isinstance(aliases, dict):
        return
    for name, target in aliases.items():
        path: Path = ("aliases", name)
        if name in routes:
            report(
                path,
                f"alias '{name}' has the same name as a route, so model='{name}' would be ambiguous"
                " — remove the alias or rename the route",
                key=True,
            )
            continue
        if not isinstance(target, str) or models is None:
            continue  # the schema reports a target that is not text
        shown = _shown(conv, path, target)
        if target == name:
            report(path, f"alias '{name}' points to itself — point it to a route, or remove it")
        elif target in aliases and target not in routes and target not in models:
            report(
                path,
                f"alias '{name}' points to {shown}, which is another alias — point it to that alias's"
                f" target ('{aliases[target]}') directly",
            )
        elif target not in routes and target not in models:
            secret = path in conv.secret
            match = None if secret else closest(target, routes + models)
            hint = f"did you mean '{match}'? " if match else ""
            report(
                path,
                f"alias '{name}' points to {shown}, which is neither a route nor a model of the policy"
                f" — fix the name ({hint}routes: {listing(routes) or 'none'}; models: {listing(models)})",
            )


# The scope under which the policy-wide budget keeps its figures (router._budgets.ALL_FEATURES).
RESERVED_FEATURES: Final = frozenset({"*"})
LEDGER_FORMS: Final = (
    "memory://, sqlite:///relative/path.db, sqlite:////absolute/path.db, redis://host:port/db"
    " or rediss://host:port/db"
)


def _url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """What is wrong with ``url`` as an http(s) or redis URL; never quotes it (it may hold a password)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check: "host:abc" raises
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme.lower() not in schemes:
        scheme = f"'{parts.scheme}'" if parts.scheme else "none"
        return f"has the scheme {scheme}; it must be {' or '.join(s + '://' for s in schemes)}"
    if not parts.hostname:
        return "names no host"
    return None


def _check_ledger(conv: Converted, report: Report) -> None:
    """``ledger:`` must be a URL a ledger backend opens; otherwise every budgeted request would fail."""
    url = conv.data.get("ledger")
    if not isinstance(url, str):
        return  # absent (the default file), or not text: the schema reports that
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    problem: str | None = None
    if not sep:
        problem = "is not a URL"
    elif scheme == "memory":
        problem = None if not rest else "takes nothing after memory://"
    elif scheme == "sqlite":
        if not rest.startswith("/") or len(rest) < 2:
            problem = "needs a path after sqlite:/// (three slashes, four for an absolute path)"
        elif "?" in rest:
            problem = _sqlite_query_problem(url, rest.partition("?")[2])
    elif scheme in ("redis", "rediss"):
        problem = _url_problem(url, ("redis", "rediss"))
    else:
        problem = f"has the scheme '{scheme}', which is not a ledger's"
    if problem is not None:
        report(("ledger",), f"the ledger URL {problem} — use {LEDGER_FORMS}")


def _sqlite_query_problem(url: str, query: str) -> str | None:
    """What the ledger makes of a SQLite URL's query (``?busy_timeout_s=N`` only): one rule, its own."""
    from router.ledger import sqlite_busy_timeout  # the ledger owns its URL; imported only for a query

    try:
        sqlite_busy_timeout(url, query)
    except ValueError:
        return "takes one query parameter, busy_timeout_s=N (seconds, 0 to 3600)"
    return None


def _check_api_bases(conv: Converted, report: Report) -> None:
    """``api_base:`` must be an http(s) URL: ``file:///x`` or ``http://[::1`` would fail only per request."""
    models = conv.data.get("models")
    if not isinstance(models, dict):
        return
    for name, spec in models.items():
        url = spec.get("api_base") if isinstance(spec, dict) else None
        if not isinstance(url, str):
            continue
        problem = _url_problem(url, ("http", "https"))
        if problem is not None:
            report(("models", name, "api_base"), f"api_base {problem} — give the provider's base URL")


def _check_deployments(conv: Converted, report: Report) -> None:
    """A model's ``deployments:`` (docs/deployments.md): callable URLs, distinct names, limits that
    ``balance: usage`` can work with, and balancing keys only where there is something to balance."""
    models = conv.data.get("models")
    if not isinstance(models, dict):
        return
    for name, spec in models.items():
        if not isinstance(spec, dict):
            continue
        entries = spec.get("deployments")
        if not isinstance(entries, list | tuple) or not entries:
            for key in ("balance", "when_all_limited"):
                if spec.get(key) is not None:
                    report(
                        ("models", name, key),
                        f"{key}: applies to a model's deployments: and model '{name}' lists none"
                        " — add deployments: or remove it",
                        key=True,
                    )
            continue
        seen: dict[str, int] = {}
        provider = spec.get("provider")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            url = entry.get("api_base")
            if isinstance(url, str) and (problem := _url_problem(url, ("http", "https"))) is not None:
                report(
                    ("models", name, "deployments", index, "api_base"),
                    f"api_base {problem} — give the deployment's base URL",
                )
            label = entry.get("name") or (
                f"{entry.get('provider') or provider}-{entry['region']}"
                if entry.get("region")
                else f"{entry.get('provider') or provider}-{index + 1}"
            )
            if label in seen:
                report(
                    ("models", name, "deployments", index),
                    f"two deployments of '{name}' are both called '{label}' (the first is"
                    f" deployments[{seen[label]}]) — give each a distinct name:",
                )
            seen.setdefault(str(label), index)
        if spec.get("balance") == "usage" and not any(
            isinstance(e, dict) and (e.get("rpm") or e.get("tpm")) for e in entries
        ):
            report(
                ("models", name, "balance"),
                f"balance: usage keeps each deployment under its rpm:/tpm:, and no deployment of '{name}'"
                " sets one — add them (the provider's quota), or use balance: weighted",
            )


def _check_feature_names(conv: Converted, report: Report) -> None:
    features = conv.data.get("features")
    if not isinstance(features, dict):
        return
    for name in features:
        if name in RESERVED_FEATURES:
            report(
                ("features", name),
                f"the feature name '{name}' is reserved: the policy-wide budget keeps its figures under it"
                " — rename the feature",
                key=True,
            )


def value_checks(conv: Converted) -> list[Issue]:
    """The checks of single values (URLs, reserved names), also run on policies built in code."""
    issues: list[Issue] = []

    def report(path: Path, message: str, *, key: bool = False) -> None:
        if not conv.is_settled(path):
            issues.append(Issue(path, conv.line(path, key=key), message))

    _check_ledger(conv, report)
    _check_api_bases(conv, report)
    _check_deployments(conv, report)
    _check_feature_names(conv, report)
    return issues


def cross_check(conv: Converted) -> list[Issue]:
    data = conv.data
    if not isinstance(data, dict):
        return []
    models_section = data.get("models")
    models = list(models_section) if isinstance(models_section, dict) else None
    known = sorted(models) if models is not None else None
    routes = data.get("routes")
    routes = routes if isinstance(routes, dict) else {}
    issues: list[Issue] = []

    def report(path: Path, message: str, *, key: bool = False) -> None:
        if not conv.is_settled(path):
            issues.append(Issue(path, conv.line(path, key=key), message))

    _check_routes(conv, report, known, routes)
    _check_fallbacks(conv, report, known, sorted(routes))
    _check_aliases(conv, report, known, sorted(routes))
    return issues + value_checks(conv)
