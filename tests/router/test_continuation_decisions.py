"""The decisions of mid-stream continuation (router._continuation), without I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from router_fakes._answer import continuation
from router_fakes.tokens import split_chunks

from policies.loader import parse_policy
from policies.schema import Policy
from providers.base import Deployment
from providers.catalog import resolve_model
from router._continuation import Prefix, Splice, continuable, continuation_body, enabled, next_continuation
from router._engine import Engine
from router._health import Breakers
from router._pipeline import Session, normalize
from router._resilience import resilience_for

HI = [{"role": "user", "content": "hi"}]


def _policy(**top: Any) -> Policy:
    """Three models in an ordered route: a (no prefill), b (no prefill), c (declares prefill)."""
    models = {
        name: {
            "provider": "openai_compatible",
            "api_base": f"http://{name}.test/v1",
            "input_cost_per_mtok": 1,
            "output_cost_per_mtok": 2,
            "supports": ["streaming", *(["prefill"] if name == "c" else [])],
        }
        for name in ("a", "b", "c")
    }
    route = {"candidates": ["a"], "fallbacks": ["b", "c"], **top.pop("route", {})}
    return Policy.model_validate(
        {"retry": {"attempts": 1}, **top, "models": models, "routes": {"auto": route}}
    )


def _session(policy: Policy, clock: Any = None, breakers: Breakers | None = None, **create: Any) -> Session:
    engine = Engine(policy, env={})
    request = normalize({"model": "auto", "messages": HI, "stream": True, **create}, None)
    plan = engine.planner.plan(request.route)
    return Session(engine, request, plan, clock=clock or (lambda: 0.0), breakers=breakers)


def test_the_prefix_is_sent_without_its_trailing_whitespace_which_is_held() -> None:
    assert Prefix.of("Paris is \n") == Prefix("Paris is", " \n")
    assert Prefix.of("Paris") == Prefix("Paris", "")


def test_only_text_with_one_choice_can_be_continued() -> None:
    assert continuable("Paris", False, {})
    assert not continuable("  ", False, {})  # nothing said yet
    assert not continuable("Paris", True, {})  # a tool call has no prefix to continue
    assert not continuable("Paris", False, {"n": 2})


def test_anthropic_gets_a_final_assistant_message_and_openai_compatible_servers_vllms_flags() -> None:
    body = {"messages": HI, "stream": True, "max_tokens": 50}
    prefix = Prefix.of("Paris is ")
    anthropic = Deployment("claude", "anthropic", "claude-haiku-4-5", "litellm")
    vllm = Deployment("llama", "openai_compatible", "llama", "openai")
    assert continuation_body(body, anthropic, prefix) == {
        "messages": [*HI, {"role": "assistant", "content": "Paris is"}],
        "stream": True,
        "max_tokens": 47,  # less the 3 tokens already written
    }
    assert continuation_body(body, vllm, prefix) == {
        **continuation_body(body, anthropic, prefix),
        "continue_final_message": True,
        "add_generation_prompt": False,
    }
    assert body == {"messages": HI, "stream": True, "max_tokens": 50}  # the caller's body is untouched


def test_the_output_limit_of_a_continuation_is_what_is_left_of_the_callers() -> None:
    anthropic = Deployment("claude", "anthropic", "claude-haiku-4-5", "litellm")
    prefix = Prefix.of("Paris is ")  # 9 characters: 3 tokens at 4 characters a token
    body = continuation_body(
        {"messages": HI, "max_tokens": 50, "max_completion_tokens": 2}, anthropic, prefix
    )
    assert (body["max_tokens"], body["max_completion_tokens"]) == (47, 1)
    assert "max_tokens" not in continuation_body({"messages": HI}, anthropic, prefix)


def test_the_splice_keeps_the_first_chunks_id_drops_the_role_and_the_held_whitespace() -> None:
    first = {"id": "chatcmpl-1", "created": 7, "choices": []}
    splice = Splice(first, Prefix.of("Paris is "))
    out = splice(
        {
            "id": "msg_2",
            "created": 9,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": " the"}}],
        }
    )
    assert out == {"id": "chatcmpl-1", "created": 7, "choices": [{"index": 0, "delta": {"content": "the"}}]}
    # Only once: later whitespace is the answer's own.
    later = splice({"choices": [{"index": 0, "delta": {"content": " capital"}}]})
    assert later["choices"][0]["delta"]["content"] == " capital"


def test_the_splice_keeps_whitespace_the_caller_does_not_have() -> None:
    splice = Splice(None, Prefix.of("Paris is "))
    assert (
        splice({"choices": [{"delta": {"content": "\n the"}}]})["choices"][0]["delta"]["content"] == "\n the"
    )


@given(st.text(alphabet=" \nab.", min_size=1), st.data())
def test_what_the_caller_has_and_the_spliced_continuation_make_the_whole_answer(
    answer: str, data: st.DataObject
) -> None:
    delivered = answer[: data.draw(st.integers(0, len(answer)))]
    prefix = Prefix.of(delivered)
    # A model continuing the prefix writes the rest of its answer, whitespace first, in pieces.
    splice = Splice(None, prefix)
    rest = [
        splice({"choices": [{"delta": {"content": piece}}]})["choices"][0]["delta"]["content"]
        for piece in split_chunks(continuation(answer, prefix.text))
    ]
    assert delivered + "".join(rest) == answer


def test_only_a_candidate_with_prefill_is_chosen_to_continue() -> None:
    session = _session(_policy(stream_recovery="continue"))
    assert session.next_step() is not None  # a: the stream that was cut
    planned = next_continuation(session, Prefix.of("Paris is "))
    assert planned is not None
    step, body = planned
    assert step.deployment.name == "c"  # b has no prefill: passed over
    assert body["messages"][-1] == {"role": "assistant", "content": "Paris is"}
    assert body["continue_final_message"] is True
    assert next_continuation(session, Prefix.of("Paris is ")) is None  # none left


def test_an_open_breaker_and_the_deadline_bound_the_continuation_like_any_attempt() -> None:
    now = [0.0]
    breakers = Breakers(lambda: now[0])
    policy = _policy(stream_recovery="continue", timeout_s=10)
    breakers.open_for("c", 60, "a test")
    session = _session(policy, clock=lambda: now[0], breakers=breakers)
    session.next_step()
    assert next_continuation(session, Prefix.of("Paris")) is None

    session = _session(policy, clock=lambda: now[0])
    session.next_step()
    now[0] = 11.0  # past timeout_s
    assert next_continuation(session, Prefix.of("Paris")) is None


@pytest.mark.parametrize(
    ("top", "route", "feature", "expected"),
    [
        ({}, {}, None, False),  # off by default
        ({"stream_recovery": "continue"}, {}, None, True),
        ({"stream_recovery": "continue"}, {"stream_recovery": "off"}, None, False),
        ({}, {"stream_recovery": "continue"}, None, True),
        ({}, {"stream_recovery": "continue"}, "off", False),  # the feature's setting wins
        ({}, {}, "continue", True),
    ],
)
def test_stream_recovery_is_the_features_else_the_routes_else_the_top_levels(
    top: dict[str, Any], route: dict[str, Any], feature: str | None, expected: bool
) -> None:
    features = {"chat": {"stream_recovery": feature}} if feature else {}
    policy = _policy(route=route, features=features, **top)
    session = _session(policy, metadata={"feature": "chat"})
    assert enabled(session) is expected
    assert resilience_for(policy, "auto").stream_recovery == (
        route.get("stream_recovery") or top.get("stream_recovery", "off")
    )


def test_anthropic_models_have_prefill_and_others_only_when_declared() -> None:
    assert "prefill" in resolve_model("claude-haiku-4-5", provider="anthropic").supports
    assert "prefill" in resolve_model("my-claude", provider="anthropic").supports  # unknown to the map too
    assert "prefill" not in resolve_model("gpt-4o-mini", provider="openai").supports
    assert "prefill" not in resolve_model("gemini-2.5-flash-lite", provider="gemini").supports
    assert "prefill" not in resolve_model("llama", provider="openai_compatible").supports
    declared = resolve_model(
        "llama", provider="openai_compatible", overrides={"supports": ("streaming", "prefill")}
    )
    assert "prefill" in declared.supports


def test_the_example_in_the_docs_continues_chat_but_not_batch_summaries() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "resilience.md").read_text(encoding="utf-8")
    (block,) = [b.split("```", 1)[0] for b in docs.split("<!-- loads: continuation -->\n```yaml\n")[1:]]
    policy = parse_policy(
        block, source="docs/resilience.md", env={"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}
    )
    engine = Engine(policy, env={"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"})
    assert {name for name, info in engine.catalog.items() if "prefill" in info.supports} == {
        "claude-haiku-4-5",
        "llama-3.1-8b",
    }
    for feature, expected in (("default", True), ("batch-summaries", False)):
        request = normalize(
            {"model": "chat", "messages": HI, "stream": True, "metadata": {"feature": feature}}, None
        )
        session = Session(engine, request, engine.planner.plan(request.route))
        assert enabled(session) is expected
