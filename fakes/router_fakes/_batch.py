"""The three batch protocols: OpenAI Files + Batches, Anthropic Message Batches, Gemini batch mode.

Time is the fake's own: a batch ends ``latency_s`` after it was created on ``BatchControl``'s clock,
which only moves when a test calls ``advance`` (in this process, or ``POST /_fake/batches/advance``).
Each line is answered at that moment through the same pipeline as a real-time request (the model's
script, its faults, its usage), so a scripted ``status(500)`` fault fails one line and the rest
succeed. ``fail_ids`` fails chosen lines; ``expire`` makes a protocol's batches expire unanswered.
``submitted`` counts every line a provider was handed, by custom id: the proof of "nothing twice".
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._answer import decide
from ._state import State
from ._wire import BadRequest, ErrorReply, Ids, ProtocolName, Wire
from .script import RecordedRequest

__all__ = ["BatchControl", "BatchJob", "LineResult"]

_DAY_S = 24 * 3600


@dataclass(slots=True)
class LineResult:
    """One answered line: the provider's response body, or its error reply."""

    key: str
    body: Mapping[str, Any] | None = None
    error: ErrorReply | None = None


@dataclass(slots=True)
class BatchJob:
    id: str
    protocol: ProtocolName
    created_at: float
    ends_at: float
    # (key, model, request body) in submission order
    lines: list[tuple[str, str, Mapping[str, Any]]]
    extra: dict[str, Any] = field(default_factory=dict)
    status: str = "in_progress"  # in_progress | ended | cancelled | expired
    ended_at: float | None = None
    results: list[LineResult] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None


