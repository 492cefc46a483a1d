"""The HTTP server: routes, the per-request pipeline (auth, script, faults, answer) and ``FakeProviders``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from ._answer import decide
from ._anthropic import AnthropicWire
from ._azure import AzureResponsesWire, AzureWire, resource_not_found
from ._batch import BatchControl
from ._batch_routes import BatchRoutes, add_batch_routes
from ._gemini import GeminiWire
from ._openai import CONTINUE_FINAL_MESSAGE, OpenAIWire
from ._openai_responses import OpenAIResponsesWire, ResponsesStore
from ._state import State, Turn, redact
from ._wire import CONTENT, HEAD, BadRequest, ErrorReply, Frame, Ids, Wire
from .script import Fault, ModelScript, RecordedRequest

__all__ = ["DEFAULT_OPENAI_MODELS", "FakeProviders", "build_app"]

DEFAULT_OPENAI_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo")
"""Listed by ``GET /openai/v1/models`` besides the scripted models (any name is served anyway)."""

_MALFORMED = b'{"id": "fake-malformed", "choices": [{"index": 0, "message": {"content": "unterminated'
# One unreadable SSE event in the middle of a stream (the SSE framing itself is intact).
_MALFORMED_EVENT = b'data: {"id": "fake-malformed", "choices": [{"index": 0, "delta": {"content": "unter\n\n'
# The protocols' terminal events: OpenAI's [DONE], Anthropic's message_stop.
_TERMINAL = (b"data: [DONE]", b'{"type":"message_stop"}')
_CONTENT_POLICY = (
    "Your request was rejected as a result of our safety system. Your prompt may contain text that is "
    "not allowed by our safety system."
)


def _content_policy(wire: Wire, message: str | None) -> ErrorReply:
    """The provider's 400 for a request refused for its content (OpenAI names it content_policy_violation)."""
    if isinstance(wire, AzureWire | AzureResponsesWire):
        return wire.content_policy(message)
    reply = wire.bad_request(message or _CONTENT_POLICY)
    if wire.name != "openai":
        return reply
    error = {**reply.body["error"], "code": "content_policy_violation"}
    return ErrorReply(400, {"error": error})


