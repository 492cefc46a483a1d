"""The "everything on" configuration: routing, a budget on a SQLite ledger, and JSON logging.

A 3-model ``cheapest`` route with a fallback through litellm, a feature with a quality floor and a
daily budget (far above what the benchmark spends, so every call reserves and settles but none is
refused) on a SQLite ledger file, and JSON event logging at INFO to a file. After the run, what
reached the disk (ledger rows, log lines) is checked, so the report says which parts were really on.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from benchmarks._configs import FEATURE, GEMINI_KEY_ENV, OPENAI_KEY_ENV
from benchmarks._results import Feature

_GENEROUS: Final = 1_000_000  # every number in a budget: a cap the benchmark never reaches


def three_model_policy(openai_base: str, gemini_base: str) -> dict[str, Any]:
    """The base: an ordered route, gpt-4o-mini then fallbacks gpt-4o and gemini-2.5-flash-lite (litellm)."""
    openai_model = {"provider": "openai", "api_base": openai_base, "api_key_env": OPENAI_KEY_ENV}
    gemini_model = {"provider": "gemini", "api_base": gemini_base, "api_key_env": GEMINI_KEY_ENV}
    return {
        "models": {
            "gpt-4o-mini": openai_model,
            "gpt-4o": openai_model,
            "gemini-2.5-flash-lite": gemini_model,
        },
        "routes": {
            "auto": {
                "strategy": "ordered",
                "candidates": ["gpt-4o-mini"],
                "fallbacks": ["gpt-4o", "gemini-2.5-flash-lite"],
            }
        },
    }


def _cheapest(data: dict[str, Any]) -> dict[str, Any]:
    # Ranked by expected cost per request; gpt-4o-mini wins, so the call stays on the OpenAI fast path.
    route = {
        "strategy": "cheapest",
        "candidates": ["gpt-4o-mini", "gpt-4o"],
        "fallbacks": ["gemini-2.5-flash-lite"],
    }
    return {**data, "routes": {"auto": route}}


def _quality_floor(data: dict[str, Any]) -> dict[str, Any]:
    # All three models publish MMLU above 80, so the floor filters nothing but is checked on every plan.
    return {**data, "features": {FEATURE: {"min_quality": {"mmlu": 80}}}}


# Routing features layered on the base, each kept only if the policy schema accepts it.
ROUTING_EXTRAS: Final[tuple[tuple[str, Callable[[dict[str, Any]], dict[str, Any]]], ...]] = (
    ("cheapest over gpt-4o-mini and gpt-4o, then fallback gemini-2.5-flash-lite (litellm)", _cheapest),
    (f"feature {FEATURE!r} with min_quality mmlu >= 80", _quality_floor),
)
BASE_ROUTING: Final = "ordered: gpt-4o-mini, then fallbacks gpt-4o and gemini-2.5-flash-lite (litellm)"


@dataclass
class FullConfig:
    """What to pass to the client, and how to check afterwards which parts were on."""

    policy: Any = None
    client_kwargs: dict[str, Any] = field(default_factory=dict)
    create_kwargs: dict[str, Any] = field(default_factory=dict)
    ledger_path: Path | None = None
    routing: str = BASE_ROUTING
    budget: str = ""  # the feature budget configured, "" when budgets are not supported yet
    log_path: Path | None = None
    logging_how: str = ""
    # Waits for the client's one-time background work (litellm's import, started because the route's
    # fallback is a litellm model): the warm-up ends only after it, so the timed calls measure the
    # steady state, not seconds of import CPU on a thread beside them.
    background: Callable[[], object] = lambda: None

    def wait_ready(self) -> None:
        self.background()

    def verify(self, calls: int) -> list[dict[str, Any]]:
        """What was really on after ``calls`` requests, judged by what reached the disk."""
        routing = Feature("routing", True, self.routing)
        return [dataclasses.asdict(f) for f in (routing, self._ledger(), self._logging(calls))]

    def _ledger(self) -> Feature:
        name = "budget + SQLite ledger"
        if not self.budget:
            return Feature(name, False, "the policy schema has no features.<name>.budget yet")
        size = self.ledger_path.stat().st_size if self.ledger_path and self.ledger_path.exists() else 0
        if size:
            return Feature(name, True, f"feature budget {self.budget}; ledger file {size / 1024:,.0f} KB")
        return Feature(name, False, f"budget {self.budget} accepted, but no ledger file was written")

    def _logging(self, calls: int) -> Feature:
        name = "JSON logging at INFO to a file"
        path = self.log_path
        text = path.read_text(errors="replace") if path and path.exists() else ""
        # Logging is process-wide: the one-model client's events reach this file too (the latency lines
        # run interleaved in one process), so count only this client's requests, by their feature.
        lines = sum(1 for line in text.splitlines() if f'"feature":"{FEATURE}"' in line)
        if lines:
            return Feature(
                name,
                True,
                f"{lines / max(calls, 1):.1f} lines per request of this client ({self.logging_how}; "
                "process-wide, so the one-model line logs to it too)",
            )
        return Feature(name, False, f"the router wrote no log lines ({self.logging_how})")


def everything_on(openai_base: str, gemini_base: str, workdir: Path, deployments: int = 0) -> FullConfig:
    """The full configuration, with its own ledger and log file under ``workdir``; with
    ``deployments``, gpt-4o-mini is served by that many deployments balanced by ``usage``, their rate
    counters beside the SQLite ledger (limits far above what the benchmark sends, so every call
    reads the counters, claims and settles, and none is refused)."""
    from policies.loader import policy_from_dict

    workdir = Path(tempfile.mkdtemp(prefix="everything-on-", dir=workdir))  # one ledger and log per client
    data = _quality_floor(_cheapest(three_model_policy(openai_base, gemini_base)))
    if deployments:
        mini = data["models"]["gpt-4o-mini"]
        data["models"]["gpt-4o-mini"] = {
            **mini,
            "balance": "usage",
            "deployments": [
                {"name": f"d{n}", "rpm": _GENEROUS * 10, "tpm": _GENEROUS * 10_000}
                for n in range(deployments)
            ],
        }
    config = FullConfig(
        create_kwargs={"metadata": {"feature": FEATURE}},
        routing="; ".join(description for description, _ in ROUTING_EXTRAS),
        ledger_path=workdir / "ledger.db",
        log_path=workdir / "router-log.jsonl",
        logging_how="policy logging: section",
        # A client changes logging only when asked: this one applies its policy's logging: section.
        client_kwargs={"configure_logging": True},
    )
    budget = {"limit_usd": _GENEROUS, "window": "day", "warn_at": [0.5, 0.8]}
    config.budget = json.dumps(budget)
    data["ledger"] = f"sqlite:///{config.ledger_path}"
    data["features"][FEATURE]["budget"] = budget
    data["logging"] = {"level": "INFO", "json": True, "file": str(config.log_path)}
    config.policy = policy_from_dict(data)
    return config
