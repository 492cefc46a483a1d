"""The "everything on" configuration: the richest policy the current code accepts.

Routing is a 3-model ordered route with two fallbacks. Budgets (a SQLite ledger) and JSON logging at INFO
to a file are switched on at the two marked SWITCH-ON POINTs as soon as the code supports them: support
is detected at run time from the policy's JSON schema (and ``router.configure_logging``), and verified
after the run by what reached the disk, so the report says which parts were really on.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import tempfile
from collections.abc import Callable, Mapping
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
        lines = path.read_text(errors="replace").count("\n") if path and path.exists() else 0
        if lines:
            return Feature(name, True, f"{lines / max(calls, 1):.1f} lines per request ({self.logging_how})")
        return Feature(name, False, f"the router wrote no log lines ({self.logging_how})")


def everything_on(openai_base: str, gemini_base: str, workdir: Path) -> FullConfig:
    """The richest configuration the current code accepts; see the module docstring."""
    from policies.loader import policy_from_dict, policy_json_schema

    workdir = Path(tempfile.mkdtemp(prefix="everything-on-", dir=workdir))  # one ledger and log per client
    data = three_model_policy(openai_base, gemini_base)
    schema = policy_json_schema()
    config = FullConfig(create_kwargs={"metadata": {"feature": FEATURE}})

    # Routing: the richest the policy schema accepts (cheapest ranking, a feature's quality floor).
    extras = []
    for description, extend in ROUTING_EXTRAS:
        if first_valid(policy_from_dict, [extend(data)]) is not None:
            data = extend(data)
            extras.append(description)
    if extras:
        config.routing = "; ".join(extras)

    # ---- SWITCH-ON POINT 1: budget + SQLite ledger. As soon as the schema has features.<name>.budget, the
    # policy gets a ledger file and a feature budget far above what the benchmark spends.
    if schema_at(schema, "ledger") is not None:
        config.ledger_path = workdir / "ledger.db"
        data["ledger"] = f"sqlite:///{config.ledger_path}"
    budget_schema = schema_at(schema, "features", "*", "budget")
    if budget_schema is not None:
        found = first_valid(
            lambda b: policy_from_dict(_with_budget(data, b)),
            [*values_for(budget_schema), float(_GENEROUS)],
        )
        if found is not None:
            config.budget = json.dumps(found)
            data = _with_budget(data, found)

    # ---- SWITCH-ON POINT 2: JSON logging at INFO to a file: a policy logging: section when the schema has
    # one, else router.configure_logging when it exists, else a stdlib handler on the "router" logger.
    config.log_path = workdir / "router-log.jsonl"
    logging_schema = schema_at(schema, "logging")
    if logging_schema is not None:
        found = first_valid(
            lambda v: policy_from_dict({**data, "logging": v}),
            [logging_setting(v, config.log_path) for v in values_for(logging_schema)],
        )
        if found is not None:
            data["logging"] = found
            config.logging_how = "policy logging: section"
    if not config.logging_how:
        config.logging_how = _configure_logging(config.log_path)

    config.policy = policy_from_dict(data)
    return config


# --------------------------------------------------------------------------- pure helpers


def _with_budget(data: dict[str, Any], budget: Any) -> dict[str, Any]:
    features = dict(data.get("features") or {})
    features[FEATURE] = {**features.get(FEATURE, {}), "budget": budget}
    return {**data, "features": features}


def _deref(root: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local $ref, and take the first non-null option of an anyOf (pydantic's Optional)."""
    options = node.get("anyOf")
    if isinstance(options, list):
        node = next((o for o in options if o.get("type") != "null"), node)
    ref = node.get("$ref", "")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _deref(root, root["$defs"][ref.removeprefix("#/$defs/")])
    return node


def schema_at(root: Mapping[str, Any], *path: str) -> dict[str, Any] | None:
    """The JSON schema at a path of property names ("*": a mapping's values), with the root's $defs kept."""
    node: Any = root
    for key in path:
        node = _deref(root, node)
        node = node.get("additionalProperties") if key == "*" else (node.get("properties") or {}).get(key)
        if not isinstance(node, Mapping):
            return None
    return {"$defs": root.get("$defs", {}), **node}


def generous(value: Any) -> Any:
    """The same value with every number replaced by a cap the benchmark never reaches."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return type(value)(_GENEROUS)
    if isinstance(value, dict):
        return {k: generous(v) for k, v in value.items()}
    if isinstance(value, list):
        return [generous(v) for v in value]
    return value


def values_for(schema: Mapping[str, Any]) -> list[Any]:
    """Values to try for a setting from its JSON schema: generous numbers first, then the minimal one."""
    from providers.fake import minimal_instance

    minimal = minimal_instance(schema)
    return [generous(minimal), minimal]


def first_valid(build: Callable[[Any], object], values: list[Any]) -> Any | None:
    """The first value for which ``build`` does not raise a ValueError (PolicyError and pydantic's are)."""
    for value in values:
        try:
            build(value)
        except (ValueError, TypeError):
            continue
        return value
    return None


def logging_setting(value: Any, path: Path) -> Any:
    """Fill a logging setting built from its schema: JSON format, INFO level, our file."""
    if not isinstance(value, dict):
        return value
    filled = dict(value)
    for key in filled:
        low = key.lower()
        if "format" in low or "renderer" in low:
            filled[key] = "json"
        elif "level" in low:
            filled[key] = "INFO"
        elif low in {"file", "path", "sink", "destination", "output", "filename"}:
            filled[key] = str(path)
    return filled


def _configure_logging(path: Path) -> str:
    import router

    configure = getattr(router, "configure_logging", None)
    if callable(configure):
        wanted = {"format": "json", "renderer": "json", "level": "INFO", "file": str(path), "path": str(path)}
        accepted = inspect.signature(configure).parameters
        configure(**{k: v for k, v in wanted.items() if k in accepted})
        return "router.configure_logging"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(_JsonLines())
    logger = logging.getLogger("router")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return "stdlib JSON handler on the 'router' logger"


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"level": record.levelname, "logger": record.name, "event": record.getMessage()})
