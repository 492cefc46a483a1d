"""The flex tier in the engine: a flex deployment beside each model that offers it, and the price of
an answer at the tier the provider says it served (docs/flex.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from providers.base import Deployment
from providers.catalog import ModelInfo
from providers.tiers import FLEX, STANDARD, flex_name, model_of, offers_flex, tier_of

if TYPE_CHECKING:
    from policies.schema import Policy


def add_flex_deployments(
    policy: Policy,
    catalog: dict[str, ModelInfo],
    deployments: dict[str, Deployment],
    unavailable: dict[str, str],
) -> None:
    """Add ``<name>@flex`` for every model that can be asked for flex.

    Which models can: providers.tiers.offers_flex.
    """
    for name, spec in policy.models.items():
        info = catalog[name]
        deployment = deployments[name]
        declared = spec.flex_input_cost_per_mtok is not None and spec.flex_output_cost_per_mtok is not None
        if not offers_flex(spec.provider, deployment.adapter, info.supports_flex, declared):
            continue
        flex = flex_name(name)
        if flex in policy.models:
            raise ValueError(
                f"the policy names a model {flex!r}, which is also the name of {name}'s flex tier:"
                " rename that model"
            )
        catalog[flex] = replace(info.at_tier(FLEX), name=flex)
        deployments[flex] = replace(deployment, name=flex, service_tier=FLEX)
        if name in unavailable:
            unavailable[flex] = unavailable[name]


def priced_at(catalog: Mapping[str, ModelInfo], deployment: str, reported: str | None) -> ModelInfo:
    """The catalog entry to price an answer of ``deployment`` by: the tier the provider reported it
    served (``Usage.service_tier``) when that differs from the tier asked for and is priced, else the
    deployment's own."""
    if reported is None or reported == tier_of(deployment):
        return catalog[deployment]
    if reported == STANDARD:
        return catalog[model_of(deployment)]
    return catalog.get(flex_name(deployment), catalog[deployment])
