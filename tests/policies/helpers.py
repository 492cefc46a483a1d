"""Hand-made models and contexts for testing filters and rankings as pure functions."""

from __future__ import annotations

from typing import Any

from policies.filters import PlanContext
from policies.plan import Candidate, RouteRequest, describe_request
from providers.catalog import ModelInfo


def make_model(name: str = "m", **fields: Any) -> ModelInfo:
    defaults: dict[str, Any] = {
        "provider": "openai_compatible",
        "model": name,
        "input_cost_per_mtok": 1.0,
        "output_cost_per_mtok": 2.0,
        "context_window": 10_000,
        "max_output_tokens": 2_000,
        "supports": frozenset({"tools", "vision", "json_schema", "streaming"}),
    }
    defaults.update(fields)
    return ModelInfo(name=name, **defaults)


def make_request(text: str = "hello", **body: Any) -> RouteRequest:
    stream = bool(body.pop("stream", False))
    messages = body.pop("messages", [{"role": "user", "content": text}])
    return describe_request("auto", "default", {"messages": messages, **body}, stream)


def make_context(request: RouteRequest | None = None, **fields: Any) -> PlanContext:
    return PlanContext(request=request or make_request(), **fields)


def make_candidate(model: str, cost: float | None) -> Candidate:
    return Candidate(model=model, provider="p", expected_cost_usd=cost)
