"""Loading a policy file: YAML → plain data → schema → cross-references, with every problem on its line.

A policy is written by hand and read at start-up, so a mistake should stop the program with a message
that says where and what to do, and should list every mistake at once rather than one per run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from pydantic import ValidationError

from policies._checks import cross_check, value_checks
from policies._convert import Converted, Where, convert
from policies._explain import allowed_keys, explain, unknown_key
from policies._issue import Issue, Path, describe, dotted
from policies.errors import PolicyError, Problem
from policies.schema import Policy

__all__ = [
    "DEFAULT_POLICY_ENV",
    "LoadedPolicy",
    "PolicyError",
    "Positions",
    "Problem",
    "check_values",
    "load_default_policy",
    "load_policy",
    "load_policy_with_positions",
    "parse_policy",
    "parse_policy_with_positions",
    "policy_from_dict",
    "policy_json_schema",
]

DEFAULT_POLICY_ENV: Final = "ROUTER_POLICY"

# Sections where an empty value (``routes:`` or ``auto:`` with nothing after it) means "all defaults".
_EMPTY_MEANS_DEFAULT: Final = ("routes", "features")


@dataclass(frozen=True, slots=True)
class Positions:
    """Where each key and value of a loaded policy was written.

    Checks that run after loading (``policies.validate``, which consults the catalog) report on the
    same ``file:line: key`` as the loader's own, so they need the lines the YAML parser saw. Paths are
    tuples as in the data: ``("routes", "auto", "candidates", 1)``. A policy built from a dict has no
    lines; every lookup then gives None and problems are still keyed by their dotted path.
    """

    file: str
    where: Mapping[Path, Where] = field(default_factory=lambda: MappingProxyType({}))

    def line(self, path: Path, *, key: bool = False) -> int | None:
        """The 1-based line of the value at ``path`` (or of its key, with ``key=True``); None if unknown.

        A path the file does not spell out (a default, such as a route without ``candidates:``) falls
        back to its nearest written parent, so a problem about it still points into the right block.
        """
        for end in range(len(path), 0, -1):
            where = self.where.get(path[:end])
            if where is not None:
                return where.key_line if key or end < len(path) else where.line
        return None

    def problem(self, path: Path, message: str, *, key: bool = False) -> Problem:
        """A Problem at ``path``, in the loader's format."""
        return Problem(self.file, self.line(path, key=key), dotted(path), " ".join(message.split()))


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A policy together with the positions it was read from."""

    policy: Policy
    positions: Positions


def _fail(file: str, line: int | None, key: str, message: str) -> PolicyError:
    return PolicyError([Problem(file, line, key, message)])


def _sorted(issues: Iterable[Issue], file: str) -> list[Problem]:
    problems = dict.fromkeys(
        Problem(file, issue.line, dotted(issue.path), " ".join(issue.message.split())) for issue in issues
    )
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0))


def _prepare(conv: Converted) -> list[Issue]:
    """Top-level tidying before the schema sees the data; returns issues it found."""
    data = conv.data
    issues: list[Issue] = []
    reserved = set(Policy.model_fields) - set(allowed_keys(Policy))
    for name in sorted(reserved & set(data)):
        # Fields the loader fills (``source``) must not be settable from the file.
        issues.append(Issue((name,), conv.line((name,), key=True), unknown_key((name,))))
        conv.settled.add((name,))
        del data[name]
    for section in _EMPTY_MEANS_DEFAULT:
        if section in data and data[section] is None:
            del data[section]
        elif isinstance(data.get(section), dict):
            for name, value in data[section].items():
                if value is None:
                    data[section][name] = {}
    return issues


def _build(root: Any, *, source: str, env: Mapping[str, str] | None, root_line: int | None) -> LoadedPolicy:
    conv = convert(root, env=env, root_line=root_line)
    issues = list(conv.issues)
    if conv.fatal or (issues and not isinstance(conv.data, dict)):
        raise PolicyError(_sorted(issues, source))
    if conv.data is None:
        raise _fail(source, None, "", "the policy is empty — it needs at least a models: section")
    if not isinstance(conv.data, dict):
        raise _fail(
            source,
            root_line,
            "",
            f"the top level must be a mapping with models:, routes:, features: (got {describe(conv.data)})",
        )
    issues += _prepare(conv)
    policy: Policy | None = None
    try:
        policy = Policy.model_validate({**conv.data, "source": source})
    except ValidationError as exc:
        issues += explain(exc.errors(include_url=False), conv)
    issues += cross_check(conv)
    if issues or policy is None:
        raise PolicyError(_sorted(issues, source))
    return LoadedPolicy(policy, Positions(source, MappingProxyType(conv.where)))


def parse_policy(text: str, *, source: str = "<string>", env: Mapping[str, str] | None = None) -> Policy:
    """Parse a policy from YAML text; ``${NAME}`` references come from ``env`` (default: os.environ)."""
    return parse_policy_with_positions(text, source=source, env=env).policy


def parse_policy_with_positions(
    text: str, *, source: str = "<string>", env: Mapping[str, str] | None = None
) -> LoadedPolicy:
    """``parse_policy``, also returning where each key was written, for checks that run afterwards."""
    from policies._yaml import YamlFailure, load_yaml

    try:
        root, root_line = load_yaml(text)
    except YamlFailure as exc:
        raise _fail(source, exc.line, "", exc.message) from None
    if root is None:
        raise _fail(source, None, "", "the policy is empty — it needs at least a models: section")
    return _build(root, source=source, env=os.environ if env is None else env, root_line=root_line)


def _read(path: str, hint: str = "") -> str:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise _fail(path, None, "", f"is not UTF-8 text ({exc.reason}) — save it as UTF-8") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _fail(path, None, "", f"cannot read the policy file: {reason}{hint} — check the path") from None


def load_policy(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Policy:
    """Read and check a policy file; the result's ``source`` is the path."""
    return load_policy_with_positions(path, env=env).policy


