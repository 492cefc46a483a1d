"""``router demo``: a scripted workload through the public client, and where each request went.

Thirty requests over four features (short questions, contract questions that need a stronger
model, a support bot that calls tools, long-document summaries) against fake OpenAI, Gemini and
Anthropic servers speaking their real wire protocols, with a few injected provider failures so the
fallbacks show (labelled as injected). Totals per model and per feature are compared with sending
every request to GPT-4o, and a picture of both is written next to the table.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai

from policies.loader import PolicyError, load_policy
from providers.catalog import resolve_model
from providers.registry import provider_spec
from router._cli_grammar import console as make_console
from router._cli_grammar import plural, usd_text
from router._openai import OpenAI
from router._routing import RoutingRecord

if TYPE_CHECKING:
    from rich.console import Console

    from policies.schema import Policy

_LIVE_KEYS = ("OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY")
_BASELINE_MODEL = "gpt-4o"
_BASELINE = resolve_model(_BASELINE_MODEL, provider="openai")
_FAKE_KEY_ENV = "ROUTER_FAKE_KEY"

_QUESTIONS = (
    "What are your opening hours on public holidays?",
    "Can I change the delivery address after ordering?",
    "Do you ship to Norway?",
    "What payment methods do you accept?",
    "How long does a refund take?",
    "Is there a student discount?",
    "Where can I find my invoice?",
    "Can I pause my subscription for a month?",
)

_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order by its number.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "issue_refund",
            "description": "Refund an order, fully or partly.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "amount_eur": {"type": "number"}},
                "required": ["order_id", "amount_eur"],
            },
        },
    },
]

_LEGAL = (
    "Does clause 7.2 of our supplier contract allow termination without notice?",
    "Is the liability cap in section 12 enforceable for gross negligence?",
)

_SUPPORT = (
    "Where is my order 4471? It was due on Monday.",
    "I was charged twice for order 9012, please fix it.",
    "My parcel 5520 arrived damaged.",
    "Order 3318 is missing one item.",
    "Can you check the status of order 7781?",
)

# A 1x1 PNG: enough for the wire protocols; the fake providers price it as one 1024px image.
_PIXEL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

_PARAGRAPH = (
    "The quarterly report covers revenue, churn, hiring and the product roadmap. Revenue grew in every "
    "region, led by the Nordics, while churn fell after the onboarding changes shipped in the spring. "
)


@dataclass(frozen=True, slots=True)
class DemoRequest:
    feature: str
    route: str
    label: str
    kwargs: dict[str, Any] = field(default_factory=dict)


def workload() -> Iterator[DemoRequest]:
    """The scripted requests, in order."""
    for i, question in enumerate(_QUESTIONS):
        yield DemoRequest(
            "faq",
            "auto",
            f"question {i + 1}" + (" (streamed)" if i % 4 == 3 else ""),
            {"messages": [{"role": "user", "content": question}], "stream": i % 4 == 3},
        )
    for i, ask in enumerate(_LEGAL):
        yield DemoRequest(
            "legal-review",
            "auto",
            f"contract question {i + 1}",
            {"messages": [{"role": "user", "content": ask}]},
        )
    for i, ask in enumerate(_SUPPORT):
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "You are a support agent. Use the tools to look things up."},
            {"role": "user", "content": ask},
        ]
        yield DemoRequest(
            "support-bot", "support", f"ticket {i + 1}: tool call", {"messages": messages, "tools": _TOOLS}
        )
        call = {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": "{}"},
        }
        follow_up = [
            *messages,
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call_{i}", "content": '{"status": "in transit"}'},
        ]
        yield DemoRequest(
            "support-bot", "support", f"ticket {i + 1}: answer", {"messages": follow_up, "tools": _TOOLS}
        )
    for i, words in enumerate((2_000, 8_000, 30_000, 60_000, 110_000, 140_000)):
        document = (_PARAGRAPH * (words // 35 + 1))[: words * 6]
        yield DemoRequest(
            "summarize",
            "long-context",
            f"document {i + 1} ({len(document):,} characters)",
            {
                "messages": [
                    {"role": "system", "content": "Summarize the document in five bullet points."},
                    {"role": "user", "content": document},
                ],
                "max_tokens": 400,
            },
        )
    yield DemoRequest(
        "faq",
        "auto",
        "photo question (vision)",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Is the parcel in this photo damaged?"},
                        {"type": "image_url", "image_url": {"url": _PIXEL, "detail": "high"}},
                    ],
                }
            ]
        },
    )
    yield DemoRequest(
        "faq",
        "gpt-4o-mini",
        "legacy call naming a model",
        {"messages": [{"role": "user", "content": "Say hello to a new customer."}]},
    )
    yield DemoRequest(
        "support-bot",
        "support",
        "ticket 6: streamed tool call",
        {
            "messages": [{"role": "user", "content": "Refund order 1204 please."}],
            "tools": _TOOLS,
            "stream": True,
        },
    )
    yield DemoRequest(
        "faq",
        "auto",
        "structured answer (json_schema)",
        {
            "messages": [{"role": "user", "content": "Give our support hours as JSON."}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "hours",
                    "schema": {
                        "type": "object",
                        "properties": {"open": {"type": "string"}, "close": {"type": "string"}},
                        "required": ["open", "close"],
                    },
                },
            },
        },
    )


def _target(wanted: str, policy: Policy) -> str:
    """The route (or model) of ``policy`` a scripted request goes to: the one it names when the
    policy has it, else ``auto``, else the policy's first route, else its first model."""
    if wanted in policy.routes or wanted in policy.models or wanted in policy.aliases:
        return wanted
    if "auto" in policy.routes:
        return "auto"
    return next(iter(policy.routes), next(iter(policy.models)))


