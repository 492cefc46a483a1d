"""Planning alone: ``Planner.plan`` per call, no I/O, for 10/100/1,000-model policies and two prompts.

Each call gets a fresh request (normalized from ``create`` arguments, outside the timed region) whose
prompt differs from every earlier one, so a planner that caches by request or by text is still measured
as on real traffic. The prompt travels on the request once ``RouteRequest`` carries messages.

The (size, prompt) cells are timed in turns (``ROUNDS`` of them, each cell a slice of its budget per
round), not one after another: a slow spell of the machine then lands on every cell alike instead of
on one size, which would move the scaling exponent that compares two sizes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

from benchmarks._options import Options
from benchmarks._results import PlanningCell, Results
from benchmarks._worker import run_worker

SIZES: Final = (10, 100, 1000)
PROMPTS: Final = ("short", "100k")
_MIN_CALLS: Final = 50
_MAX_CALLS: Final = 200_000
ROUNDS: Final = 10  # turns over the (size, prompt) cells
_TEXT: Final = "route the request to the cheapest model that fits its context and budget today"


def long_text(tokens: int = 100_000) -> str:
    """English-like text of about ``tokens`` tokens (4 characters per token)."""
    unit = _TEXT + " "
    return (unit * (tokens * 4 // len(unit) + 1))[: tokens * 4]


def run(options: Options, results: Results) -> None:
    out = run_worker("benchmarks.planning:measure", {"budget_s": options.planning_budget_s})
    results.planning += [PlanningCell(**cell) for cell in out["cells"]]


def _time_cell(
    planner: Any, text: str, budget_s: float, min_calls: int = _MIN_CALLS, first: int = 0
) -> tuple[list[int], Any]:
    """Plans for about ``budget_s`` (at least ``min_calls``), each prompt numbered from ``first``."""
    from router._pipeline import normalize

    clock = time.perf_counter_ns
    samples: list[int] = []
    spent, budget_ns = 0, int(budget_s * 1e9)
    plan = None
    while (spent < budget_ns or len(samples) < min_calls) and len(samples) < _MAX_CALLS:
        messages = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"{first + len(samples)} {text}"},
        ]
        route = normalize({"model": "auto", "messages": messages}, None).route
        start = clock()
        plan = planner.plan(route)
        elapsed = clock() - start
        samples.append(elapsed)
        spent += elapsed
    return samples, plan


def measure(args: dict[str, Any]) -> dict[str, Any]:
    """Worker: every (size, prompt) cell, a short warm-up, then timed calls for about ``budget_s`` each,
    spread over ``ROUNDS`` turns through the cells."""
    import os

    from benchmarks._configs import planning_policy
    from benchmarks._stats import summarize_ns
    from router._engine import Engine

    texts = {"short": "Say hello in one word.", "100k": long_text()}
    policies = {size: planning_policy(size) for size in SIZES}
    planners = {size: Engine(policy, env=os.environ).planner for size, (policy, _) in policies.items()}
    grid = [(size, prompt) for size in SIZES for prompt in PROMPTS]
    samples: dict[tuple[int, str], list[int]] = {cell: [] for cell in grid}
    plans: dict[tuple[int, str], Any] = {}
    for size, prompt in grid:
        _time_cell(planners[size], texts[prompt], 0, first=-_MIN_CALLS)  # warm-up, its own prompts
    for _ in range(ROUNDS):
        for size, prompt in grid:
            taken = samples[(size, prompt)]
            more, plans[(size, prompt)] = _time_cell(
                planners[size], texts[prompt], args["budget_s"] / ROUNDS, _MIN_CALLS // ROUNDS, len(taken)
            )
            taken += more
    cells = []
    for size, prompt in grid:
        s = summarize_ns(samples[(size, prompt)])
        plan = plans[(size, prompt)]
        cells.append(
            {
                "models": size,
                "prompt": prompt,
                "strategy": policies[size][1],
                "prompt_tokens": (len(texts[prompt]) + len("Be brief.")) // 4 + 8,
                "iterations": s.n,
                "median_us": s.p50_us,
                "p99_us": s.p99_us,
                "candidates": len(plan.candidates),
                "rejected": len(plan.rejected),
            }
        )
    cells += _adequacy_cells(args["budget_s"])
    from benchmarks.deployments import cells as deployment_cells  # plan + a deployment's pick (issue 18)

    cells += deployment_cells(args["budget_s"])
    return {"cells": cells}


ADEQUACY_PROMPT: Final = "adequacy, ~2k chars"


def _adequacy_cells(budget_s: float) -> list[dict[str, Any]]:
    """Planning with learned adequacy on: 10 models, a 12,000-term adequacy file with four tasks
    (``cost_weight: auto``: the task recognised per request) and a neighbour memory of 16,267
    training prompts (the shared training splits' count; per task weights), a 2,000-character
    prompt (RouterBench's median), each call's prompt different and with no near-duplicate in the
    memory (what most traffic is: the memory's cost is its lookup, here its shingle filter, which
    most such prompts stop at). Skipped when numpy isn't installed."""
    import os
    import tempfile
    from pathlib import Path

    try:
        import numpy  # noqa: F401
    except ImportError:
        return []
    from benchmarks._stats import summarize_ns
    from router._engine import Engine

    with tempfile.TemporaryDirectory() as folder:
        policy, text = adequacy_policy(Path(folder))
        planner = Engine(policy, env=os.environ).planner
    _time_cell(planner, text, 0)
    samples, plan = _time_cell(planner, text, budget_s)
    s = summarize_ns(samples)
    return [
        {
            "models": 10,
            "prompt": ADEQUACY_PROMPT,
            "strategy": "cheapest + adequacy",
            "prompt_tokens": len(text) // 4 + 8,
            "iterations": s.n,
            "median_us": s.p50_us,
            "p99_us": s.p99_us,
            "candidates": len(plan.candidates),
            "rejected": len(plan.rejected),
        }
    ]


def adequacy_artifact(memory: bool = True) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The planning row's adequacy file (as JSON data), its 10 models, and its prompt's text; with
    ``memory=False``, the same file without its neighbour memory."""
    import base64
    import random

    from benchmarks._configs import planning_models
    from policies.adequacy import FORMAT, VERSION, encode_floats

    rng = random.Random(7)
    words = [f"w{i}" for i in range(6000)]
    vocabulary = words + [f"{a} {b}" for a, b in zip(words, reversed(words), strict=True)]
    models = planning_models(10)
    artifact = {
        "format": FORMAT,
        "version": VERSION,
        "featurizer": {"vocabulary": vocabulary, "idf": encode_floats(rng.uniform(1, 8) for _ in vocabulary)},
        "reference_tokens": 250,
        "models": {
            name: {
                "coef": encode_floats(rng.gauss(0, 1) for _ in vocabulary),
                "intercept": 0.5,
                "calibration": {"a": 0.9, "b": 0.1},
            }
            for name in models
        },
        "suggested": {"cost_weight": 0.05},
        "tasks": [
            {
                "name": f"task{t}",
                "terms": base64.b64encode(
                    b"".join(
                        i.to_bytes(4, "little") for i in sorted(rng.sample(range(len(vocabulary)), 2000))
                    )
                ).decode("ascii"),
                "weights": encode_floats(rng.uniform(0, 0.05) for _ in range(2000)),
                "suggested": {"cost_weight": 0.02 * (t + 1)},
            }
            for t in range(4)
        ],
        "task_threshold": 0.01,
        "neighbours": _memory(rng, models, [f"task{t}" for t in range(4)]),
    }
    if not memory:
        del artifact["neighbours"]
    text = " ".join(rng.choice(words) for _ in range(400))[:2000]
    return artifact, models, text


def adequacy_policy(folder: Path, memory: bool = True) -> tuple[Any, str]:
    """The planning row's policy (its adequacy file written into ``folder``) and prompt text."""
    import json

    from policies.schema import Policy

    artifact, models, text = adequacy_artifact(memory)
    (folder / "adequacy.json").write_text(json.dumps(artifact))
    policy = Policy.model_validate(
        {
            "models": models,
            "routes": {
                # router train's default gate: predicted success priced against cost, with the
                # weight of the task recognised in the prompt
                "auto": {"strategy": "cheapest", "adequacy": "adequacy.json", "cost_weight": "auto"}
            },
            "source": str(folder / "policy.yaml"),
        }
    )
    return policy, text


MEMORY_ROWS: Final = 16_267  # the shared training splits' prompts (examples/routerbench/adequacy.json)


def _memory(rng: Any, models: Any, tasks: list[str]) -> dict[str, Any]:
    """A neighbour memory of random signatures (their band keys nearly all distinct, as real
    prompts' are), each model's outcome on every row, pooled and per-task weights, and a shingle
    filter of 271,875 random bigrams (the shared training endings' count: 13% of its slots set)."""
    import base64

    import numpy as np

    from policies.adequacy import (
        NEIGHBOUR_BAND,
        NEIGHBOUR_HASHES,
        NEIGHBOUR_JACCARD,
        NEIGHBOUR_SEED,
        shingle_filter,
    )

    def weights() -> list[float]:
        return [rng.uniform(-2, 2) for _ in range(4)]

    return {
        "kind": "minhash-word-bigrams",
        "hashes": NEIGHBOUR_HASHES,
        "band": NEIGHBOUR_BAND,
        "seed": NEIGHBOUR_SEED,
        "jaccard": NEIGHBOUR_JACCARD,
        "signatures": base64.b64encode(rng.randbytes(NEIGHBOUR_HASHES * MEMORY_ROWS)).decode("ascii"),
        "filter": shingle_filter(np.random.default_rng(7).integers(0, 2**63, 271_875, dtype=np.uint64), 21),
        "models": {
            name: {
                "outcomes": base64.b64encode(bytes(rng.choice((0, 250)) for _ in range(MEMORY_ROWS))).decode(
                    "ascii"
                ),
                "weights": weights(),
                "tasks": {task: weights() for task in tasks},
            }
            for name in models
        },
    }
