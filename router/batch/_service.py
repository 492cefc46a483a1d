"""A routed batch job: plan every line, reserve its worst case, submit per model, poll, settle, retry.

``BatchService`` is the driver; what to do with each line is decided by small pure functions here
(``plan_lines``, ``next_attempt``) and by the real planner over the catalog at batch prices. Every
step is written to the job store before the call it prepares (``_store``), which is what makes
``resume`` safe: a line the store says a provider has is never sent again, a line the store says no
provider has is sent exactly once more.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

import httpx

from policies.filters import PlanContext, worst_case_cost
from policies.plan import DEFAULT_FEATURE, Planner, UnknownModelError, describe_request
from providers.catalog import ModelInfo
from router.batch._protocols import BatchAPIError, Outcome, Poll, protocols
from router.batch._store import GroupRow, JobRow, LineRow, StoredFile, open_store
from router.batch._translate import translatable
from router.ledger._types import Hold, LedgerError, Line, Refusal

ENDPOINT: Final = "/v1/chat/completions"
_WINDOW_S: Final = 24 * 3600.0
# Reservations outlive the completion window: a job polled a little late still settles its holds.
_HOLD_TTL_S: Final = _WINDOW_S + 6 * 3600.0
ROUTER_BATCH_PREFIX: Final = "batch_rtr_"
ROUTER_FILE_PREFIX: Final = "file-rtr-"
_OUTPUT: Final = "file-rtr-out-"
_ERRORS: Final = "file-rtr-err-"
_FINAL: Final = ("succeeded", "failed")


class BatchInputError(ValueError):
    """The input file or the create() arguments cannot be a routed batch; nothing was submitted."""


class BatchBudgetError(Exception):
    """The job's worst case at batch prices does not fit a budget; nothing was submitted."""

    def __init__(self, feature: str, refusal: Refusal) -> None:
        super().__init__(feature)
        self.feature = feature
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class RealtimeAnswer:
    """A line answered through the routed chat path: the completion, or the error that ended it."""

    completion: Mapping[str, Any] | None
    model: str | None
    cost_usd: float | None
    error: Mapping[str, str] | None = None


# Answers one line's body through the client's own chat path (its plan, fallbacks and budgets).
Realtime = Callable[[Mapping[str, Any]], RealtimeAnswer]


def retry_tier(retry: str, now: float, deadline: float, round_s: float) -> str:
    """Where a failed line is tried next: "batch", or "realtime" when the policy says so or, for
    ``auto``, when one more batch round could end after the job's deadline."""
    if retry == "realtime" or (retry == "auto" and now + round_s > deadline):
        return "realtime"
    return "batch"


def job_deadline(created_at: float, metadata: Mapping[str, str] | None, default_s: float | None) -> float:
    """The wall-clock time a job must end by: metadata ``deadline_s``, else the policy's, else 24h."""
    raw = (metadata or {}).get("deadline_s")
    seconds = float(raw) if raw is not None else (default_s or _WINDOW_S)
    return created_at + seconds


def _answered(line: LineRow) -> tuple[str | None, str]:
    """(model, tier) of the attempt that answered a line: its last, which may have been in real time."""
    last = line.history[-1] if line.history else {}
    if line.state == "succeeded" and last.get("tier") == "standard":
        return last.get("model"), "standard"
    return line.model, "batch"


@dataclass(frozen=True, slots=True)
class PlannedLine:
    custom_id: str
    body: Mapping[str, Any]
    feature: str
    candidates: tuple[str, ...]
    worst_usd: tuple[float, ...]  # per candidate, at batch prices
    rejected: Mapping[str, str]


def batch_catalog(catalog: Mapping[str, ModelInfo]) -> tuple[dict[str, ModelInfo], dict[str, str]]:
    """The catalog at batch prices, and the models that have no batch API (with the reason)."""
    priced: dict[str, ModelInfo] = {}
    without: dict[str, str] = {}
    for name, info in catalog.items():
        priced[name] = info.at_tier("batch") if info.supports_batch else info
        if not info.supports_batch:
            without[name] = (
                "no batch API: its provider has none router speaks (set batch_protocol: and batch prices "
                "in the policy if it does)"
                if info.batch_protocol is None
                else "no batch price known: set batch_input_cost_per_mtok/batch_output_cost_per_mtok"
            )
    return priced, without


