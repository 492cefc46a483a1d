"""Mid-stream continuation (``stream_recovery: continue``), through both public clients.

A stream cut or stalled after content is continued on the next candidate with ``prefill`` (the
fake Anthropic, or an OpenAI-compatible fake that serves vLLM's ``continue_final_message``): the
caller reads one stream whose text is the whole answer; ``routing`` has both attempts and the
ledger both charges. When nothing can continue it, the caller gets the cut, never the
continuation's error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk
from router_fakes import FakeProviders, ModelScript, hang, status, stream_cut, stream_stall
from router_fakes.script import RecordedRequest

from policies.schema import Policy
from router import StreamInterruptedError
from router.ledger import open_ledger
from router.testing import capture_events

from .fault_helpers import KEY_ENV, MODELS, PROVIDERS, QUESTION, MakeCaller, attempts, text_of

OPENAI, GEMINI, ANTHROPIC = MODELS
# An OpenAI-compatible server (vLLM) on the fake OpenAI endpoint, which declares prefill.
VLLM = "vllm-chat"
REPLY = "Paris is the capital and the largest city of France."
NEVER = 30.0
SHORT = 1.0
CUT = stream_cut(2)  # "Paris ", "is " reach the caller, then the connection closes
CONTINUE: dict[str, Any] = {"stream_recovery": "continue"}


def _policy(fake: FakeProviders, route: Mapping[str, Any], **top: Any) -> Policy:
    """The three fake models and a vLLM server, one route ``r``, no same-model retries."""
    bases = {"openai": fake.openai_base, "gemini": fake.gemini_base, "anthropic": fake.anthropic_base}
    models: dict[str, Any] = {
        name: {"provider": provider, "api_base": bases[provider], "api_key_env": KEY_ENV}
        for name, provider in PROVIDERS.items()
    }
    models[VLLM] = {
        "provider": "openai_compatible",
        "api_base": fake.openai_base,
        "api_key_env": KEY_ENV,
        "input_cost_per_mtok": 0.2,
        "output_cost_per_mtok": 0.4,
        "supports": ["streaming", "prefill"],
    }
    return Policy.model_validate({"retry": {"attempts": 1}, **top, "models": models, "routes": {"r": route}})


def _prefill_of(request: RecordedRequest) -> str:
    """The assistant prefix a continuation request carried, whatever the protocol's shape."""
    last = request.body["messages"][-1]
    assert last["role"] == "assistant"
    content = last["content"]
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content)


def _script(fake: FakeProviders, cut_model: str, fault: Any, **others: Any) -> None:
    fake.script(ModelScript(cut_model, reply=REPLY, faults=(fault,)))
    for model in (m for m in (*MODELS, VLLM) if m != cut_model):
        fake.script(ModelScript(model, reply=REPLY, **others.get(model, {})))


# --------------------------------------------------------------------------- continued