@dataclass
class Outcome:
    request: DemoRequest
    record: RoutingRecord | None
    error: str | None = None


@dataclass(frozen=True)
class Faults:
    """The failures the demo injects into the fake providers: model -> HTTP statuses, in order."""

    by_model: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def label(self, model: str, status: int | None) -> str:
        injected = status is not None and status in self.by_model.get(model, ())
        return f"{'injected ' if injected else ''}{status or 'error'}"


def _why(record: RoutingRecord, faults: Faults) -> str:
    failed = [a for a in record.attempts if a.error]
    if failed:
        groups: dict[tuple[str, str], int] = {}
        for attempt in failed:
            key = (attempt.model, faults.label(attempt.model, attempt.status))
            groups[key] = groups.get(key, 0) + 1
        trail = ", ".join(
            f"{label}{f' x{n}' if n > 1 else ''} from {model}" for (model, label), n in groups.items()
        )
        return f"fallback after {trail}"
    if record.route is None:
        return "named directly"
    rank = next((i for i, c in enumerate(record.candidates) if c.model == record.model), 0)
    why = f"{_ordinal(rank + 1)} of {len(record.candidates)} by {record.strategy}"
    if record.rejected:
        model, reason = next(iter(record.rejected.items()))
        others = len(record.rejected) - 1
        why += f"; {model} rejected: {reason}" + (f" (and {others} more rejected)" if others else "")
    return why


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def _run_one(client: OpenAI, item: DemoRequest, target: str) -> Outcome:
    kwargs = {**item.kwargs, "model": target, "metadata": {"feature": item.feature}}
    try:
        if kwargs.get("stream"):
            stream = client.chat.completions.create(**kwargs)
            for _ in stream:
                pass
            return Outcome(item, stream.routing)
        response = client.chat.completions.create(**kwargs)
        return Outcome(item, response.routing)
    except openai.OpenAIError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        return Outcome(item, getattr(exc, "routing", None), f"{type(exc).__name__}: {first_line}")


def _inject_faults(fake: Any, policy: Policy) -> Faults:
    """A few realistic provider failures on the first request, so the fallbacks have something to do.

    With the demo's policy: a Gemini outage (503) and GPT-4o mini errors (500), each retried once
    (retry.attempts: 2) and failing again, so Claude Haiku answers. With another policy, the same
    on its first two models when it has a third to fall back to.
    """
    from router_fakes.script import ModelScript, status

    models = list(policy.models)
    if len(models) < 3:
        return Faults()
    plan = {models[0]: (503, 503), models[1]: (500, 500)}
    fake.script(
        *(
            ModelScript(
                policy.models[name].model or name,
                context_limit=_context(name, policy),
                faults=tuple(status(code) for code in codes),
            )
            for name, codes in plan.items()
        ),
    )
    return Faults(plan)


