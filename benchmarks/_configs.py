"""The policies and requests the benchmarks share: one model, and large policies for planning.

"Everything on" lives in ``_everything_on.py``.
"""

from __future__ import annotations

from typing import Any, Final

FEATURE: Final = "bench"
OPENAI_KEY_ENV: Final = "BENCH_OPENAI_API_KEY"
GEMINI_KEY_ENV: Final = "BENCH_GEMINI_API_KEY"
# Set in every worker's environment before anything is imported.
WORKER_ENV: Final = {
    OPENAI_KEY_ENV: "sk-bench",
    GEMINI_KEY_ENV: "bench",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
}
# Every latency and throughput line sends this request.
MODEL: Final = "gpt-4o-mini"
MESSAGES: Final = ({"role": "user", "content": "Say hello in one word."},)
MAX_TOKENS: Final = 64


def request(model: str = MODEL, **extra: Any) -> dict[str, Any]:
    """The keyword arguments of one ``create`` call."""
    return {"model": model, "messages": list(MESSAGES), "max_tokens": MAX_TOKENS, **extra}


def one_model_policy(openai_base: str) -> dict[str, Any]:
    model = {"provider": "openai", "api_base": openai_base, "api_key_env": OPENAI_KEY_ENV}
    return {"models": {MODEL: model}, "routes": {"auto": {"candidates": [MODEL]}}}


PLANNING_WINDOWS: Final = (16_385, 128_000, 200_000, 1_048_576)


def planning_models(n_models: int) -> dict[str, Any]:
    """n OpenAI-compatible models with distinct names, varied prices and mixed context windows."""
    return {
        f"model-{i:04d}": {
            "provider": "openai_compatible",
            "model": f"m-{i}",
            "api_base": "http://planning.invalid/v1",
            "input_cost_per_mtok": round(0.05 + (i * 37 % 100) * 0.03, 4),
            "output_cost_per_mtok": round(0.2 + (i * 53 % 100) * 0.1, 4),
            "context_window": PLANNING_WINDOWS[i % len(PLANNING_WINDOWS)],
            "max_output_tokens": 4096,
        }
        for i in range(n_models)
    }


def planning_policy(n_models: int) -> tuple[Any, str]:
    """A policy of n models and one route "auto" over all of them, with the richest strategy the schema
    accepts ("cheapest" once it exists, else "ordered"); returns the policy and the strategy."""
    from policies.schema import Policy

    models = planning_models(n_models)
    for strategy in ("cheapest", "ordered"):
        try:
            policy = Policy.model_validate({"models": models, "routes": {"auto": {"strategy": strategy}}})
        except ValueError:
            continue
        return policy, strategy
    raise RuntimeError("the policy schema accepts neither a cheapest nor an ordered route")
