"""``client.files`` and ``client.batches`` of ``router.OpenAI``: openai's resources, with batches routed.

A file uploaded with ``purpose="batch"`` is kept by router (its job store), not sent to OpenAI: its
lines may go to three providers. A batch created from such a file is a router batch
(``batch_rtr_...``); every other id, file or purpose goes to OpenAI exactly as openai's client sends it.
The async resources run the same service in a worker thread: batch calls are few and slow-moving.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import openai
from openai._legacy_response import HttpxBinaryResponseContent
from openai.pagination import AsyncCursorPage, SyncCursorPage
from openai.resources.batches import AsyncBatches as _AsyncBatches
from openai.resources.batches import Batches as _Batches
from openai.resources.files import AsyncFiles as _AsyncFiles
from openai.resources.files import Files as _Files
from openai.types import Batch, FileObject
from openai.types.batch_request_counts import BatchRequestCounts

from router.batch._service import (
    ROUTER_BATCH_PREFIX,
    ROUTER_FILE_PREFIX,
    BatchBudgetError,
    BatchInputError,
    BatchService,
    RealtimeAnswer,
)
from router.batch._store import JobRow, StoredFile

if TYPE_CHECKING:
    from router._openai import AsyncOpenAI, OpenAI

_T = TypeVar("_T")
_SERVICE_ATTR = "_router_batch_service"
_LOOP_ATTR = "_router_batch_loop"


def service_for(
    client: OpenAI | AsyncOpenAI, *, on_step: Callable[[str], None] | None = None
) -> BatchService:
    """The client's batch service, made on first use (``on_step``: see ``BatchService``)."""
    service: BatchService | None = client.__dict__.get(_SERVICE_ATTR)
    if getattr(client._router, "_ASYNC", False):
        with contextlib.suppress(RuntimeError):  # the loop of the latest batch call runs real-time retries
            client.__dict__[_LOOP_ATTR] = asyncio.get_running_loop()
    if service is None:
        router = client._router
        sync_ledger = getattr(router, "_ASYNC", False) is False
        own: list[Any] = []

        def ledger() -> Any:
            if sync_ledger:
                return router._ledger()
            if not own:  # the async router's ledger is awaitable: the batch thread opens a sync one
                from router.ledger import open_guarded_ledger

                own.append(open_guarded_ledger(router._ledger_url, journal=router.policy.ledger_journal))
            return own[0]

        service = BatchService(
            realtime=_realtime_for(client),
            engine=router._engine,
            ledger_url=router._ledger_url,
            ledger=ledger,
            budgets=router._budgets,
            wall_clock=router._wall_clock,
            on_step=on_step,
        )
        client.__dict__[_SERVICE_ATTR] = service
    return service


def _realtime_for(client: OpenAI | AsyncOpenAI) -> Callable[[Any], RealtimeAnswer]:
    """A line answered through the client's own chat path (plan at real-time prices, fallbacks,
    budgets settled by that path). The async client's coroutine runs on the loop that called the batch
    method (recorded by ``service_for``), which is only awaiting the batch worker thread."""
    is_async = bool(getattr(client._router, "_ASYNC", False))

    def answer(body: Any) -> RealtimeAnswer:
        loop: asyncio.AbstractEventLoop | None = client.__dict__.get(_LOOP_ATTR) if is_async else None
        if is_async and (loop is None or loop.is_closed()):
            message = "no running event loop of the async client to answer in real time; call retrieve again"
            return RealtimeAnswer(None, None, None, {"code": "realtime_unavailable", "message": message})
        try:
            if loop is None:
                response: Any = client.chat.completions.create(**body)
            else:
                create = client.chat.completions.create(**body)
                response = asyncio.run_coroutine_threadsafe(create, loop).result()
        except openai.APIError as exc:
            code = getattr(exc, "code", None) or type(exc).__name__
            return RealtimeAnswer(None, None, None, {"code": str(code), "message": exc.message})
        routing = response.routing
        return RealtimeAnswer(response.model_dump(mode="json"), routing.model, routing.cost_usd)

    return answer


def _read_upload(file: Any) -> tuple[str, bytes]:
    """(filename, bytes) of anything openai's ``FileTypes`` allows."""
    name = "batch.jsonl"
    if isinstance(file, tuple):
        name, file = str(file[0] or name), file[1]
    if isinstance(file, bytes):
        return name, file
    if isinstance(file, str | os.PathLike):
        with open(file, "rb") as fh:
            return os.path.basename(os.fspath(file)), fh.read()
    if isinstance(file, io.IOBase) or hasattr(file, "read"):
        data = file.read()
        return getattr(file, "name", name) if isinstance(getattr(file, "name", None), str) else name, (
            data.encode() if isinstance(data, str) else data
        )
    raise TypeError(f"files.create(file=...) got {type(file).__name__}; pass bytes, a path, or an open file")


def _file_object(stored: StoredFile) -> FileObject:
    return FileObject(
        id=stored.id,
        object="file",
        bytes=len(stored.data),
        created_at=int(stored.created_at),
        filename=os.path.basename(stored.filename),
        purpose=stored.purpose,  # type: ignore[arg-type]
        status="processed",
    )


