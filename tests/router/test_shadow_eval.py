"""The shadow-evaluation recipe (examples/shadow_eval.py) on the fake providers: a sampled request is
also asked to the strong model, agreement becomes its feedback, and the shadow budget caps it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from router_fakes import FakeProviders, ModelScript

from router import OpenAI
from router.ledger._feedback import open_feedback
from tests.adequacy_helpers import write_hand_artifact

pytest.importorskip("numpy")


def recipe() -> ModuleType:
    path = Path(__file__).parents[2] / "examples" / "shadow_eval.py"
    spec = importlib.util.spec_from_file_location("shadow_eval", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["shadow_eval"] = module
    spec.loader.exec_module(module)
    return module


def policy_file(tmp_path: Path, fake: FakeProviders, limit_usd: float) -> Path:
    write_hand_artifact(tmp_path / "adequacy.json")
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"""
models:
  cheap:  {{provider: openai_compatible, api_base: "{fake.openai_base}", input_cost_per_mtok: 0.1,
            output_cost_per_mtok: 0.4, max_output_tokens: 1000}}
  strong: {{provider: openai_compatible, api_base: "{fake.openai_base}", input_cost_per_mtok: 2.5,
            output_cost_per_mtok: 10, max_output_tokens: 1000}}
routes:
  auto: {{strategy: cheapest, candidates: [cheap, strong], adequacy: adequacy.json, min_success: 0.8}}
features:
  shadow-eval:
    budget: {{limit_usd: {limit_usd}, window: day}}
"""
    )
    return path


@pytest.mark.parametrize(("strong_reply", "score"), [("Paris.", 1.0), ("Lyon", 0.0)])
def test_a_sampled_request_is_scored_by_agreement_with_the_strong_model(
    tmp_path: Path, fake: FakeProviders, strong_reply: str, score: float
) -> None:
    shadow = recipe()
    fake.script(ModelScript("cheap", reply="paris"))
    fake.script(ModelScript("strong", reply=strong_reply))
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    client = OpenAI(policy=policy_file(tmp_path, fake, limit_usd=1.0), ledger=ledger)
    messages = [{"role": "user", "content": "an easy question: the capital of France?"}]
    routed = client.chat.completions.create(model="auto", messages=messages)
    assert routed.model == "cheap"
    not_sampled = shadow.shadow_feedback(
        client, routed, messages, judge="strong", sample=0.1, draw=lambda: 0.5
    )
    assert not_sampled is None
    assert (
        shadow.shadow_feedback(client, routed, messages, judge="strong", sample=0.1, draw=lambda: 0.05)
        == score
    )
    assert [r.model for r in fake.requests] == ["cheap", "strong"]
    client.close()
    (row,) = open_feedback(ledger).scored()
    assert (row.request_id, row.model, row.score) == (routed.routing.request_id, "cheap", score)


def test_the_shadow_budget_stops_the_labeling_not_the_traffic(tmp_path: Path, fake: FakeProviders) -> None:
    shadow = recipe()
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    client = OpenAI(policy=policy_file(tmp_path, fake, limit_usd=0.000001), ledger=ledger)
    messages = [{"role": "user", "content": "an easy question"}]
    routed = client.chat.completions.create(model="auto", messages=messages)
    assert shadow.shadow_feedback(client, routed, messages, judge="strong", sample=1.0) is None
    assert [r.model for r in fake.requests] == ["cheap"]  # the shadow call was refused before sending
    client.close()
    assert open_feedback(ledger).scored() == []
