"""``router fake``: the fake providers in the background, and the environment that points an
unchanged policy at them (each provider's endpoint variable, fake keys)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from policies.loader import policy_from_dict
from router._engine import Engine

ROOT = Path(__file__).resolve().parents[2]


def _exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = shlex.split(value)[0]
    return found


def test_router_fake_env_starts_them_in_the_background_and_prints_exports() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "router", "fake", "--env"],
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'fakes'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    env = _exports(done.stdout)
    try:
        assert set(env) >= {
            "OPENAI_BASE_URL",
            "GEMINI_API_BASE",
            "ANTHROPIC_BASE_URL",
            "OPENAI_API_KEY",
            "GEMINI_API_KEY",
            "ANTHROPIC_API_KEY",
            "ROUTER_FAKE_PID",
        }
        assert env["OPENAI_API_KEY"] == "fake-key"
        # Still serving after the command returned: it runs on, detached, until killed.
        listed = httpx.get(f"{env['OPENAI_BASE_URL']}/models", timeout=10).json()
        assert any(m["id"] == "gpt-4o-mini" for m in listed["data"])
    finally:
        os.kill(int(env["ROUTER_FAKE_PID"]), signal.SIGTERM)


POLICY = {
    "models": {
        "o": {"provider": "openai", "model": "gpt-4o-mini"},
        "g": {"provider": "gemini", "model": "gemini-2.5-flash-lite"},
        "a": {"provider": "anthropic", "model": "claude-haiku-4-5"},
        "pinned": {"provider": "anthropic", "model": "claude-haiku-4-5", "api_base": "http://proxy:1"},
    }
}


def test_a_model_without_api_base_follows_its_providers_endpoint_variable() -> None:
    env = {"GEMINI_API_BASE": "http://fake:1/gemini", "ANTHROPIC_BASE_URL": "http://fake:1/anthropic"}
    engine = Engine(policy_from_dict(POLICY), env=env, base_url="http://fake:1/openai/v1")
    bases = {name: d.api_base for name, d in engine.deployments.items()}
    assert bases == {
        "o": "http://fake:1/openai/v1",  # OPENAI_BASE_URL arrives as the openai client's base_url
        "g": "http://fake:1/gemini/v1beta",
        "a": "http://fake:1/anthropic",
        "pinned": "http://proxy:1",  # an explicit api_base wins
    }


def test_without_the_variables_the_default_endpoints_stay() -> None:
    engine = Engine(policy_from_dict(POLICY), env={})
    assert engine.deployments["g"].api_base is None and engine.deployments["a"].api_base is None
