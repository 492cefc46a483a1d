"""What OpenAI's API would reject, rejected here: before anything is reserved, planned or sent.

A malformed request must fail the way it fails against OpenAI (``openai.BadRequestError`` with
``param`` naming the offending field), not with an ``AttributeError`` deep in planning, a raw
Python error after a budget reservation, or a provider 400 after money was set aside. Pure and on
the hot path: a typical request (a few messages, a couple of numbers) costs a few microseconds,
so only what is present is checked, and nested schemas are walked without recursion.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import httpx

from router._exceptions import InvalidRequestError

# The roles OpenAI's chat completions accept.
ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# The content part types OpenAI accepts in a message's content array.
PART_TYPES: Final = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
# Nesting beyond this in a tool's or response format's JSON schema is refused: a schema that
# deep is an attack or a bug, and Python's own recursion (json.dumps, our estimate) would fail on it.
MAX_SCHEMA_DEPTH: Final = 64
# OpenAI's own bounds.
MAX_CHOICES: Final = 128
MAX_METADATA_PAIRS: Final = 16


def _kind(value: object) -> str:
    """How OpenAI's API names a JSON type in its messages ("a string", "an object", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence | set | frozenset):
        return "an array"
    return f"a Python {type(value).__name__}"


def _invalid_type(param: str, expected: str, value: object) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.",
        param=param,
        code="invalid_type",
        detail=f"{param}: expected {expected}, got {reprlib.repr(value)}",
    )


def _invalid_value(param: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid value for '{param}': {message}",
        param=param,
        code="invalid_value",
        detail=f"{param}: {message[:1].lower()}{message[1:].removesuffix('.')}",
    )


def _missing(param: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_params(params: Mapping[str, Any]) -> None:
    """Raise ``InvalidRequestError`` (an ``openai.BadRequestError``) for the first invalid parameter.

    ``params`` are ``create``'s keyword arguments with openai's NOT_GIVEN/omit and None dropped,
    ``messages`` already a list (absent: not checked, as in ``extra_body``). Parameters the router
    does not know go to the provider unchecked, as openai's SDK sends them.
    """
    for name, value in params.items():
        check = _CHECKS.get(name)
        if check is not None:
            check(name, value)


def messages_list(messages: object) -> list[Any]:
    """``messages`` as a list: openai takes any iterable of messages, but never a string or a dict."""
    if isinstance(messages, list):
        return messages
    if isinstance(messages, str | bytes | Mapping) or not hasattr(messages, "__iter__"):
        raise _invalid_type("messages", "an array of message objects", messages)
    return list(messages)


def _messages(_: str, messages: list[Any]) -> None:
    if not messages:
        raise _invalid_value(
            "messages", "expected an array with at least one message, but got an empty array."
        )
    for index, message in enumerate(messages):
        # A dict first: Mapping's ABC check costs a Python-level call per message.
        if type(message) is not dict and not isinstance(message, Mapping):
            raise _invalid_type(f"messages[{index}]", "an object", message)
        role = message.get("role")
        if role not in ROLES:
            param = f"messages[{index}].role"
            if not isinstance(role, str):
                raise _invalid_type(param, "a string", role)
            raise _invalid_value(param, f"'{role}' is not one of {', '.join(sorted(ROLES))}.")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise _missing(f"messages[{index}].tool_call_id")
        content = message.get("content")
        if content is None or isinstance(content, str):
            if content is None and role in ("user", "system", "developer"):
                raise _missing(f"messages[{index}].content")
            continue
        if not isinstance(content, list | tuple):
            raise _invalid_type(f"messages[{index}].content", "a string or an array of parts", content)
        for number, part in enumerate(content):
            _part(f"messages[{index}].content[{number}]", part)


def _part(param: str, part: object) -> None:
    if type(part) is not dict and not isinstance(part, Mapping):
        raise _invalid_type(param, "an object", part)
    kind = part.get("type")
    if kind not in PART_TYPES:
        raise _invalid_value(f"{param}.type", f"{kind!r} is not one of {', '.join(sorted(PART_TYPES))}.")
    if kind == "text" and not isinstance(part.get("text"), str):
        raise _invalid_type(f"{param}.text", "a string", part.get("text"))


def _metadata(_: str, metadata: object) -> None:
    if type(metadata) is not dict and not isinstance(metadata, Mapping):
        raise _invalid_type("metadata", "an object of string keys and string values", metadata)
    if len(metadata) > MAX_METADATA_PAIRS:
        raise _invalid_value(
            "metadata", f"expected at most {MAX_METADATA_PAIRS} pairs, but got {len(metadata)} instead."
        )
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise _invalid_type("metadata", "an object with string keys", key)
        if not isinstance(value, str):
            # A non-string feature would silently miss its budget if it were stringified.
            raise _invalid_type(f"metadata.{key}", "a string", value)


def _timeout(_: str, timeout: object) -> None:
    if isinstance(timeout, httpx.Timeout):
        phases = (timeout.connect, timeout.read, timeout.write, timeout.pool)
        if all(p is None or (_is_number(p) and p > 0) for p in phases):
            return
        raise _invalid_value("timeout", "every phase of an httpx.Timeout must be a positive number or None.")
    if not _is_number(timeout):
        raise _invalid_type("timeout", "a number of seconds or an httpx.Timeout", timeout)
    assert isinstance(timeout, int | float)
    if not timeout > 0:  # also catches NaN
        raise _invalid_value("timeout", f"expected a positive number of seconds, but got {timeout} instead.")


def _tools(_: str, tools: object) -> None:
    if not isinstance(tools, list | tuple):
        raise _invalid_type("tools", "an array of tool objects", tools)
    for index, tool in enumerate(tools):
        param = f"tools[{index}]"
        if not isinstance(tool, Mapping):
            raise _invalid_type(param, "an object", tool)
        if tool.get("type", "function") != "function":
            # Custom tools have no function; only their shape is OpenAI's business.
            continue
        function = tool.get("function")
        if not isinstance(function, Mapping):
            raise _invalid_type(f"{param}.function", "an object", function)
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid_type(f"{param}.function.name", "a non-empty string", name)
        parameters = function.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, Mapping):
                raise _invalid_type(f"{param}.function.parameters", "an object", parameters)
            _schema_depth(f"{param}.function.parameters", parameters)


