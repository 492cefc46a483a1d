"""What a policy that cannot be loaded raises: light, so that ``import router`` can name it without
loading the policy machinery (YAML, the schema's pydantic models), which only a client needs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from providers.errors import RouterError

__all__ = ["PolicyError", "Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a policy: where (file, 1-based line when known, dotted key) and what to do."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.file and self.line is not None else "")
        return ": ".join(part for part in (where, self.key, self.message) if part)


class PolicyError(RouterError, ValueError):
    """The policy could not be loaded. ``problems`` lists every mistake found, in file order.

    A ``router.RouterError`` (hence an ``openai.OpenAIError``) so that code catching the router's
    or the SDK's errors also catches this one, and a ``ValueError`` because it is, at heart, a bad
    configuration value. Exported as ``router.PolicyError``.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[type[PolicyError], tuple[tuple[Problem, ...]]]:
        return type(self), (self.problems,)
