"""``router demo``: a scripted workload through the public client, and where each request went.

About thirty requests over three features (short questions, a support bot that calls tools,
long-document summaries) against fake OpenAI, Gemini and Anthropic servers speaking their
real wire protocols, with a few scripted provider failures so the fallbacks show. Totals are
compared with sending everything to the strongest model (GPT-4o).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import openai

from policies.loader import load_policy
from providers.catalog import resolve_model
from router._openai import OpenAI
from router._routing import RoutingRecord

_LIVE_KEYS = ("OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY")
_BASELINE = resolve_model("gpt-4o", provider="openai")

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


@dataclass
class Outcome:
    request: DemoRequest
    record: RoutingRecord | None
    error: str | None = None


def _why(record: RoutingRecord) -> str:
    failed = [a for a in record.attempts if a.error]
    if failed:
        trail = ", ".join(f"{a.model}: {a.error}" for a in failed)
        return f"fallback ({trail})"
    if record.route is None:
        return "named directly"
    rank = next((i for i, c in enumerate(record.candidates) if c.model == record.model), 0)
    why = f"{_ordinal(rank + 1)} of {len(record.candidates)} by {record.strategy}"
    if record.rejected:
        model, reason = next(iter(record.rejected.items()))
        more = f" (+{len(record.rejected) - 1})" if len(record.rejected) > 1 else ""
        why += f"; {model}: {reason}{more}"
    return why


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def _run_one(client: OpenAI, item: DemoRequest) -> Outcome:
    kwargs = {**item.kwargs, "model": item.route, "metadata": {"feature": item.feature}}
    try:
        if kwargs.get("stream"):
            stream = client.chat.completions.create(**kwargs)
            for _ in stream:
                pass
            return Outcome(item, stream.routing)
        response = client.chat.completions.create(**kwargs)
        return Outcome(item, response.routing)
    except openai.OpenAIError as exc:
        return Outcome(item, getattr(exc, "routing", None), f"{type(exc).__name__}: {exc}")


def _script_fake_failures(fake: Any) -> None:
    """A few realistic provider failures, so the fallbacks have something to do."""
    from providers.fake.script import ModelScript, status

    # The first request meets a Gemini outage and GPT-4o mini errors: each is retried once (the
    # policy's retry.attempts: 2) and fails again, so Claude Haiku answers it.
    fake.script(
        ModelScript("gemini-2.5-flash-lite", context_limit=1_048_576, faults=(status(503), status(503))),
        ModelScript("gpt-4o-mini", context_limit=128_000, faults=(status(500), status(500))),
        ModelScript("claude-haiku-4-5", context_limit=200_000),
    )


def run_demo(*, live: bool, policy_path: Path | None, as_json: bool) -> int:
    """Run the workload; returns the process exit code."""
    from rich.console import Console

    # Wide enough for the table even when output is piped (rich falls back to 80 columns then).
    console = Console(stderr=as_json, width=max(140, shutil.get_terminal_size((140, 40)).columns))
    if live:
        if not any(os.environ.get(key) for key in _LIVE_KEYS):
            console.print(f"[red]--live needs at least one of {', '.join(_LIVE_KEYS)} in the environment.[/]")
            return 2
        path = policy_path or Path(str(resources.files("router") / "data" / "demo-live.yaml"))
        return _run(load_policy(path), console, as_json)

    from providers.fake.server import FakeProviders

    with FakeProviders() as fake:
        env = {**os.environ, "ROUTER_FAKE_URL": fake.url}
        os.environ.setdefault("ROUTER_FAKE_KEY", "fake-key-for-the-demo")
        path = policy_path or Path(str(resources.files("router") / "data" / "demo.yaml"))
        policy = load_policy(path, env=env)
        _script_fake_failures(fake)
        console.print(f"Fake OpenAI, Gemini and Anthropic providers listening on {fake.url}")
        code = _run(policy, console, as_json)
        return code if as_json else max(code, _run_batch(fake, policy, console))


def _run(policy: Any, console: Any, as_json: bool) -> int:
    from rich.table import Table

    outcomes: list[Outcome] = []
    with OpenAI(policy=policy) as client:
        for item in workload():
            outcome = _run_one(client, item)
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
                    )
                )
    if as_json:
        return 0 if all(o.error is None for o in outcomes) else 1

    table = Table(title="router demo: where each request went", show_lines=False)
    for column, justify in (
        ("#", "right"),
        ("request", "left"),
        ("feature", "left"),
        ("model", "left"),
        ("why", "left"),
        ("tokens in/out", "right"),
        ("cost $", "right"),
        ("attempts", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    total = baseline = 0.0
    for n, outcome in enumerate(outcomes, 1):
        record = outcome.record
        if record is None or outcome.error:
            table.add_row(
                str(n),
                outcome.request.label,
                outcome.request.feature,
                "-",
                f"[red]{outcome.error}[/]",
                "-",
                "-",
                "-",
            )
            continue
        usage = record.usage
        cost = record.cost_usd or 0.0
        total += cost
        if usage is not None:
            baseline += _BASELINE.cost_usd(usage.prompt_tokens, usage.completion_tokens) or 0.0
        table.add_row(
            str(n),
            outcome.request.label,
            record.feature,
            record.model or "-",
            _why(record),
            f"{usage.prompt_tokens:,}/{usage.completion_tokens:,}" if usage else "?",
            f"{cost:.6f}",
            str(len(record.attempts)),
        )
    console.print(table)
    failures = sum(1 for o in outcomes if o.error)
    saved = (1 - total / baseline) * 100 if baseline else 0.0
    console.print(
        f"[bold]{len(outcomes)} requests[/], {failures} failed. Cost ${total:.4f} against "
        f"${baseline:.4f} for always-GPT-4o ({saved:.0f}% less). "
        f"Fallbacks: {sum(1 for o in outcomes if o.record and len(o.record.attempts) > 1)}."
    )
    return 0 if failures == 0 else 1


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