def _response_format(_: str, response_format: object) -> None:
    if not isinstance(response_format, Mapping):
        raise _invalid_type("response_format", "an object", response_format)
    spec = response_format.get("json_schema")
    if isinstance(spec, Mapping) and isinstance(spec.get("schema"), Mapping):
        _schema_depth("response_format.json_schema.schema", spec["schema"])


def _schema_depth(param: str, schema: Mapping[str, Any]) -> None:
    """Refuse a schema nested deeper than MAX_SCHEMA_DEPTH, walking it without recursion."""
    stack: list[tuple[object, int]] = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            raise _invalid_value(
                param, f"the schema is nested more than {MAX_SCHEMA_DEPTH} levels deep; flatten it."
            )
        if isinstance(node, Mapping):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, Mapping | list))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, Mapping | list))


def _mapping(param: str, value: object) -> None:
    if not isinstance(value, Mapping):
        raise _invalid_type(param, "an object", value)


def _integer(param: str, value: object) -> None:
    if not _is_int(value):
        raise _invalid_type(param, "an integer", value)


def _positive_integer(param: str, value: object) -> None:
    if not _is_int(value):
        raise _invalid_type(param, "an integer", value)
    assert isinstance(value, int)
    if value < 1:
        raise _invalid_value(param, f"expected an integer of at least 1, but got {value} instead.")


def _choices(param: str, value: object) -> None:
    _integer(param, value)
    assert isinstance(value, int)
    if not 1 <= value <= MAX_CHOICES:
        raise _invalid_value(param, f"expected an integer from 1 to {MAX_CHOICES}, but got {value} instead.")


def _model(param: str, model: object) -> None:
    if not isinstance(model, str) or not model:
        raise _invalid_type(param, "a non-empty string (a route such as 'auto', or a model)", model)


def _stream(param: str, stream: object) -> None:
    if not isinstance(stream, bool):
        raise _invalid_type(param, "a boolean", stream)


def _in_range(low: float, high: float) -> Callable[[str, object], None]:
    def check(param: str, value: object) -> None:
        if not _is_number(value):
            raise _invalid_type(param, "a number", value)
        assert isinstance(value, int | float)
        if not low <= value <= high:  # also False for NaN
            raise _invalid_value(
                param, f"expected a number from {low:g} to {high:g}, but got {value} instead."
            )

    return check


def _stop(_: str, stop: object) -> None:
    if isinstance(stop, str):
        return
    if not isinstance(stop, list | tuple) or not all(isinstance(s, str) for s in stop):
        raise _invalid_type("stop", "a string or an array of strings", stop)


_CHECKS: Final[Mapping[str, Callable[[str, Any], None]]] = {
    "messages": _messages,
    "model": _model,
    "stream": _stream,
    "max_tokens": _positive_integer,
    "max_completion_tokens": _positive_integer,
    "n": _choices,
    "temperature": _in_range(0.0, 2.0),
    "top_p": _in_range(0.0, 1.0),
    "presence_penalty": _in_range(-2.0, 2.0),
    "frequency_penalty": _in_range(-2.0, 2.0),
    "metadata": _metadata,
    "timeout": _timeout,
    "tools": _tools,
    "response_format": _response_format,
    "stop": _stop,
    "seed": _integer,
    "stream_options": _mapping,
    "logit_bias": _mapping,
    "extra_body": _mapping,
    "extra_headers": _mapping,
    "extra_query": _mapping,
}
