"""Processes for tests/router/test_budgets_end_to_end.py: the public client, in processes of its own.

``burst`` is a multiprocessing target: one process's share of a burst of concurrent async requests
through ``router.AsyncOpenAI``, all processes sharing one ledger. ``python -m
tests.router.budget_workers hang POLICY_JSON LEDGER_URL NOW`` is the process that gets SIGKILLed in
the middle of a call (its model hangs), holding a reservation.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from openai.types.chat import ChatCompletionMessageParam

import router

KEY_ENV = "ROUTER_BUDGET_E2E_KEY"
QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of France?"}]
NANOS_PER_USD = 1_000_000_000


async def _one(client: router.AsyncOpenAI, feature: str, max_tokens: int) -> tuple[str, Any]:
    """One request: ("served", (cost in nano-dollars, warnings)), ("refused", None) or ("other", repr)."""
    try:
        response = await client.chat.completions.create(
            model="auto", messages=QUESTION, max_tokens=max_tokens, metadata={"feature": feature}
        )
    except router.BudgetExceededError:
        return "refused", None
    except Exception as exc:  # anything else is a failure of the test, reported by the parent
        return "other", repr(exc)
    cost = response.routing.cost_usd
    warnings = [e.threshold for e in response.routing.budget_events if e.kind == "warning"]
    return "served", (None if cost is None else round(cost * NANOS_PER_USD), warnings)


async def _burst(
    policy: Mapping[str, Any], ledger: str, requests: int, feature: str, max_tokens: int, ready: Any, go: Any
) -> dict[str, Any]:
    client = router.AsyncOpenAI(policy=policy, ledger=ledger)
    async with client:
        ready.put(os.getpid())
        go.wait()  # every process starts its requests at once
        outcomes = await asyncio.gather(*(_one(client, feature, max_tokens) for _ in range(requests)))
    served = [value for kind, value in outcomes if kind == "served"]
    return {
        "costs_nanos": [cost for cost, _ in served],
        "warnings": [threshold for _, thresholds in served for threshold in thresholds],
        "refused": sum(kind == "refused" for kind, _ in outcomes),
        "other": [value for kind, value in outcomes if kind == "other"],
    }


def burst(
    policy: Mapping[str, Any],
    ledger: str,
    requests: int,
    feature: str,
    max_tokens: int,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """``requests`` concurrent requests from one ``router.AsyncOpenAI``, released together with the
    other processes' by ``go``; puts a summary of the outcomes on ``results``."""
    os.environ[KEY_ENV] = "fake-key"
    results.put(asyncio.run(_burst(policy, ledger, requests, feature, max_tokens, ready, go)))


def hang(policy: Mapping[str, Any], ledger: str, now: float) -> None:
    """Call a model that never answers, with the wall clock stopped at ``now``, until killed."""
    os.environ[KEY_ENV] = "fake-key"
    client = router.OpenAI(policy=policy, ledger=ledger, wall_clock=lambda: now)
    client.chat.completions.create(
        model="auto", messages=QUESTION, max_tokens=100, metadata={"feature": "crash"}
    )
    print("the call returned: it should have hung until the process was killed", file=sys.stderr)
    sys.exit(3)


if __name__ == "__main__":
    if sys.argv[1] == "hang":
        hang(json.loads(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
