"""router: a drop-in OpenAI client that sends every chat completion to the cheapest adequate model.

from router import OpenAI
client = OpenAI(policy="policy.yaml")
response = client.chat.completions.create(model="auto", messages=[...])
response.routing  # which model answered, why, and what it cost
"""

from router import _lean_httpx  # noqa: F401  (first: see the module)

# isort: split
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
from router._openai import AsyncOpenAI, OpenAI
from router._response import RoutedChatCompletion
from router._routing import Attempt, BudgetEvent, RoutingRecord, Usage
from router._streaming import AsyncRoutedStream, RoutedStream
from router.ledger import LedgerError
from router.logging import configure as configure_logging

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
