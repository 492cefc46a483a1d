"""The long tail: every provider litellm reaches (Gemini native, Anthropic, Bedrock, Vertex, ...).

litellm costs about two seconds to import and tries to download its price map unless told
otherwise, so it is imported on the first request that needs it, after setting
``LITELLM_LOCAL_MODEL_COST_MAP``. Its module globals (callbacks, caches, settings) are never
touched (except ``suppress_debug_info``, see ``import_litellm``): everything is passed per call, so
two clients in one process cannot interfere.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import Any, Final

import httpx
import openai

from providers.base import (
    JSON,
    NATIVE_RESPONSES,
    RATE_LIMITS,
    CallOptions,
    Deployment,
    Timeout,
    rate_limit_headers,
)
from providers.errors import connection_failed, from_litellm, timeout_error
from providers.tiers import set_tier


def import_litellm() -> ModuleType:
    """Import litellm offline-safe: its bundled price map and Anthropic beta-header table, no downloads."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
    import litellm

    # The one module global we touch, deliberately: without it litellm print()s a "Give Feedback"
    # banner to the application's stdout on every provider error (breaking JSON output, for one).
    # It changes no behaviour, so clients in one process still cannot interfere with each other.
    litellm.suppress_debug_info = True
    return litellm


class LiteLLMImport:
    """litellm, imported off the request path and waited for no longer than a call may take.

    ``start`` (a client whose policy names a litellm provider calls it when it is built) imports it
    in a background thread; a call then waits for that import within its own time limit, so the
    two seconds (or far more on a busy machine) of the first import count against the request's
    deadline instead of silently extending it. One per adapter: the import itself is the
    interpreter's, so a second one costs nothing.
    """

    def __init__(self, importer: Callable[[], ModuleType] = import_litellm) -> None:
        self._importer = importer
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._module: ModuleType | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._module is not None:
                return
            if self._importer is import_litellm and _imported("litellm"):
                self._module = import_litellm()  # already done by someone else: no thread, no wait
                self._done.set()
                return
            self._thread = threading.Thread(target=self._run, name="router-litellm-import", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._module = self._importer()
        except BaseException as exc:  # handed to the first call that needs litellm
            self._error = exc
        finally:
            self._done.set()

    def get(self, wait_s: float | None) -> ModuleType:
        """litellm, once imported; a timeout error (fail over) if that takes longer than ``wait_s``."""
        module = self._module
        if module is not None:
            return module
        self.start()
        if not self._done.wait(wait_s):
            error = openai.APITimeoutError(request=httpx.Request("POST", "https://litellm.invalid"))
            error.message = f"litellm was still being imported after {wait_s:g}s (counted against timeout_s)"
            raise error
        if self._error is not None:
            raise self._error
        assert self._module is not None
        return self._module


def _imported(name: str) -> bool:
    """``name`` is in sys.modules and done executing (a module still importing in another thread
    is in sys.modules too; its spec says it is initializing)."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


def _longest_phase(timeout: Timeout) -> float | None:
    """The most time a call with ``timeout`` may take in any one phase (the router caps each by the
    time left of the request's deadline): how long the call may wait for litellm's import."""
    if isinstance(timeout, httpx.Timeout):
        phases = [p for p in (timeout.connect, timeout.read, timeout.write, timeout.pool) if p is not None]
        return max(phases) if len(phases) == 4 else None
    return timeout


def _arguments(deployment: Deployment, body: JSON, options: CallOptions, stream: bool) -> dict[str, Any]:
    if NATIVE_RESPONSES in body:  # a routed responses.create: litellm gets its chat translation
        body = {k: v for k, v in body.items() if k != NATIVE_RESPONSES}
    arguments: dict[str, Any] = {
        # A deep copy: litellm's Gemini path rewrites tool schemas in place, and the body is the caller's.
        **_copy(body),
        "model": deployment.litellm_model or deployment.model,
        "stream": stream,
        # We retry and fall back ourselves, by policy; litellm must make exactly one call.
        "num_retries": 0,
        "max_retries": 0,
        # A parameter one provider lacks (seed for Anthropic, say) is dropped, not fatal.
        "drop_params": True,
    }
    # Only an OpenAI deployment asks for a tier (providers.tiers); a caller's flex never goes elsewhere.
    set_tier(arguments, deployment.service_tier if deployment.provider == "openai" else None)
    if deployment.api_base:
        arguments["api_base"] = deployment.api_base
    if deployment.api_key:
        arguments["api_key"] = deployment.api_key
    if deployment.api_version:
        arguments["api_version"] = deployment.api_version
    headers = {**deployment.headers, **(options.extra_headers or {})}
    if headers:
        arguments["extra_headers"] = headers
    if options.timeout is not None:
        arguments["timeout"] = options.timeout
    return arguments


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _copy(value: Any) -> Any:
    """A deep copy of a request body in which a lone surrogate becomes U+FFFD.

    litellm encodes bodies as UTF-8 JSON, where a lone surrogate (half of a pair, from text cut
    inside an emoji) raises UnicodeEncodeError; the fast path sends it ``\\u``-escaped instead, which
    litellm cannot be asked to do. Replacing the half character beats failing the request.
    """
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE.sub("\ufffd", value)
        return value
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return copy.deepcopy(value)


def _with_limits(data: JSON, answer: Any, deployment: Deployment) -> JSON:
    """The answer with the provider's rate-limit headers for a deployment with tpm/rpm
    (``Deployment.rate_limits``): litellm keeps them in ``_hidden_params["additional_headers"]``,
    under OpenAI's ``x-ratelimit-*`` names (Anthropic's ``anthropic-ratelimit-*`` mapped by litellm)."""
    if deployment.rate_limits:
        hidden = getattr(answer, "_hidden_params", None)
        headers = hidden.get("additional_headers") if isinstance(hidden, dict) else None
        if isinstance(headers, dict):
            data[RATE_LIMITS] = rate_limit_headers(headers)
    return data


def _as_dict(obj: Any) -> JSON:
    data: JSON = obj.model_dump() if hasattr(obj, "model_dump") else dict(obj)
    return data


def _stream_chunk(obj: Any) -> JSON:
    """One stream chunk in OpenAI's shape.

    litellm sends the usage in a chunk that also holds an empty choice, after the one with the
    finish reason; OpenAI's usage chunk has ``choices: []``. Shaped like OpenAI's, the router can
    hide it from callers who did not ask for usage, as it does on the fast path.
    """
    data = _as_dict(obj)
    choices = data.get("choices")
    if data.get("usage") and choices and all(_empty_choice(choice) for choice in choices):
        data["choices"] = []
    return data


def _empty_choice(choice: Any) -> bool:
    if not isinstance(choice, dict) or choice.get("finish_reason"):
        return False
    delta = choice.get("delta") or {}
    return not any(delta.values()) if isinstance(delta, dict) else False


def _finished(data: JSON) -> bool:
    return any(isinstance(c, dict) and c.get("finish_reason") for c in data.get("choices") or ())


def _usage_expected(deployment: Deployment, body: JSON) -> bool:
    """Must this stream end with a usage chunk? Only if asked for, and the wire always sends it."""
    options = body.get("stream_options")
    asked = isinstance(options, dict) and bool(options.get("include_usage"))
    return deployment.stream_ends_with_usage and asked


def _cut_stream(deployment: Deployment) -> openai.APIConnectionError:
    # litellm swallows an unreadable event and ends the stream with a made-up finish reason; the
    # missing usage (which this provider's protocol always sends last) is how the cut shows.
    return connection_failed(
        "The provider's stream ended before its terminal event (no usage chunk arrived).",
        url=deployment.api_base,
    )


def _read_timeout(timeout: Timeout) -> float | None:
    """The longest wait for one stream chunk that ``timeout`` allows."""
    if isinstance(timeout, httpx.Timeout):
        return timeout.read
    return timeout


@functools.cache
def _timed_handler_class() -> type[Any]:
    """litellm's HTTPHandler, but applying its own ``timeout`` to calls that pass none.

    Built on first use (it needs litellm imported). litellm's sync Gemini stream posts without a
    timeout, so handing it one of these, around our connection pool, makes ``timeout`` hold.
    """
    from litellm.llms.custom_httpx.http_handler import HTTPHandler

    class TimedHTTPHandler(HTTPHandler):  # type: ignore[misc]
        def post(self, url: str, *args: Any, **kwargs: Any) -> Any:
            # (data, json, params, headers, stream, timeout): a sixth positional is the timeout.
            if len(args) < 6 and kwargs.get("timeout") is None:
                kwargs["timeout"] = self.timeout
            return super().post(url, *args, **kwargs)

    return TimedHTTPHandler


class LiteLLMAdapter:
    """Sync driver over ``litellm.completion``."""

    def __init__(self) -> None:
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()
        self._litellm = LiteLLMImport()

    def warm(self) -> None:
        """Start importing litellm in the background (a policy names a provider it serves)."""
        self._litellm.start()

    def _http_client(self) -> httpx.Client:
        """The pool behind the timed handlers, opened on first need."""
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(
                    limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100)
                )
            return self._http

    def complete(self, deployment: Deployment, body: JSON, options: CallOptions) -> JSON:
        litellm = self._litellm.get(_longest_phase(options.timeout))
        try:
            answer = litellm.completion(**_arguments(deployment, body, options, stream=False))
        except Exception as exc:
            raise from_litellm(exc) from exc
        return _with_limits(_as_dict(answer), answer, deployment)

    def stream(self, deployment: Deployment, body: JSON, options: CallOptions) -> Iterator[JSON]:
        litellm = self._litellm.get(_longest_phase(options.timeout))
        arguments = _arguments(deployment, body, options, stream=True)
        if deployment.stream_ignores_timeout and options.timeout is not None:
            arguments["client"] = _timed_handler_class()(timeout=options.timeout, client=self._http_client())
        try:
            chunks = litellm.completion(**arguments)
        except Exception as exc:
            raise from_litellm(exc) from exc
        return self._iterate(chunks, deployment, _usage_expected(deployment, body))

    @staticmethod
    def _iterate(chunks: Any, deployment: Deployment, usage_expected: bool) -> Iterator[JSON]:
        usage_seen = finished = False
        try:
            for chunk in chunks:
                data = _stream_chunk(chunk)
                usage_seen = usage_seen or bool(data.get("usage"))
                finished = finished or _finished(data)
                yield data
        except Exception as exc:
            if finished and (usage_seen or not usage_expected):
                return  # the answer was whole; only the connection's goodbye was lost
            raise from_litellm(exc) from exc
        if usage_expected and not usage_seen:
            raise _cut_stream(deployment)

    def close(self) -> None:
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()


class AsyncLiteLLMAdapter:
    """Async driver over ``litellm.acompletion``."""

    def __init__(self) -> None:
        self._litellm = LiteLLMImport()

    def warm(self) -> None:
        """Start importing litellm in the background (a policy names a provider it serves)."""
        self._litellm.start()

    async def _import(self) -> ModuleType:
        """litellm, imported in a worker thread the first time: two seconds of import on the event
        loop would stall every request in flight. The caller's deadline (its ``asyncio.timeout``)
        bounds the wait."""
        try:
            return self._litellm.get(0)
        except openai.APITimeoutError:
            return await asyncio.to_thread(self._litellm.get, None)

    async def complete(self, deployment: Deployment, body: JSON, options: CallOptions) -> JSON:
        litellm = await self._import()
        try:
            answer = await litellm.acompletion(**_arguments(deployment, body, options, stream=False))
        except Exception as exc:
            raise from_litellm(exc) from exc
        return _with_limits(_as_dict(answer), answer, deployment)

    async def stream(self, deployment: Deployment, body: JSON, options: CallOptions) -> AsyncIterator[JSON]:
        litellm = await self._import()
        # Where litellm ignores ``timeout``, each wait for a chunk (the first included) is bounded here.
        wait = _read_timeout(options.timeout) if deployment.stream_ignores_timeout else None
        usage_expected = _usage_expected(deployment, body)
        usage_seen = finished = False
        try:
            async with asyncio.timeout(wait):
                chunks = await litellm.acompletion(**_arguments(deployment, body, options, stream=True))
            iterator = aiter(chunks)
            while True:
                try:
                    async with asyncio.timeout(wait):
                        chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
                data = _stream_chunk(chunk)
                usage_seen = usage_seen or bool(data.get("usage"))
                finished = finished or _finished(data)
                yield data
        except TimeoutError as exc:
            raise timeout_error(url=deployment.api_base) from exc
        except Exception as exc:
            if finished and (usage_seen or not usage_expected):
                return
            raise from_litellm(exc) from exc
        if usage_expected and not usage_seen:
            raise _cut_stream(deployment)

    async def close(self) -> None:
        return None