def _binary(data: bytes) -> HttpxBinaryResponseContent:
    import openai._legacy_response as legacy

    http = getattr(legacy, "httpx2", None) or httpx  # openai 3 answers with httpx2 responses
    return HttpxBinaryResponseContent(http.Response(200, content=data))


def batch_object(service: BatchService, job: JobRow) -> Batch:
    """The openai ``Batch`` for a router job: status and request_counts over all its lines."""
    counts = service.counts(job.id)
    total = sum(counts.values())
    output_id, error_id = service.output_ids(job)
    ended = int(job.ended_at) if job.ended_at is not None else None
    created = int(job.created_at)
    return Batch(
        id=job.id,
        object="batch",
        endpoint=job.endpoint,
        input_file_id=job.input_file_id,
        completion_window=job.completion_window,
        status=job.status,  # type: ignore[arg-type]
        output_file_id=output_id,
        error_file_id=error_id,
        created_at=created,
        in_progress_at=created,
        expires_at=created + 24 * 3600,
        completed_at=ended if job.status == "completed" else None,
        cancelling_at=int(job.cancelled_at) if job.cancelled_at is not None else None,
        cancelled_at=ended if job.status == "cancelled" else None,
        request_counts=BatchRequestCounts(
            total=total, completed=counts.get("succeeded", 0), failed=counts.get("failed", 0)
        ),
        metadata=dict(job.metadata) if job.metadata else None,
    )


def _translate_errors(call: Callable[[], _T]) -> _T:
    """The batch layer's refusals as the openai errors a caller already handles."""
    from router._exceptions import BudgetExceededError, _response

    try:
        return call()
    except BatchBudgetError as exc:
        raise BudgetExceededError(exc.feature, exc.refusal) from None
    except BatchInputError as exc:
        response, body = _response("bad_request", str(exc))
        raise openai.BadRequestError(str(exc), response=response, body=body) from None


def _not_found(kind: str, ident: str) -> openai.NotFoundError:
    from router._exceptions import _response

    message = f"No router {kind} {ident!r} in the job store ({kind}s are kept beside the ledger)."
    response, body = _response("not_found", message)
    return openai.NotFoundError(message, response=response, body=body)


# --- the operations, shared by the sync and async resources -------------------------------------------


def _create_file(service: BatchService, file: Any) -> FileObject:
    name, data = _read_upload(file)
    return _file_object(_translate_errors(lambda: service.upload(name, data)))


def _create_batch(service: BatchService, input_file_id: str, completion_window: str, metadata: Any) -> Batch:
    job = _translate_errors(
        lambda: service.create(
            input_file_id=input_file_id, completion_window=completion_window, metadata=metadata or None
        )
    )
    return batch_object(service, job)


def _retrieve(service: BatchService, batch_id: str) -> Batch:
    job = service.advance(batch_id)
    if job is None:
        raise _not_found("batch", batch_id)
    return batch_object(service, job)


def _cancel(service: BatchService, batch_id: str) -> Batch:
    job = service.cancel(batch_id)
    if job is None:
        raise _not_found("batch", batch_id)
    return batch_object(service, job)


def _content(service: BatchService, file_id: str) -> HttpxBinaryResponseContent:
    stored = service.file(file_id)
    if stored is None:
        raise _not_found("file", file_id)
    return _binary(stored.data)


def _page(service: BatchService, after: Any, limit: Any) -> list[Batch]:
    jobs = service.jobs(limit if isinstance(limit, int) else 20, after if isinstance(after, str) else None)
    return [batch_object(service, job) for job in jobs]


def _ours(ident: Any, prefix: str) -> bool:
    return isinstance(ident, str) and ident.startswith(prefix)


# --- sync ---------------------------------------------------------------------------------------------


class Files(_Files):
    def __init__(self, client: OpenAI) -> None:
        super().__init__(client)
        self._router_client = client

    def create(self, *, file: Any, purpose: Any, **kwargs: Any) -> FileObject:  # type: ignore[override]
        if purpose != "batch":
            return super().create(file=file, purpose=purpose, **kwargs)
        return _create_file(service_for(self._router_client), file)

    def retrieve(self, file_id: str, **kwargs: Any) -> FileObject:
        if not _ours(file_id, ROUTER_FILE_PREFIX):
            return super().retrieve(file_id, **kwargs)
        stored = service_for(self._router_client).file(file_id)
        if stored is None:
            raise _not_found("file", file_id)
        return _file_object(stored)

    def content(self, file_id: str, **kwargs: Any) -> HttpxBinaryResponseContent:
        if not _ours(file_id, ROUTER_FILE_PREFIX):
            return super().content(file_id, **kwargs)
        return _content(service_for(self._router_client), file_id)


