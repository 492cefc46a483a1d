"""router: a drop-in OpenAI client that sends every chat completion to the cheapest adequate model.

from router import OpenAI
client = OpenAI(policy="policy.yaml")
response = client.chat.completions.create(model="auto", messages=[...])
response.routing  # which model answered, why, and what it cost
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from router._lean_httpx import cli_absent, load

with cli_absent():  # openai 2.x imports httpx: without httpx's command-line client (see the module)
    import openai  # noqa: F401

# isort: split
# The clients, and nothing more, at import: the planner, ledger, transports and the rest load when a
# client is built (or one of the names below is first read), so that ``import router`` costs little
# more than ``import openai`` (docs/benchmarks.md, "Import time").
from router._openai import AsyncOpenAI, OpenAI

if TYPE_CHECKING:
    from policies.errors import PolicyError
    from providers._aiohttp import TransportLimits
    from router._exceptions import (
        BudgetExceededError,
        CoolingDownError,
        DeadlineExceededError,
        InvalidRequestError,
        ModelNotFoundError,
        NoCandidateError,
        RateLimitCooldownError,
        RouterError,
        ServerCooldownError,
        StreamInterruptedError,
        UnknownRequestError,
        routing_of,
    )
    from router._response import RoutedChatCompletion
    from router._routing import Attempt, BudgetEvent, RoutingRecord, Usage
    from router._streaming import AsyncRoutedStream, RoutedStream
    from router.ledger import LedgerError
    from router.logging import configure as configure_logging

# Each public name loaded at its first use (PEP 562): (module, name in that module). The names of
# ``__all__`` not listed here nor defined above are the errors and ``routing_of``: router._exceptions.
_LAZY: Final[dict[str, tuple[str, str]]] = {
    "PolicyError": ("policies.errors", "PolicyError"),
    "TransportLimits": ("providers._aiohttp", "TransportLimits"),
    "RoutedChatCompletion": ("router._response", "RoutedChatCompletion"),
    **{name: ("router._routing", name) for name in ("Attempt", "BudgetEvent", "RoutingRecord", "Usage")},
    "AsyncRoutedStream": ("router._streaming", "AsyncRoutedStream"),
    "RoutedStream": ("router._streaming", "RoutedStream"),
    "LedgerError": ("router.ledger", "LedgerError"),
    "configure_logging": ("router.logging", "configure"),
}
# Submodules that ``import router`` used to bring, still reachable as attributes after it alone.
_SUBMODULES: Final = frozenset({"ledger", "logging"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(load(module), attribute)
    elif name in __all__:
        value = getattr(load("router._exceptions"), name)
    elif name in _SUBMODULES:
        value = load(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # found once; later reads don't come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})


__version__ = "0.1.0"

__all__ = [
    "AsyncOpenAI",
    "AsyncRoutedStream",
    "Attempt",
    "BudgetEvent",
    "BudgetExceededError",
    "CoolingDownError",
    "DeadlineExceededError",
    "InvalidRequestError",
    "LedgerError",
    "ModelNotFoundError",
    "NoCandidateError",
    "OpenAI",
    "PolicyError",
    "RateLimitCooldownError",
    "RoutedChatCompletion",
    "RoutedStream",
    "RouterError",
    "RoutingRecord",
    "ServerCooldownError",
    "StreamInterruptedError",
    "TransportLimits",
    "UnknownRequestError",
    "Usage",
    "__version__",
    "configure_logging",
    "routing_of",
]