def parse_input(data: bytes) -> list[tuple[str, Mapping[str, Any]]]:
    """(custom_id, body) of each line of an openai batch input file; BatchInputError says what is wrong."""
    lines: list[tuple[str, Mapping[str, Any]]] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.decode("utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError as exc:
            raise BatchInputError(
                f"line {number} is not JSON ({exc}); each line is one request object"
            ) from exc
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        body = line.get("body") if isinstance(line, dict) else None
        if not isinstance(custom_id, str) or not isinstance(body, dict):
            raise BatchInputError(f'line {number} needs "custom_id" (a string) and "body" (an object)')
        if line.get("url", ENDPOINT) != ENDPOINT or line.get("method", "POST") != "POST":
            raise BatchInputError(f"line {number}: router batches serve POST {ENDPOINT} only")
        if custom_id in seen:
            raise BatchInputError(
                f"line {number}: custom_id {custom_id!r} is used twice; each must be unique"
            )
        if body.get("stream"):
            raise BatchInputError(f"line {number}: a batch line cannot stream")
        seen.add(custom_id)
        lines.append((custom_id, body))
    if not lines:
        raise BatchInputError("the input file has no request lines")
    return lines


def plan_lines(
    planner: Planner,
    catalog: Mapping[str, ModelInfo],
    lines: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    default_feature: str,
    expected_output_tokens: Callable[[str], int],
) -> list[PlannedLine]:
    """Each line's candidates at batch prices, cheapest adequate first, with its worst case on each."""
    planned: list[PlannedLine] = []
    for custom_id, body in lines:
        metadata = body.get("metadata") or {}
        feature = str(metadata.get("feature") or default_feature)
        model = str(body.get("model") or "")
        request = describe_request(model, feature, body, False)
        try:
            plan = planner.plan(request)
        except UnknownModelError as exc:
            planned.append(PlannedLine(custom_id, body, feature, (), (), {model: str(exc)}))
            continue
        context = PlanContext(request=request, expected_output_tokens=expected_output_tokens(model))
        names = tuple(c.model for c in plan.candidates)
        rejected = dict(plan.rejected)
        if not translatable(body):
            # Images, audio or files: only OpenAI's batch API takes the line as it is.
            for name in names:
                if catalog[name].batch_protocol != "openai":
                    rejected[name] = (
                        "the line has non-text content, which router's batch translation does not carry"
                    )
            names = tuple(n for n in names if catalog[n].batch_protocol == "openai")
        worst = tuple(worst_case_cost(catalog[name], context) or 0.0 for name in names)
        planned.append(PlannedLine(custom_id, body, feature, names, worst, rejected))
    return planned


_OWNER: Final = f"{socket.gethostname()}:{os.getpid()}"
# A submission still "submitting" after this long outlived its HTTP timeout: its process is gone.
_STALE_SUBMIT_S: Final = 600.0


def _abandoned(group: GroupRow, now: float) -> bool:
    """Whether the process that was submitting ``group`` is gone (dead on this host, or long silent)."""
    host, _, pid = group.owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # alive, someone else's
        else:
            return now - group.created_at > _STALE_SUBMIT_S
    return now - group.created_at > _STALE_SUBMIT_S


def _hold_json(hold: Hold) -> dict[str, Any]:
    return {
        "id": hold.id,
        "lines": [asdict(line) for line in hold.lines],
        "amount_usd": hold.amount_usd,
        "expires_at": hold.expires_at,
    }


def _hold(data: Mapping[str, Any]) -> Hold:
    return Hold(
        data["id"], tuple(Line(**line) for line in data["lines"]), data["amount_usd"], data["expires_at"]
    )


class BatchService:
    """The batch jobs of one client: files, jobs and their lines in the job store; provider calls by httpx.

    ``on_step`` is called at each step ("planned", "submitting:<model>" just before the provider is
    called, "accepted:<model>" once it has the batch but before the store knows, "submitted:<model>",
    "polling:<model>" with a
    provider's answers read but not yet recorded, "polled:<model>"): a seam for tests that kill the
    process at exactly that point.
    """

    def __init__(
        self,
        *,
        engine: Any,
        ledger_url: str | None,
        ledger: Callable[[], Any],
        budgets: Any,
        wall_clock: Callable[[], float] = time.time,
        http_client: httpx.Client | None = None,
        on_step: Callable[[str], None] | None = None,
        realtime: Realtime | None = None,
    ) -> None:
        self._engine = engine
        self._ledger = ledger
        self._budgets = budgets
        self._clock = wall_clock
        self._on_step = on_step or (lambda step: None)
        self._realtime = realtime
        self._spec = engine.policy.batch
        self.store = open_store(ledger_url)
        self._http = http_client or httpx.Client(timeout=120.0)
        self._owns_http = http_client is None
        self._protocols = protocols(self._http)
        self.catalog, without = batch_catalog(engine.catalog)
        self._planner = Planner(engine.policy, self.catalog, {**without, **engine.unavailable})

    def close(self) -> None:
        if self._owns_http:
            self._http.close()
        self.store.close()

    # --- files ---------------------------------------------------------------------------------------

    def upload(self, filename: str, data: bytes) -> StoredFile:
        parse_input(data)  # refused now, as OpenAI refuses a malformed file at upload
        stored = StoredFile(
            f"{ROUTER_FILE_PREFIX}{uuid.uuid4().hex[:24]}", filename, "batch", self._clock(), data
        )
        self.store.put_file(stored)
        return stored

    def file(self, file_id: str) -> StoredFile | None:
        if file_id.startswith((_OUTPUT, _ERRORS)):
            job_id = file_id.removeprefix(_OUTPUT).removeprefix(_ERRORS)
            job = self.store.job(job_id)
            if job is None:
                return None
            errors = file_id.startswith(_ERRORS)
            return StoredFile(
                file_id,
                f"{job_id}_{'error' if errors else 'output'}.jsonl",
                "batch_output",
                job.ended_at or job.created_at,
                self.output(job_id, errors=errors),
            )
        return self.store.file(file_id)

    # --- jobs ----------------------------------------------------------------------------------------

    def create(
        self, *, input_file_id: str, completion_window: str, metadata: Mapping[str, str] | None
    ) -> JobRow:
        stored = self.store.file(input_file_id)
        if stored is None:
            raise BatchInputError(
                f"no router file {input_file_id!r}: upload it with client.files.create(purpose='batch')"
            )
        if completion_window != "24h":
            raise BatchInputError("completion_window must be '24h', the only window the providers offer")
        raw_deadline = (metadata or {}).get("deadline_s")
        if raw_deadline is not None:
            try:
                valid = float(raw_deadline) > 0
            except ValueError:
                valid = False
            if not valid:
                raise BatchInputError(
                    f"metadata deadline_s must be a number of seconds > 0, got {raw_deadline!r}"
                )
        policy = self._engine.policy
        planned = plan_lines(
            self._planner,
            self.catalog,
            parse_input(stored.data),
            default_feature=str((metadata or {}).get("feature") or DEFAULT_FEATURE),
            expected_output_tokens=lambda model: (
                (policy.routes[model].expected_output_tokens if model in policy.routes else None)
                or policy.expected_output_tokens
            ),
        )
        now = self._clock()
        job = JobRow(
            f"{ROUTER_BATCH_PREFIX}{uuid.uuid4().hex[:24]}",
            now,
            input_file_id,
            ENDPOINT,
            completion_window,
            dict(metadata) if metadata else None,
            "in_progress",
        )
        holds, refused = self._reserve_all(planned, now)
        rows = [
            LineRow(
                job_id=job.id,
                n=n,
                custom_id=p.custom_id,
                body=p.body,
                feature=p.feature,
                candidates=p.candidates,
                attempt=0,
                state="planned" if p.candidates and n not in refused else "failed",
                hold=_hold_json(holds[n]) if n in holds else None,
                error=None
                if p.candidates and n not in refused
                else {"code": "budget_exceeded", "message": refused[n]}
                if n in refused
                else {
                    "code": "no_candidate",
                    "message": "No model of the policy can serve this line in a batch: "
                    + "; ".join(f"{m}: {r}" for m, r in p.rejected.items()),
                },
            )
            for n, p in enumerate(planned)
        ]
        self.store.insert_job(job, rows)
        self._on_step("planned")
        self._submit(job)
        return self._finish_if_done(job.id)

    def _reserve_all(
        self, planned: Sequence[PlannedLine], now: float
    ) -> tuple[dict[int, Hold], dict[int, str]]:
        """Every line's worst case on its first candidate, or nothing: a refusal releases what was held.
        With ``batch: {on_exceed: partial}`` the lines that fit, in file order, are held and the others
        returned with the reason (refused whole only if none fits)."""
        if self._budgets is None:
            return {}, {}
        ledger = self._ledger()
        holds: dict[int, Hold] = {}
        refused: dict[int, str] = {}
        partial = self._spec.on_exceed == "partial"
        first_refusal: tuple[str, Refusal] | None = None
        for n, line in enumerate(planned):
            if not line.candidates:
                continue
            lines = self._budgets.lines_for(line.feature, now)
            if not lines:
                continue
            outcome = ledger.reserve(lines, line.worst_usd[0], ttl_s=_HOLD_TTL_S, now=now)
            if isinstance(outcome, Hold):
                holds[n] = outcome
                continue
            if partial:
                first_refusal = first_refusal or (line.feature, outcome)
                budget = outcome.line
                refused[n] = (
                    f"Not submitted: this line's worst case at batch prices (${line.worst_usd[0]:.6f} on "
                    f"{line.candidates[0]}) did not fit the {budget.window} budget of "
                    f"{'the policy' if budget.scope == '*' else 'feature ' + repr(budget.scope)} "
                    f"(${budget.limit_usd:g}) after the lines before it; send it again in a later job, "
                    "lower its max_tokens, or raise the budget."
                )
                continue
            for hold in holds.values():
                ledger.release(hold)
            refused = outcome.line
            total = sum(
                p.worst_usd[0]
                for p in planned
                if p.candidates and refused in self._budgets.lines_for(p.feature, now)
            )
            raise BatchBudgetError(line.feature, replace(outcome, amount_usd=total))
        if first_refusal is not None and not holds:
            feature, outcome = first_refusal  # nothing fits: refused whole, as without partial
            total = sum(p.worst_usd[0] for n, p in enumerate(planned) if n in refused)
            raise BatchBudgetError(feature, replace(outcome, amount_usd=total))
        return holds, refused

    def job(self, job_id: str) -> JobRow | None:
        return self.store.job(job_id)

    def jobs(self, limit: int = 20, after: str | None = None) -> list[JobRow]:
        return self.store.jobs(limit, after)

    def counts(self, job_id: str) -> dict[str, int]:
        return self.store.counts(job_id)

    def breakdown(self, job_id: str) -> dict[str, dict[str, float]]:
        """Per model now serving (or having served) each line: lines, succeeded, failed, cost so far,
        and what the succeeded lines would have cost at standard prices (the saving)."""
        table: dict[str, dict[str, float]] = {}
        for line in self.store.lines(job_id):
            model = (
                _answered(line)[0]
                or line.model
                or (line.history[-1].get("model") if line.history else None)
                or "(none)"
            )
            row = table.setdefault(
                str(model), {"lines": 0, "succeeded": 0, "failed": 0, "cost_usd": 0.0, "standard_usd": 0.0}
            )
            row["lines"] += 1
            if line.state in _FINAL:
                row[line.state] += 1
            if line.state == "succeeded" and line.result is not None:
                usage = line.result.get("usage") or {}
                row["cost_usd"] += line.cost_usd or 0.0
                standard = self._engine.catalog[str(model)].cost_usd(
                    int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
                )
                row["standard_usd"] += standard or 0.0
        return table

    def resume_all(self) -> list[JobRow]:
        """Move on every job that has not ended (``router batch resume``)."""
        moved: list[JobRow] = []
        after: str | None = None
        while True:
            page = self.store.jobs(100, after)
            for job in page:
                if job.status in ("in_progress", "cancelling"):
                    advanced = self.advance(job.id)
                    if advanced is not None:
                        moved.append(advanced)
            if len(page) < 100:
                return moved
            after = page[-1].id

    def advance(self, job_id: str) -> JobRow | None:
        """Resume and move a job on: what a crash left half-done, then poll, settle, retry, submit."""
        job = self.store.job(job_id)
        if job is None or job.status in ("completed", "cancelled"):
            return job
        self._recover(job)
        for group in self.store.groups(job.id, "submitted"):
            self._poll(job, group)
        if job.status == "in_progress":
            self._answer_realtime(job)
            self._submit(job)
        return self._finish_if_done(job.id)

    def cancel(self, job_id: str) -> JobRow | None:
        job = self.store.job(job_id)
        if job is None or job.status in ("completed", "cancelled"):
            return job
        now = self._clock()
        self.store.set_job(job.id, status="cancelling", cancelled_at=now)
        job = replace(job, status="cancelling", cancelled_at=now)
        self._recover(job)
        planned = self.store.lines(job.id, "planned", "realtime")
        message = "The batch was cancelled before this line was submitted."
        self._claim(
            [(ln, self._failed(ln, "batch_cancelled", message, retry=False, job=job)) for ln in planned]
        )
        for group in self.store.groups(job.id, "submitted"):
            # Polled below and on the next retrieve: what the provider answered before it stopped counts.
            with contextlib.suppress(BatchAPIError, httpx.HTTPError):
                self._protocols[group.protocol].cancel(
                    self._engine.deployments[group.model], str(group.provider_id)
                )
            self._poll(job, group)
        return self._finish_if_done(job.id)

    # --- the steps -----------------------------------------------------------------------------------

    def _recover(self, job: JobRow) -> None:
        """Groups caught mid-submission by a crash, between writing "submitting" and recording the
        provider's answer. OpenAI and Gemini are asked for the batch by our group id (batch metadata,
        display name): found, it is polled, never sent again. Not found, or Anthropic (whose batches
        carry nothing of ours), the lines go back to planned and are sent again (docs/batch.md, "Known
        limit"). A group whose submitting process is alive is left alone until it is long overdue."""
        for group in self.store.groups(job.id, "submitting"):
            if not _abandoned(group, self._clock()):
                continue  # another live process is submitting it right now
            lines = [ln for ln in self.store.lines(job.id, "submitting") if ln.group_id == group.id]
            try:
                found = self._protocols[group.protocol].find(self._engine.deployments[group.model], group.id)
            except (BatchAPIError, httpx.HTTPError):
                continue  # the provider cannot be asked now: the group waits for the next resume
            if found is not None:  # the provider has it: poll it, never send it again
                self.store.claim(
                    [(ln, replace(ln, state="submitted")) for ln in lines],
                    [replace(group, provider_id=found, state="submitted")],
                )
                continue
            self.store.claim(
                [(ln, replace(ln, state="planned", group_id=None)) for ln in lines],
                [replace(group, state="abandoned")],
            )

    def _submit(self, job: JobRow) -> None:
        by_model: dict[str, list[LineRow]] = {}
        for line in self.store.lines(job.id, "planned"):
            if line.model is not None:
                by_model.setdefault(line.model, []).append(line)
        for model, lines in by_model.items():
            info = self.catalog[model]
            protocol = str(info.batch_protocol)
            group = GroupRow(
                f"grp_rtr_{uuid.uuid4().hex[:20]}",
                job.id,
                model,
                protocol,
                None,
                "submitting",
                self._clock(),
                _OWNER,
            )
            lines = self.store.claim(
                [(ln, replace(ln, state="submitting", group_id=group.id)) for ln in lines], [group]
            )
            if not lines:
                continue  # another process took them first
            self._on_step(f"submitting:{model}")
            try:
                provider_id = self._protocols[protocol].submit(
                    self._engine.deployments[model],
                    group.id,
                    [(f"l{ln.n}", ln.body) for ln in lines],
                    info.max_output_tokens,
                )
            except (BatchAPIError, httpx.HTTPError) as exc:
                failed = [
                    (ln, self._failed(ln, "batch_submit_failed", f"{model}: {exc}", retry=True, job=job))
                    for ln in lines
                ]
                self._claim(failed, [replace(group, state="abandoned")], job)
                continue
            self._on_step(f"accepted:{model}")  # the provider has it; the store does not know yet
            self.store.claim(
                [(ln, replace(ln, state="submitted")) for ln in lines],
                [replace(group, provider_id=provider_id, state="submitted")],
            )
            self._on_step(f"submitted:{model}")

    def _poll(self, job: JobRow, group: GroupRow) -> None:
        try:
            poll: Poll = self._protocols[group.protocol].poll(
                self._engine.deployments[group.model], str(group.provider_id), group.model
            )
        except (BatchAPIError, httpx.HTTPError):
            return  # asked again on the next retrieve
        if not poll.ended:
            return
        self._on_step(f"polling:{group.model}")  # answers read, nothing recorded yet
        outcomes: dict[str, Outcome] = {o.key: o for o in poll.outcomes}
        lines = [ln for ln in self.store.lines(job.id, "submitted") if ln.group_id == group.id]
        retry = job.status == "in_progress"
        changes: list[tuple[LineRow, LineRow]] = []
        for line in lines:
            outcome = outcomes.get(f"l{line.n}")
            if outcome is not None and outcome.completion is not None:
                changes.append((line, self._succeed(line, outcome.completion)))
            else:
                error = (outcome.error if outcome is not None else None) or {
                    "code": "batch_expired",
                    "message": "The provider ended the batch without answering this line.",
                }
                changes.append(
                    (
                        line,
                        self._failed(
                            line, str(error.get("code")), str(error.get("message")), retry=retry, job=job
                        ),
                    )
                )
        # Answers, failures, retries and the group's end: one transaction, so a crash leaves all or none.
        self._claim(changes, [replace(group, state="done")], job)
        self._on_step(f"polled:{group.model}")

    def _succeed(self, line: LineRow, completion: Mapping[str, Any]) -> LineRow:
        usage = completion.get("usage") or {}
        model = str(line.model)
        cost = self.catalog[model].cost_usd(
            int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        )
        if line.hold is not None:
            self._ledger().settle(_hold(line.hold), cost or 0.0, now=self._clock())
        history = (*line.history, {"model": model, "outcome": "succeeded", "cost_usd": cost})
        return replace(line, state="succeeded", result=completion, cost_usd=cost, history=history)

    def _failed(self, line: LineRow, code: str, message: str, *, retry: bool, job: JobRow) -> LineRow:
        """The line after a failure: its hold released, then real time when the policy (or the job's
        deadline, ``batch: {retry: auto}``) says so, else its next candidate (with a new hold) or, none
        left (or ``retry`` false), failed. Not yet written: see ``_claim``."""
        if line.hold is not None:
            with contextlib.suppress(LedgerError):  # else the hold expires on its own
                self._ledger().release(_hold(line.hold))
        history = (
            *line.history,
            {"model": line.model, "outcome": "failed", "code": code, "message": message},
        )
        error = {"code": code, "message": message}
        attempt = line.attempt + 1
        now = self._clock()
        deadline = job_deadline(job.created_at, job.metadata, self._spec.deadline_s)
        if (
            retry
            and self._realtime is not None
            and retry_tier(self._spec.retry, now, deadline, self._spec.round_s) == "realtime"
        ):
            # Its batch hold is released above; the chat path reserves and settles at real-time prices.
            return replace(line, state="realtime", group_id=None, hold=None, history=history, error=error)
        if retry and attempt < len(line.candidates):
            hold, refusal = self._reserve_next(line, attempt, self._clock())
            if refusal is None:
                return replace(
                    line,
                    attempt=attempt,
                    state="planned",
                    group_id=None,
                    hold=hold,
                    history=history,
                    error=error,
                )
            error = {"code": "budget_exceeded", "message": refusal}
        return replace(line, state="failed", hold=None, history=history, error=error)

    def _claim(
        self,
        changes: Sequence[tuple[LineRow, LineRow]],
        groups: Sequence[GroupRow] = (),
        job: JobRow | None = None,
    ) -> None:
        """Write the changes still current; a retry's new hold on a line another process moved is released.
        Lines now due in real time are answered at once when the job is given."""
        claimed = {row.n for row in self.store.claim(changes, groups)}
        for old, new in changes:
            if new.n not in claimed and new.hold is not None and new.hold != old.hold:
                with contextlib.suppress(LedgerError):
                    self._ledger().release(_hold(new.hold))
        if job is not None and any(new.state == "realtime" for _, new in changes):
            self._answer_realtime(job)

    def _answer_realtime(self, job: JobRow) -> None:
        """Lines due in real time, each claimed ("answering", with this process as owner) before its
        call, then answered through the client's routed chat path at real-time prices. A process killed
        during the call leaves the line "answering"; once that process is gone it is asked again (the
        provider may then answer it twice: docs/batch.md)."""
        if self._realtime is None:
            return
        now = self._clock()
        waiting = self.store.lines(job.id, "realtime")
        for line in self.store.lines(job.id, "answering"):
            owner = str(line.group_id or "").removeprefix("rt:")
            since = float((line.error or {}).get("since", now))
            if _abandoned(GroupRow("", job.id, "", "", None, "answering", since, owner), now):
                waiting.append(line)
        for line in waiting:
            taken = self.store.claim(
                [
                    (
                        line,
                        replace(
                            line,
                            state="answering",
                            group_id=f"rt:{_OWNER}",
                            error={**(line.error or {}), "since": self._clock()},
                        ),
                    )
                ]
            )
            if not taken:
                continue  # another process answers it
            self._on_step("answering:realtime")
            answer = self._realtime(line.body)
            attempt = {
                "model": answer.model,
                "tier": "standard",
                "outcome": "succeeded" if answer.completion is not None else "failed",
                "cost_usd": answer.cost_usd,
            }
            if answer.completion is not None:
                done = replace(
                    taken[0],
                    state="succeeded",
                    group_id=None,
                    result=answer.completion,
                    cost_usd=answer.cost_usd,
                    error=None,
                    history=(*line.history, attempt),
                )
            else:
                error = dict(answer.error or {"code": "realtime_failed", "message": ""})
                done = replace(
                    taken[0],
                    state="failed",
                    group_id=None,
                    error=error,
                    history=(*line.history, {**attempt, **error}),
                )
            self.store.claim([(taken[0], done)])

    def _reserve_next(
        self, line: LineRow, attempt: int, now: float
    ) -> tuple[dict[str, Any] | None, str | None]:
        if self._budgets is None:
            return None, None
        lines = self._budgets.lines_for(line.feature, now)
        if not lines:
            return None, None
        model = line.candidates[attempt]
        request = describe_request(model, line.feature, line.body, False)
        worst = (
            worst_case_cost(
                self.catalog[model],
                PlanContext(
                    request=request, expected_output_tokens=self._engine.policy.expected_output_tokens
                ),
            )
            or 0.0
        )
        outcome = self._ledger().reserve(lines, worst, ttl_s=_HOLD_TTL_S, now=now)
        if isinstance(outcome, Hold):
            return _hold_json(outcome), None
        return (
            None,
            f"the retry on {model} (worst case ${worst:.6f}) does not fit the {outcome.line.window} budget",
        )

    def _finish_if_done(self, job_id: str) -> JobRow:
        job = self.store.job(job_id)
        assert job is not None
        counts = self.store.counts(job_id)
        open_lines = sum(count for state, count in counts.items() if state not in _FINAL)
        if open_lines == 0 and job.status in ("in_progress", "cancelling"):
            status = "completed" if job.status == "in_progress" else "cancelled"
            now = self._clock()
            self.store.set_job(job_id, status=status, ended_at=now)
            job = replace(job, status=status, ended_at=now)
        return job

    # --- output ----------------------------------------------------------------------------------------

    def output(self, job_id: str, *, errors: bool = False) -> bytes:
        """openai's batch output (or error) file: one line per custom_id, in input order."""
        rows: list[str] = []
        for line in self.store.lines(job_id, "failed" if errors else "succeeded"):
            request_id = f"batch_req_{job_id}_{line.n}"
            model, tier = _answered(line)
            routing = {
                "model": model,
                "tier": tier,
                "cost_usd": line.cost_usd,
                "attempts": list(line.history),
            }
            if errors:
                error = line.error or {"code": "failed", "message": ""}
                entry = {
                    "id": request_id,
                    "custom_id": line.custom_id,
                    "response": None,
                    "error": error,
                    "routing": routing,
                }
            else:
                response = {"status_code": 200, "request_id": request_id, "body": line.result}
                entry = {
                    "id": request_id,
                    "custom_id": line.custom_id,
                    "response": response,
                    "error": None,
                    "routing": routing,
                }
            rows.append(json.dumps(entry, separators=(",", ":")))
        return "".join(row + "\n" for row in rows).encode()

    def output_ids(self, job: JobRow) -> tuple[str | None, str | None]:
        if job.status not in ("completed", "cancelled"):
            return None, None
        counts = self.store.counts(job.id)
        return (
            f"{_OUTPUT}{job.id}" if counts.get("succeeded") else None,
            f"{_ERRORS}{job.id}" if counts.get("failed") else None,
        )
