"""The model catalog: what each model costs, holds and can do.

Figures come from litellm's bundled price map (read as a JSON file, without importing litellm,
which would cost about two seconds), then from our shipped benchmark scores, then from the
policy's overrides, in that order. A price that none of them knows stays ``None``: an unknown
price is never silently treated as free.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

# "prefill": the model continues an answer from a final assistant message (its prefix), which is
# what lets a cut stream be continued on it (docs/resilience.md, mid-stream continuation).
Capability = Literal["tools", "parallel_tools", "vision", "json_schema", "streaming", "responses", "prefill"]
CAPABILITIES: Final[frozenset[str]] = frozenset(
    {"tools", "parallel_tools", "vision", "json_schema", "streaming", "responses", "prefill"}
)

# Providers whose API continues a final assistant message by design (Anthropic's prefill). An
# OpenAI-compatible server that can (vLLM's continue_final_message) must declare it under supports:.
_PREFILL_PROVIDERS: Final = frozenset({"anthropic"})

# litellm's names for the capabilities we route on.
_LITELLM_FLAGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "supports_function_calling": "tools",
        "supports_parallel_function_calling": "parallel_tools",
        "supports_vision": "vision",
        "supports_response_schema": "json_schema",
    }
)

# Where litellm keys a provider's models: some under a prefix ("gemini/..."), some bare ("gpt-4o").
_LITELLM_PREFIXES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "openai": ("", "openai/"),
        "azure": ("azure/", ""),
        "gemini": ("gemini/", ""),
        "anthropic": ("", "anthropic/"),
    }
)

_PER_MILLION: Final = 1_000_000

# Providers whose batch API router speaks, by provider name -> the wire protocol of that API. Every
# one sells batch at half the standard price; litellm's map has the exact figures for most models.
BATCH_PROTOCOLS: Final[Mapping[str, str]] = MappingProxyType(
    {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini"}
)
_BATCH_DISCOUNT: Final = 0.5


@dataclass(frozen=True, slots=True)
class QualityScore:
    """One published benchmark figure and where it was published."""

    score: float
    source: str


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Everything the router knows about one model, as the policy names it.

    Prices are US dollars per million tokens; ``None`` means unknown (never free).
    """

    name: str
    provider: str
    model: str
    input_cost_per_mtok: float | None = None
    cached_input_cost_per_mtok: float | None = None
    output_cost_per_mtok: float | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    supports: frozenset[str] = frozenset()
    quality: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    quality_sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Batch and flex tiers (docs/batch.md): prices per million tokens, None = unknown / not offered.
    batch_input_cost_per_mtok: float | None = None
    batch_output_cost_per_mtok: float | None = None
    flex_input_cost_per_mtok: float | None = None
    flex_output_cost_per_mtok: float | None = None
    # The batch API this model is reached through ("openai", "anthropic", "gemini"); None = no batch.
    batch_protocol: str | None = None

    @property
    def supports_batch(self) -> bool:
        return (
            self.batch_protocol is not None
            and self.batch_input_cost_per_mtok is not None
            and self.batch_output_cost_per_mtok is not None
        )

    @property
    def supports_flex(self) -> bool:
        return self.flex_input_cost_per_mtok is not None and self.flex_output_cost_per_mtok is not None

    def at_tier(self, tier: str) -> ModelInfo:
        """This model as priced on ``tier`` ("standard", "batch", "flex"): planning and cost at that
        tier then use the ordinary price fields. A tier without known prices leaves the model unpriced."""
        if tier == "standard":
            return self
        if tier == "batch":
            prices = (self.batch_input_cost_per_mtok, self.batch_output_cost_per_mtok)
        elif tier == "flex":
            prices = (self.flex_input_cost_per_mtok, self.flex_output_cost_per_mtok)
        else:
            raise ValueError(f"unknown service tier {tier!r}: use standard, batch or flex")
        # Cached tokens are billed at the tier's input price: the discount and the cache do not stack
        # in every provider's price list, and the tier's input price is the conservative figure.
        return replace(
            self,
            input_cost_per_mtok=prices[0],
            cached_input_cost_per_mtok=None,
            output_cost_per_mtok=prices[1],
        )

    @property
    def priced(self) -> bool:
        return self.input_cost_per_mtok is not None and self.output_cost_per_mtok is not None

    def cost_usd(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float | None:
        """Exact cost of a call from its usage; cached prompt tokens at the cached price when known."""
        if not self.priced:
            return None
        assert self.input_cost_per_mtok is not None and self.output_cost_per_mtok is not None
        cached = min(max(cached_tokens, 0), prompt_tokens)
        cached_price = (
            self.cached_input_cost_per_mtok
            if self.cached_input_cost_per_mtok is not None
            else self.input_cost_per_mtok
        )
        return (
            (prompt_tokens - cached) * self.input_cost_per_mtok
            + cached * cached_price
            + completion_tokens * self.output_cost_per_mtok
        ) / _PER_MILLION


def litellm_price_map_path() -> Path | None:
    """The price map litellm ships, located without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"
    return path if path.is_file() else None


@functools.cache
def _litellm_price_map() -> Mapping[str, Mapping[str, Any]]:
    # Cached because the file is immutable for the life of the process and costs ~20 ms to parse.
    path = litellm_price_map_path()
    if path is None:
        return MappingProxyType({})
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    data.pop("sample_spec", None)
    return MappingProxyType(data)


@functools.cache
def shipped_quality_scores() -> Mapping[str, Mapping[str, QualityScore]]:
    """Published benchmark scores shipped with the package (providers/data/quality.json)."""
    path = Path(__file__).parent / "data" / "quality.json"
    with path.open(encoding="utf-8") as fh:
        raw: dict[str, Any] = json.load(fh)
    table: dict[str, Mapping[str, QualityScore]] = {}
    for model, scores in raw.get("models", {}).items():
        table[model] = MappingProxyType(
            {bench.lower(): QualityScore(float(s["score"]), str(s["source"])) for bench, s in scores.items()}
        )
    return MappingProxyType(table)


def litellm_entry(provider: str, model: str) -> Mapping[str, Any] | None:
    """litellm's price-map entry for a provider's model id, trying the provider's key conventions."""
    prices = _litellm_price_map()
    prefixes = _LITELLM_PREFIXES.get(provider, (f"{provider}/", ""))
    for prefix in prefixes:
        entry = prices.get(prefix + model)
        if entry is not None and entry.get("mode", "chat") == "chat":
            return entry
    return None


def _from_litellm(entry: Mapping[str, Any]) -> dict[str, Any]:
    def per_mtok(key: str) -> float | None:
        value = entry.get(key)
        return None if value is None else round(float(value) * _PER_MILLION, 6)

    supports = {cap for flag, cap in _LITELLM_FLAGS.items() if entry.get(flag)}
    # Every chat model in the map streams; litellm has no flag for it.
    supports.add("streaming")
    fields: dict[str, Any] = {
        "input_cost_per_mtok": per_mtok("input_cost_per_token"),
        "cached_input_cost_per_mtok": per_mtok("cache_read_input_token_cost"),
        "output_cost_per_mtok": per_mtok("output_cost_per_token"),
        "context_window": entry.get("max_input_tokens") or entry.get("max_tokens"),
        "max_output_tokens": entry.get("max_output_tokens"),
        "supports": frozenset(supports),
        "batch_input_cost_per_mtok": per_mtok("input_cost_per_token_batches"),
        "batch_output_cost_per_mtok": per_mtok("output_cost_per_token_batches"),
        "flex_input_cost_per_mtok": per_mtok("input_cost_per_token_flex"),
        "flex_output_cost_per_mtok": per_mtok("output_cost_per_token_flex"),
    }
    return {k: v for k, v in fields.items() if v is not None}


def _with_batch_defaults(info: ModelInfo) -> ModelInfo:
    """The batch protocol of the model's provider, and half the standard price where no batch price
    is known (every provider in BATCH_PROTOCOLS sells batch at 50%)."""
    protocol = BATCH_PROTOCOLS.get(info.provider)
    if protocol is None:
        return info

    def half(batch: float | None, standard: float | None) -> float | None:
        if batch is not None or standard is None:
            return batch
        return round(standard * _BATCH_DISCOUNT, 6)

    return replace(
        info,
        batch_protocol=info.batch_protocol or protocol,
        batch_input_cost_per_mtok=half(info.batch_input_cost_per_mtok, info.input_cost_per_mtok),
        batch_output_cost_per_mtok=half(info.batch_output_cost_per_mtok, info.output_cost_per_mtok),
    )


def _quality_for(name: str, model: str) -> Mapping[str, QualityScore]:
    scores = shipped_quality_scores()
    return scores.get(name) or scores.get(model) or MappingProxyType({})


def resolve_model(
    name: str,
    *,
    provider: str,
    model: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ModelInfo:
    """Build a model's catalog entry: litellm's map, then shipped scores, then the policy's overrides.

    ``overrides`` keys are ModelInfo field names; ``supports`` replaces the catalog's list and
    ``quality`` is merged over the shipped scores (a policy figure wins, and its source is "policy").
    """
    model_id = model or name
    info = ModelInfo(name=name, provider=provider, model=model_id)
    entry = litellm_entry(provider, model_id)
    if entry is not None:
        info = replace(info, **_from_litellm(entry))
    else:
        # Unknown to litellm (a self-hosted model, say): every OpenAI-compatible server streams, but
        # nothing else is assumed: tools, vision and JSON schema must be declared under supports:.
        info = replace(info, supports=frozenset({"streaming"}))
    if provider == "openai":
        # OpenAI's own API speaks the Responses API for every chat model; an OpenAI-compatible server
        # says so in the policy (supports: [..., responses]).
        info = replace(info, supports=info.supports | {"responses"})
    if provider in _PREFILL_PROVIDERS:
        info = replace(info, supports=info.supports | {"prefill"})
    shipped = _quality_for(name, model_id)
    quality = {bench: s.score for bench, s in shipped.items()}
    sources = {bench: s.source for bench, s in shipped.items()}
    fields = dict(overrides or {})
    for bench, score in (fields.pop("quality", None) or {}).items():
        quality[bench.lower()] = float(score)
        sources[bench.lower()] = "policy"
    if "supports" in fields and fields["supports"] is not None:
        fields["supports"] = frozenset(fields["supports"])
    fields = {k: v for k, v in fields.items() if v is not None}
    # A standard price the policy states, with no batch price beside it: the batch price follows the
    # policy's (half of it), not litellm's figure for a price the policy has replaced.
    for side in ("input", "output"):
        if f"{side}_cost_per_mtok" in fields and f"batch_{side}_cost_per_mtok" not in fields:
            fields[f"batch_{side}_cost_per_mtok"] = None
    return _with_batch_defaults(
        replace(
            info,
            **fields,
            quality=MappingProxyType(quality),
            quality_sources=MappingProxyType(sources),
        )
    )
