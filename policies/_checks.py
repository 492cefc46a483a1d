"""Checks that span sections: names a route uses must exist under ``models:``, and so on.

They run on the plain data even when schema validation failed elsewhere, so that one run of the
loader reports every problem, and each check tolerates shapes that the schema will reject anyway.
"""

from __future__ import annotations

from typing import Any

from policies._convert import Converted
from policies._explain import closest, listing
from policies._issue import Issue


def _names(route: dict[str, Any], key: str) -> list[tuple[int, str]]:
    items = route.get(key)
    if not isinstance(items, list):
        return []
    return [(i, name) for i, name in enumerate(items) if isinstance(name, str)]


def cross_check(conv: Converted) -> list[Issue]:
    data = conv.data
    if not isinstance(data, dict):
        return []
    models = data.get("models")
    known = sorted(models) if isinstance(models, dict) else None
    routes = data.get("routes")
    if not isinstance(routes, dict):
        return []
    issues: list[Issue] = []

    def report(path: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        if not conv.is_settled(path):
            issues.append(Issue(path, conv.line(path, key=key), message))

    for route_name, route in routes.items():
        base = ("routes", route_name)
        if known is not None and route_name in known:
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
                path = (*base, key, index)
                secret = path in conv.secret
                shown = "a name hidden because it came from a secret variable" if secret else f"'{name}'"
                if known is not None and name not in known:
                    match = None if secret else closest(name, known)
                    hint = f"did you mean '{match}'? " if match else ""
                    report(
                        path,
                        f"route '{route_name}' names model {shown}, which is not under models:"
                        f" — add it there or fix the name ({hint}known: {listing(known)})",
                    )
                elif name in seen:
                    earlier = seen[name]
                    where = f"a {earlier} and a {role}" if earlier != role else f"{role}s"
                    report(path, f"{shown} is listed twice (as {where}) — remove one")
                seen.setdefault(name, role)
    return issues
