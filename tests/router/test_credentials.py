"""Credentials in a policy stay out of URLs, logs and reprs: userinfo in ``api_base`` travels as a
Basic ``Authorization`` header (httpx logs every request's URL at INFO), and a deployment's or a
policy's repr shows header names, never their values."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import httpx
import pytest
from router_fakes import FakeProviders

from policies.loader import PolicyError, policy_from_dict
from policies.schema import Policy
from router import OpenAI

from .fault_helpers import QUESTION

CANARY = "canary-s3cret"


def _policy(fake: FakeProviders, **model: object) -> Policy:
    base = fake.openai_base.replace("http://", f"http://proxy-user:{CANARY}@")
    return Policy.model_validate(
        {
            "models": {
                "mini": {
                    "provider": "openai_compatible",
                    "model": "gpt-4o-mini",
                    "api_base": base,
                    "input_cost_per_mtok": 0.15,
                    "output_cost_per_mtok": 0.6,
                    "context_window": 128_000,
                    **model,
                }
            },
            "routes": {"auto": {"candidates": ["mini"]}},
        }
    )


def test_api_base_userinfo_is_sent_as_a_basic_header_and_never_in_a_url_httpx_logs(
    fake: FakeProviders, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    client = OpenAI(policy=_policy(fake), http_client=http)
    try:
        with caplog.at_level(logging.DEBUG, logger="httpx"):
            response = client.chat.completions.create(model="auto", messages=QUESTION)
    finally:
        client.close()
        http.close()
    assert response.choices[0].message.content
    (request,) = sent
    assert request.url.userinfo == b""
    assert CANARY not in str(request.url)
    expected = "Basic " + base64.b64encode(f"proxy-user:{CANARY}".encode()).decode()
    assert request.headers["authorization"] == expected
    assert fake.requests[0].headers["authorization"] == "<redacted>"  # it arrived
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("httpx")]
    assert any("/chat/completions" in line for line in logged)
    assert not any(CANARY in line for line in logged)


def test_an_explicit_authorization_header_wins_over_userinfo(fake: FakeProviders) -> None:
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    client = OpenAI(policy=_policy(fake, headers={"Authorization": "Bearer team-token"}), http_client=http)
    try:
        client.chat.completions.create(model="auto", messages=QUESTION)
    finally:
        client.close()
        http.close()
    assert sent[0].headers["authorization"] == "Bearer team-token"
    assert CANARY not in str(sent[0].url)


def test_reprs_of_deployments_and_the_policy_never_show_keys_header_values_or_userinfo(
    fake: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER_TEST_KEY", f"sk-{CANARY}")
    policy = _policy(fake, headers={"x-proxy-token": CANARY}, api_key_env="ROUTER_TEST_KEY")
    client = OpenAI(policy=policy)
    try:
        engine = client._router._engine
        deployment = engine.deployments["mini"]
        assert deployment.api_key == f"sk-{CANARY}"  # the key is there, only never shown
        for text in (repr(engine.deployments), str(deployment), repr(engine.policy), str(engine.policy)):
            assert CANARY not in text
            assert "x-proxy-token" in text  # names stay: they say what is configured
    finally:
        client.close()


def test_a_log_file_in_a_missing_directory_is_a_policy_error_naming_the_key(tmp_path: Path) -> None:
    data = {
        "models": {"a": {"provider": "openai_compatible", "api_base": "http://localhost:1/v1"}},
        "logging": {"file": str(tmp_path / "missing" / "router.log")},
    }
    with pytest.raises(PolicyError) as info:
        OpenAI(policy=policy_from_dict(data, source="policy.yaml"), configure_logging=True)
    (problem,) = info.value.problems
    assert (problem.file, problem.key) == ("policy.yaml", "logging.file")
    assert "create its directory or fix the path" in problem.message


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"ledger": "file:///x"}, "ledger"),
        ({"features": {"*": {"budget": {"limit_usd": 1}}}, "budget": {"limit_usd": 5}}, "features.*"),
        (
            {"models": {"a": {"provider": "openai_compatible", "api_base": "http://[::1"}}},
            "models.a.api_base",
        ),
    ],
    ids=["ledger", "reserved-feature", "api-base"],
)
def test_a_policy_built_in_code_is_held_to_the_loaders_value_checks(
    change: dict[str, object], key: str
) -> None:
    data: dict[str, object] = {"models": {"a": {"provider": "openai_compatible", "api_base": "http://h/v1"}}}
    with pytest.raises(PolicyError) as info:
        OpenAI(policy=Policy.model_validate({**data, **change}))
    assert [p.key for p in info.value.problems] == [key]
