"""The policy file's shape, as frozen pydantic models.

This shape is a contract with users' YAML files: extend it, never break it. Every model
forbids unknown keys so that a typo is an error with a line number, not a silently ignored
setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt

from providers.catalog import Capability

Benchmark = Annotated[str, Field(min_length=1, pattern=r"^[a-z0-9_.\-]+$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ModelSpec(_Frozen):
    """One deployable model: where it lives and anything the catalog should be told about it."""

    provider: str = Field(
        min_length=1,
        description="openai | azure | gemini | anthropic | openai_compatible | any litellm provider prefix",
    )
    model: str | None = Field(default=None, description="The provider's model id; default: the key.")
    api_base: str | None = Field(default=None, description="Base URL, as the provider's own SDK expects it.")
    api_key_env: str | None = Field(
        default=None, description="Environment variable that holds the API key; default per provider."
    )
    api_version: str | None = Field(default=None, description="Azure OpenAI's api-version.")
    headers: Mapping[str, str] | None = Field(default=None, description="Extra HTTP headers for every call.")
    input_cost_per_mtok: NonNegativeFloat | None = None
    cached_input_cost_per_mtok: NonNegativeFloat | None = None
    output_cost_per_mtok: NonNegativeFloat | None = None
    context_window: PositiveInt | None = None
    max_output_tokens: PositiveInt | None = None
    supports: tuple[Capability, ...] | None = Field(
        default=None, description="Replaces the catalog's capability list when given."
    )
    quality: Mapping[Benchmark, float] | None = Field(
        default=None, description="Benchmark scores by lower-case name, merged over the shipped ones."
    )

    def catalog_overrides(self) -> dict[str, Any]:
        """The fields that override the catalog, for providers.catalog.resolve_model."""
        return {
            "input_cost_per_mtok": self.input_cost_per_mtok,
            "cached_input_cost_per_mtok": self.cached_input_cost_per_mtok,
            "output_cost_per_mtok": self.output_cost_per_mtok,
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "supports": self.supports,
            "quality": dict(self.quality) if self.quality else None,
        }


Strategy = Literal["ordered", "cheapest", "fastest"]
QualityFloors = Mapping[Benchmark, float]


class RouteSpec(_Frozen):
    """A virtual model name (``model="auto"``) and how it chooses among real models."""

    strategy: Strategy = Field(
        default="ordered",
        description=(
            "ordered: as listed; cheapest: by the expected cost of each request; "
            "fastest: by observed latency."
        ),
    )
    candidates: tuple[str, ...] | None = Field(
        default=None, description="Models to consider, by policy name; default: all models."
    )
    fallbacks: tuple[str, ...] = Field(
        default=(), description="Tried after the ranked candidates, in this order (filters still apply)."
    )
    require: tuple[Capability, ...] = Field(
        default=(), description="Capabilities every model of this route must have."
    )
    min_quality: QualityFloors | None = Field(
        default=None, description="Benchmark floors, e.g. {mmlu: 80}; a model without the score fails."
    )
    expected_output_tokens: PositiveInt | None = Field(
        default=None,
        description="Completion tokens assumed for ranking before any are observed (no max_tokens given).",
    )


class FeatureSpec(_Frozen):
    """Per-feature settings, selected by ``metadata={"feature": ...}``; added on top of the route's."""

    require: tuple[Capability, ...] = Field(
        default=(), description="Capabilities every model serving this feature must have."
    )
    min_quality: QualityFloors | None = Field(
        default=None, description="Benchmark floors for this feature; the stricter of route and feature wins."
    )


class Policy(_Frozen):
    """A whole policy file."""

    version: Literal[1] = 1
    ledger: str | None = Field(
        default=None,
        description=(
            "memory://, sqlite:///path or redis://host:port/db; default: SQLite in the user's state dir."
        ),
    )
    models: Mapping[str, ModelSpec] = Field(min_length=1)
    routes: Mapping[str, RouteSpec] = Field(default_factory=dict)
    features: Mapping[str, FeatureSpec] = Field(default_factory=dict)
    aliases: Mapping[str, str] = Field(
        default_factory=dict,
        description="model= names taken over by a route, e.g. {gpt-4o-mini: auto}, without code changes.",
    )
    fallbacks: tuple[str, ...] = Field(
        default=(), description="Tried after a model that was named directly in model=, in this order."
    )
    expected_output_tokens: PositiveInt = Field(default=256, description="Default for routes that set none.")
    source: str | None = Field(default=None, exclude=True, description="Where the policy was read from.")
