"""The policy file's shape, as frozen pydantic models.

This shape is a contract with users' YAML files: extend it, never break it. Every model
forbids unknown keys so that a typo is an error with a line number, not a silently ignored
setting.
"""

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PlainValidator,
    PositiveFloat,
    PositiveInt,
    field_validator,
)
from pydantic_core import PydanticCustomError

from providers.catalog import Capability

Benchmark = Annotated[str, Field(min_length=1, pattern=r"^[a-z0-9_.\-]+$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)


class _Endpoint(_Frozen):
    """A model or deployment: what it is called with (``headers``, ``api_base``) is kept out of reprs."""

    def __repr_args__(self) -> Any:
        # Header values and URL userinfo are credentials: a repr (a log line, a traceback) shows neither.
        for name, value in super().__repr_args__():
            if name == "headers" and value:
                value = {key: "<redacted>" for key in value}
            elif name == "api_base" and value and "@" in value:
                scheme, _, rest = value.partition("://")
                value = f"{scheme}://<redacted>@{rest.rpartition('@')[2]}"
            yield name, value


Balance = Literal["weighted", "least_busy", "latency", "usage"]
WhenAllLimited = Literal["wait", "fallback"]


class DeploymentSpec(_Endpoint):
    """One endpoint that serves a model (docs/deployments.md): unset keys are the model's own."""

    name: str | None = Field(
        default=None,
        min_length=1,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="Names it in events and `router models`; default: provider-region or provider-N.",
    )
    provider: str | None = Field(default=None, min_length=1, description="Default: the model's provider.")
    model: str | None = Field(
        default=None,
        description="The provider's model id (Azure: the deployment name).",
    )
    api_base: str | None = Field(
        default=None, description="Base URL (Azure: https://RESOURCE.openai.azure.com)."
    )
    api_key_env: str | None = Field(default=None, description="Environment variable that holds this key.")
    api_version: str | None = Field(default=None, description="Azure OpenAI's api-version.")
    headers: Mapping[str, str] | None = Field(default=None, description="Extra HTTP headers for every call.")
    region: str | None = Field(default=None, description="Shown in events and `router models`.")
    weight: PositiveFloat = Field(default=1.0, description="Share of requests under `balance: weighted`.")
    tpm: PositiveInt | None = Field(default=None, description="Tokens per minute this deployment may take.")
    rpm: PositiveInt | None = Field(default=None, description="Requests per minute this deployment may take.")
    input_cost_per_mtok: NonNegativeFloat | None = Field(
        default=None, description="This deployment's price, when it differs from the model's."
    )
    cached_input_cost_per_mtok: NonNegativeFloat | None = None
    output_cost_per_mtok: NonNegativeFloat | None = None


class ModelSpec(_Endpoint):
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
    batch_input_cost_per_mtok: NonNegativeFloat | None = Field(
        default=None, description="Batch API input price; default: litellm's, else half the standard price."
    )
    batch_output_cost_per_mtok: NonNegativeFloat | None = Field(
        default=None, description="Batch API output price; default: litellm's, else half the standard price."
    )
    flex_input_cost_per_mtok: NonNegativeFloat | None = Field(
        default=None, description="Flex tier input price; default: litellm's (unknown: no flex tier)."
    )
    flex_output_cost_per_mtok: NonNegativeFloat | None = Field(
        default=None, description="Flex tier output price; default: litellm's (unknown: no flex tier)."
    )
    batch_protocol: Literal["openai", "anthropic", "gemini"] | None = Field(
        default=None,
        description="The batch API that serves this model; default: its provider's.",
    )
    deployments: tuple[DeploymentSpec, ...] | None = Field(
        default=None,
        min_length=1,
        description="Several endpoints serving this model, balanced per request (docs/deployments.md).",
    )
    balance: Balance | None = Field(
        default=None,
        description="Picks a deployment: weighted (default), least_busy, latency or usage.",
    )
    when_all_limited: WhenAllLimited | None = Field(
        default=None,
        description="Every deployment at its tpm/rpm: wait (within the deadline) or fallback (default).",
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
            "batch_input_cost_per_mtok": self.batch_input_cost_per_mtok,
            "batch_output_cost_per_mtok": self.batch_output_cost_per_mtok,
            "flex_input_cost_per_mtok": self.flex_input_cost_per_mtok,
            "flex_output_cost_per_mtok": self.flex_output_cost_per_mtok,
            "batch_protocol": self.batch_protocol,
        }


Strategy = Literal["ordered", "cheapest", "fastest"]
ContentPolicyConduct = Literal["raise", "fallback"]
StreamRecovery = Literal["continue", "off"]
QualityFloors = Mapping[Benchmark, float]
ServiceTier = Literal["standard", "flex"]


class RetrySpec(_Frozen):
    """Retries of the same model before falling through to the next candidate."""

    attempts: PositiveInt = Field(
        default=2, description="Calls per model, the first included (1 = no retry on the same model)."
    )
    backoff_initial_s: NonNegativeFloat = Field(default=0.5, description="Upper bound of the first wait.")
    backoff_max_s: NonNegativeFloat = Field(default=8.0, description="No wait between retries is longer.")
    jitter: bool = Field(
        default=True, description="Full jitter: each wait is uniform in [0, bound]; false waits the bound."
    )


class CooldownSpec(_Frozen):
    """The circuit breaker per deployment: skip a model that keeps failing, then try it once."""

    failures: PositiveInt = Field(default=3, description="Failures within window_s that open the breaker.")
    window_s: PositiveFloat = Field(default=60.0, description="How far back failures are counted.")
    cooldown_s: PositiveFloat = Field(
        default=30.0, description="How long the model is skipped before one trial request."
    )


Window = Literal["hour", "day", "week", "month", "total"]


class BudgetSpec(_Frozen):
    """A spending cap for one window (calendar windows in UTC)."""

    limit_usd: PositiveFloat = Field(description="Most that may be spent within one window.")
    window: Window = Field(default="day", description="hour | day | week | month | total (UTC calendar).")
    on_exceed: Literal["reject", "downgrade"] = Field(
        default="reject",
        description=(
            "reject: raise BudgetExceededError; downgrade: serve with the models whose worst case still fits."
        ),
    )
    warn_at: tuple[float, ...] = Field(
        default=(), description="Fractions of the limit that log a warning once per window, e.g. [0.5, 0.8]."
    )
    on_ledger_error: Literal["fail_closed", "fail_open"] = Field(
        default="fail_closed",
        description=(
            "When the ledger cannot be reached before a call: fail_closed raises LedgerError;"
            " fail_open serves the request unchecked and journals its charge."
        ),
    )

    @field_validator("warn_at")
    @classmethod
    def _fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        for fraction in value:
            if not 0 < fraction <= 1:
                raise ValueError(f"warn_at fractions must be in (0, 1], got {fraction}")
        return tuple(sorted(set(value)))


class LoggingSpec(_Frozen):
    """What ``router.logging.configure`` is called with when the application applies this policy's
    logging (``router.logging.configure_from_policy``, ``configure_logging=True``, the CLI)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = Field(default=True, alias="json", description="JSON lines; false: readable console.")
    file: str | None = Field(default=None, description="Append events to this file; default: stderr.")
    log_content: bool = Field(
        default=False, description="Include message content in events (off: never logged)."
    )


# Learned adequacy (docs/adequacy.md), the same keys on a route and on a feature (the feature's win).
AdequacyFile = Annotated[
    str | None,
    Field(
        description="An adequacy file from `router train` (path relative to the policy file): "
        "per-request predicted success of each model."
    ),
]
MinSuccess = Annotated[
    float | None,
    Field(ge=0.0, le=1.0, description="With adequacy: reject a model predicted to succeed less often."),
]
MaxShortfall = Annotated[
    float | None,
    Field(
        ge=0.0,
        le=1.0,
        description="With adequacy: reject a model predicted more than this below the likeliest candidate.",
    ),
]


def _cost_weight(value: Any) -> float | Literal["auto"] | None:
    """A number >= 0, or ``auto`` (the adequacy file's suggestion for the recognised task)."""
    if value is None or value == "auto":
        return value  # type: ignore[no-any-return]
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise PydanticCustomError("cost_weight", "must be ≥ 0, or auto (the file's suggestion per task)")
    if not math.isfinite(value):
        raise PydanticCustomError("cost_weight", "must be a finite number, or auto")
    return float(value)


CostWeight = Annotated[
    float | Literal["auto"] | None,
    PlainValidator(_cost_weight, json_schema_input_type=float | Literal["auto"] | None),
    Field(
        description="With adequacy: price predicted success; the first choice maximizes predicted success "
        "minus cost_weight x (its expected cost / the dearest candidate's). auto: the adequacy file's "
        "suggestion for the task recognised in the prompt (router train --target), else its global one.",
    ),
]
OnInadequate = Annotated[
    Literal["best", "fail"] | None,
    Field(description="When no model passes: best (default) = the most likely one answers; fail = refuse."),
]


# The tier to ask models for (docs/flex.md), the same key on a route and on a feature (the feature's wins).
Tier = Annotated[ServiceTier | None, Field(validation_alias=AliasChoices("service_tier", "urgency"))]


def _overrides(key: str) -> Any:
    """A route's resilience key: unset, the top-level key of the same name applies."""
    return Field(default=None, description=f"Overrides the top-level {key}.")


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
    retry: RetrySpec | None = _overrides("retry")
    timeout_s: PositiveFloat | None = _overrides("timeout_s")
    max_attempts: PositiveInt | None = _overrides("max_attempts")
    max_retry_after_s: NonNegativeFloat | None = _overrides("max_retry_after_s")
    stream_idle_timeout_s: PositiveFloat | None = _overrides("stream_idle_timeout_s")
    cooldown: CooldownSpec | None = _overrides("cooldown")
    first_token_timeout_s: PositiveFloat | None = _overrides("first_token_timeout_s")
    retry_on_timeout: bool | None = _overrides("retry_on_timeout")
    on_content_policy: ContentPolicyConduct | None = _overrides("on_content_policy")
    adequacy: AdequacyFile = None
    min_success: MinSuccess = None
    max_shortfall: MaxShortfall = None
    cost_weight: CostWeight = None
    on_inadequate: OnInadequate = None
    stream_recovery: StreamRecovery | None = _overrides("stream_recovery")
    balance: Balance | None = Field(
        default=None, description="Overrides the models' balance: for requests of this route."
    )
    when_all_limited: WhenAllLimited | None = Field(
        default=None, description="Overrides the models' when_all_limited: for requests of this route."
    )
    service_tier: Tier = Field(
        default=None,
        description=(
            "flex: ask models that have a flex tier for it, rank them at flex prices, and fall back to"
            " the same model at standard on a flex 429 or timeout (docs/flex.md); alias: urgency."
        ),
    )


class FeatureSpec(_Frozen):
    """Per-feature settings, selected by ``metadata={"feature": ...}``; added on top of the route's."""

    require: tuple[Capability, ...] = Field(
        default=(), description="Capabilities every model serving this feature must have."
    )
    min_quality: QualityFloors | None = Field(
        default=None, description="Benchmark floors for this feature; the stricter of route and feature wins."
    )
    budget: BudgetSpec | None = Field(default=None, description="This feature's spending cap.")
    adequacy: AdequacyFile = None
    min_success: MinSuccess = None
    max_shortfall: MaxShortfall = None
    cost_weight: CostWeight = None
    on_inadequate: OnInadequate = None
    stream_recovery: StreamRecovery | None = Field(
        default=None, description="Overrides the route's stream_recovery for this feature."
    )
    service_tier: Tier = Field(
        default=None,
        description=("Overrides the route's service_tier (flex or standard; alias: urgency); docs/flex.md."),
    )


class BatchSpec(_Frozen):
    """How routed batch jobs (client.batches) retry and meet their budget; docs/batch.md."""

    retry: Literal["batch", "realtime", "auto"] = Field(
        default="batch",
        description=(
            "A line a provider fails or expires: batch (the next candidate's batch API), realtime (the"
            " routed chat path at real-time prices), auto (real time only when another batch round"
            " would end after the job's deadline)."
        ),
    )
    deadline_s: PositiveFloat | None = Field(
        default=None,
        description="Seconds from submission the job must end within; default: its completion_window (24h).",
    )
    round_s: PositiveFloat = Field(
        default=86_400.0,
        description="How long auto assumes another batch round may take: the providers' 24h window.",
    )
    on_exceed: Literal["refuse", "partial"] = Field(
        default="refuse",
        description=(
            "A job whose worst case does not fit a budget: refuse it whole, or submit the lines that fit"
            " (in file order) and fail the rest with budget_exceeded."
        ),
    )


class Policy(_Frozen):
    """A whole policy file."""

    version: Literal[1] = 1
    ledger: str | None = Field(
        default=None,
        repr=False,  # a redis:// URL may carry a password
        description=(
            "memory://, sqlite:///path or redis://host:port/db; default: SQLite in the user's state dir."
        ),
    )
    ledger_journal: str | None = Field(
        default=None,
        description=(
            "Where charges wait while the ledger is unreachable; default: beside the SQLite file, or"
            " the user's state dir for Redis."
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
    budget: BudgetSpec | None = Field(
        default=None, description="A cap over every feature together, checked besides each feature's own."
    )
    retry: RetrySpec = Field(
        default_factory=RetrySpec, description="Same-model retries (routes may override)."
    )
    timeout_s: PositiveFloat = Field(
        default=600.0, description="Deadline per request across all attempts (routes may override)."
    )
    max_attempts: PositiveInt = Field(default=6, description="Calls per request, retries included.")
    max_retry_after_s: NonNegativeFloat = Field(
        default=10.0, description="Longest Retry-After honoured; longer skips and cools down the model."
    )
    stream_idle_timeout_s: PositiveFloat = Field(
        default=60.0, description="Longest silence between stream chunks before the stream is cut."
    )
    cooldown: CooldownSpec = Field(default_factory=CooldownSpec, description="Circuit breaker per model.")
    first_token_timeout_s: PositiveFloat | None = Field(
        default=None,
        description=(
            "Longest wait for a stream's first content chunk before failing over; default: "
            "stream_idle_timeout_s."
        ),
    )
    retry_on_timeout: bool = Field(
        default=False,
        description="Retry a model that did not answer in time; false: fail over to the next one at once.",
    )
    on_content_policy: ContentPolicyConduct = Field(
        default="raise",
        description="A request the provider rejects for its content: raise it, or try the next model.",
    )
    logging: LoggingSpec | None = Field(
        default=None, description="router.logging settings, applied on request (configure_from_policy)."
    )
    batch: BatchSpec = Field(
        default_factory=BatchSpec, description="Routed batch jobs: retries in real time, partial submission."
    )
    source: str | None = Field(default=None, exclude=True, description="Where the policy was read from.")
    stream_recovery: StreamRecovery = Field(
        default="off",
        description=(
            "A stream cut or stalled after content: continue it on a model with prefill (continue),"
            " or raise StreamInterruptedError (off)."
        ),
    )


def deployment_names(spec: ModelSpec) -> tuple[str, ...]:
    """The names of a model's deployments: as given, else provider-region, else provider-N (1-based)."""
    names: list[str] = []
    for index, deployment in enumerate(spec.deployments or (), start=1):
        provider = deployment.provider or spec.provider
        name = deployment.name or (
            f"{provider}-{deployment.region}" if deployment.region else f"{provider}-{index}"
        )
        names.append(name)
    return tuple(names)