class Batches(_Batches):
    def __init__(self, client: OpenAI) -> None:
        super().__init__(client)
        self._router_client = client

    def create(  # type: ignore[override]
        self,
        *,
        completion_window: Any,
        endpoint: Any,
        input_file_id: str,
        metadata: Any = None,
        **kwargs: Any,
    ) -> Batch:
        if not _ours(input_file_id, ROUTER_FILE_PREFIX):
            if metadata is not None:
                kwargs["metadata"] = metadata
            return super().create(
                completion_window=completion_window, endpoint=endpoint, input_file_id=input_file_id, **kwargs
            )
        if endpoint != "/v1/chat/completions":
            _translate_errors(
                lambda: _raise(BatchInputError("router batches serve /v1/chat/completions only"))
            )
        return _create_batch(service_for(self._router_client), input_file_id, completion_window, metadata)

    def retrieve(self, batch_id: str, **kwargs: Any) -> Batch:
        if not _ours(batch_id, ROUTER_BATCH_PREFIX):
            return super().retrieve(batch_id, **kwargs)
        return _retrieve(service_for(self._router_client), batch_id)

    def cancel(self, batch_id: str, **kwargs: Any) -> Batch:
        if not _ours(batch_id, ROUTER_BATCH_PREFIX):
            return super().cancel(batch_id, **kwargs)
        return _cancel(service_for(self._router_client), batch_id)

    def list(self, *, after: Any = None, limit: Any = None, **kwargs: Any) -> SyncCursorPage[Batch]:  # type: ignore[override]
        """The router's batches, newest first (OpenAI's own are listed by an ``openai.OpenAI`` client)."""
        data = _page(service_for(self._router_client), after, limit)
        return SyncCursorPage[Batch](data=data, has_more=False)


def _raise(exc: Exception) -> Any:
    raise exc


# --- async --------------------------------------------------------------------------------------------


class AsyncFiles(_AsyncFiles):
    def __init__(self, client: AsyncOpenAI) -> None:
        super().__init__(client)
        self._router_client = client

    async def create(self, *, file: Any, purpose: Any, **kwargs: Any) -> FileObject:  # type: ignore[override]
        if purpose != "batch":
            return await super().create(file=file, purpose=purpose, **kwargs)
        return await asyncio.to_thread(_create_file, service_for(self._router_client), file)

    async def retrieve(self, file_id: str, **kwargs: Any) -> FileObject:
        if not _ours(file_id, ROUTER_FILE_PREFIX):
            return await super().retrieve(file_id, **kwargs)
        stored = await asyncio.to_thread(service_for(self._router_client).file, file_id)
        if stored is None:
            raise _not_found("file", file_id)
        return _file_object(stored)

    async def content(self, file_id: str, **kwargs: Any) -> HttpxBinaryResponseContent:
        if not _ours(file_id, ROUTER_FILE_PREFIX):
            return await super().content(file_id, **kwargs)
        return await asyncio.to_thread(_content, service_for(self._router_client), file_id)


class AsyncBatches(_AsyncBatches):
    def __init__(self, client: AsyncOpenAI) -> None:
        super().__init__(client)
        self._router_client = client

    async def create(  # type: ignore[override]
        self,
        *,
        completion_window: Any,
        endpoint: Any,
        input_file_id: str,
        metadata: Any = None,
        **kwargs: Any,
    ) -> Batch:
        if not _ours(input_file_id, ROUTER_FILE_PREFIX):
            if metadata is not None:
                kwargs["metadata"] = metadata
            return await super().create(
                completion_window=completion_window, endpoint=endpoint, input_file_id=input_file_id, **kwargs
            )
        if endpoint != "/v1/chat/completions":
            _translate_errors(
                lambda: _raise(BatchInputError("router batches serve /v1/chat/completions only"))
            )
        service = service_for(self._router_client)
        return await asyncio.to_thread(_create_batch, service, input_file_id, completion_window, metadata)

    async def retrieve(self, batch_id: str, **kwargs: Any) -> Batch:
        if not _ours(batch_id, ROUTER_BATCH_PREFIX):
            return await super().retrieve(batch_id, **kwargs)
        return await asyncio.to_thread(_retrieve, service_for(self._router_client), batch_id)

    async def cancel(self, batch_id: str, **kwargs: Any) -> Batch:
        if not _ours(batch_id, ROUTER_BATCH_PREFIX):
            return await super().cancel(batch_id, **kwargs)
        return await asyncio.to_thread(_cancel, service_for(self._router_client), batch_id)

    def list(self, *, after: Any = None, limit: Any = None, **kwargs: Any) -> _AsyncList:  # type: ignore[override]
        """The router's batches, newest first: ``await`` it for the page, or ``async for`` over it."""
        return _AsyncList(service_for(self._router_client), after, limit)


class _AsyncList:
    """What openai's AsyncPaginator offers callers: awaitable (the page) and async-iterable (the items)."""

    def __init__(self, service: BatchService, after: Any, limit: Any) -> None:
        self._args = (service, after, limit)

    async def _get(self) -> AsyncCursorPage[Batch]:
        data = await asyncio.to_thread(_page, *self._args)
        return AsyncCursorPage[Batch](data=data, has_more=False)

    def __await__(self) -> Generator[Any, None, AsyncCursorPage[Batch]]:
        return self._get().__await__()

    async def __aiter__(self) -> AsyncIterator[Batch]:
        for batch in (await self._get()).data:
            yield batch
