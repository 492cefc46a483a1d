"""Providers as rows of data: which adapter speaks to them, where, and with which key.

Adding an OpenAI-compatible provider is adding a row here, not a module of logic. Any provider
name that is not listed is handed to litellm with the name as its model prefix
(``bedrock`` → ``bedrock/<model>``), so everything litellm reaches is reachable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

AdapterKind = Literal["openai", "azure", "litellm"]


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    adapter: AdapterKind
    api_base: str | None = None
    api_key_env: str | None = None
    # litellm's model prefix ("gemini" → "gemini/gemini-2.5-flash-lite").
    litellm_prefix: str | None = None
    # Path litellm expects after the base URL its users give the provider's own SDK.
    litellm_base_suffix: str = ""
    # The wire protocol always ends a stream with its usage (Gemini's usageMetadata, Anthropic's
    # message_delta): a litellm stream that stops without a usage chunk was cut, even when litellm
    # (which swallows an unreadable event) made up a finish reason for it.
    stream_ends_with_usage: bool = False
    # litellm's stream for this provider ignores ``timeout`` (it opens its own HTTP client): the
    # adapter applies the timeout itself.
    stream_ignores_timeout: bool = False
    # The environment variable that moves the provider's default endpoint (the one its own SDK or
    # litellm reads): a policy that names no api_base runs unchanged against a proxy or the fakes.
    api_base_env: str | None = None


PROVIDERS: Final[Mapping[str, ProviderSpec]] = MappingProxyType(
    {
        "openai": ProviderSpec(
            "openai", "https://api.openai.com/v1", "OPENAI_API_KEY", api_base_env="OPENAI_BASE_URL"
        ),
        "openai_compatible": ProviderSpec("openai"),
        "azure": ProviderSpec("azure", None, "AZURE_API_KEY"),
        "gemini": ProviderSpec(
            "litellm",
            None,
            "GEMINI_API_KEY",
            litellm_prefix="gemini",
            litellm_base_suffix="/v1beta",
            stream_ends_with_usage=True,
            stream_ignores_timeout=True,
            api_base_env="GEMINI_API_BASE",
        ),
        "anthropic": ProviderSpec(
            "litellm",
            None,
            "ANTHROPIC_API_KEY",
            litellm_prefix="anthropic",
            stream_ends_with_usage=True,
            api_base_env="ANTHROPIC_BASE_URL",
        ),
        "groq": ProviderSpec("openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        "deepseek": ProviderSpec("openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
        "mistral": ProviderSpec("openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
        "together_ai": ProviderSpec("openai", "https://api.together.xyz/v1", "TOGETHERAI_API_KEY"),
        "fireworks_ai": ProviderSpec(
            "openai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_AI_API_KEY"
        ),
        "openrouter": ProviderSpec("openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        "xai": ProviderSpec("openai", "https://api.x.ai/v1", "XAI_API_KEY"),
    }
)


def provider_spec(provider: str) -> ProviderSpec:
    """The row for a provider; unlisted providers go through litellm under their own prefix."""
    spec = PROVIDERS.get(provider)
    if spec is not None:
        return spec
    return ProviderSpec("litellm", litellm_prefix=provider)
