"""Service tiers on the wire: which deployments can ask for OpenAI's flex tier, and what a provider's
answer says it was served at.

A model that offers flex is two deployments: the model itself (standard) and ``<name>@flex``, the
same endpoint asked for ``service_tier: "flex"`` and priced at the catalog's flex prices. Being two
deployments, each has its own circuit breaker and latency record, and a flex request tries the
flex one first and the standard one right after it (policies.plan; docs/flex.md).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Final

STANDARD: Final = "standard"
FLEX: Final = "flex"
FLEX_SUFFIX: Final = "@flex"
# Providers whose API takes ``service_tier: "flex"`` on a synchronous call, through our adapters. The
# catalog's flex prices say which of their models offer it (litellm's map, or the policy).
FLEX_PROVIDERS: Final = frozenset({"openai"})
# What OpenAI reports in a response's ``service_tier`` → the catalog tier its tokens are billed at.
# "priority" and "scale" have no price in the catalog: such an answer is settled at the tier asked for.
_REPORTED: Final = {"flex": FLEX, "default": STANDARD, "standard": STANDARD}


def offers_flex(provider: str, adapter: str, priced: bool, declared: bool) -> bool:
    """Whether a model gets a flex deployment: its flex prices are known (``priced``) and its provider
    takes ``service_tier: "flex"`` — or the policy states its flex prices itself (``declared``) for a
    model on the OpenAI-compatible fast path (a proxy that passes the tier on)."""
    return priced and (provider in FLEX_PROVIDERS or (declared and adapter == "openai"))


def flex_name(name: str) -> str:
    """The flex deployment of the policy model ``name``."""
    return name + FLEX_SUFFIX


def tier_of(name: str) -> str:
    """The tier a deployment name asks for."""
    return FLEX if name.endswith(FLEX_SUFFIX) else STANDARD


def model_of(name: str) -> str:
    """The policy model a deployment name belongs to (``m@flex`` → ``m``)."""
    return name.removesuffix(FLEX_SUFFIX)


def reported_tier(value: object) -> str | None:
    """The catalog tier of a response's ``service_tier`` field; None when absent or unpriced."""
    return _REPORTED.get(value) if isinstance(value, str) else None


def set_tier(payload: MutableMapping[str, Any], tier: str | None) -> None:
    """Put the deployment's tier in an OpenAI request body.

    A flex deployment asks for ``flex``; any other deployment never forwards a caller's ``"flex"``
    (the router asked for it through the flex deployment, and this one is the standard fallback).
    Other values the caller set (``priority``, ``auto``) go through unchanged.
    """
    if tier is not None:
        payload["service_tier"] = tier
    elif payload.get("service_tier") == FLEX:
        del payload["service_tier"]
