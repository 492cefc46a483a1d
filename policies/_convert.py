"""Turn a loaded YAML tree (or a user's Mapping) into plain dicts, lists and scalars, noting lines.

pydantic should see only plain Python values: ruamel's ScalarFloat, CommentedMap and friends, sets,
bytes or self-referencing aliases would either slip through or fail with unhelpful messages. While
walking, we record each value's line (when the tree has ruamel positions) so that every later check
can point at the right line, and report what cannot be a policy value at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies._env import expand
from policies._issue import Issue, Path, describe

MAX_DEPTH = 32
MAX_VALUES = 100_000


@dataclass(frozen=True, slots=True)
class Where:
    """Lines (1-based) for one value: ``key_line`` where its key or list item starts, ``line`` where
    the value itself is (the key's line for collections and empty values, which span or lack lines)."""

    key_line: int | None
    line: int | None


@dataclass(slots=True)
class Converted:
    data: Any = None
    where: dict[Path, Where] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    settled: set[Path] = field(default_factory=set)  # already reported: later checks stay quiet below these
    secret: set[Path] = field(default_factory=set)  # values from secret-looking variables: never echoed
    fatal: bool = False

    def line(self, path: Path, *, key: bool = False) -> int | None:
        where = self.where.get(path)
        if where is None:
            return None
        return where.key_line if key else where.line

    def is_settled(self, path: Path) -> bool:
        return any(path[: len(p)] == p for p in self.settled)


class _TooLarge(Exception):
    pass


def _position(lc: Any, kind: str, arg: Any) -> int | None:
    """A 1-based line from ruamel's ``.lc`` accessors; None for values ruamel does not place (merges)."""
    if lc is None:
        return None
    try:
        return int(getattr(lc, kind)(arg)[0]) + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


def _key_text(key: object) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


class _Walker:
    def __init__(self, env: Mapping[str, str] | None) -> None:
        self.env = env
        self.out = Converted()
        self.count = 0
        self.active: set[int] = set()

    def problem(self, path: Path, line: int | None, message: str) -> None:
        self.out.issues.append(Issue(path, line, message))
        self.out.settled.add(path)

    def walk(self, obj: Any, path: Path, here: Where) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooLarge
        self.out.where[path] = here
        if isinstance(obj, str):
            return self.scalar_text(str(obj), path, here)
        if isinstance(obj, bool) or obj is None:
            return obj
        if isinstance(obj, int):
            # ruamel gives an anchored `true` as ScalarBoolean, an int subclass: keep it a bool.
            return bool(obj) if type(obj).__name__ == "ScalarBoolean" else int(obj)
        if isinstance(obj, float):
            if not math.isfinite(obj):
                self.problem(path, here.line, f"must be a finite number (got {obj!r})")
            return float(obj)
        if not isinstance(obj, Mapping | list | tuple):
            tag = getattr(obj, "tag", None)
            what = f"the YAML tag {getattr(tag, 'value', tag)}" if tag is not None else describe(obj)
            self.problem(
                path, here.line, f"unsupported value: {what} — use text, a number, a list or a mapping"
            )
            return None
        if id(obj) in self.active:
            self.problem(path, here.line, "refers to itself (a recursive YAML alias) — write the value out")
            return None
        if len(path) >= MAX_DEPTH:
            self.problem(path, here.line, f"nested more than {MAX_DEPTH} levels deep — a policy never is")
            return None
        self.active.add(id(obj))
        try:
            if isinstance(obj, Mapping):
                return self.mapping(obj, path, here)
            return self.sequence(obj, path, here)
        finally:
            self.active.discard(id(obj))

    def scalar_text(self, text: str, path: Path, here: Where) -> str:
        if self.env is None:
            return text
        expanded = expand(text, self.env)
        for message in expanded.problems:
            self.problem(path, here.line, message)
        if expanded.secret:
            self.out.secret.add(path)
        return expanded.text

    def mapping(self, obj: Mapping[Any, Any], path: Path, here: Where) -> dict[str, Any]:
        lc = getattr(obj, "lc", None)
        result: dict[str, Any] = {}
        for key, value in obj.items():
            key_line = _position(lc, "key", key) or here.key_line
            value_line = _position(lc, "value", key) or key_line
            if isinstance(key, str):
                name = str(key)
            elif isinstance(key, bool | int | float) or key is None:
                name = _key_text(key)
                self.problem(
                    (*path, name), key_line, f"key {name} is not text — quote it ('{name}') if it is a name"
                )
            else:
                name = f"<{type(key).__name__}>"
                self.problem((*path, name), key_line, "keys must be plain text, not lists or mappings")
                continue
            child: Path = (*path, name)
            if name in result:
                self.problem(child, key_line, f"duplicate key '{name}' — remove one of them")
                continue
            collection = value is None or isinstance(value, Mapping | list | tuple)
            result[name] = self.walk(value, child, Where(key_line, key_line if collection else value_line))
        return result

    def sequence(self, obj: list[Any] | tuple[Any, ...], path: Path, here: Where) -> list[Any]:
        lc = getattr(obj, "lc", None)
        items = []
        for index, value in enumerate(obj):
            line = _position(lc, "item", index) or here.key_line
            items.append(self.walk(value, (*path, index), Where(line, line)))
        return items


def convert(root: Any, *, env: Mapping[str, str] | None, root_line: int | None) -> Converted:
    """Convert a whole tree. ``env`` None means no ``${...}`` expansion (programmatic policies)."""
    walker = _Walker(env)
    try:
        walker.out.data = walker.walk(root, (), Where(root_line, root_line))
    except _TooLarge:
        walker.out.issues.append(
            Issue((), root_line, f"more than {MAX_VALUES} values (are YAML aliases expanding?) — simplify it")
        )
        walker.out.fatal = True
    return walker.out