def _context(name: str, policy: Policy) -> int:
    spec = policy.models[name]
    info = resolve_model(name, provider=spec.provider, model=spec.model, overrides=spec.catalog_overrides())
    return info.context_window or 128_000


def on_fakes(policy: Policy, fake: Any) -> Policy:
    """``policy`` with every model pointed at the fake providers (no call can reach a real one).

    Gemini and Anthropic models keep their protocol; every other provider is served by the fake
    OpenAI endpoint, with the catalog's figures written into the model so prices stay the same.
    """
    models = {}
    for name, spec in policy.models.items():
        update: dict[str, Any] = {"api_key_env": _FAKE_KEY_ENV}
        if spec.provider == "gemini":
            update["api_base"] = fake.gemini_base
        elif spec.provider == "anthropic":
            update["api_base"] = fake.anthropic_base
        else:
            update["api_base"] = fake.openai_base
            if provider_spec(spec.provider).adapter != "openai" or spec.provider == "azure":
                info = resolve_model(
                    name, provider=spec.provider, model=spec.model, overrides=spec.catalog_overrides()
                )
                update |= {
                    "provider": "openai_compatible",
                    "input_cost_per_mtok": info.input_cost_per_mtok,
                    "output_cost_per_mtok": info.output_cost_per_mtok,
                    "context_window": info.context_window,
                    "max_output_tokens": info.max_output_tokens,
                    "supports": tuple(sorted(info.supports)),
                    "quality": dict(info.quality) or None,
                }
        models[name] = spec.model_copy(update=update)
    return policy.model_copy(update={"models": models})


def run_demo(
    *, live: bool, policy_path: Path | None, as_json: bool, picture_dir: Path | None = Path(".")
) -> int:
    """Run the workload; returns the process exit code. Problems are one line on stderr."""
    console = make_console() if not as_json else make_console_stderr()
    if live:
        if not any(os.environ.get(key) for key in _LIVE_KEYS):
            print(f"router demo --live needs at least one of {', '.join(_LIVE_KEYS)} set.", file=sys.stderr)
            return 2
        path = policy_path or Path(str(resources.files("router") / "data" / "demo-live.yaml"))
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            print(exc, file=sys.stderr)
            return 1
        console.print(f"Policy: {path} (real providers whose keys are set)")
        return _run(policy, console, as_json, Faults(), picture_dir)

    try:
        from router_fakes.server import FakeProviders
    except ImportError:
        print(
            "router demo runs on the fake providers, which pip install . does not install:"
            " make demo installs them (or pip install ./fakes from a checkout); --live uses real ones",
            file=sys.stderr,
        )
        return 2

    with FakeProviders() as fake:
        env = {**os.environ, "ROUTER_FAKE_URL": fake.url, _FAKE_KEY_ENV: "fake-key-for-the-demo"}
        os.environ.setdefault(_FAKE_KEY_ENV, env[_FAKE_KEY_ENV])
        path = policy_path or Path(str(resources.files("router") / "data" / "demo.yaml"))
        try:
            policy = load_policy(path, env=env)
        except PolicyError as exc:
            print(exc, file=sys.stderr)
            return 1
        if policy_path is not None:
            policy = on_fakes(policy, fake)
        # The CLI applies the policy's logging: section (a client never does by itself).
        if policy.logging is not None:
            from router.logging import configure_from_policy

            configure_from_policy(policy)
        faults = _inject_faults(fake, policy)
        console.print(f"Policy: {path}" + ("" if policy_path else " (the demo's own)"))
        console.print(f"Fake OpenAI, Gemini and Anthropic providers listening on {fake.url}")
        if faults.by_model:
            injected = "; ".join(
                f"{model}: {', '.join(map(str, codes))}" for model, codes in faults.by_model.items()
            )
            console.print(f"Injected failures (to show fallbacks): {injected}")
        quality = None
        if not as_json and policy_path is None:
            from router._demo_quality import quality_section

            quality = quality_section()  # printed after the cost headline, and put on the picture's page
        code = _run(policy, console, as_json, faults, picture_dir, quality)
        # The closing batch job uses the demo policy's own route and features.
        if as_json or policy_path is not None:
            return code
        return max(code, _run_batch(fake, policy, console))