def load_policy_with_positions(
    path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> LoadedPolicy:
    """``load_policy``, also returning where each key was written, for checks that run afterwards."""
    name = os.fspath(path)
    return parse_policy_with_positions(_read(name), source=name, env=env)


def policy_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> Policy:
    """A policy built in code: the same checks as a file, without line numbers or ``${...}`` expansion."""
    return _build(data, source=source, env=None, root_line=None).policy


def load_default_policy(env: Mapping[str, str] | None = None) -> Policy:
    """The policy named by ``$ROUTER_POLICY``, for clients created without ``policy=``."""
    environ = os.environ if env is None else env
    path = environ.get(DEFAULT_POLICY_ENV)
    if not path:
        raise _fail(
            "",
            None,
            "",
            f"no policy given — pass policy=... to OpenAI() or set {DEFAULT_POLICY_ENV}"
            " to a policy file path",
        )
    return parse_policy(_read(path, f" (named by {DEFAULT_POLICY_ENV})"), source=path, env=environ)


def check_values(policy: Policy) -> list[Problem]:
    """What loading a file would reject in a policy built in code (``Policy.model_validate``): ledger
    and ``api_base`` URLs no backend or transport can use, a reserved feature name. No lines: the
    policy has none."""
    conv = Converted(data=policy.model_dump(exclude={"source"}, by_alias=True))
    return _sorted(value_checks(conv), policy.source or "<policy>")


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema of a policy file, for editors and ``router schema``; loader-set fields left out."""
    schema = Policy.model_json_schema()
    reserved = set(Policy.model_fields) - set(allowed_keys(Policy))
    properties = schema.get("properties", {})
    for name in reserved:
        properties.pop(name, None)
    if "required" in schema:
        schema["required"] = [r for r in schema["required"] if r not in reserved]
    _allow_references(schema)
    return schema


# A ``${NAME}`` / ``${NAME:-default}`` reference, which the loader expands and converts to the key's type.
_REFERENCE: Final = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}


def _allow_references(node: Any) -> None:
    """Let every number, integer and boolean also be written as an environment reference, as the
    loader accepts (``context_window: ${CTX:-128000}``): an editor must not flag what loads."""
    if isinstance(node, list):
        for item in node:
            _allow_references(item)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _allow_references(value)
    if node.get("type") in ("integer", "number", "boolean"):
        typed = {key: node.pop(key) for key in list(node) if key not in ("title", "description", "default")}
        node["anyOf"] = [typed, dict(_REFERENCE)]
