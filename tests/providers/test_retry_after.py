"""How long a provider asked us to wait: every header form, their precedence, and Go durations."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.errors import parse_duration, retry_after_s, status_error_from_response

REQUEST = httpx.Request("POST", "https://provider.test/v1/chat/completions")
# A fixed "now" (Unix seconds) for the date forms: 2025-01-01T00:00:00Z.
NOW = datetime(2025, 1, 1, tzinfo=UTC).timestamp()


def _429(headers: dict[str, str] | None = None, body: object = None) -> openai.APIStatusError:
    payload = body if body is not None else {"error": {"message": "slow down"}}
    return status_error_from_response(httpx.Response(429, json=payload, headers=headers, request=REQUEST))


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(NOW + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": _http_date(30)}, 30.0),
        ({"x-ratelimit-reset-requests": "1s"}, 1.0),
        ({"x-ratelimit-reset-tokens": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-requests": "20ms"}, 0.02),
        ({"anthropic-ratelimit-requests-reset": "2025-01-01T00:00:12Z"}, 12.0),
        ({"anthropic-ratelimit-tokens-reset": "2025-01-01T00:00:07.5+00:00"}, 7.5),
    ],
    ids=lambda value: str(value),
)
def test_every_header_form_gives_the_wait_in_seconds(headers: dict[str, str], expected: float) -> None:
    assert retry_after_s(_429(headers), NOW) == pytest.approx(expected)


def test_an_http_date_in_the_past_means_retry_now() -> None:
    assert retry_after_s(_429({"retry-after": _http_date(-60)}), NOW) == 0.0


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert retry_after_s(_429({"retry-after-ms": "250", "retry-after": "9"}), NOW) == 0.25


def test_retry_after_wins_over_the_reset_headers() -> None:
    headers = {"retry-after": "3", "x-ratelimit-reset-requests": "40s", "x-ratelimit-remaining-requests": "0"}
    assert retry_after_s(_429(headers), NOW) == 3.0


def test_the_headers_win_over_geminis_retry_delay_in_the_body() -> None:
    body = {"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "9s"}]}}
    assert retry_after_s(_429({"retry-after": "1"}, body), NOW) == 1.0


def test_an_unreadable_retry_after_falls_through_to_the_next_form() -> None:
    headers = {"retry-after-ms": "soon", "retry-after": "later", "x-ratelimit-reset-requests": "2s"}
    assert retry_after_s(_429(headers), NOW) == 2.0


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "Infinity"])
def test_a_non_finite_retry_after_is_ignored_rather_than_waited_on(value: str) -> None:
    assert retry_after_s(_429({"retry-after": value}), NOW) is None


def test_the_longest_reset_of_the_exhausted_limits_is_the_wait() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "2s",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "1m0s",
    }
    assert retry_after_s(_429(headers), NOW) == 60.0


def test_a_limit_that_is_not_exhausted_does_not_stretch_the_wait() -> None:
    """OpenAI sends every limit's reset on every response; the 6-minute token window is irrelevant
    when it is the request limit that ran out."""
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "2s",
        "x-ratelimit-remaining-tokens": "149000",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    assert retry_after_s(_429(headers), NOW) == 2.0


def test_with_no_limit_at_zero_the_soonest_reset_is_the_wait() -> None:
    # A request larger than what is left of the token budget is refused with tokens remaining.
    headers = {
        "x-ratelimit-remaining-requests": "12",
        "x-ratelimit-reset-requests": "2s",
        "x-ratelimit-remaining-tokens": "300",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    assert retry_after_s(_429(headers), NOW) == 2.0


def test_anthropics_exhausted_limit_is_found_by_its_remaining_header() -> None:
    headers = {
        "anthropic-ratelimit-requests-remaining": "3",
        "anthropic-ratelimit-requests-reset": "2025-01-01T00:00:01Z",
        "anthropic-ratelimit-output-tokens-remaining": "0",
        "anthropic-ratelimit-output-tokens-reset": "2025-01-01T00:00:20Z",
    }
    assert retry_after_s(_429(headers), NOW) == 20.0


def test_geminis_retry_delay_is_read_from_the_body() -> None:
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}],
        }
    }
    assert retry_after_s(_429(body=body), NOW) == 2.5


def test_geminis_retry_delay_is_found_inside_a_quoted_error_message() -> None:
    """litellm quotes Gemini's body inside its own message, so the quotes arrive escaped."""
    quoted = '{"error": {"details": [{"retryDelay": "4s"}]}}'
    assert retry_after_s(_429(body={"error": {"message": f"GeminiException - {quoted}"}}), NOW) == 4.0


def test_no_hint_at_all_is_none() -> None:
    assert retry_after_s(_429(), NOW) is None


def test_an_error_without_a_response_is_none() -> None:
    assert retry_after_s(openai.APIConnectionError(request=REQUEST), NOW) is None
    assert retry_after_s(ValueError("not an http error"), NOW) is None


# --------------------------------------------------------------------------- Go durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("1.5µs", 1.5e-6),
        ("250ns", 2.5e-7),
        (" 7s ", 7.0),
    ],
)
def test_go_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "1x", "1s2", "one second", "-1s", "1 s"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    assert parse_duration(text) is None


_UNITS = (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))


@given(
    parts=st.lists(
        st.tuples(
            st.sampled_from(range(len(_UNITS))),
            st.one_of(st.integers(min_value=0, max_value=10_000), st.decimals(0, 1000, places=3)),
        ),
        min_size=1,
        max_size=len(_UNITS),
        unique_by=lambda part: part[0],
    )
)
def test_a_formatted_duration_parses_back_to_its_seconds(parts: list[tuple[int, object]]) -> None:
    parts = sorted(parts)  # Go prints the largest unit first
    text = "".join(f"{number}{_UNITS[unit][0]}" for unit, number in parts)
    expected = sum(float(str(number)) * _UNITS[unit][1] for unit, number in parts)
    assert parse_duration(text) == pytest.approx(expected)
