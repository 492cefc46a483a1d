"""Shadow evaluation: label a sample of production traffic by also asking a strong model.

For a sampled fraction of routed requests, the same messages go to a strong model under the
feature ``shadow-eval`` (whose budget in the policy caps what the shadow calls may spend), and
whether the two answers agree becomes the routed request's feedback. ``router train
--from-ledger`` then learns from those outcomes (docs/adequacy.md, "Shadow evaluation").

Agreement is a fair score for closed-form answers (a label, a choice, a number, an extraction);
for open-ended answers, ask the strong model to grade instead (``grade`` below).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from router import BudgetExceededError, OpenAI


def normalize(text: str | None) -> str:
    """An answer compared without case, punctuation or spacing."""
    return " ".join(re.sub(r"[^\w\s]", " ", (text or "").lower()).split())


def agreement(answer: str | None, reference: str | None) -> float:
    return float(normalize(answer) == normalize(reference))


def grade(client: OpenAI, judge: str, messages: Sequence[Any], answer: str | None) -> float:
    """For open-ended answers: the strong model grades the answer 1 or 0."""
    verdict = client.chat.completions.create(
        model=judge,
        metadata={"feature": "shadow-eval"},
        messages=[
            *messages,
            {"role": "assistant", "content": answer or ""},
            {"role": "user", "content": "Is the answer above correct and complete? Reply 1 or 0 only."},
        ],
    )
    return 1.0 if (verdict.choices[0].message.content or "").strip().startswith("1") else 0.0


def shadow_feedback(
    client: OpenAI,
    response: Any,
    messages: Sequence[Any],
    *,
    judge: str,
    sample: float = 0.05,
    score: Callable[[str | None, str | None], float] = agreement,
    draw: Callable[[], float] = random.random,
) -> float | None:
    """With probability ``sample``, score ``response`` against ``judge``'s answer and record it as
    feedback. None: not sampled, answered by the judge itself, or the shadow budget is spent."""
    if draw() >= sample or response.model == judge:
        return None
    try:
        reference = client.chat.completions.create(
            model=judge, messages=list(messages), metadata={"feature": "shadow-eval"}
        )
    except BudgetExceededError:
        return None  # the shadow budget for this window is spent: stop labeling until it resets
    value = score(response.choices[0].message.content, reference.choices[0].message.content)
    client.feedback(response, value)
    return value


if __name__ == "__main__":
    # python examples/shadow_eval.py policy.yaml: routes a prompt, shadows it at sample=1.
    import sys

    client = OpenAI(policy=sys.argv[1])
    messages = [{"role": "user", "content": "Which is larger, 2**10 or 10**3? Answer with the number."}]
    routed = client.chat.completions.create(model="auto", messages=messages)
    print(routed.model, shadow_feedback(client, routed, messages, judge=sys.argv[2], sample=1.0))
