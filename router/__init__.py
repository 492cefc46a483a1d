"""router: a drop-in OpenAI client that sends every chat completion to the cheapest adequate model.

from router import OpenAI
client = OpenAI(policy="policy.yaml")
response = client.chat.completions.create(model="auto", messages=[...])
response.routing  # which model answered, why, and what it cost
"""

from router._exceptions import (
    BudgetExceededError,
    DeadlineExceededError,
    ModelNotFoundError,
    NoCandidateError,
    RouterError,
    StreamInterruptedError,
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
    "DeadlineExceededError",
    "LedgerError",
    "ModelNotFoundError",
    "NoCandidateError",
    "OpenAI",
    "RoutedChatCompletion",
    "RoutedStream",
    "RouterError",
    "RoutingRecord",
    "StreamInterruptedError",
    "Usage",
    "__version__",
    "configure_logging",
]