def make_console_stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, width=100_000 if not sys.stderr.isatty() else None)


@dataclass
class Totals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    baseline_usd: float = 0.0


@dataclass
class Summary:
    """What the table's totals and the picture show."""

    by_model: dict[str, Totals] = field(default_factory=dict)
    by_feature: dict[str, Totals] = field(default_factory=dict)
    failed: int = 0
    fallbacks: int = 0

    @property
    def total(self) -> Totals:
        out = Totals()
        for t in self.by_feature.values():
            out = replace(
                out,
                requests=out.requests + t.requests,
                prompt_tokens=out.prompt_tokens + t.prompt_tokens,
                completion_tokens=out.completion_tokens + t.completion_tokens,
                cost_usd=out.cost_usd + t.cost_usd,
                baseline_usd=out.baseline_usd + t.baseline_usd,
            )
        return out


def summarize(outcomes: list[Outcome]) -> Summary:
    summary = Summary()
    for outcome in outcomes:
        record = outcome.record
        feature = summary.by_feature.setdefault(outcome.request.feature, Totals())
        if record is None or outcome.error:
            summary.failed += 1
            continue
        model = summary.by_model.setdefault(record.model or "-", Totals())
        if len(record.attempts) > 1:
            summary.fallbacks += 1
        usage = record.usage
        cost = record.cost_usd or 0.0
        baseline = _BASELINE.cost_usd(usage.prompt_tokens, usage.completion_tokens) or 0.0 if usage else 0.0
        for totals in (feature, model):
            totals.requests += 1
            totals.cost_usd += cost
            totals.baseline_usd += baseline
            if usage is not None:
                totals.prompt_tokens += usage.prompt_tokens
                totals.completion_tokens += usage.completion_tokens
    return summary


def _run(
    policy: Policy,
    console: Console,
    as_json: bool,
    faults: Faults,
    picture_dir: Path | None,
    quality: str | None = None,
) -> int:
    outcomes: list[Outcome] = []
    with OpenAI(policy=policy) as client:
        for item in workload():
            outcome = _run_one(client, item, _target(item.route, policy))
            outcomes.append(outcome)
            if as_json:
                print(
                    json.dumps(
                        {
                            "request": item.label,
                            "feature": item.feature,
                            "error": outcome.error,
                            "routing": outcome.record.to_dict() if outcome.record else None,
                        }
                    ),
                    flush=True,
                )
            else:
                _progress(console, len(outcomes), outcome)
    summary = summarize(outcomes)
    if not as_json:
        _print_tables(console, outcomes, summary, faults)
        if quality is not None:
            console.print(quality, highlight=False)
    if picture_dir is not None and summary.by_model:
        from router._demo_picture import write_pictures

        written = write_pictures(summary, picture_dir, baseline=_BASELINE_MODEL, quality=quality)
        console.print("Picture: " + ", ".join(str(p) for p in written))
    return 0 if summary.failed == 0 else 1


def _progress(console: Console, n: int, outcome: Outcome) -> None:
    """One short line per request as it completes, so a slow first request (litellm's import) shows."""
    if outcome.error:
        console.print(f"  {n:>2}. {outcome.request.label}: [red]failed[/]")
    elif outcome.record is not None:
        console.print(f"  {n:>2}. {outcome.request.label} → {outcome.record.model}", highlight=False)


