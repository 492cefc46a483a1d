"""providers.base: timeouts from either HTTP library openai may use."""

from __future__ import annotations

import httpx
import openai
import pytest

from providers.base import as_timeout


def test_numbers_none_and_httpx_timeouts_pass_through() -> None:
    limit = httpx.Timeout(5.0, connect=1.0)
    assert as_timeout(limit) is limit
    assert as_timeout(None) is None
    assert as_timeout(2.5) == 2.5
    assert as_timeout(3) == 3.0 and isinstance(as_timeout(3), float)


def test_the_openai_clients_own_timeout_becomes_an_httpx_timeout_with_the_same_phases() -> None:
    """openai 3.x keeps an httpx2.Timeout; openai 2.x an httpx.Timeout. Either way httpx can read it."""
    timeout = openai.OpenAI(api_key="x", timeout=openai.Timeout(7.0, connect=2.0)).timeout
    converted = as_timeout(timeout)
    assert isinstance(converted, httpx.Timeout)
    assert (converted.connect, converted.read, converted.write, converted.pool) == (2.0, 7.0, 7.0, 7.0)


def test_anything_else_is_refused_with_what_is_accepted() -> None:
    with pytest.raises(TypeError, match=r"number of seconds, an httpx\.Timeout or None"):
        as_timeout("10s")
    with pytest.raises(TypeError):
        as_timeout(True)
