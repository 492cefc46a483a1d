"""The long tail: every provider litellm reaches (Gemini native, Anthropic, Bedrock, Vertex, ...).

litellm costs about two seconds to import and tries to download its price map unless told
otherwise, so it is imported on the first request that needs it, after setting
``LITELLM_LOCAL_MODEL_COST_MAP``. Its module globals (callbacks, caches, settings) are never
touched (except ``suppress_debug_info``, see ``import_litellm``): everything is passed per call, so
two clients in one process cannot interfere.
"""

from __future__ import annotations

import copy
import os
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

from providers.base import JSON, CallOptions, Deployment
from providers.errors import from_litellm


def import_litellm() -> ModuleType:
    """Import litellm offline-safe: its bundled price map and Anthropic beta-header table, no downloads."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
    import litellm

    # The one module global we touch, deliberately: without it litellm print()s a "Give Feedback"
    # banner to the application's stdout on every provider error (breaking JSON output, for one).
    # It changes no behaviour, so clients in one process still cannot interfere with each other.
    litellm.suppress_debug_info = True
    return litellm


def _arguments(deployment: Deployment, body: JSON, options: CallOptions, stream: bool) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        # A deep copy: litellm's Gemini path rewrites tool schemas in place, and the body is the caller's.
        **copy.deepcopy(body),
        "model": deployment.litellm_model or deployment.model,
        "stream": stream,
        # We retry and fall back ourselves, by policy; litellm must make exactly one call.
        "num_retries": 0,
        "max_retries": 0,
        # A parameter one provider lacks (seed for Anthropic, say) is dropped, not fatal.
        "drop_params": True,
    }
    if deployment.api_base:
        arguments["api_base"] = deployment.api_base
    if deployment.api_key:
        arguments["api_key"] = deployment.api_key
    if deployment.api_version:
        arguments["api_version"] = deployment.api_version
    headers = {**deployment.headers, **(options.extra_headers or {})}
    if headers:
        arguments["extra_headers"] = headers
    if options.timeout is not None:
        arguments["timeout"] = options.timeout
    return arguments


def _as_dict(obj: Any) -> JSON:
    data: JSON = obj.model_dump() if hasattr(obj, "model_dump") else dict(obj)
    return data


class LiteLLMAdapter:
    """Sync driver over ``litellm.completion``."""

    def complete(self, deployment: Deployment, body: JSON, options: CallOptions) -> JSON:
        litellm = import_litellm()
        try:
            return _as_dict(litellm.completion(**_arguments(deployment, body, options, stream=False)))
        except Exception as exc:
            raise from_litellm(exc) from exc

    def stream(self, deployment: Deployment, body: JSON, options: CallOptions) -> Iterator[JSON]:
        litellm = import_litellm()
        try:
            chunks = litellm.completion(**_arguments(deployment, body, options, stream=True))
        except Exception as exc:
            raise from_litellm(exc) from exc
        return self._iterate(chunks)

    @staticmethod
    def _iterate(chunks: Any) -> Iterator[JSON]:
        try:
            for chunk in chunks:
                yield _as_dict(chunk)
        except Exception as exc:
            raise from_litellm(exc) from exc

    def close(self) -> None:
        return None


class AsyncLiteLLMAdapter:
    """Async driver over ``litellm.acompletion``."""

    async def complete(self, deployment: Deployment, body: JSON, options: CallOptions) -> JSON:
        litellm = import_litellm()
        try:
            return _as_dict(await litellm.acompletion(**_arguments(deployment, body, options, stream=False)))
        except Exception as exc:
            raise from_litellm(exc) from exc

    async def stream(self, deployment: Deployment, body: JSON, options: CallOptions) -> AsyncIterator[JSON]:
        litellm = import_litellm()
        try:
            chunks = await litellm.acompletion(**_arguments(deployment, body, options, stream=True))
            async for chunk in chunks:
                yield _as_dict(chunk)
        except Exception as exc:
            raise from_litellm(exc) from exc

    async def close(self) -> None:
        return None
