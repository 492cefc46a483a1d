"""The policy schema's shared key declarations stay in step with the keys they describe."""

from __future__ import annotations

from policies.schema import FeatureSpec, Policy, RouteSpec

OVERRIDES = "Overrides the top-level "


def test_each_route_override_names_its_own_key_and_that_key_exists_at_the_top_level() -> None:
    overrides = {
        name: (field.description or "")[len(OVERRIDES) : -1]
        for name, field in RouteSpec.model_fields.items()
        if (field.description or "").startswith(OVERRIDES)
    }
    assert len(overrides) == 10
    assert all(named == name and name in Policy.model_fields for name, named in overrides.items())


def test_service_tier_takes_its_urgency_alias_on_routes_and_features() -> None:
    for spec in (RouteSpec, FeatureSpec):
        assert spec.model_validate({"urgency": "flex"}).service_tier == "flex"
        assert spec.model_validate({"service_tier": "standard"}).service_tier == "standard"
