"""``router train --from-ledger``: production outcomes (``client.feedback``) as training rows.

Each scored request becomes a row labeled for one model — the one that answered — with its score.
Its prompt is the term counts recorded under an adequacy file's featurizer (or the text, when
``log_content`` was on). Rows counted under one featurizer can only train with that featurizer, so
the newest featurizer in the ledger is used and rows recorded under older ones without text are
skipped (and counted in the report); DATA files given beside it are counted with it too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router._feedback import decode_counts
from router._labeled import LabeledData
from router._train import TrainError
from router.ledger import parse_ledger_url
from router.ledger._feedback import Routed, open_feedback


@dataclass(frozen=True, slots=True)
class LedgerRows:
    """The ledger's scored requests usable for training, and how many were not."""

    source: str
    rows: tuple[Routed, ...]
    featurizer: dict[str, Any] | None  # the featurizer their counts are under; None: text only
    skipped: int  # scored, but under another featurizer and without text


def ledger_rows(url: str) -> LedgerRows:
    """Read the scored requests of the ledger at ``url``."""
    if url.startswith("memory:"):
        raise TrainError(
            "--from-ledger memory:// has nothing to read: a memory ledger ends with its process."
        )
    target = parse_ledger_url(url)
    if target.kind == "sqlite" and not Path(target.location).exists():
        raise TrainError(
            f"--from-ledger {url}: no such ledger file; give the path your clients' ledger uses."
        )
    store = open_feedback(url)
    try:
        scored = store.scored()
        newest = next((r.featurizer for r in reversed(scored) if r.featurizer and r.features), None)
        featurizer = store.featurizer(newest) if newest is not None else None
    finally:
        store.close()
    if newest is not None and featurizer is None:
        raise TrainError(
            f"{url}: the featurizer {newest} of the recorded requests is missing from the ledger."
        )
    usable = tuple(r for r in scored if r.text is not None or (r.featurizer == newest and r.features))
    return LedgerRows(url, usable, featurizer, len(scored) - len(usable))


def combine(data: LabeledData | None, ledger: LedgerRows) -> tuple[LabeledData, list[tuple[Any, Any] | None]]:
    """DATA files' rows, then the ledger's: one table, and each row's recorded counts (None: text)."""
    if not ledger.rows and data is None:
        raise TrainError(
            f"{ledger.source}: no scored requests to train on. Record outcomes with "
            "client.feedback(response.routing.request_id, score) first (docs/adequacy.md)."
        )
    models = list(data.models) if data is not None else []
    models += [m for m in dict.fromkeys(r.model for r in ledger.rows) if m not in models]
    base = len(data) if data is not None else 0
    counted: list[tuple[Any, Any] | None] = [None] * base
    prompts = list(data.prompts) if data is not None else []
    messages = list(data.messages) if data is not None else []
    outcomes = {m: list(data.outcomes.get(m, (None,) * base)) if data is not None else [] for m in models}
    costs = {m: list(data.costs.get(m, (None,) * base)) if data is not None else [] for m in models}
    for row in ledger.rows:
        text = row.text or ""
        prompts.append(text)
        messages.append(({"role": "user", "content": text},) if row.text is not None else ())
        counted.append(decode_counts(row.features) if row.text is None and row.features else None)
        for m in models:
            outcomes[m].append(row.score if m == row.model else None)
            costs[m].append((row.cost_usd or 0.0) if m == row.model else None)
    sources = (*(data.sources if data is not None else ()), ledger.source)
    origin = (*(data.origin if data is not None else ()), *([len(sources) - 1] * len(ledger.rows)))
    combined = LabeledData(
        sources=sources,
        prompts=tuple(prompts),
        messages=tuple(messages),
        outcomes={m: tuple(v) for m, v in outcomes.items()},
        costs={m: tuple(v) for m, v in costs.items()},
        origin=origin,
    )
    return combined, counted


def describe(ledger: LedgerRows) -> str:
    per_model = Counter(r.model for r in ledger.rows)
    shown = ", ".join(f"{m} {n}" for m, n in per_model.most_common())
    line = f"{ledger.source}: {len(ledger.rows):,} scored requests ({shown or 'none'})"
    if ledger.skipped:
        line += f"; {ledger.skipped:,} skipped (recorded under an older adequacy file, without text)"
    return line


def has_counts(counted: Sequence[tuple[Any, Any] | None]) -> bool:
    return any(c is not None for c in counted)
