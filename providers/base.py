"""What every adapter takes and gives.

Adapters speak OpenAI's chat-completion shape at both ends: they take the request body as the
openai client would send it and return the response (or each stream chunk) as OpenAI-format
dicts. Turning those into typed objects happens once, in the router, whatever the provider.
Errors leave an adapter already translated into openai's classes (providers.errors).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from providers.registry import AdapterKind

JSON = dict[str, Any]
Timeout = float | httpx.Timeout | None

DEFAULT_TIMEOUT = httpx.Timeout(timeout=600.0, connect=5.0)

# The key of the chunk an adapter yields in place of a stream event it could not read: the event is
# skipped and counted, and the stream is judged by how it ends (its finish reason), not by that event.
MALFORMED_EVENT = "router.malformed_event"

# The key under which an adapter hands back a provider's ``x-ratelimit-*`` headers with an answer (a
# dict's extra key; a stream's first, content-free chunk), only for a deployment with
# ``rate_limits`` set: the router folds them into its tpm/rpm counters (docs/deployments.md).
RATE_LIMITS = "router.rate_limits"
_RATE_PREFIX = "x-ratelimit-"


def rate_limit_headers(headers: Any) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers of a response (httpx, aiohttp or raw ``(bytes, bytes)`` pairs)."""
    items = headers.items() if hasattr(headers, "items") else headers
    out: dict[str, str] = {}
    for name, value in items:
        if isinstance(name, bytes):
            name, value = name.decode("latin-1"), value.decode("latin-1")
        lower = name.lower()
        if lower.startswith(_RATE_PREFIX):
            out[lower] = value
    return out


def as_timeout(value: object) -> Timeout:
    """``value`` as a timeout httpx reads.

    openai 3.x speaks HTTP through httpx2, so its clients' ``timeout`` (and what libraries pass on per
    call) is an ``httpx2.Timeout``, which httpx cannot read: its four phases are carried over.
    """
    if value is None or isinstance(value, httpx.Timeout | float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return httpx.Timeout(**as_dict())
    raise TypeError(f"timeout must be a number of seconds, an httpx.Timeout or None, not {value!r}")


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model at one provider endpoint, with its resolved credentials."""

    name: str
    provider: str
    model: str
    adapter: AdapterKind
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    api_version: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    litellm_model: str | None = None
    # Quirks of the provider's streams through litellm (providers.registry.ProviderSpec).
    stream_ends_with_usage: bool = False
    stream_ignores_timeout: bool = False
    # The endpoint speaks OpenAI's Responses API (``/responses``): a routed ``responses.create``
    # goes there natively instead of through chat (the catalog capability ``responses``).
    responses: bool = False
    # One of several endpoints of the model ``name`` (policy ``deployments:``): its own name there.
    pool_name: str | None = None
    region: str | None = None
    # The policy gives this deployment a tpm or rpm: its answers carry the provider's x-ratelimit-*
    # headers back (``RATE_LIMITS``). Off elsewhere, so the plain path never reads them.
    rate_limits: bool = False

    @property
    def key(self) -> str:
        """What breakers, rate counters and events call this endpoint: ``model`` or ``model/deployment``."""
        return self.name if self.pool_name is None else f"{self.name}/{self.pool_name}"

    # The service tier this deployment asks for (``"flex"``: providers.tiers), None = the provider's default.
    service_tier: str | None = None

    def __repr__(self) -> str:
        # Header values are often credentials (a proxy's token, an org key): names only, never values.
        shown = []
        for f in fields(self):
            if f.name == "api_key":
                continue
            value = getattr(self, f.name)
            if f.name == "headers":
                value = {name: "<redacted>" for name in value}
            shown.append(f"{f.name}={value!r}")
        return f"Deployment({', '.join(shown)})"


def split_credentials(url: str) -> tuple[str, str | None]:
    """``https://user:pass@host/v1`` → (``https://host/v1``, an ``Authorization: Basic`` value).

    httpx would send userinfo as Basic auth anyway, but it also logs the URL (password included) at
    INFO; sending the credentials as a header keeps them out of every URL we or httpx print.
    """
    if "@" not in url:
        return url, None
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None  # not a URL at all: the policy loader reports it
    if parts.username is None and parts.password is None:
        return url, None
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    clean = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return clean, f"Basic {token}"


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Per-call transport options the caller passed to ``create``."""

    timeout: Timeout = None
    extra_headers: Mapping[str, str] | None = None
    extra_query: Mapping[str, Any] | None = None


class SyncAdapter(Protocol):
    def complete(self, deployment: Deployment, body: JSON, options: CallOptions) -> JSON: ...

    def stream(self, deployment: Deployment, body: JSON, options: CallOptions) -> Iterator[JSON]: ...

    def close(self) -> None: ...


class AsyncAdapter(Protocol):
    async def complete(self, deployment: Deployment, body: JSON, options: CallOptions) -> JSON: ...

    def stream(self, deployment: Deployment, body: JSON, options: CallOptions) -> AsyncIterator[JSON]: ...

    async def close(self) -> None: ...


# The request-body key under which a Responses API call rides through the chat pipeline: the
# router's responses layer puts a ``NativeResponses`` there, the OpenAI-compatible adapter sends it
# to ``/responses`` for a deployment that speaks the Responses API (``Deployment.responses``), and
# every adapter drops it from a chat call. Never sent to a provider as is.
NATIVE_RESPONSES = "router.native_responses"


@dataclass(frozen=True, slots=True)
class NativeResponses:
    """A ``responses.create`` call as the Responses API itself takes it (without ``model``/``stream``).

    ``required``: the request uses what only a Responses server can do (hosted tools, a
    ``previous_response_id`` the router does not hold, ...), so only such models may serve it; the
    planner reads it as the capability ``responses``. ``previous_base``: the API base of the server
    that created ``params["previous_response_id"]``; another server gets ``expanded_input`` (the held
    conversation as input items) instead of the id. ``previous_keys``: when the router knows the
    deployment that created it, the keys (``Deployment.key``) of those that can see it (the same base
    and API key: one server and account); they decide instead of the base, since two accounts on one
    base (two OpenAI projects) do not see each other's responses.
    """

    params: Mapping[str, Any]
    required: bool = False
    reason: str | None = None
    previous_base: str | None = None
    previous_keys: frozenset[str] | None = None
    expanded_input: tuple[Mapping[str, Any], ...] | None = None
