"""Retry, deadline and breaker settings in force for one route, and the backoff they imply.

The policy gives top-level defaults and per-route overrides; ``resilience_for`` merges them once
per route when the client is built, so a request only reads a frozen object.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from providers import error_kinds

if TYPE_CHECKING:
    import tenacity

    from policies.schema import ContentPolicyConduct, CooldownSpec, Policy, RetrySpec, StreamRecovery

# Failures a second call to the same model may cure (the error table's ``retry`` column). The rest
# either cannot improve by waiting (the request is at fault, or too long) or are about the
# deployment (auth, unknown model).
RETRYABLE: Final = error_kinds.RETRYABLE


@dataclass(frozen=True, slots=True)
class Resilience:
    """The effective settings for one route (or for models named directly)."""

    retry: RetrySpec
    timeout_s: float
    max_attempts: int
    max_retry_after_s: float
    stream_idle_timeout_s: float
    cooldown: CooldownSpec
    # None: a stream's first content may take as long as stream_idle_timeout_s.
    first_token_timeout_s: float | None = None
    # A model that did not answer in time rarely answers the retry: fail over at once by default.
    retry_on_timeout: bool = False
    on_content_policy: ContentPolicyConduct = "raise"
    # A stream cut after content: continue it on a model with prefill, or raise (router._continuation).
    stream_recovery: StreamRecovery = "off"

    @property
    def first_content_s(self) -> float:
        """The longest wait for a stream's first content chunk (and for any read of a stream)."""
        first = self.first_token_timeout_s
        idle = self.stream_idle_timeout_s
        return idle if first is None else min(first, idle)

    def retries(self, kind: str) -> bool:
        """Whether a failure of class ``kind`` is worth a second call to the same model."""
        return kind in RETRYABLE and (kind != "timeout" or self.retry_on_timeout)

    def backoff_s(self, failures: int) -> float:
        """The wait before the next call to a model that has failed ``failures`` times in a row.

        tenacity's strategies, so the curve is the well-known one: exponential from
        ``backoff_initial_s``, capped at ``backoff_max_s``; with jitter, uniform in [0, that]
        ("full jitter"), which spreads a fleet's retries instead of synchronising them.
        """
        retry = self.retry
        if retry.backoff_initial_s <= 0 or retry.backoff_max_s <= 0:
            return 0.0
        import tenacity  # here, not at the top: only a retry needs it, and import router stays light

        strategy: tenacity.wait.wait_base
        if retry.jitter:
            strategy = tenacity.wait_random_exponential(
                multiplier=retry.backoff_initial_s, max=retry.backoff_max_s
            )
        else:
            strategy = tenacity.wait_exponential(multiplier=retry.backoff_initial_s, max=retry.backoff_max_s)
        state = tenacity.RetryCallState(retry_object=_no_retrying(), fn=None, args=(), kwargs={})
        state.attempt_number = max(failures, 1)
        wait = strategy(state)
        return wait if math.isfinite(wait) else retry.backoff_max_s


@functools.cache
def _no_retrying() -> tenacity.Retrying:
    """A call state needs a Retrying; tenacity's wait strategies only read ``attempt_number``."""
    import tenacity

    return tenacity.Retrying()


def resilience_for(policy: Policy, route: str | None) -> Resilience:
    """Top-level settings with the route's overrides on top."""
    spec = policy.routes.get(route) if route is not None else None

    def pick(name: str) -> object:
        value = getattr(spec, name, None) if spec is not None else None
        default = getattr(policy, name)
        if value is None:
            return default
        from policies.schema import CooldownSpec, RetrySpec  # loaded with the policy

        if isinstance(value, RetrySpec | CooldownSpec):
            # A route's block overrides only the keys it sets; the rest come from the top level.
            return default.model_copy(update={key: getattr(value, key) for key in value.model_fields_set})
        return value

    return Resilience(
        retry=pick("retry"),  # type: ignore[arg-type]
        timeout_s=float(pick("timeout_s")),  # type: ignore[arg-type]
        max_attempts=int(pick("max_attempts")),  # type: ignore[call-overload]
        max_retry_after_s=float(pick("max_retry_after_s")),  # type: ignore[arg-type]
        stream_idle_timeout_s=float(pick("stream_idle_timeout_s")),  # type: ignore[arg-type]
        cooldown=pick("cooldown"),  # type: ignore[arg-type]
        first_token_timeout_s=_seconds(pick("first_token_timeout_s")),
        retry_on_timeout=bool(pick("retry_on_timeout")),
        on_content_policy=pick("on_content_policy"),  # type: ignore[arg-type]
        stream_recovery=pick("stream_recovery"),  # type: ignore[arg-type]
    )


def _seconds(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
