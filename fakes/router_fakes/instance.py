"""A minimal valid instance of a JSON Schema: the fake's tool arguments and structured outputs.

Deterministic on purpose (strings are "example", numbers 1, the first enum value) so tests can assert on
exact values. Covers what the providers accept in tool parameters and response schemas: types (also
Gemini's upper-case OpenAPI types), enum/const, anyOf/oneOf/allOf, local ``$ref``, and the usual bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["minimal_instance"]

_MAX_DEPTH = 8
_STRING_FORMATS: Mapping[str, str] = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
}


def minimal_instance(schema: Mapping[str, Any] | None) -> Any:
    """A small value valid against ``schema``; ``{}`` when there is no schema."""
    if not schema:
        return {}
    return _instance(schema, schema, 0)


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for key in ref[2:].split("/"):
        if not isinstance(node, Mapping) or key not in node:
            return {}
        node = node[key]
    return node if isinstance(node, Mapping) else {}


def _type_of(schema: Mapping[str, Any]) -> str | None:
    declared = schema.get("type")
    if isinstance(declared, list):
        # ["string", "null"]: the non-null type is the informative one.
        non_null = [t for t in declared if isinstance(t, str) and t.lower() != "null"]
        declared = non_null[0] if non_null else "null"
    if isinstance(declared, str):
        return declared.lower()
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return None


def _instance(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            preferred = [o for o in options if isinstance(o, Mapping) and _type_of(o) != "null"]
            return _instance((preferred or options)[0], root, depth + 1)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and all_of:
        merged: dict[str, Any] = {}
        for part in all_of:
            if isinstance(part, Mapping):
                merged.update(_resolve(part, root))
        return _instance(merged, root, depth + 1)

    kind = _type_of(schema)
    if kind == "object":
        return _object(schema, root, depth)
    if kind == "array":
        if depth >= _MAX_DEPTH:
            return []
        items = schema.get("items")
        count = max(1, int(schema.get("minItems", 1)))
        if isinstance(items, Mapping):
            return [_instance(items, root, depth + 1) for _ in range(count)]
        return ["example"] * count
    if kind == "string":
        return _string(schema)
    if kind in ("number", "integer"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return {}


def _object(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    if depth >= _MAX_DEPTH or not isinstance(properties, Mapping):
        return {}
    required = schema.get("required")
    names = (
        [n for n in required if n in properties]
        if isinstance(required, list) and required
        else list(properties)
    )
    return {name: _instance(properties[name], root, depth + 1) for name in names}


def _string(schema: Mapping[str, Any]) -> str:
    fmt = schema.get("format")
    value = _STRING_FORMATS.get(fmt, "example") if isinstance(fmt, str) else "example"
    min_length = schema.get("minLength")
    if isinstance(min_length, int) and len(value) < min_length:
        value = value + "x" * (min_length - len(value))
    max_length = schema.get("maxLength")
    if isinstance(max_length, int) and len(value) > max_length:
        value = value[:max_length]
    return value


def _number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    value: float = 1
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(low, int | float) and value < low:
        value = low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    if isinstance(high, int | float) and value > high:
        value = high - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
    return int(value) if integer else value
