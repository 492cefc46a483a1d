"""Every client the benchmarks compare, as a zero-argument call against the fake providers.

Every line sends the same request: gpt-4o-mini (or the route "auto" that resolves to it), one short user
message, ``max_tokens=64``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from benchmarks._configs import MODEL, OPENAI_KEY_ENV, one_model_policy, request
from benchmarks._everything_on import FullConfig, everything_on
from benchmarks._server import Server


@dataclass
class SyncLine:
    call: Callable[[], Any]
    close: Callable[[], None]
    full: FullConfig | None = None


# The throughput line with deployments: gpt-4o-mini on this many, balanced by usage on SQLite counters.
DEPLOYMENTS: Final = 3


@dataclass
class AsyncLine:
    call: Callable[[], Awaitable[Any]]
    close: Callable[[], Awaitable[None]]
    full: FullConfig | None = None


def quiet_litellm() -> ModuleType:
    """Import litellm offline and silent: its price map from the package, no debug output."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
    import litellm

    litellm.suppress_debug_info = True
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return litellm


def _litellm_router(server: Server) -> Any:
    """litellm's Router: two deployments, gpt-4o-mini falling back to gpt-4o, no retries."""
    litellm = quiet_litellm()
    deployments = [
        {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{name}",
                "api_base": server.openai_base,
                "api_key": "sk-bench",
            },
        }
        for name in ("gpt-4o-mini", "gpt-4o")
    ]
    return litellm.Router(model_list=deployments, fallbacks=[{"gpt-4o-mini": ["gpt-4o"]}], num_retries=0)


def sync_line(key: str, server: Server, workdir: Path) -> SyncLine:
    """The client for one latency line, built and ready (not yet warmed up)."""
    if key == "httpx":
        import httpx

        client = httpx.Client()
        url = f"{server.openai_base}/chat/completions"
        headers = {
            "content-type": "application/json",
            "authorization": f"Bearer {os.environ[OPENAI_KEY_ENV]}",
        }

        def post() -> Any:
            response = client.post(url, content=json.dumps(request()).encode(), headers=headers)
            response.raise_for_status()
            return response.json()

        return SyncLine(post, client.close)
    if key == "openai":
        import openai

        sdk = openai.OpenAI(base_url=server.openai_base, api_key=os.environ[OPENAI_KEY_ENV], max_retries=0)
        return SyncLine(lambda: sdk.chat.completions.create(**request()), sdk.close)
    if key == "router_one":
        import router

        one = router.OpenAI(policy=one_model_policy(server.openai_base))
        return SyncLine(lambda: one.chat.completions.create(**request("auto")), one.close)
    if key == "router_full":
        import router

        config = everything_on(server.openai_base, server.gemini_base, workdir)
        full = router.OpenAI(policy=config.policy, **config.client_kwargs)
        config.background = _litellm_import_of(full)
        return SyncLine(
            lambda: full.chat.completions.create(**request("auto", **config.create_kwargs)),
            full.close,
            config,
        )
    if key == "litellm":
        litellm = quiet_litellm()
        base = server.openai_base
        return SyncLine(
            lambda: litellm.completion(**request(f"openai/{MODEL}"), api_base=base, api_key="sk-bench"),
            lambda: None,
        )
    if key == "litellm_router":
        lite_router = _litellm_router(server)
        return SyncLine(lambda: lite_router.completion(**request()), lambda: None)
    raise ValueError(f"unknown latency line {key!r}")


def _litellm_import_of(client: Any) -> Callable[[], object]:
    """Waits (up to two minutes) for the client's background import of litellm, if it started one."""
    done = client._router._litellm._litellm._done
    started = client._router._litellm._litellm

    def wait() -> object:
        return done.wait(120) if started._thread is not None else None

    return wait


async def _nothing() -> None:
    return None


def async_line(key: str, server: Server, workdir: Path) -> AsyncLine:
    """The client for one throughput line."""
    if key == "openai":
        import openai

        sdk = openai.AsyncOpenAI(
            base_url=server.openai_base, api_key=os.environ[OPENAI_KEY_ENV], max_retries=0
        )
        return AsyncLine(lambda: sdk.chat.completions.create(**request()), sdk.close)
    if key in ("router_full", "router_deployments"):
        import router

        deployments = DEPLOYMENTS if key == "router_deployments" else 0
        config = everything_on(server.openai_base, server.gemini_base, workdir, deployments)
        full = router.AsyncOpenAI(policy=config.policy, **config.client_kwargs)
        config.background = _litellm_import_of(full)
        return AsyncLine(
            lambda: full.chat.completions.create(**request("auto", **config.create_kwargs)),
            full.close,
            config,
        )
    if key == "aiohttp":
        return _bare_aiohttp(server)
    if key == "litellm_router":
        lite_router = _litellm_router(server)
        return AsyncLine(lambda: lite_router.acompletion(**request()), _nothing)
    raise ValueError(f"unknown throughput line {key!r}")


def _bare_aiohttp(server: Server) -> AsyncLine:
    """The floor: one aiohttp session, POST the body, read the JSON; no client logic at all."""
    import aiohttp

    url = f"{server.openai_base}/chat/completions"
    headers = {"content-type": "application/json", "authorization": f"Bearer {os.environ[OPENAI_KEY_ENV]}"}
    session: aiohttp.ClientSession | None = None

    async def post() -> Any:
        nonlocal session
        if session is None:  # inside the running loop
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
        async with session.post(url, data=json.dumps(request()).encode(), headers=headers) as response:
            response.raise_for_status()
            return await response.json()

    async def close() -> None:
        if session is not None:
            await session.close()

    return AsyncLine(post, close)
