"""Reading YAML text with ruamel, keeping positions, and turning its errors into a line and a message.

ruamel is imported only here and only when a file is actually read: ``import router`` has a time budget
and a policy given as a dict never needs a YAML parser.
"""

from __future__ import annotations

import functools
import re
from typing import Any


class YamlFailure(Exception):
    """The text is not one YAML document; carries the 1-based line (when known) and a one-line message."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(line, message)
        self.line = line
        self.message = message


@functools.cache
def _constructor() -> type[Any]:
    """ruamel's round-trip constructor, but with timestamps kept as text.

    ``api_version: 2024-02-01`` must stay the string Azure expects, not become a ``datetime.date``.
    A subclass (built once, lazily) so that ruamel's own class, shared with other users, is untouched.
    """
    from ruamel.yaml.constructor import RoundTripConstructor

    class _PolicyConstructor(RoundTripConstructor):  # type: ignore[misc]
        pass

    def text(constructor: Any, node: Any) -> Any:
        return constructor.construct_scalar(node)

    _PolicyConstructor.add_constructor("tag:yaml.org,2002:timestamp", text)
    return _PolicyConstructor


_DUPLICATE = re.compile(r'found duplicate key "(.*?)" with value')


def _hint(problem: str) -> str:
    if "\\t" in problem:
        return " — indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return " — a ':' inside an unquoted value? Quote the value, or check the indentation"
    if "found undefined alias" in problem:
        return " — define the &anchor before using the *alias"
    if "expected a single document" in problem or "another document" in problem:
        return " — a policy file holds one YAML document; remove the extra '---'"
    return " — check the indentation and quoting here and on the line before"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load_yaml(text: str) -> tuple[Any, int | None]:
    """Parse one document; returns the root node and the line where it starts."""
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    yaml = YAML(typ="rt")
    yaml.Constructor = _constructor()
    yaml.allow_duplicate_keys = False
    try:
        root = yaml.load(text)
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        found = _DUPLICATE.search(str(exc.problem))
        name = f"'{found.group(1)}' " if found else ""
        raise YamlFailure(
            None if mark is None else mark.line + 1,
            f"duplicate key {name}— this mapping already has it; remove one of them",
        ) from exc
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = _one_line(str(exc.problem or ""))
        context = _one_line(str(exc.context or ""))
        what = f"{context}: {problem}" if context else problem
        line = None if mark is None else mark.line + 1
        raise YamlFailure(line, f"YAML syntax error: {what}{_hint(what)}") from exc
    except ReaderError as exc:
        position = exc.position if isinstance(exc.position, int) else 0
        at = text.count("\n", 0, position) + 1
        char = exc.character
        shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        raise YamlFailure(
            at, f"the file holds a character YAML does not allow ({shown}) — remove it"
        ) from exc
    except YAMLError as exc:
        raise YamlFailure(None, f"YAML error: {_one_line(str(exc))}") from exc
    except RecursionError as exc:
        raise YamlFailure(None, "nested too deeply to read — a policy never needs that") from exc
    except (ValueError, AssertionError) as exc:
        # ruamel can fail past its error classes: a conversion (``!!float .``), or an internal
        # assertion in its comment handling (a block scalar indicator before a comment: "| #").
        detail = _one_line(str(exc)) or "the YAML parser gave up (near a comment or a block scalar)"
        raise YamlFailure(None, f"a value could not be read: {detail} — quote it or fix it") from exc
    lc = getattr(root, "lc", None)
    line = getattr(lc, "line", None)
    return root, (line + 1 if isinstance(line, int) else None)
