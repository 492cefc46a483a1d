"""Translate pydantic's validation errors into policy problems: the right line and a next step.

pydantic says "Extra inputs are not permitted" at a ``loc`` tuple; a user needs "unknown key 'stratgy'
— did you mean 'strategy'?" on line 12. The schema is walked generically (field annotations), so a
field added to schema.py gets the same treatment without touching this module.
"""

from __future__ import annotations

import collections.abc
import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from policies._convert import Converted
from policies._issue import Issue, Path, describe
from policies.schema import Policy

_NOUNS = {"supports": "capability", "strategy": "strategy", "version": "policy version"}
_SIGNS = {"greater_than_equal": "≥", "greater_than": ">", "less_than": "<", "less_than_equal": "≤"}
_PROVIDER_HINT = "openai, azure, gemini, anthropic, openai_compatible or any litellm provider prefix"


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def schema_at(path: Sequence[str | int]) -> Any:
    """The annotation the schema expects at a data path (a model class, Literal, tuple...), or None."""
    tp: Any = Policy
    for part in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            tp = field.annotation
            continue
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (dict, collections.abc.Mapping) and len(args) == 2:
            tp = args[1]
        elif origin in (tuple, list) and args:
            tp = args[0]
        else:
            return None
    return _unwrap(tp)


def allowed_keys(model: type[BaseModel]) -> list[str]:
    """Keys a user may write: every field but those the loader sets itself (``exclude=True``)."""
    return [f.alias or name for name, f in model.model_fields.items() if not f.exclude]


def closest(word: str, choices: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def suggest(word: str, choices: Iterable[str]) -> str:
    match = closest(word, choices)
    return f" — did you mean '{match}'?" if match else ""


def _choices(word: str, options: Sequence[str], label: str) -> str:
    """The tail of a message: a suggestion when one is close, then the options."""
    hint = suggest(word, options)
    joined = ", ".join(options)
    return f"{hint} {label.capitalize()}: {joined}" if hint else f" — {label}: {joined}"


def listing(names: Iterable[str], limit: int = 12) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def unknown_key(path: Path) -> str:
    name = str(path[-1])
    model = schema_at(path[:-1])
    keys = allowed_keys(model) if isinstance(model, type) and issubclass(model, BaseModel) else []
    if not keys:
        return f"unknown key '{name}' — this section takes no settings; leave it empty ({{}})"
    return f"unknown key '{name}'{_choices(name, keys, 'allowed keys')}"


def _walk(data: Any, loc: tuple[str | int, ...]) -> tuple[Path, bool]:
    """Follow ``loc`` through the data: the path that exists and whether it ended at a key."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_map = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_map or in_list:
            node = node[part]
            path.append(part)
        elif part == "[key]":
            return tuple(path), True
        # else: pydantic's own tags (union members, validators), which are not in the data
    return tuple(path), False


def _message(err: ErrorDetails, path: Path, conv: Converted) -> str:
    kind = err["type"]
    value = err.get("input")
    got = describe(value, secret=path in conv.secret)
    field = next((p for p in reversed(path) if isinstance(p, str)), "")
    ctx = err.get("ctx") or {}
    if kind in _SIGNS:
        sign = _SIGNS[kind]
        bound = next(iter(ctx.values()), "?")
        return f"must be {sign} {bound:g} (got {got})" if isinstance(bound, int | float) else str(err["msg"])
    if kind == "literal_error":
        literal = schema_at(path)
        is_literal = typing.get_origin(literal) is typing.Literal
        options = [str(a) for a in typing.get_args(literal)] if is_literal else []
        if field == "version":
            return f"unsupported policy version (got {got}) — this release reads version: 1"
        noun = _NOUNS.get(field, "value")
        shown = f"'{value}'" if isinstance(value, str) and path not in conv.secret else got
        return f"unknown {noun} {shown}{_choices(str(value), options, 'allowed')}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be a whole number (got {got})"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number (got {got})"
    if kind == "string_type":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        hint = f" — quote it: '{value}'" if number else ""
        return f"must be text (got {got}){hint}"
    if kind == "string_too_short":
        return f"must not be empty — e.g. {_PROVIDER_HINT}" if field == "provider" else "must not be empty"
    if kind == "too_short" and path == ("models",):
        return "must name at least one model"
    if kind in ("dict_type", "model_type", "mapping_type", "model_attributes_type"):
        if path == ("models",) and value is None:
            return "is empty — name at least one model under it, e.g. 'gpt-4o-mini: {provider: openai}'"
        return f"must be a mapping of key: value settings (got {got})"
    if kind in ("tuple_type", "list_type"):
        example = f" — write [{value}]" if isinstance(value, str) and path not in conv.secret else ""
        return f"must be a list (got {got}){example}"
    return f"{err['msg']} (got {got})"


def explain(errors: Iterable[ErrorDetails], conv: Converted) -> list[Issue]:
    """One issue per pydantic error, skipping those under values the converter already reported."""
    issues: list[Issue] = []
    for err in errors:
        loc = tuple(err["loc"])
        path, at_key = _walk(conv.data, loc)
        if conv.is_settled(path):
            continue
        kind = err["type"]
        if kind == "missing":
            name = str(loc[-1])
            hint = f" ({_PROVIDER_HINT})" if name == "provider" else ""
            if name == "models":
                hint = " — list at least one model under models:"
            line = conv.line(path, key=True)
            issues.append(Issue((*path, name), line, f"missing required key '{name}'{hint}"))
        elif kind == "extra_forbidden":
            issues.append(Issue(path, conv.line(path, key=True), unknown_key(path)))
        elif at_key:
            # pydantic puts "[key]" after the key itself, which _walk has already followed.
            key = str(path[-1]) if path else str(err.get("input"))
            if kind == "string_pattern_mismatch" and len(path) >= 2 and path[-2] == "quality":
                message = (
                    f"benchmark name '{key}' must be lower-case letters, digits, '.', '_' or '-' "
                    f"— write '{key.lower()}'"
                )
            else:
                message = f"key '{key}': {err['msg']}"
            issues.append(Issue(path, conv.line(path, key=True), message))
        else:
            issues.append(Issue(path, conv.line(path), _message(err, path, conv)))
    return issues
