"""What a run measured, as plain frozen records that workers send back as JSON."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Final

# Sync latency lines, in table order. The openai SDK is the baseline of every ratio.
LATENCY_LABELS: Final = {
    "httpx": "raw httpx POST (the floor)",
    "openai": "openai SDK",
    "router_one": "router.OpenAI, one-model policy",
    "router_full": "router.OpenAI, everything on",
    "litellm": "litellm.completion",
    "litellm_router": "litellm Router, 2 deployments + fallback",
}
THROUGHPUT_LABELS: Final = {
    "openai": "openai.AsyncOpenAI",
    "router_full": "router.AsyncOpenAI, everything on",
    "router_deployments": "router.AsyncOpenAI, everything on + 3 deployments (usage, SQLite counters)",
    "aiohttp": "bare aiohttp loop (the floor)",
    "litellm_router": "litellm Router.acompletion",
}
IMPORT_MODULES: Final = ("openai", "router", "litellm")


@dataclass(frozen=True, slots=True)
class LatencyLine:
    key: str
    calls: int
    p50_us: float
    p99_us: float
    mean_us: float

    @property
    def label(self) -> str:
        return LATENCY_LABELS.get(self.key, self.key)


@dataclass(frozen=True, slots=True)
class ThroughputLine:
    key: str
    requests: int
    concurrency: int
    rps: float  # median over rounds
    rps_rounds: tuple[float, ...]
    cpu_us_per_request: float  # the client process's CPU time, median over rounds

    @property
    def label(self) -> str:
        return THROUGHPUT_LABELS.get(self.key, self.key)


@dataclass(frozen=True, slots=True)
class ImportLine:
    module: str
    median_ms: float
    runs_ms: tuple[float, ...]
    pulls_litellm: bool = False  # whether importing this module also imported litellm
    # Per run, this import's time over the openai import it was paired with (run right before or
    # right after it, alternately): both shared the machine's state at that moment.
    pair_ratios: tuple[float, ...] = ()

    @property
    def pair_ratio(self) -> float | None:
        """The median of ``pair_ratios`` (None without pairs)."""
        return statistics.median(self.pair_ratios) if self.pair_ratios else None


@dataclass(frozen=True, slots=True)
class PlanningCell:
    models: int
    prompt: str  # "short" or "100k"
    strategy: str  # the route's strategy: the richest the schema accepts
    prompt_tokens: int  # estimated as characters / 4
    iterations: int
    median_us: float
    p99_us: float
    candidates: int
    rejected: int


@dataclass(frozen=True, slots=True)
class MemoryResult:
    requests: int
    warmup: int
    rss_warm_mb: float
    rss_end_mb: float
    rss_max_mb: float  # highest sample after warm-up
    hwm_mb: float  # VmHWM: the process's peak RSS
    samples: tuple[tuple[int, float], ...]  # (requests done, RSS MB)
    blocks_warm: int = 0  # Python's allocated blocks after a full collection, after the warm-up
    blocks_end: int = 0  # the same at the end

    @property
    def growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_warm_mb


@dataclass(frozen=True, slots=True)
class Feature:
    """One part of the "everything on" configuration and whether it was really on."""

    name: str
    on: bool
    detail: str


@dataclass(frozen=True, slots=True)
class SoakRound:
    round: int
    success: float  # share of requests answered
    p50_ms: float
    p99_ms: float
    late: int  # requests that ran past their deadline + 1 s
    seconds: float
    in_use: int  # pool connections still checked out after the round
    idle: int  # pooled idle connections (each holds one socket)
    fds: int
    sockets: int
    tasks: int  # asyncio tasks left besides the driver
    rss_mb: float


@dataclass(frozen=True, slots=True)
class SoakResult:
    requests: int
    deadline_s: float
    fds_baseline: int  # open fds before the first round, less the pool's idle sockets
    rounds: tuple[SoakRound, ...]


@dataclass
class Results:
    quick: bool = False
    latency: list[LatencyLine] = field(default_factory=list)
    throughput: list[ThroughputLine] = field(default_factory=list)
    imports: list[ImportLine] = field(default_factory=list)
    planning: list[PlanningCell] = field(default_factory=list)
    memory: MemoryResult | None = None
    soak: SoakResult | None = None
    features: list[Feature] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def latency_of(self, key: str) -> LatencyLine | None:
        return next((line for line in self.latency if line.key == key), None)

    def throughput_of(self, key: str, concurrency: int | None = None) -> ThroughputLine | None:
        """The line of ``key`` (at ``concurrency``; default: the first measured)."""
        return next(
            (line for line in self.throughput if line.key == key and concurrency in (None, line.concurrency)),
            None,
        )

    def import_of(self, module: str) -> ImportLine | None:
        return next((line for line in self.imports if line.module == module), None)

    def planning_of(self, models: int, prompt: str) -> PlanningCell | None:
        return next((c for c in self.planning if c.models == models and c.prompt == prompt), None)

    def note_features(self, features: list[dict[str, Any]]) -> None:
        """Keep the first report of what "everything on" had on (every suite checks it the same way)."""
        if not self.features:
            self.features = [Feature(**f) for f in features]
