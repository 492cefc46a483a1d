"""``${NAME}`` / ``${NAME:-default}`` expansion in policy strings.

Secrets and per-machine URLs belong in the environment, not in a policy file that is checked in;
this lets ``api_base: ${ROUTER_FAKE_URL}/openai/v1`` work without a templating step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
# Variables whose values must never appear in an error message or a log line.
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Expanded:
    text: str
    problems: tuple[str, ...] = ()
    secret: bool = False


def is_secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def expand(text: str, env: Mapping[str, str]) -> Expanded:
    """Expand references in one string; problems are messages, one per bad reference.

    ``${NAME:-default}`` uses the default when NAME is unset or empty (as the shell does); ``$$`` is a
    literal ``$``; any other ``$`` is kept as it is.
    """
    if "$" not in text:
        return Expanded(text)
    problems: list[str] = []
    secret = False

    def replace(match: re.Match[str]) -> str:
        nonlocal secret
        whole = match.group(0)
        if whole == "$$":
            return "$"
        body = match.group(1)
        parsed = _BODY.fullmatch(body) if body is not None else None
        if parsed is None or (parsed.group(2) is not None and "${" in parsed.group(2)):
            shown = whole if len(whole) <= 40 else whole[:37] + "..."
            problems.append(
                f"malformed environment reference {shown!r} — write ${{NAME}} or ${{NAME:-default}}"
                " (no nesting), or $$ for a literal $"
            )
            return ""
        name, default = parsed.group(1), parsed.group(2)
        value = env.get(name)
        if default is not None and not value:
            return default
        if value is None:
            problems.append(
                f"environment variable {name} is not set — set it, or write ${{{name}:-default}}"
                " to give a default"
            )
            return ""
        if is_secret_name(name):
            secret = True
        return value

    return Expanded(_REFERENCE.sub(replace, text), tuple(problems), secret)