def test_a_stream_cut_after_content_is_continued_seamlessly_on_anthropic(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    _script(fake, OPENAI, CUT)
    policy = _policy(fake, {"candidates": [OPENAI], "fallbacks": [GEMINI, ANTHROPIC], **CONTINUE})
    caller = make_caller(policy)
    received: list[ChatCompletionChunk] = []
    routing = caller.stream(received, model="r", messages=QUESTION)

    assert text_of(received) == REPLY
    # One stream to the caller: the first model's id, created and name on every chunk, one role.
    assert {(c.id, c.created, c.model) for c in received} == {(received[0].id, received[0].created, OPENAI)}
    assert sum(1 for c in received if c.choices and c.choices[0].delta.role) == 1
    assert received[-1].choices[0].finish_reason == "stop"
    # Anthropic saw the text delivered so far as the assistant's prefix; Gemini (no prefill) nothing.
    (continued,) = fake.requests_for(ANTHROPIC)
    assert _prefill_of(continued) == "Paris is"
    assert [m["role"] for m in continued.body["messages"]] == ["user", "assistant"]
    assert fake.requests_for(GEMINI) == []
    assert attempts(routing) == [(OPENAI, "connection", None), (ANTHROPIC, None, None)]
    assert routing.model == ANTHROPIC and routing.usage is not None
    assert caller.clock is not None and caller.clock.sleeps == []  # continued at once, no backoff


def test_a_stream_stalled_after_content_is_continued_at_the_idle_timeout(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    _script(fake, OPENAI, stream_stall(3, NEVER))
    policy = _policy(
        fake,
        {"candidates": [OPENAI], "fallbacks": [ANTHROPIC], **CONTINUE},
        stream_idle_timeout_s=SHORT,
    )
    caller = make_caller(policy)
    received: list[ChatCompletionChunk] = []
    routing = caller.stream(received, model="r", messages=QUESTION)

    assert text_of(received) == REPLY
    assert _prefill_of(fake.requests_for(ANTHROPIC)[0]) == "Paris is the"
    assert attempts(routing) == [(OPENAI, "timeout", None), (ANTHROPIC, None, None)]


def test_an_openai_compatible_server_that_declares_prefill_continues_with_continue_final_message(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    _script(fake, ANTHROPIC, CUT, **{VLLM: {"prefill": True}})
    policy = _policy(fake, {"candidates": [ANTHROPIC], "fallbacks": [OPENAI, VLLM], **CONTINUE})
    caller = make_caller(policy)
    received: list[ChatCompletionChunk] = []
    routing = caller.stream(received, model="r", messages=QUESTION)

    assert text_of(received) == REPLY and {c.model for c in received} == {ANTHROPIC}
    # gpt-4o-mini (OpenAI, no prefill) is passed over; the vLLM server is asked to continue.
    assert fake.requests_for(OPENAI) == []
    (continued,) = fake.requests_for(VLLM)
    assert _prefill_of(continued) == "Paris is"
    assert continued.body["continue_final_message"] is True
    assert continued.body["add_generation_prompt"] is False
    assert attempts(routing) == [(ANTHROPIC, "connection", None), (VLLM, None, None)]


def test_a_continuation_cut_in_turn_is_continued_again(make_caller: MakeCaller, fake: FakeProviders) -> None:
    _script(fake, OPENAI, CUT)
    fake.script(ModelScript(ANTHROPIC, reply=REPLY, faults=(stream_cut(2),)))
    fake.script(ModelScript(VLLM, reply=REPLY, prefill=True))
    policy = _policy(fake, {"candidates": [OPENAI], "fallbacks": [ANTHROPIC, VLLM], **CONTINUE})
    received: list[ChatCompletionChunk] = []
    routing = make_caller(policy).stream(received, model="r", messages=QUESTION)

    assert text_of(received) == REPLY
    assert _prefill_of(fake.requests_for(VLLM)[0]) == "Paris is the capital"
    assert [a[:2] for a in attempts(routing)] == [
        (OPENAI, "connection"),
        (ANTHROPIC, "connection"),
        (VLLM, None),
    ]


def test_a_feature_can_turn_continuation_on_for_itself(make_caller: MakeCaller, fake: FakeProviders) -> None:
    _script(fake, OPENAI, CUT)
    policy = _policy(fake, {"candidates": [OPENAI], "fallbacks": [ANTHROPIC]}, features={"chat": CONTINUE})
    received: list[ChatCompletionChunk] = []
    make_caller(policy).stream(received, model="r", messages=QUESTION, metadata={"feature": "chat"})
    assert text_of(received) == REPLY


# --------------------------------------------------------------------------- not continued


def test_continuation_is_off_by_default_and_the_cut_is_raised(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    _script(fake, OPENAI, CUT)
    caller = make_caller(_policy(fake, {"candidates": [OPENAI], "fallbacks": [ANTHROPIC]}))
    received: list[ChatCompletionChunk] = []
    with pytest.raises(StreamInterruptedError) as caught:
        caller.stream(received, model="r", messages=QUESTION)
    assert caught.value.model == OPENAI and text_of(received) == "Paris is "
    assert fake.requests_for(ANTHROPIC) == []


def test_without_a_prefill_candidate_the_original_cut_is_raised(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    _script(fake, OPENAI, CUT)
    policy = _policy(fake, {"candidates": [OPENAI], "fallbacks": [GEMINI], **CONTINUE})
    caller = make_caller(policy)
    received: list[ChatCompletionChunk] = []
    with pytest.raises(StreamInterruptedError) as caught:
        caller.stream(received, model="r", messages=QUESTION)
    error = caught.value
    assert error.model == OPENAI and error.characters == len("Paris is ") == len(text_of(received))
    assert "connection error" in str(error)
    assert fake.requests_for(GEMINI) == []  # never sent a prefix it cannot continue
    assert attempts(error.routing) == [(OPENAI, "connection", None)]  # type: ignore[attr-defined]


def test_a_rejected_continuation_raises_the_original_cut_never_the_400(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    # Declared prefill in the policy, but the server does not serve continue_final_message: a 400.
    _script(fake, OPENAI, CUT)
    policy = _policy(fake, {"candidates": [OPENAI], "fallbacks": [VLLM], **CONTINUE})
    caller = make_caller(policy)
    received: list[ChatCompletionChunk] = []
    with pytest.raises(StreamInterruptedError) as caught:
        caller.stream(received, model="r", messages=QUESTION)
    error = caught.value
    assert error.model == OPENAI and "connection error" in str(error)
    assert "continue_final_message" not in str(error)
    assert len(fake.requests_for(VLLM)) == 1
    assert attempts(error.routing) == [  # type: ignore[attr-defined]
        (OPENAI, "connection", None),
        (VLLM, "bad_request", 400),
    ]


def test_a_failed_continuation_moves_on_to_the_next_prefill_candidate(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    _script(fake, OPENAI, CUT)
    fake.script(ModelScript(ANTHROPIC, reply=REPLY, faults=(status(529),)))
    fake.script(ModelScript(VLLM, reply=REPLY, prefill=True))
    policy = _policy(fake, {"candidates": [OPENAI], "fallbacks": [ANTHROPIC, VLLM], **CONTINUE})
    received: list[ChatCompletionChunk] = []
    routing = make_caller(policy).stream(received, model="r", messages=QUESTION)
    assert text_of(received) == REPLY
    assert [a[0] for a in attempts(routing)] == [OPENAI, ANTHROPIC, VLLM]


def test_a_silent_continuation_is_passed_over_at_first_token_timeout_s(
    make_caller: MakeCaller, fake: FakeProviders
) -> None:
    _script(fake, OPENAI, CUT)
    fake.script(ModelScript(ANTHROPIC, reply=REPLY, faults=(hang(NEVER),)))
    fake.script(ModelScript(VLLM, reply=REPLY, prefill=True))
    policy = _policy(
        fake,
        {"candidates": [OPENAI], "fallbacks": [ANTHROPIC, VLLM], **CONTINUE},
        first_token_timeout_s=SHORT,
    )
    received: list[ChatCompletionChunk] = []
    routing = make_caller(policy).stream(received, model="r", messages=QUESTION)
    assert text_of(received) == REPLY
    assert attempts(routing) == [
        (OPENAI, "connection", None),
        (ANTHROPIC, "timeout", None),
        (VLLM, None, None),
    ]


def test_max_attempts_bounds_the_continuations(make_caller: MakeCaller, fake: FakeProviders) -> None:
    _script(fake, OPENAI, CUT)
    policy = _policy(fake, {"candidates": [OPENAI], "fallbacks": [ANTHROPIC], **CONTINUE}, max_attempts=1)
    with pytest.raises(StreamInterruptedError) as caught:
        make_caller(policy).stream([], model="r", messages=QUESTION)
    assert caught.value.model == OPENAI and fake.requests_for(ANTHROPIC) == []


def test_a_tool_call_stream_is_not_continued(make_caller: MakeCaller, fake: FakeProviders) -> None:
    _script(fake, OPENAI, stream_cut(1))
    policy = _policy(fake, {"candidates": [OPENAI], "fallbacks": [ANTHROPIC], **CONTINUE})
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    with pytest.raises(StreamInterruptedError):
        make_caller(policy).stream([], model="r", messages=QUESTION, tools=[tool])
    assert fake.requests_for(ANTHROPIC) == []


# --------------------------------------------------------------------------- what it cost


def test_both_attempts_are_settled_in_the_ledger(
    make_caller: MakeCaller, fake: FakeProviders, tmp_path: Any
) -> None:
    _script(fake, OPENAI, CUT)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    policy = _policy(
        fake,
        {"candidates": [OPENAI], "fallbacks": [ANTHROPIC], **CONTINUE},
        budget={"limit_usd": 10, "window": "total"},
    )
    caller = make_caller(policy, ledger=url)
    with capture_events() as events:
        routing = caller.stream([], model="r", messages=QUESTION)

    ledger = open_ledger(url)
    try:
        (row,) = ledger.report(now=0.0)
    finally:
        ledger.close()
    spent = row[3]
    assert spent.reserved_usd == 0.0
    catalog = caller.client._router._engine.catalog  # type: ignore[attr-defined]
    usage = routing.usage
    assert usage is not None
    continued = catalog[ANTHROPIC].cost_usd(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
    cut_output = catalog[OPENAI].cost_usd(0, math.ceil(len("Paris is ") / 4))
    # The cut attempt at its partial cost (the prompt plus what arrived), the continuation at its usage.
    assert spent.spent_usd == pytest.approx(routing.cost_usd, abs=1e-9)
    assert spent.spent_usd - continued > cut_output > 0
    # One request, completed once, at what both attempts cost; no failure logged.
    (completed,) = [e for e in events if e["event"] == "route.completed"]
    assert completed["cost_usd"] == routing.cost_usd and completed["model"] == ANTHROPIC
    assert completed["attempts"] == 2 and not [e for e in events if e["event"] == "route.failed"]
