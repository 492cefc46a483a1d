"""One problem found in a policy, before it is tied to a file: where in the tree, on which line, what to do.

Kept apart from the public ``Problem`` so that the converting and checking modules need not know the
file name, and so that dict-built policies (no lines) go through exactly the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Issue:
    path: Path
    line: int | None
    message: str


def dotted(path: Path) -> str:
    """``("routes", "auto", "candidates", 1)`` → ``routes.auto.candidates[1]``, the form users see."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def describe(value: object, *, secret: bool = False) -> str:
    """A short, safe description of a value for an error message.

    Text is shown only when it is short and did not come from a secret-looking environment variable,
    so an error message never carries an API key.
    """
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        if secret:
            return "text (hidden: it came from a secret environment variable)"
        if len(value) > 60:
            return f"text {value[:57]!r}..."
        return f"text {value!r}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a value of type {type(value).__name__}"
