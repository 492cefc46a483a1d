"""A route with learned adequacy, end to end through router.OpenAI/AsyncOpenAI on the fake providers:
easy prompts go to the cheap model, hard ones to the strong model, with the reason on the record."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from router_fakes import FakeProviders

from policies.adequacy import AdequacyError
from router import AsyncOpenAI, NoCandidateError, OpenAI
from tests.adequacy_helpers import OTHER_TWIN, UNRELATED, memory_artifact, write_hand_artifact

pytest.importorskip("numpy")


def policy_file(
    tmp_path: Path,
    fake: FakeProviders,
    route_extra: str = "",
    min_success: float = 0.8,
    artifact: dict[str, Any] | None = None,
) -> Path:
    if artifact is None:
        write_hand_artifact(tmp_path / "adequacy.json")
    else:
        (tmp_path / "adequacy.json").write_text(json.dumps(artifact), encoding="utf-8")
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"""
models:
  cheap:  {{provider: openai_compatible, api_base: "{fake.openai_base}", input_cost_per_mtok: 0.1,
            output_cost_per_mtok: 0.4}}
  strong: {{provider: openai_compatible, api_base: "{fake.openai_base}", input_cost_per_mtok: 2.5,
            output_cost_per_mtok: 10}}
routes:
  auto:
    strategy: cheapest
    candidates: [cheap, strong]
    adequacy: adequacy.json
    min_success: {min_success}
{route_extra}
"""
    )
    return path


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_easy_prompts_go_to_the_cheap_model_and_hard_ones_to_the_strong_one(
    tmp_path: Path, fake: FakeProviders
) -> None:
    client = OpenAI(policy=policy_file(tmp_path, fake))
    easy = client.chat.completions.create(model="auto", messages=ask("An easy question, please."))
    hard = client.chat.completions.create(model="auto", messages=ask("A hard question, please."))
    assert easy.model == "cheap" and hard.model == "strong"
    assert "cheap" not in easy.routing.rejected
    assert hard.routing.rejected["cheap"] == "predicted success 0.05 < 0.80"
    assert any(
        rule.startswith("adequacy sha256:") and "min_success 0.8" in rule for rule in hard.routing.rules
    )
    assert any(rule.startswith("predicted success: cheap 0.05, strong 0.88") for rule in hard.routing.rules)
    assert [r.model for r in fake.requests] == ["cheap", "strong"]


def test_the_async_client_routes_the_same_way(tmp_path: Path, fake: FakeProviders) -> None:
    async def run() -> tuple[str, str]:
        client = AsyncOpenAI(policy=policy_file(tmp_path, fake))
        easy = await client.chat.completions.create(model="auto", messages=ask("easy"))
        hard = await client.chat.completions.create(model="auto", messages=ask("hard"))
        await client.close()
        return easy.model, hard.model

    assert asyncio.run(run()) == ("cheap", "strong")


def test_on_inadequate_fail_refuses_a_request_no_model_is_predicted_to_answer(
    tmp_path: Path, fake: FakeProviders
) -> None:
    client = OpenAI(policy=policy_file(tmp_path, fake, "    on_inadequate: fail", min_success=0.9))
    assert client.chat.completions.create(model="auto", messages=ask("easy")).model == "cheap"
    with pytest.raises(NoCandidateError) as info:
        client.chat.completions.create(model="auto", messages=ask("hard"))
    assert info.value.rejected == {
        "cheap": "predicted success 0.05 < 0.90",
        "strong": "predicted success 0.88 < 0.90",
    }
    assert [r.model for r in fake.requests] == ["cheap"]


def test_a_missing_adequacy_file_fails_the_client_naming_the_file_and_the_policy(
    tmp_path: Path, fake: FakeProviders
) -> None:
    path = policy_file(tmp_path, fake)
    (tmp_path / "adequacy.json").unlink()
    with pytest.raises(
        AdequacyError, match=r"adequacy.json: can't read the adequacy file.*router train.*policy.yaml"
    ):
        OpenAI(policy=path)


def test_a_route_with_cost_weight_sends_easy_prompts_cheap_and_hard_ones_strong(
    tmp_path: Path, fake: FakeProviders
) -> None:
    path = policy_file(tmp_path, fake)
    path.write_text(path.read_text().replace("min_success: 0.8", "cost_weight: 0.3"))
    client = OpenAI(policy=path)
    easy = client.chat.completions.create(model="auto", messages=ask("An easy question, please."))
    hard = client.chat.completions.create(model="auto", messages=ask("A hard question, please."))
    assert easy.model == "cheap" and hard.model == "strong"
    # cheap costs 4% of strong here: 0.05 - 0.3 * 0.04 scores far below strong's 0.88 - 0.3
    assert hard.routing.rejected["cheap"].startswith("predicted success 0.05 at 4% of the dearest's cost")
    assert hard.routing.rejected["cheap"].endswith("< strong's 0.58 (cost_weight 0.3)")
    assert easy.routing.rejected["strong"].startswith("predicted success 0.88 at 100% of the dearest's cost")
    assert any("cost_weight 0.3" in rule for rule in hard.routing.rules)
    assert [r.model for r in fake.requests] == ["cheap", "strong"]


def test_cost_weight_auto_routes_each_prompt_by_its_tasks_setting_and_an_explicit_weight_wins(
    tmp_path: Path, fake: FakeProviders
) -> None:
    import json

    from tests.adequacy_helpers import task_artifact

    path = policy_file(tmp_path, fake)
    (tmp_path / "adequacy.json").write_text(json.dumps(task_artifact()))
    path.write_text(
        path.read_text().replace("min_success: 0.8", "cost_weight: auto")
        + "features:\n  careful:\n    cost_weight: 0.3\n"
    )
    client = OpenAI(policy=path)
    # "hard" is task proof, whose suggestion (5) prices strong out: cheap first, strong its retry
    hard = client.chat.completions.create(model="auto", messages=ask("A hard question, please."))
    assert hard.model == "cheap" and "cheap" not in hard.routing.rejected
    rule = next(r for r in hard.routing.rules if r.startswith("adequacy sha256:"))
    assert rule.endswith(" cost_weight 5 (task proof)")
    # a prompt like no task: the file's global 0.3, which sends hard-ish prompts to strong
    vague = client.chat.completions.create(model="auto", messages=ask("poem poem poem hard"))
    assert vague.model == "strong"
    assert any(r.endswith("cost_weight 0.3 (no task recognised: global)") for r in vague.routing.rules)
    # the feature's explicit weight wins over the route's auto
    careful = client.chat.completions.create(
        model="auto", messages=ask("A hard question, please."), metadata={"feature": "careful"}
    )
    assert careful.model == "strong"
    assert any(
        r.startswith("adequacy sha256:") and r.endswith("cost_weight 0.3") for r in careful.routing.rules
    )
    assert [r.model for r in fake.requests] == ["cheap", "strong", "strong"]


def test_a_near_duplicate_of_a_training_prompt_the_cheap_model_got_right_goes_to_the_strong_one(
    tmp_path: Path, fake: FakeProviders
) -> None:
    # The memory's training prompts: TWIN (cheap right) and UNRELATED (cheap wrong). For cheap, a
    # near repeat flips (near right -2.0): OTHER_TWIN, TWIN's twin, is predicted 0.12 < 0.3.
    artifact = memory_artifact({"cheap": [250, 0]}, {"cheap": [1.0, -1.0, -2.0, 2.0]})
    client = OpenAI(policy=policy_file(tmp_path, fake, min_success=0.3, artifact=artifact))
    twin = client.chat.completions.create(model="auto", messages=ask(OTHER_TWIN))
    other = client.chat.completions.create(model="auto", messages=ask(UNRELATED.replace("sum", "product")))
    assert twin.model == "strong" and other.model == "cheap"
    assert twin.routing.rejected["cheap"] == (
        "predicted success 0.12 < 0.30 (a near-duplicate of a training prompt: its outcomes counted)"
    )
    assert "cheap" not in other.routing.rejected  # no near-duplicate: the words' 0.50 stands
    assert [r.model for r in fake.requests] == ["strong", "cheap"]