def _json(
    payload: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def _drop(request: web.Request, *, hard: bool) -> web.Response:
    """Close the connection without (the rest of) a response.

    ``hard`` sends a TCP RST (what a crashed proxy does); otherwise a FIN after the bytes already written,
    so a client reads every chunk sent before the cut.
    """
    transport = request.transport
    if transport is not None:
        if hard:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
    # aiohttp needs a response object; nothing more reaches the closed connection.
    return web.Response(status=499)


class _Handlers:
    def __init__(
        self, state: State, api_keys: Mapping[str, str], batches: BatchControl | None = None
    ) -> None:
        self.state = state
        self.api_keys = dict(api_keys)
        self.openai = OpenAIWire()
        self.openai_responses = OpenAIResponsesWire(ResponsesStore())
        self.gemini = GeminiWire()
        self.anthropic = AnthropicWire()
        wires: dict[str, Wire] = {"openai": self.openai, "gemini": self.gemini, "anthropic": self.anthropic}
        self.batches = BatchRoutes(batches or BatchControl(state, wires), self.api_keys)
        self.azure = AzureWire()
        # Each Azure resource keeps its own responses, apart from OpenAI's and from other resources':
        # an id one made means nothing to another (as on the real services).
        self._azure_responses: dict[str, AzureResponsesWire] = {}
        self._azure_lock = threading.Lock()

    def azure_responses(self, resource: str) -> AzureResponsesWire:
        """The Responses API of Azure resource ``resource``, with its own store."""
        with self._azure_lock:
            wire = self._azure_responses.get(resource)
            if wire is None:
                wire = self._azure_responses[resource] = AzureResponsesWire(ResponsesStore())
            return wire

    # --- routes -----------------------------------------------------------------------------------

    async def openai_chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        model = str(body.get("model", "")) if body is not None else ""
        stream = body is not None and body.get("stream") is True
        key = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or None
        return await self._serve(request, self.openai, model, stream, body, key)

    async def openai_responses_create(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        model = str(body.get("model", "")) if body is not None else ""
        stream = body is not None and body.get("stream") is True
        key = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or None
        return await self._serve(request, self.openai_responses, model, stream, body, key)

    async def openai_responses_stored(self, request: web.Request) -> web.StreamResponse:
        """GET/DELETE /responses/{id}, GET /responses/{id}/input_items: the stored responses."""
        key = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or None
        return self._stored(request, self.openai_responses, key)

    async def azure_responses_stored(self, request: web.Request) -> web.StreamResponse:
        """The same at an Azure resource's v1 API (``/openai/v1/responses/{id}``), key in ``api-key``."""
        wire = self.azure_responses(request.match_info["resource"])
        return self._stored(request, wire, request.headers.get("api-key"))

    def _stored(self, request: web.Request, wire: OpenAIResponsesWire, key: str | None) -> web.Response:
        expected = self.api_keys.get(wire.name)
        if expected is not None and key != expected:
            return self._error(wire.auth_error(key))
        response_id = request.match_info["response_id"]
        if request.match_info.get("tail") == "input_items":
            reply = wire.input_items(response_id)
        elif request.method == "DELETE":
            reply = wire.delete(response_id)
        else:
            reply = wire.retrieve(response_id)
        return _json(reply.body, reply.status)

    async def azure_chat(self, request: web.Request) -> web.StreamResponse:
        if not request.query.get("api-version"):
            reply = resource_not_found()
            return _json(reply.body, reply.status)
        deployment = request.match_info["deployment"]
        body = await self._body(request)
        stream = body is not None and body.get("stream") is True
        key = request.headers.get("api-key")
        rate_key = f"{request.match_info['resource']}/{deployment}"
        return await self._serve(request, self.azure, deployment, stream, body, key, rate_key)

    async def azure_responses_create(self, request: web.Request) -> web.StreamResponse:
        """Azure's Responses API: ``/openai/v1/responses``, or ``/openai/responses?api-version=…``."""
        if not request.path.endswith("/v1/responses") and not request.query.get("api-version"):
            reply = resource_not_found()
            return _json(reply.body, reply.status)
        body = await self._body(request)
        model = str(body.get("model", "")) if body is not None else ""
        stream = body is not None and body.get("stream") is True
        rate_key = f"{request.match_info['resource']}/{model}"
        wire = self.azure_responses(request.match_info["resource"])
        return await self._serve(request, wire, model, stream, body, request.headers.get("api-key"), rate_key)

    async def openai_models(self, request: web.Request) -> web.StreamResponse:
        names = list(dict.fromkeys([*DEFAULT_OPENAI_MODELS, *self.state.scripted_models()]))
        return _json(OpenAIWire.models(names, int(time.time())))

    async def gemini_generate(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].rpartition(":")
        if method == "batchGenerateContent" and model:
            return await self.batches.gemini_create(request, model)
        if method not in ("generateContent", "streamGenerateContent") or not model:
            reply = self.gemini.error(404, f"Method not found: {request.match_info['target']}")
            return _json(reply.body, reply.status)
        body = await self._body(request)
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        return await self._serve(request, self.gemini, model, method == "streamGenerateContent", body, key)

    async def anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        model = str(body.get("model", "")) if body is not None else ""
        stream = body is not None and body.get("stream") is True
        return await self._serve(
            request, self.anthropic, model, stream, body, request.headers.get("x-api-key")
        )

    async def control_script(self, request: web.Request) -> web.StreamResponse:
        try:
            data = await request.json()
            items = data if isinstance(data, list) else [data]
            scripts = [ModelScript.from_json(item) for item in items]
        except (ValueError, TypeError, KeyError) as exc:
            return _json({"error": str(exc)}, 400)
        for script in scripts:
            self.state.script(script)
        return _json({"scripted": [s.model for s in scripts]})

    async def control_reset(self, request: web.Request) -> web.StreamResponse:
        self.state.reset()
        self.openai_responses.store.clear()
        with self._azure_lock:
            self._azure_responses.clear()
        self.batches.control.reset()
        return _json({"reset": True})

    async def control_requests(self, request: web.Request) -> web.StreamResponse:
        model = request.query.get("model")
        return _json({"requests": [r.to_json() for r in self.state.requests(model)]})

    # --- the pipeline -------------------------------------------------------------------------------

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any] | None:
        """The JSON object sent, or None when the body is not one (answered with the provider's 400)."""
        try:
            body = json.loads(await request.read())
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _serve(
        self,
        request: web.Request,
        wire: Wire,
        model: str,
        stream: bool,
        body: dict[str, Any] | None,
        key: str | None,
        rate_key: str | None = None,
    ) -> web.StreamResponse:
        self.state.record(
            RecordedRequest(wire.name, model, request.path_qs, stream, body or {}, redact(request.headers))
        )
        expected = self.api_keys.get(wire.name)
        if expected is not None and key != expected:
            return self._error(wire.auth_error(key))
        if body is None:
            return self._error(wire.bad_request("We could not parse the JSON body of your request."))
        if wire.name == "openai" and CONTINUE_FINAL_MESSAGE in body and not self.state.prefills(model):
            # OpenAI (and a server without vLLM's prefill) refuses an argument it does not know.
            message = f"Unrecognized request argument supplied: {CONTINUE_FINAL_MESSAGE}"
            return self._error(wire.bad_request(message))
        try:
            conv = wire.parse(body, model, stream)
        except BadRequest as exc:
            return self._error(wire.bad_request(exc.message, exc.param))
        flex = conv.service_tier == "flex" and wire.name == "openai"
        turn = self.state.take(model, flex=flex)
        if turn.script.unknown:
            return self._error(wire.not_found(model))
        rate_headers: dict[str, str] = {}
        script, counted = turn.script, rate_key or model
        if script.tpm is not None:
            tokens_left, reset = self.state.tokens_left(counted, script.tpm)
            if tokens_left <= 0:
                reply = wire.error(429)
                headers = {
                    "retry-after": str(max(int(reset + 0.999), 1)),
                    "x-ratelimit-remaining-tokens": "0",
                    "x-ratelimit-reset-tokens": _duration(reset),
                }
                return _json(reply.body, 429, {**reply.headers, **headers})
        if script.rpm is not None:
            left, wait = self.state.admit(counted, script.rpm)
            if wait:
                reply = wire.error(429)
                headers = {
                    "retry-after": str(max(int(wait + 0.999), 1)),
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": _duration(wait),
                }
                return _json(reply.body, 429, {**reply.headers, **headers})
            rate_headers["x-ratelimit-limit-requests"] = str(script.rpm)
            rate_headers["x-ratelimit-remaining-requests"] = str(left)
            rate_headers["x-ratelimit-reset-requests"] = _duration(self.state.requests_reset_s(counted))
        latency = turn.script.latency_s + (turn.script.flex_latency_s if flex else 0.0)
        if latency:
            await asyncio.sleep(latency)
        if flex and turn.script.flex_answers_as != "flex":
            conv = dataclasses.replace(conv, service_tier=turn.script.flex_answers_as)
        fault = turn.fault
        if fault is not None:
            early = await self._early_fault(request, wire, fault, stream)
            if early is not None:
                return early
        limit = turn.script.context_limit
        if limit is not None and conv.prompt_tokens > limit:
            return self._error(wire.context_error(limit, conv.prompt_tokens))
        answer = decide(
            conv,
            turn.script,
            content_filtered=fault is not None and fault.kind == "content_filter",
            scripted_reply=turn.reply,
        )
        ids = Ids(turn.number, int(time.time()))
        if script.tpm is not None:
            self.state.spend(counted, answer.total_tokens)
            tokens_left, reset = self.state.tokens_left(counted, script.tpm)
            rate_headers["x-ratelimit-limit-tokens"] = str(script.tpm)
            rate_headers["x-ratelimit-remaining-tokens"] = str(tokens_left)
            rate_headers["x-ratelimit-reset-tokens"] = _duration(reset)
        if wire.name == "anthropic":
            rate_headers = _anthropic_rate_headers(rate_headers)
        headers = {**self._headers(wire, turn), **rate_headers}
        if not stream:
            return _json(wire.render(answer, conv, ids), headers=headers)
        return await self._stream(request, wire.render_stream(answer, conv, ids), headers, turn)

    async def _early_fault(
        self, request: web.Request, wire: Wire, fault: Fault, stream: bool
    ) -> web.StreamResponse | None:
        """Faults that replace the answer; None for those that shape it (hang, stream faults, filter)."""
        if fault.kind == "status" and fault.status is not None:
            reply = wire.error(fault.status, fault.message, fault.retry_after)
            headers = dict(reply.headers)
            if fault.retry_after is not None:
                headers["retry-after"] = f"{fault.retry_after:g}"
            if fault.retry_after_ms is not None:
                headers["retry-after-ms"] = str(fault.retry_after_ms)
            return _json(reply.body, reply.status, headers)
        if fault.kind == "content_policy":
            return self._error(_content_policy(wire, fault.message))
        if fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
        elif fault.kind == "reset":
            return _drop(request, hard=True)
        elif fault.kind == "malformed":
            if stream:
                response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                await response.prepare(request)
                await response.write(b"data: " + _MALFORMED + b"\n\n")
                await response.write_eof()
                return response
            return web.Response(body=_MALFORMED, content_type="application/json")
        return None

    @staticmethod
    def _headers(wire: Wire, turn: Turn) -> dict[str, str]:
        if wire.name == "azure":
            return {
                "apim-request-id": f"fake-{turn.number}",
                "x-request-id": f"req_fake{turn.number}",
                "x-ms-region": "Fake Region",
                "x-ms-client-request-id": f"fake-{turn.number}",
            }
        header = "request-id" if wire.name == "anthropic" else "x-request-id"
        return {header: f"req_fake{turn.number}"}

    @staticmethod
    def _error(reply: ErrorReply) -> web.Response:
        return _json(reply.body, reply.status, reply.headers)

    @staticmethod
    async def _stream(
        request: web.Request, frames: list[Frame], headers: Mapping[str, str], turn: Turn
    ) -> web.StreamResponse:
        """Write the frames; a stream fault cuts or pauses once ``after_chunks`` content frames are out."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **headers}
        )
        await response.prepare(request)
        fault = turn.fault
        stop_at = (
            fault.after_chunks
            if fault is not None and fault.kind in ("stream_cut", "stream_stall", "malformed_event")
            else -1
        )
        if fault is not None and fault.kind == "unterminated" and frames[-1].data.strip().endswith(_TERMINAL):
            # Everything but the terminal event, then the connection closes mid-body.
            for frame in frames[:-1]:
                await response.write(frame.data)
            return _drop(request, hard=False)
        sent = 0
        for frame in frames:
            if sent == stop_at and frame.kind != HEAD and fault is not None:
                stop_at = -1
                if fault.kind == "stream_cut":
                    return _drop(request, hard=False)
                if fault.kind == "malformed_event":
                    await response.write(_MALFORMED_EVENT)
                else:
                    await asyncio.sleep(fault.seconds)
            await response.write(frame.data)
            sent += frame.kind == CONTENT
        await response.write_eof()
        return response


def _anthropic_rate_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """OpenAI's x-ratelimit-{limit,remaining}-{requests,tokens} under Anthropic's names
    (``anthropic-ratelimit-requests-remaining``, ...); its resets are dates, left out here."""
    out = {}
    for name, value in headers.items():
        kind, _, unit = name.removeprefix("x-ratelimit-").partition("-")
        if kind in ("limit", "remaining"):
            out[f"anthropic-ratelimit-{unit}-{kind}"] = value
    return out


def _duration(seconds: float) -> str:
    """A reset time as OpenAI writes it (``1s``, ``6m0s``, ``20ms``): seconds with a unit."""
    return f"{seconds:.3f}s"


def build_app(
    state: State, api_keys: Mapping[str, str] | None = None, batches: BatchControl | None = None
) -> web.Application:
    """The aiohttp application: the three providers under their prefixes and the ``/_fake`` controls."""
    handlers = _Handlers(state, api_keys or {}, batches)
    app = web.Application(client_max_size=64 * 1024**2)
    add_batch_routes(app, handlers.batches)
    app.router.add_post("/openai/v1/chat/completions", handlers.openai_chat)
    app.router.add_get("/openai/v1/models", handlers.openai_models)
    app.router.add_post("/openai/v1/responses", handlers.openai_responses_create)
    app.router.add_get("/openai/v1/responses/{response_id}", handlers.openai_responses_stored)
    app.router.add_delete("/openai/v1/responses/{response_id}", handlers.openai_responses_stored)
    app.router.add_get(
        "/openai/v1/responses/{response_id}/{tail:input_items}", handlers.openai_responses_stored
    )
    app.router.add_post(
        "/azure/{resource}/openai/deployments/{deployment}/chat/completions", handlers.azure_chat
    )
    app.router.add_post("/azure/{resource}/openai/v1/responses", handlers.azure_responses_create)
    app.router.add_post("/azure/{resource}/openai/responses", handlers.azure_responses_create)
    stored = "/azure/{resource}/openai/v1/responses/{response_id}"
    app.router.add_get(stored, handlers.azure_responses_stored)
    app.router.add_delete(stored, handlers.azure_responses_stored)
    app.router.add_get(stored + "/{tail:input_items}", handlers.azure_responses_stored)
    app.router.add_post("/gemini/{version}/models/{target}", handlers.gemini_generate)
    app.router.add_post("/anthropic/v1/messages", handlers.anthropic_messages)
    app.router.add_post("/_fake/script", handlers.control_script)
    app.router.add_post("/_fake/reset", handlers.control_reset)
    app.router.add_get("/_fake/requests", handlers.control_requests)
    return app


async def start_site(app: web.Application, sock: socket.socket) -> web.AppRunner:
    """Serve ``app`` on a bound socket; handlers of vanished clients are cancelled (no hung sleeps)."""
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1)
    await runner.setup()
    # aiohttp listens with a backlog of 128 by default: 500 clients connecting at once overflow it, and
    # the dropped SYNs are retried a second later, which reads as a slow provider rather than a busy one.
    await web.SockSite(runner, sock, backlog=1024).start()
    return runner


class FakeProviders:
    """The fake OpenAI, Gemini and Anthropic endpoints on one loopback port, served from a daemon thread.

    Its own event loop in its own thread lets synchronous tests and clients call it without an event loop
    of their own. ``api_keys`` maps a protocol ("openai", "gemini", "anthropic") to the only key it
    accepts; unset, any key is accepted.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_keys: Mapping[str, str] | None = None,
        log_limit: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        # ``clock`` times the scripts' rpm windows (injectable: tests share one with their clients).
        self._state = State(log_limit, clock)
        self._api_keys = dict(api_keys or {})
        # The batch protocols' jobs, files and clock: tests fast-forward it (docs/fake-providers.md).
        self.batches = BatchControl(
            self._state, {"openai": OpenAIWire(), "gemini": GeminiWire(), "anthropic": AnthropicWire()}
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen, then return: the port is bound before this returns, so ``url`` is usable at once."""
        if self._thread is not None:
            raise RuntimeError("FakeProviders is already started")
        sock = socket.create_server((self.host, self._requested_port))
        self._port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._runner = loop.run_until_complete(
                    start_site(build_app(self._state, self._api_keys, self.batches), sock)
                )
            except BaseException as exc:  # reported to start()'s caller, not lost in a thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"fake-providers-{self._port}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving; open connections are closed, hung requests are cancelled."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop = None
        self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- addresses ----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeProviders is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base(self) -> str:
        """``base_url`` for the openai SDK and the api_base of providers openai / openai_compatible."""
        return f"{self.url}/openai/v1"

    @property
    def gemini_base(self) -> str:
        """Gemini's root; litellm wants ``gemini_base + "/v1beta"`` as its api_base."""
        return f"{self.url}/gemini"

    def azure_base(self, resource: str = "fake") -> str:
        """An Azure OpenAI resource's endpoint (``https://RESOURCE.openai.azure.com`` on Azure)."""
        return f"{self.url}/azure/{resource}"

    @property
    def rate_limited(self) -> list[tuple[str, float]]:
        """The requests refused for going over a script's ``rpm``: (rate key, time on the fake's clock)."""
        return list(self._state.rate_limited)

    @property
    def anthropic_base(self) -> str:
        """litellm's api_base for anthropic/ models (it appends ``/v1/messages``)."""
        return f"{self.url}/anthropic"

    # --- scripting ----------------------------------------------------------------------------------

    def script(self, *scripts: ModelScript) -> None:
        """Replace these models' scripts (and restart their fault sequences)."""
        for script in scripts:
            self._state.script(script)

    def reset(self) -> None:
        """Forget every script, the request log and every batch job and file."""
        self._state.reset()
        self.batches.reset()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the request log, oldest first."""
        return self._state.requests()

    def requests_for(self, model: str) -> list[RecordedRequest]:
        return self._state.requests(model)
