"""Policies with one model on several deployments over the fake providers (OpenAI + Azure shapes)."""

from __future__ import annotations

from typing import Any

from router_fakes import FakeProviders

from policies.schema import Policy

KEY_ENV = "ROUTER_DEPLOY_FAKE_KEY"
AZURE_KEY_ENV = "ROUTER_DEPLOY_AZURE_KEY"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def mini_policy(fake: FakeProviders, *, model: dict[str, Any] | None = None, **top: Any) -> Policy:
    """gpt-4o-mini on OpenAI and on two Azure resources (eastus, westeurope), then a fallback model."""
    return Policy.model_validate(
        {
            "retry": {"attempts": 1},
            "models": {
                "gpt-4o-mini": {
                    "provider": "openai",
                    "api_key_env": KEY_ENV,
                    "deployments": [
                        {"name": "openai", "api_base": fake.openai_base},
                        {
                            "name": "azure-eastus",
                            "provider": "azure",
                            "region": "eastus",
                            "model": "mini-east",
                            "api_base": fake.azure_base("east"),
                            "api_key_env": AZURE_KEY_ENV,
                            "api_version": "2024-10-21",
                        },
                        {
                            "name": "azure-westeurope",
                            "provider": "azure",
                            "region": "westeurope",
                            "model": "mini-west",
                            "api_base": fake.azure_base("west"),
                            "api_key_env": AZURE_KEY_ENV,
                            "api_version": "2024-10-21",
                        },
                    ],
                    **(model or {}),
                },
                "backup": {
                    "provider": "openai_compatible",
                    "model": "backup-model",
                    "api_base": fake.openai_base,
                    "input_cost_per_mtok": 1,
                    "output_cost_per_mtok": 2,
                },
            },
            "routes": {"auto": {"candidates": ["gpt-4o-mini"], "fallbacks": ["backup"]}},
            **top,
        }
    )
