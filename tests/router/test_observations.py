"""What a client learns from its calls: output size and latency, fairly comparable across models."""

from router._observations import Observations


def test_nothing_observed_means_no_expectation() -> None:
    assert Observations().expected_output_tokens("faq", "m") is None
    assert Observations().latency_ms("m") is None


def test_an_unobserved_model_is_expected_to_write_what_the_feature_usually_writes() -> None:
    seen = Observations()
    seen.record("faq", "claude", 12, latency_ms=100.0)
    # Otherwise claude (12 observed) would be compared with others' policy default (256) and look cheaper.
    assert seen.expected_output_tokens("faq", "gemini") == 12.0
    assert seen.expected_output_tokens("summarize", "gemini") is None


def test_averages_move_towards_new_observations() -> None:
    seen = Observations()
    seen.record("faq", "m", 100, latency_ms=10.0)
    seen.record("faq", "m", 200, latency_ms=20.0)
    assert seen.expected_output_tokens("faq", "m") == 120.0
    assert seen.latency_ms("m") == 12.0


def test_a_call_without_usage_teaches_latency_only() -> None:
    seen = Observations()
    seen.record("faq", "m", None, latency_ms=5.0)
    assert seen.expected_output_tokens("faq", "m") is None and seen.latency_ms("m") == 5.0