@dataclass(slots=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int


class BatchControl:
    """The batch jobs and files of one fake server, their clock, and the knobs tests turn."""

    def __init__(self, state: State, wires: Mapping[str, Wire], *, latency_s: float = 60.0) -> None:
        self._state = state
        self._wires = wires
        self._lock = threading.RLock()
        self._epoch = float(int(time.time()))
        self._offset = 0.0
        self._ids = itertools.count(1)
        self.latency_s = latency_s
        self.fail_ids: set[str] = set()
        self.expire: set[str] = set()
        self.submitted: Counter[str] = Counter()
        self.jobs: dict[str, BatchJob] = {}
        self.files: dict[str, StoredFile] = {}

    # --- time and knobs ----------------------------------------------------------------------------

    def now(self) -> float:
        return self._epoch + self._offset

    def advance(self, seconds: float) -> None:
        """Move the batch clock forward: batches whose time has come end at their next look-up."""
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        with self._lock:
            self.latency_s = 60.0
            self.fail_ids.clear()
            self.expire.clear()
            self.submitted.clear()
            self.jobs.clear()
            self.files.clear()

    def lines_submitted(self, protocol: str | None = None) -> int:
        """How many lines were handed to ``protocol``'s batch API (all protocols: None)."""
        with self._lock:
            return sum(len(j.lines) for j in self.jobs.values() if protocol is None or j.protocol == protocol)

    # --- files (OpenAI) ----------------------------------------------------------------------------

    def add_file(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        with self._lock:
            stored = StoredFile(f"file-fake{next(self._ids)}", filename, purpose, data, int(self.now()))
            self.files[stored.id] = stored
            return stored

    # --- jobs --------------------------------------------------------------------------------------

    def create(
        self,
        protocol: ProtocolName,
        prefix: str,
        lines: list[tuple[str, str, Mapping[str, Any]]],
        extra: Mapping[str, Any] | None = None,
    ) -> BatchJob:
        with self._lock:
            now = self.now()
            job = BatchJob(
                id=f"{prefix}{next(self._ids)}",
                protocol=protocol,
                created_at=now,
                ends_at=now + self.latency_s,
                lines=lines,
                extra=dict(extra or {}),
            )
            self.jobs[job.id] = job
            self.submitted.update(key for key, _, _ in lines)
            return job

    def get(self, job_id: str, finish: Callable[[BatchJob], None] | None = None) -> BatchJob | None:
        """The job, ended first if its time has come (``finish`` then writes protocol-specific files)."""
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.status != "in_progress" or self.now() < job.ends_at:
                return job
            job.ended_at = job.ends_at
            if job.protocol in self.expire:
                job.status = "expired"
            else:
                job.status = "ended"
                job.results = [self._answer(job, key, model, body) for key, model, body in job.lines]
            if finish is not None:
                finish(job)
            return job

    def cancel(self, job_id: str, finish: Callable[[BatchJob], None] | None = None) -> BatchJob | None:
        with self._lock:
            job = self.get(job_id, finish)
            if job is not None and job.status == "in_progress":
                job.status = "cancelled"
                job.ended_at = self.now()
                if finish is not None:
                    finish(job)
            return job

    def listed(self, protocol: str) -> Iterable[BatchJob]:
        with self._lock:
            return [j for j in self.jobs.values() if j.protocol == protocol]

    def _answer(self, job: BatchJob, key: str, model: str, body: Mapping[str, Any]) -> LineResult:
        """One line through the real-time pipeline: script, faults, usage; any fault fails the line."""
        wire = self._wires[job.protocol]
        self._state.record(RecordedRequest(wire.name, model, f"batch:{job.id}", False, dict(body), {}))
        if key in self.fail_ids:
            return LineResult(key, error=wire.error(500))
        try:
            conv = wire.parse(body, model, False)
        except BadRequest as exc:
            return LineResult(key, error=wire.bad_request(exc.message, exc.param))
        turn = self._state.take(model)
        if turn.script.unknown:
            return LineResult(key, error=wire.not_found(model))
        fault = turn.fault
        if fault is not None and fault.kind != "content_filter":
            return LineResult(key, error=wire.error(fault.status or 500, fault.message))
        limit = turn.script.context_limit
        if limit is not None and conv.prompt_tokens > limit:
            return LineResult(key, error=wire.context_error(limit, conv.prompt_tokens))
        answer = decide(conv, turn.script, content_filtered=fault is not None, scripted_reply=turn.reply)
        return LineResult(key, body=wire.render(answer, conv, Ids(turn.number, int(self.now()))))


# --- OpenAI: Files + Batches ------------------------------------------------------------------------

_OPENAI_STATUS = {
    "in_progress": "in_progress",
    "ended": "completed",
    "cancelled": "cancelled",
    "expired": "expired",
}


def openai_batch(job: BatchJob) -> dict[str, Any]:
    """An OpenAI ``Batch`` object."""
    done = [r for r in job.results]
    failed = sum(1 for r in done if r.error is not None)
    ended = int(job.ended_at) if job.ended_at is not None else None
    status = _OPENAI_STATUS[job.status]
    return {
        "id": job.id,
        "object": "batch",
        "endpoint": job.extra.get("endpoint", "/v1/chat/completions"),
        "errors": None,
        "input_file_id": job.extra["input_file_id"],
        "completion_window": job.extra.get("completion_window", "24h"),
        "status": status,
        "output_file_id": job.output_file_id,
        "error_file_id": job.error_file_id,
        "created_at": int(job.created_at),
        "in_progress_at": int(job.created_at),
        "expires_at": int(job.created_at) + _DAY_S,
        "finalizing_at": ended if status == "completed" else None,
        "completed_at": ended if status == "completed" else None,
        "failed_at": None,
        "expired_at": ended if status == "expired" else None,
        "cancelling_at": ended if status == "cancelled" else None,
        "cancelled_at": ended if status == "cancelled" else None,
        "request_counts": {"total": len(job.lines), "completed": len(done) - failed, "failed": failed},
        "metadata": job.extra.get("metadata"),
    }


def openai_output_files(control: BatchControl) -> Callable[[BatchJob], None]:
    """Writes an ended OpenAI batch's output and error files (expired lines go to the error file)."""

    def finish(job: BatchJob) -> None:
        out: list[str] = []
        errors: list[str] = []
        for n, (key, _, _) in enumerate(job.lines):
            line_id = f"batch_req_fake{job.id}_{n}"
            if job.status == "expired":
                error = {
                    "code": "batch_expired",
                    "message": "This request could not be executed before the completion window expired.",
                }
                errors.append(json.dumps({"id": line_id, "custom_id": key, "response": None, "error": error}))
        for n, result in enumerate(job.results):
            line_id = f"batch_req_fake{job.id}_{n}"
            if result.error is not None:
                response = {
                    "status_code": result.error.status,
                    "request_id": line_id,
                    "body": result.error.body,
                }
                errors.append(
                    json.dumps({"id": line_id, "custom_id": result.key, "response": response, "error": None})
                )
            else:
                response = {"status_code": 200, "request_id": line_id, "body": result.body}
                out.append(
                    json.dumps({"id": line_id, "custom_id": result.key, "response": response, "error": None})
                )
        if out:
            job.output_file_id = control.add_file(
                f"{job.id}_output.jsonl", "batch_output", ("\n".join(out) + "\n").encode()
            ).id
        if errors:
            job.error_file_id = control.add_file(
                f"{job.id}_error.jsonl", "batch_output", ("\n".join(errors) + "\n").encode()
            ).id

    return finish


# --- Anthropic: Message Batches ---------------------------------------------------------------------


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def anthropic_batch(job: BatchJob, base: str) -> dict[str, Any]:
    """An Anthropic ``message_batch`` object."""
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if job.status == "in_progress":
        counts["processing"] = len(job.lines)
    elif job.status == "ended":
        counts["errored"] = sum(1 for r in job.results if r.error is not None)
        counts["succeeded"] = len(job.results) - counts["errored"]
    else:
        counts["canceled" if job.status == "cancelled" else "expired"] = len(job.lines)
    ended = job.status != "in_progress"
    return {
        "id": job.id,
        "type": "message_batch",
        "processing_status": "ended" if ended else "in_progress",
        "request_counts": counts,
        "ended_at": _iso(job.ended_at) if ended else None,
        "created_at": _iso(job.created_at),
        "expires_at": _iso(job.created_at + _DAY_S),
        "archived_at": None,
        "cancel_initiated_at": _iso(job.ended_at) if job.status == "cancelled" else None,
        "results_url": f"{base}/v1/messages/batches/{job.id}/results" if ended else None,
    }


def anthropic_results(job: BatchJob) -> bytes:
    lines: list[dict[str, Any]] = []
    if job.status == "ended":
        for result in job.results:
            if result.error is not None:
                outcome: dict[str, Any] = {"type": "errored", "error": result.error.body}
            else:
                outcome = {"type": "succeeded", "message": result.body}
            lines.append({"custom_id": result.key, "result": outcome})
    else:
        kind = "canceled" if job.status == "cancelled" else "expired"
        lines = [{"custom_id": key, "result": {"type": kind}} for key, _, _ in job.lines]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


# --- Gemini: batch mode (inline requests) -----------------------------------------------------------

_GEMINI_STATE = {
    "in_progress": "BATCH_STATE_RUNNING",
    "ended": "BATCH_STATE_SUCCEEDED",
    "cancelled": "BATCH_STATE_CANCELLED",
    "expired": "BATCH_STATE_EXPIRED",
}


def gemini_operation(job: BatchJob) -> dict[str, Any]:
    """The long-running operation of a Gemini batch, as ``batches.get`` returns it."""
    total = len(job.lines)
    failed = sum(1 for r in job.results if r.error is not None)
    stats = {
        "requestCount": str(total),
        "pendingRequestCount": str(total if job.status == "in_progress" else 0),
    }
    if job.status == "ended":
        stats |= {"successfulRequestCount": str(total - failed), "failedRequestCount": str(failed)}
    metadata = {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        "model": f"models/{job.extra['model']}",
        "displayName": job.extra.get("display_name", ""),
        "createTime": _iso(job.created_at),
        "updateTime": _iso(job.ended_at or job.created_at),
        "batchStats": stats,
        "state": _GEMINI_STATE[job.status],
        "name": job.id,
    }
    operation: dict[str, Any] = {"name": job.id, "metadata": metadata}
    if job.status == "in_progress":
        return operation
    operation["done"] = True
    if job.status == "ended":
        inlined = [
            {
                "metadata": {"key": r.key},
                **({"error": r.error.body["error"]} if r.error else {"response": r.body}),
            }
            for r in job.results
        ]
        operation["response"] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
            "inlinedResponses": {"inlinedResponses": inlined},
        }
    return operation
