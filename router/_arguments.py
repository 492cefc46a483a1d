"""The keyword arguments a routed method accepts: exactly those of the installed openai's method.

openai's ``create`` names every argument, so a typo (``max_token=5``) is a ``TypeError`` before
anything is sent. The routed methods take ``**kwargs`` (they pass the call on whole), so without
this check such a typo was silently ignored by some providers and rejected by others. The names are
read from the installed openai's signatures once, at import of the resource modules: each openai
version's new arguments are accepted as it accepts them, and nothing else.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any


def accepted(method: Callable[..., Any]) -> frozenset[str]:
    """The keyword arguments ``method`` (one of openai's) takes."""
    return frozenset(name for name in inspect.signature(method).parameters if name != "self")


def check_arguments(names: Iterable[str], allowed: frozenset[str], method: str) -> None:
    """Raise the ``TypeError`` Python raises for openai's ``method`` given an argument it lacks."""
    if not allowed.issuperset(names):
        unknown = sorted(set(names) - allowed)
        raise TypeError(f"{method}() got an unexpected keyword argument {unknown[0]!r}")
