"""HTTP routes of the batch protocols (see ``_batch``), registered by ``server.build_app``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ._batch import (
    BatchControl,
    anthropic_batch,
    anthropic_results,
    gemini_operation,
    openai_batch,
    openai_output_files,
)

__all__ = ["add_batch_routes"]


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(payload), status=status, content_type="application/json")


def _openai_error(status: int, message: str, param: str | None = None) -> web.Response:
    kind = "invalid_request_error"
    return _json({"error": {"message": message, "type": kind, "param": param, "code": None}}, status)


def _anthropic_error(status: int, message: str) -> web.Response:
    kind = "not_found_error" if status == 404 else "invalid_request_error"
    return _json({"type": "error", "error": {"type": kind, "message": message}}, status)


def _gemini_error(status: int, message: str) -> web.Response:
    name = "NOT_FOUND" if status == 404 else "INVALID_ARGUMENT"
    return _json({"error": {"code": status, "message": message, "status": name}}, status)


class BatchRoutes:
    def __init__(self, control: BatchControl, api_keys: Mapping[str, str]) -> None:
        self.control = control
        self.api_keys = api_keys
        self._openai_finish = openai_output_files(control)

    def _authorized(self, request: web.Request, protocol: str) -> bool:
        expected = self.api_keys.get(protocol)
        if expected is None:
            return True
        if protocol == "openai":
            key = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        elif protocol == "anthropic":
            key = request.headers.get("x-api-key", "")
        else:
            key = request.headers.get("x-goog-api-key") or request.query.get("key", "")
        return key == expected

    # --- OpenAI --------------------------------------------------------------------------------------

    async def openai_upload(self, request: web.Request) -> web.Response:
        if not self._authorized(request, "openai"):
            return _openai_error(401, "Incorrect API key provided.")
        form = await request.post()
        upload = form.get("file")
        purpose = str(form.get("purpose", ""))
        if not isinstance(upload, web.FileField):
            return _openai_error(400, "'file' is a required property", "file")
        data = upload.file.read()
        stored = self.control.add_file(upload.filename or "upload.jsonl", purpose, data)
        return _json(self._file_object(stored.id))

    def _file_object(self, file_id: str) -> dict[str, Any]:
        stored = self.control.files[file_id]
        return {
            "id": stored.id,
            "object": "file",
            "bytes": len(stored.data),
            "created_at": stored.created_at,
            "filename": stored.filename,
            "purpose": stored.purpose,
            "status": "processed",
        }

    async def openai_file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.control.files:
            return _openai_error(404, f"No such File object: {file_id}", "id")
        return _json(self._file_object(file_id))

    async def openai_file_content(self, request: web.Request) -> web.Response:
        stored = self.control.files.get(request.match_info["file_id"])
        if stored is None:
            return _openai_error(404, "No such File object", "id")
        return web.Response(body=stored.data, content_type="application/octet-stream")

    async def openai_create(self, request: web.Request) -> web.Response:
        if not self._authorized(request, "openai"):
            return _openai_error(401, "Incorrect API key provided.")
        body = await request.json()
        stored = self.control.files.get(str(body.get("input_file_id")))
        if stored is None:
            return _openai_error(400, "Input file not found", "input_file_id")
        lines: list[tuple[str, str, Mapping[str, Any]]] = []
        for raw in stored.data.decode().splitlines():
            if not raw.strip():
                continue
            line = json.loads(raw)
            lines.append((str(line["custom_id"]), str(line["body"].get("model", "")), line["body"]))
        extra = {k: body.get(k) for k in ("endpoint", "completion_window", "metadata")}
        job = self.control.create("openai", "batch_fake", lines, {**extra, "input_file_id": stored.id})
        return _json(openai_batch(job))

    async def openai_retrieve(self, request: web.Request) -> web.Response:
        job = self.control.get(request.match_info["batch_id"], self._openai_finish)
        if job is None or job.protocol != "openai":
            return _openai_error(404, "No batch found", "batch_id")
        return _json(openai_batch(job))

    async def openai_cancel(self, request: web.Request) -> web.Response:
        job = self.control.cancel(request.match_info["batch_id"], self._openai_finish)
        if job is None or job.protocol != "openai":
            return _openai_error(404, "No batch found", "batch_id")
        return _json(openai_batch(job))

    async def openai_list(self, request: web.Request) -> web.Response:
        data = [openai_batch(job) for job in self.control.listed("openai")]
        data.reverse()  # newest first, as OpenAI lists
        return _json(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": False,
            }
        )

    # --- Anthropic -----------------------------------------------------------------------------------

    def _anthropic_base(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}/anthropic"

    async def anthropic_create(self, request: web.Request) -> web.Response:
        if not self._authorized(request, "anthropic"):
            return _anthropic_error(401, "invalid x-api-key")
        body = await request.json()
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return _anthropic_error(400, "requests: List should have at least 1 item")
        lines = [(str(r["custom_id"]), str(r["params"].get("model", "")), r["params"]) for r in requests]
        job = self.control.create("anthropic", "msgbatch_fake", lines)
        return _json(anthropic_batch(job, self._anthropic_base(request)))

    async def anthropic_retrieve(self, request: web.Request) -> web.Response:
        job = self.control.get(request.match_info["batch_id"])
        if job is None or job.protocol != "anthropic":
            return _anthropic_error(404, "batch not found")
        return _json(anthropic_batch(job, self._anthropic_base(request)))

    async def anthropic_cancel(self, request: web.Request) -> web.Response:
        job = self.control.cancel(request.match_info["batch_id"])
        if job is None or job.protocol != "anthropic":
            return _anthropic_error(404, "batch not found")
        return _json(anthropic_batch(job, self._anthropic_base(request)))

    async def anthropic_results(self, request: web.Request) -> web.Response:
        job = self.control.get(request.match_info["batch_id"])
        if job is None or job.protocol != "anthropic":
            return _anthropic_error(404, "batch not found")
        if job.status == "in_progress":
            return _anthropic_error(
                400, "Batch is still processing; results are available once it has ended."
            )
        return web.Response(body=anthropic_results(job), content_type="application/binary")

    # --- Gemini --------------------------------------------------------------------------------------

    async def gemini_create(self, request: web.Request, model: str) -> web.Response:
        if not self._authorized(request, "gemini"):
            return _gemini_error(400, "API key not valid. Please pass a valid API key.")
        body = await request.json()
        batch = body.get("batch") or {}
        config = batch.get("input_config") or batch.get("inputConfig") or {}
        inline = (config.get("requests") or {}).get("requests")
        if not isinstance(inline, list) or not inline:
            return _gemini_error(400, "batch.input_config.requests.requests must not be empty")
        lines = [
            (str((r.get("metadata") or {}).get("key", n)), model, r["request"]) for n, r in enumerate(inline)
        ]
        display = batch.get("display_name") or batch.get("displayName") or ""
        job = self.control.create("gemini", "batches/fake", lines, {"model": model, "display_name": display})
        return _json(gemini_operation(job))

    async def gemini_list(self, request: web.Request) -> web.Response:
        operations = [gemini_operation(job) for job in self.control.listed("gemini")]
        operations.reverse()
        return _json({"operations": operations})

    async def gemini_batch(self, request: web.Request) -> web.Response:
        target = request.match_info["target"]
        name, _, method = target.partition(":")
        job_id = f"batches/{name}"
        if request.method == "POST" and method == "cancel":
            job = self.control.cancel(job_id)
        elif request.method == "GET" and not method:
            job = self.control.get(job_id)
        else:
            return _gemini_error(404, f"Method not found: {target}")
        if job is None or job.protocol != "gemini":
            return _gemini_error(404, f"Requested entity was not found: {job_id}")
        return _json({} if method == "cancel" else gemini_operation(job))

    # --- control -------------------------------------------------------------------------------------

    async def advance(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.control.advance(float(body["seconds"]))
        return _json({"now": self.control.now()})


def add_batch_routes(app: web.Application, routes: BatchRoutes) -> None:
    add = app.router
    add.add_post("/openai/v1/files", routes.openai_upload)
    add.add_get("/openai/v1/files/{file_id}", routes.openai_file)
    add.add_get("/openai/v1/files/{file_id}/content", routes.openai_file_content)
    add.add_post("/openai/v1/batches", routes.openai_create)
    add.add_get("/openai/v1/batches", routes.openai_list)
    add.add_get("/openai/v1/batches/{batch_id}", routes.openai_retrieve)
    add.add_post("/openai/v1/batches/{batch_id}/cancel", routes.openai_cancel)
    add.add_post("/anthropic/v1/messages/batches", routes.anthropic_create)
    add.add_get("/anthropic/v1/messages/batches/{batch_id}", routes.anthropic_retrieve)
    add.add_post("/anthropic/v1/messages/batches/{batch_id}/cancel", routes.anthropic_cancel)
    add.add_get("/anthropic/v1/messages/batches/{batch_id}/results", routes.anthropic_results)
    add.add_get("/gemini/{version}/batches", routes.gemini_list)
    add.add_get("/gemini/{version}/batches/{target}", routes.gemini_batch)
    add.add_post("/gemini/{version}/batches/{target}", routes.gemini_batch)
    add.add_post("/_fake/batches/advance", routes.advance)