def _print_tables(console: Console, outcomes: list[Outcome], summary: Summary, faults: Faults) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="router demo: where each request went")
    for column, justify in (
        ("#", "right"),
        ("request", "left"),
        ("feature", "left"),
        ("model", "left"),
        ("why", "left"),
        ("tokens in/out", "right"),
        ("cost", "right"),
        ("attempts", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for n, outcome in enumerate(outcomes, 1):
        record = outcome.record
        if record is None or outcome.error:
            error = escape(outcome.error or "failed")
            table.add_row(
                str(n), outcome.request.label, outcome.request.feature, "-", f"[red]{error}[/]", "-", "-", "-"
            )
            continue
        usage = record.usage
        table.add_row(
            str(n),
            outcome.request.label,
            record.feature,
            record.model or "-",
            escape(_why(record, faults)),
            f"{usage.prompt_tokens:,}/{usage.completion_tokens:,}" if usage else "?",
            usd_text(record.cost_usd or 0.0),
            str(len(record.attempts)),
        )
    console.print(table)
    for title, key, rows in (
        ("Per model", "model", summary.by_model),
        ("Per feature", "feature", summary.by_feature),
    ):
        totals = Table(title=title, title_justify="left")
        for column in (key, "requests", "tokens in/out", "cost", f"if all {_BASELINE_MODEL}"):
            totals.add_column(column, justify="left" if column == key else "right")
        for name, t in sorted(rows.items(), key=lambda kv: -kv[1].cost_usd):
            totals.add_row(
                name,
                str(t.requests),
                f"{t.prompt_tokens:,}/{t.completion_tokens:,}",
                usd_text(t.cost_usd),
                usd_text(t.baseline_usd),
            )
        console.print(totals)
    total = summary.total
    saved = (1 - total.cost_usd / total.baseline_usd) * 100 if total.baseline_usd else 0.0
    console.print(
        f"[bold]{plural(len(outcomes), 'request')}[/], {summary.failed} failed,"
        f" {plural(summary.fallbacks, 'fallback')}. Cost {usd_text(total.cost_usd)}; the same requests"
        f" and token counts sent to {_BASELINE_MODEL} would cost {usd_text(total.baseline_usd)}"
        f" ({saved:.0f}% less). That is cost only: these requests have no labeled answers, so quality"
        " is not compared here (the equal-quality figures follow; docs/adequacy.md)."
    )


def _run_batch(fake: Any, policy: Any, console: Any) -> int:
    """The closing act: 200 classification lines that can wait, as one routed batch job at batch
    prices (docs/batch.md); the fake's batch clock is moved on instead of waiting an hour."""
    from rich.table import Table

    from router.batch._resources import service_for

    lines: list[dict[str, Any]] = []
    for n in range(200):
        body: dict[str, Any] = {
            "model": "auto",
            "max_tokens": 5,
            "messages": [
                {"role": "user", "content": f"Label as billing/shipping/other: {_QUESTIONS[n % 8]}"}
            ],
        }
        if n % 5 == 0:  # contract clauses: the legal-review feature's quality floor applies per line
            body["metadata"] = {"feature": "legal-review"}
            body["messages"][0]["content"] = f"Label the risk as low/high: {_LEGAL[n % 2]}"
        elif n % 10 == 3:  # lines that ask for a model by name keep it
            body["model"] = "claude-haiku-4-5"
        lines.append(
            {"custom_id": f"ticket-{n}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        )
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    with OpenAI(policy=policy, ledger="memory://") as client:
        uploaded = client.files.create(file=("tickets.jsonl", data), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        fake.batches.advance(fake.batches.latency_s)
        batch = client.batches.retrieve(batch.id)
        rows = service_for(client).breakdown(batch.id)
    table = Table(title=f"router demo: a batch job of {len(lines)} lines that can wait ({batch.status})")
    for column in ("model", "lines", "answered", "batch cost $", "same tokens at standard prices $"):
        table.add_column(column, justify="left" if column == "model" else "right")
    cost = standard = 0.0
    for model, row in sorted(rows.items()):
        cost += row["cost_usd"]
        standard += row["standard_usd"]
        table.add_row(
            model,
            str(int(row["lines"])),
            str(int(row["succeeded"])),
            f"{row['cost_usd']:.6f}",
            f"{row['standard_usd']:.6f}",
        )
    console.print(table)
    saved = (1 - cost / standard) * 100 if standard else 0.0
    console.print(
        f"[bold]Batch:[/] ${cost:.6f} at batch prices against ${standard:.6f} in real time "
        f"({saved:.0f}% less), each line on its cheapest adequate model. `router batch --help` for more."
    )
    counts = batch.request_counts
    return 0 if batch.status == "completed" and counts is not None and counts.failed == 0 else 1
