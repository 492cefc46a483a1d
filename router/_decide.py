"""The decision core: one request's decisions, as actions for a driver to perform. No I/O.

In the style of tenacity's ``iter()`` → ``DoAttempt``/``DoSleep``: ``Decider.next_action()``
says what to do next (``Call`` a model, ``Sleep``, ``Reserve`` budget, ``Settle`` it, ...), the
driver does it and hands back what happened with ``report(outcome)``. The sync and async
clients (``router._client``) are two thin loops over this one object, so every decision (retry
the same model or fail over, how long to wait, when a stream's first content is late, what a
budget refusal means, when to give up and with which error) is made here, once, for both.

An outcome is the action's result (an answer, a ``Hold`` or ``Refusal``, the ledger's totals,
a stream's chunks as ``Opened``), or ``Failed(error)`` for an error the driver caught (a provider
or ledger error, the async driver's hard timeout), or ``Cancelled(error)`` for anything else
(KeyboardInterrupt, task cancellation): settled as the provider may bill it, then raised.

The decider is written as a generator (``_decide``): its code reads in the order things happen,
and each ``yield`` hands an action out and receives that action's outcome. A stream's later work
runs through the same loop: its settle (``settling``) and, with ``stream_recovery: continue``, the
continuation of a stream cut after content (``continuing``: one more attempt, opened like any).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, Final, Literal, NamedTuple

import httpx
import openai

from providers.base import JSON, RATE_LIMITS, CallOptions, Deployment
from providers.catalog import ModelInfo
from providers.errors import timeout_error
from router._budgets import BudgetBook
from router._continuation import (
    Prefix,
    Resumed,
    can_prefill,
    continuation_body,
    continuation_step,
    enabled,
)
from router._deployments import Bookkeep, ClaimRate, ReadUsage
from router._exceptions import BudgetExceededError
from router._health import BreakerWrite, SharedBreakers
from router._request import Request, usage_of
from router._response import completion
from router._session import Choice, Session, Step
from router._stream_state import StreamTracker, content_filtered
from router.ledger._types import Hold, LedgerError, Line, Refusal, Totals, new_hold_id

# --------------------------------------------------------------------------- actions
# Named tuples: immutable, typed, and about ten times cheaper to make than frozen dataclasses (one
# or two per request on the hot path). Drivers dispatch on ``type(action)``, never on equality.


class ReadTotals(NamedTuple):
    """Read the budget lines' figures (``ledger.totals``), to plan under a downgrade budget."""

    lines: tuple[Line, ...]
    now: float


class Sleep(NamedTuple):
    """Wait (the injected ``sleep``): a retry's backoff or Retry-After, or a reservation poll."""

    seconds: float


class Reserve(NamedTuple):
    """Reserve ``amount_usd`` on every line (``ledger.reserve``); reports a Hold or a Refusal.

    ``hold_id`` is chosen here, before asking: an interrupt that lands after the ledger answered
    and before the answer was reported still knows which hold to give back (``Decider.abandoned``).
    """

    lines: tuple[Line, ...]
    amount_usd: float
    ttl_s: float
    now: float
    hold_id: str

    def hold(self) -> Hold:
        """The hold this reservation makes if it is granted."""
        return Hold(self.hold_id, self.lines, self.amount_usd, self.now + self.ttl_s)


class Unchecked(NamedTuple):
    """The ledger failed on ``ask`` and the budget fails open: a hold that journals its charge
    (``ledger.unchecked``)."""

    ask: Reserve


class Call(NamedTuple):
    """Call ``deployment`` (``adapter.complete``); reports the answer's JSON.

    ``limit_s``: the time left before the deadline, for a driver that can put a hard stop on the
    call (async); every read is bounded by ``options.timeout`` in both drivers.
    """

    deployment: Deployment
    body: JSON
    options: CallOptions
    limit_s: float


class OpenStream(NamedTuple):
    """Open a stream on ``deployment`` (``adapter.stream``) and feed its chunks to ``Decider.take``
    until it says stop; report ``Opened(chunks)``. ``limit_s``: the time the first content may take
    (a hard stop for the async driver; the sync one relies on ``take`` and its read timeouts)."""

    deployment: Deployment
    body: JSON
    options: CallOptions
    limit_s: float


class Close(NamedTuple):
    """Close a stream abandoned before it committed (its first content was late), quietly."""

    chunks: Any


class Wrap(NamedTuple):
    """Make the caller's stream (``RoutedStream``/``AsyncRoutedStream``) of what a stream delivered
    so far and the rest of ``chunks``; it settles ``hold`` when it ends (none to settle: None).
    ``resumable``: a cut after content asks for a continuation (``Decider.continuing``).
    Reports the stream object."""

    session: Session
    deployment: Deployment
    buffered: list[JSON]
    tracker: StreamTracker
    chunks: Any
    ttft_ms: float
    hold: Hold | None
    resumable: bool = False

    @property
    def parts(self) -> tuple[Session, Deployment, list[JSON], StreamTracker, Any, float]:
        """The stream's constructor arguments, in order (all but how it settles)."""
        return (self.session, self.deployment, self.buffered, self.tracker, self.chunks, self.ttft_ms)


class Settle(NamedTuple):
    """Charge ``amount_usd`` against a hold (``ledger.settle``); reports the totals, or the
    LedgerError the guard returns after journaling the charge."""

    hold: Hold
    amount_usd: float
    now: float
    estimated: bool


class Release(NamedTuple):
    """Give a hold back unspent (``ledger.release``): the call cost nothing."""

    hold: Hold


class Warn(NamedTuple):
    """Claim the warning for crossing ``threshold`` on ``line`` (``ledger.first_warning``); reports a bool."""

    line: Line
    threshold: float


class Publish(NamedTuple):
    """Write the shared breakers' changes to Redis (``RedisBreakerStore.write``), in order: a
    breaker this client opened, or closed after a successful trial. Reports nothing; a write that
    fails is ignored (the local state still decides)."""

    writes: tuple[BreakerWrite, ...]


class Fetch(NamedTuple):
    """Read the shared breakers (``RedisBreakerStore.fetch`` of ``keys``) and hand the values to
    ``done`` (None when Redis is out of reach). The sync driver does it before planning; the async
    one on a worker thread, planning meanwhile on the last refresh. Reports nothing."""

    keys: tuple[str, ...]
    done: Callable[[Sequence[object] | None], None]


class Return(NamedTuple):
    """Done: give ``answer`` to the caller (a completion, a stream, or None after a settle)."""

    answer: Any


class Raise(NamedTuple):
    """Done: raise ``error`` to the caller (it carries the routing record where it has one)."""

    error: BaseException


Action = (
    ReadTotals
    | Sleep
    | Reserve
    | Unchecked
    | Call
    | OpenStream
    | Close
    | Wrap
    | Settle
    | Release
    | Warn
    | Publish
    | Fetch
    | ReadUsage
    | ClaimRate
    | Bookkeep
    | Return
    | Raise
)

# --------------------------------------------------------------------------- outcomes


class Failed(NamedTuple):
    """The action failed with an error the driver caught (provider, ledger, or the async hard stop)."""

    error: BaseException
    chunks: Any = None


class Cancelled(NamedTuple):
    """The action was interrupted (KeyboardInterrupt, cancellation): settle, then raise ``error``."""

    error: BaseException
    chunks: Any = None


class Opened(NamedTuple):
    """``OpenStream`` read up to where ``Decider.take`` said stop (or the stream's end)."""

    chunks: Any


# Settle at the reserved worst case: the provider sent no usage, so the exact cost is unknown.
_WORST_CASE: Final = float("nan")

Flow = Generator[Action, Any, Any]
# Plans a request: (request, its budget lines, the downgrade check or None) -> its Session (raises
# ModelNotFoundError for a model the policy does not name).
Planner = Callable[[Request, tuple[Line, ...], "DowngradeCheck | None"], Session]


class Decider:
    """One request's decisions: ``next_action()`` → perform → ``report(outcome)``, until
    ``Return`` or ``Raise``. A stream's settle, later, is ``settling(...)`` and the same loop."""

    __slots__ = (
        "_budgets",
        "_buffered",
        "_flow",
        "_held",
        "_late",
        "_open_hold",
        "_outcome",
        "_plan",
        "_reserving",
        "_sent",
        "_shared",
        "_tracker",
        "_wall_clock",
        "request",
        "session",
    )
    # Set while a stream opens (``_stream``): what it sent so far, and whether its first content is late.
    _buffered: list[JSON]
    _late: openai.APITimeoutError | None

    def __init__(
        self,
        request: Request,
        plan: Planner,
        *,
        lines: tuple[Line, ...] = (),
        budgets: BudgetBook | None = None,
        wall_clock: Callable[[], float],
        shared: SharedBreakers | None = None,
    ) -> None:
        """``lines``: the budget lines the request counts against (``BudgetBook.lines_for``);
        ``shared``: the client's breakers when a Redis ledger shares them with a fleet."""
        self.request = request
        self._shared = shared
        self._held: Action | None = None  # the decision held back behind a Publish
        # The hold reserved (or being reserved) and not yet settled, released or handed to a stream,
        # and whether a call was made on it: what ``abandoned`` gives back when the driver is
        # interrupted between actions. ``_reserving``: the action out is a Reserve (kept as the hold
        # until the ledger answers: its Hold is made only if it has to be given back).
        self._open_hold: Hold | Reserve | None = None
        self._sent = False
        self._reserving = False
        self._plan = plan
        self._budgets = budgets
        self._wall_clock = wall_clock
        self.session: Session | None = None
        self._outcome: Any = None
        self._tracker: StreamTracker | None = None  # the stream being opened, and what it sent
        self._flow: Flow = self._decide(lines)

    # ----------------------------------------------------------------- the driver's interface

    def next_action(self) -> Action:
        """What to do now, given what was reported of the last action.

        With shared breakers, a decision that opened or closed one (a failure, a success) is
        published first: ``Publish``, then the decision itself (even a ``Raise`` or ``Return``).
        Likewise calls begun or ended on pooled deployments go to the balancer first (``Bookkeep``).
        """
        held = self._held
        if held is not None:
            self._held = None
            action: Action = held
        else:
            outcome, self._outcome = self._outcome, None
            try:
                action = self._flow.send(outcome)
            except StopIteration as done:
                action = Return(done.value)
            except BaseException as error:  # decided: give up with this error (or re-raise the caller's)
                action = Raise(error)
        kind = type(action)
        if kind is Call or kind is OpenStream:
            self._sent = self._open_hold is not None
        elif kind is Settle or kind is Release or kind is Wrap:
            self._open_hold = None  # from here the action itself (or the stream) accounts for it
        shared = self._shared
        if shared is not None and shared.pending:
            self._held = action
            return Publish(shared.drain())
        session = self.session
        if session is not None and session.notes:
            self._held = action
            notes = tuple(session.notes)
            session.notes.clear()
            return Bookkeep(notes)
        if type(action) is Reserve:
            # Counted as held from now: from the ledger's answer to ``report`` is a window an
            # interrupt can land in, and releasing an id that was never reserved does nothing.
            self._open_hold, self._sent, self._reserving = action, False, True
        return action

    def report(self, outcome: Any) -> None:
        """What the last action came to (its result, ``Failed``, ``Cancelled`` or ``Opened``)."""
        if self._reserving:
            self._reserving = False
            self._open_hold = outcome if type(outcome) is Hold else None  # refused or failed: none
        elif type(outcome) is Hold:  # an unchecked hold (the ledger failed open)
            self._open_hold, self._sent = outcome, False
        self._outcome = outcome

    def abandoned(self) -> tuple[Settle | Release, ...]:
        """The driver was interrupted between two actions (a KeyboardInterrupt landing in decision
        code, a task cancelled while bookkeeping): what gives back the budget still held, so nothing
        stays reserved until its expiry. A call already made on it is charged as cancelled in flight."""
        held, self._open_hold = self._open_hold, None
        if held is None:
            return ()
        hold = held.hold() if isinstance(held, Reserve) else held
        if self._sent:
            return (Settle(hold, hold.amount_usd, self._wall_clock(), True),)
        return (Release(hold),)

    def take(self, data: JSON) -> bool:
        """A chunk of the stream being opened: True when the driver should stop reading (the stream
        committed to its model, or its first content is late: the next action closes it)."""
        tracker = self._tracker
        assert tracker is not None and self.session is not None
        if RATE_LIMITS in data:  # the provider's rate-limit headers (a deployment with tpm/rpm)
            self.session.provider_limits(data[RATE_LIMITS])
            return False
        tracker.observe(data)
        self._buffered.append(data)
        if tracker.committed:
            return True
        # Reads are bounded one by one; chunks without content must not add up past the limit.
        self._late = self.session.first_content_overdue()
        return self._late is not None

    def settling(self, hold: Hold, cost: float | None, estimated: bool) -> Decider:
        """A stream ended (or was dropped): settle its hold; the actions end with ``Return(None)``."""
        assert self.session is not None
        self._outcome = None
        self._flow = self._settle(self.session, hold, cost, estimated)
        return self

    def publishing(self) -> Decider:
        """A stream ended (its success or failure told to the breakers): publish what that changed;
        the actions end with ``Return(None)``."""
        self._outcome = None
        self._flow = _nothing()
        return self

    def continuing(self, prefix: Prefix) -> Decider:
        """A committed stream was cut (its attempt recorded and settled): open its continuation from
        ``prefix``; the actions end with ``Return(Resumed)``, or ``Return(None)``: the cut stands."""
        assert self.session is not None
        self._outcome = None
        self._flow = self._continue(self.session, prefix)
        return self

    # ----------------------------------------------------------------- the decisions

    def _decide(self, lines: tuple[Line, ...]) -> Flow:
        # The lines whose cap downgrades: planning reads their figures first and skips what cannot fit.
        downgrade = _downgrading(self._budgets, lines)
        shared = self._shared
        if shared is not None and shared.fetch_due():
            yield Fetch(shared.keys, shared.fetched)  # what the fleet learned, before planning
        check = (yield from self._downgrade_check(lines, downgrade)) if downgrade else None
        session = self._start(lines, check)
        if self.request.stream:
            return (yield from self._stream(session))
        return (yield from self._complete(session))

    def _downgrade_check(
        self, lines: tuple[Line, ...], downgrade: tuple[Line, ...]
    ) -> Generator[Action, Any, DowngradeCheck | None]:
        """The planner's filter under a downgrade budget, on figures read from the ledger first."""
        totals = yield ReadTotals(downgrade, self._wall_clock())
        if isinstance(totals, Failed):
            if self._budgets is None or not self._budgets.fail_open(lines):
                raise totals.error
            return None
        # Plan on settled spend only: a model blocked just by reservations in flight may fit once
        # they settle, and the reservation (which waits for that) decides; planning drops only
        # models that cannot fit in this window at all.
        settled = {key: Totals(t.spent_usd, 0.0) for key, t in totals.items()}
        return DowngradeCheck(downgrade, settled)

    def _start(self, lines: tuple[Line, ...], check: DowngradeCheck | None) -> Session:
        """Plan the request; give up at once when no model can serve it."""
        self.session = session = self._plan(self.request, lines, check)
        if check is not None:
            for model, refusal in check.rejected:
                session.budget_downgraded(model, refusal)
        if not session.plan.candidates:
            if check is not None and check.refusal is not None:
                session.budget_refused_before_any(check.refusal)
            raise session.exhausted()
        return session

    def _next_try(
        self,
        session: Session,
        next_step: Callable[[Session], Step | Choice | None] = Session.next_step,
        accept: Callable[[Session, Deployment], bool] | None = None,
    ) -> Generator[Action, Any, tuple[Step, Hold | None] | None]:
        """The next call to make, after its wait and its reservation: (step, hold); None: no more.

        A pooled model's deployment is picked on the rate counters' answers (``ReadUsage`` and
        ``ClaimRate``, performed by the driver); ``accept`` may still pass the picked one over.
        """
        while (next_ := next_step(session)) is not None:
            if isinstance(next_, Choice):
                step = session.picked(next_, (yield from next_.picking))
                if step is None or (accept is not None and not accept(session, step.deployment)):
                    continue
            else:
                step = next_
            if step.wait_s:
                yield Sleep(step.wait_s)
            hold = (yield from self._reserve(session, step.deployment)) if session.budgeted else None
            if hold is False:
                continue  # skipped to stay under a downgrade budget
            session.begin(step)
            return step, hold
        return None

    def _complete(self, session: Session) -> Flow:
        """Try the plan's models in turn until one answers (or the session gives up)."""
        request = self.request
        while (chosen := (yield from self._next_try(session))) is not None:
            step, hold = chosen
            deployment = step.deployment
            # limit_s: the deadline as a hard stop too (async), for a server that trickles bytes.
            outcome = yield Call(deployment, request.body, step.options, session.remaining_s())
            if isinstance(outcome, Failed):
                error = outcome.error
                yield from self._settle(session, hold, None, estimated=_sent(error))
                session.failed(deployment, error if isinstance(error, openai.APIError) else timeout_error())
                continue
            if isinstance(outcome, Cancelled):
                # Interrupted (KeyboardInterrupt, cancelled) once the call began: the provider may bill it.
                yield from self._settle(session, hold, None, estimated=True)
                raise outcome.error
            data: JSON = outcome
            if deployment.rate_limits:
                session.provider_limits(data.pop(RATE_LIMITS, None))
            usage = usage_of(data.get("usage"), data.get("service_tier"))
            if hold:
                cost = session.cost_of(deployment, usage) if usage else _WORST_CASE
                yield from self._settle(session, hold, cost)
            if content_filtered(data):
                session.content_filtered(deployment, data, usage)
                continue
            return completion(data, deployment.name, session.succeeded(deployment, usage))
        return self._give_up(session)

    def _stream(self, session: Session) -> Flow:
        """Read each candidate's stream up to its first content; fall back unseen until then."""
        resumable = enabled(session)
        while (chosen := (yield from self._next_try(session))) is not None:
            step, hold = chosen
            deployment = step.deployment
            opened = yield from self._open_attempt(session, step, hold, self.request.body, session.failed)
            if opened is None:
                continue
            tracker, buffered, chunks = opened
            filtered = tracker.content_filtered
            stream = yield Wrap(
                session,
                deployment,
                buffered,
                tracker,
                chunks,
                session.attempt_elapsed_ms(),
                hold if hold and not filtered else None,
                resumable,
            )
            if filtered:
                yield from self._settle(session, hold, session.partial_cost(deployment, tracker))
                session.content_filtered(deployment, stream, tracker.usage)
                continue
            return stream
        return self._give_up(session)

    def _open_attempt(
        self,
        session: Session,
        step: Step,
        hold: Hold | None,
        body: JSON,
        failed: Callable[[Deployment, BaseException], object],
    ) -> Generator[Action, Any, tuple[StreamTracker, list[JSON], Any] | None]:
        """Open a stream attempt and read it up to its first content: (tracker, what it sent, the rest
        of its chunks); None when it failed (closed, settled and told to ``failed``)."""
        deployment = step.deployment
        self._tracker = tracker = StreamTracker()
        buffered: list[JSON] = []
        self._buffered = buffered
        self._late = None
        outcome = yield OpenStream(deployment, body, step.options, session.first_content_wait_s())
        if isinstance(outcome, Opened) and self._late is not None:
            outcome = Failed(self._late, outcome.chunks)  # its first content was late
        if isinstance(outcome, Failed):
            error = outcome.error
            if outcome.chunks is not None and (not isinstance(error, openai.APIError) or error is self._late):
                yield Close(outcome.chunks)  # we stopped it (a provider's error ended it already)
            yield from self._settle(session, hold, None, estimated=_sent(error))
            if not isinstance(error, openai.APIError):
                error = session.first_content_overdue() or timeout_error()
            failed(deployment, error)
            return None
        if isinstance(outcome, Cancelled):
            if outcome.chunks is not None:
                yield Close(outcome.chunks)
            yield from self._settle(session, hold, None, estimated=True)
            raise outcome.error
        return tracker, buffered, outcome.chunks

    def _continue(self, session: Session, prefix: Prefix) -> Flow:
        """Continue a cut stream on the next candidate that supports prefill (router._continuation),
        read up to its first content like any stream attempt. A continuation that fails is recorded
        and the next one tried; a budget that refuses another call ends the search: the cut stands."""
        while True:
            try:
                chosen = yield from self._next_try(session, continuation_step, can_prefill)
            except (BudgetExceededError, LedgerError):
                return None
            if chosen is None:
                return None
            step, hold = chosen
            body = continuation_body(self.request.body, step.deployment, prefix)
            opened = yield from self._open_attempt(session, step, hold, body, session.failed_quietly)
            if opened is not None:
                tracker, buffered, chunks = opened
                return Resumed(step.deployment, buffered, tracker, chunks, session.attempt_elapsed_ms(), hold)

    def _give_up(self, session: Session) -> Any:
        """No model answered: a content-filtered answer kept on the way (a completion or a stream), or
        the session's error."""
        session.budget_exhausted()
        kept = session.kept_answer()
        if kept is None:
            raise session.exhausted()
        deployment, answer, routing = kept
        if isinstance(answer, dict):
            return completion(answer, deployment.name, routing)
        return answer

    # ----------------------------------------------------------------- budgets

    def _reserve(
        self, session: Session, deployment: Deployment
    ) -> Generator[Action, Any, Hold | Literal[False] | None]:
        """Reserve this call's worst case: the Hold, False to skip the model (downgrade), None when no
        budget covers it. May wait for reservations in flight, or raise."""
        ask = session.budget_ask(deployment)
        if ask is None:
            return None
        hold_id = new_hold_id()  # one for every try: a refusal reserved nothing under it
        while True:
            reserve = Reserve(ask.lines, ask.amount_usd, ask.ttl_s, self._wall_clock(), hold_id)
            outcome = yield reserve
            if isinstance(outcome, Failed):
                unchecked = self._budgets is not None and self._budgets.fail_open(ask.lines)
                session.ledger_failed(outcome.error, ask.lines, unchecked=unchecked)
                if not unchecked:
                    raise outcome.error
                hold: Hold = yield Unchecked(reserve)
                return hold
            if isinstance(outcome, Hold):
                session.budget_held()
                return outcome
            wait = session.budget_refused(deployment, outcome)
            if wait is None:
                return False
            yield Sleep(wait)

    def _settle(
        self,
        session: Session,
        hold: Hold | Literal[False] | None,
        cost: float | None,
        estimated: bool = False,
    ) -> Generator[Action, Any, None]:
        """Settle a hold at the call's cost (``_WORST_CASE``: as reserved), or release it (None).

        ``estimated``: cancelled after it was sent, so charged the worst case (or ``cost``, if more).
        A ledger that fails now costs no answer: the charge is journaled (``Guarded.settle``).
        """
        if not hold:
            return
        if cost is None and not estimated:
            yield Release(hold)
            return
        amount = _amount(hold, cost, estimated)
        totals = yield Settle(hold, amount, self._wall_clock(), estimated)
        if isinstance(totals, LedgerError):
            session.ledger_journaled(totals, hold, amount)
            return
        if estimated:
            session.budget_estimated(hold, amount, totals)
        for line, threshold in session.budget_settled(hold, totals, amount):
            if (yield Warn(line, threshold)):
                session.budget_warned(line, threshold)


def _downgrading(budgets: BudgetBook | None, lines: tuple[Line, ...]) -> tuple[Line, ...]:
    """The lines whose cap is ``on_exceed: downgrade``. A function of its own: a generator expression
    inside ``_decide`` made ``budgets`` a cell that lived as long as the request."""
    if budgets is None:
        return ()
    return tuple([line for line in lines if budgets.spec_for(line).on_exceed == "downgrade"])


def _nothing() -> Flow:
    """A flow with no decision left (``Decider.publishing``)."""
    yield from ()


def _amount(hold: Hold, cost: float | None, estimated: bool) -> float:
    """What to charge: the cost; the reserved worst case when it is unknown (``_WORST_CASE``); and,
    for a call cancelled after it was sent, never less than the worst case."""
    if cost is None or cost is _WORST_CASE:
        return hold.amount_usd
    return max(cost, hold.amount_usd) if estimated else cost


def _sent(exc: BaseException) -> bool:
    """Whether a failed call may have reached the provider, which then bills it: a timeout after the
    connection was made (a read timeout, our deadline). A refused connection, a connect or pool
    timeout, or an error the provider answered with are not charged."""
    if isinstance(exc, TimeoutError):
        return True  # our deadline (asyncio.timeout) cut a call in flight
    if not isinstance(exc, openai.APITimeoutError):
        return False
    return not isinstance(exc.__cause__, httpx.ConnectTimeout | httpx.PoolTimeout)


class DowngradeCheck:
    """The planner's budget filter for ``on_exceed: downgrade`` caps, from figures read before planning.

    Keeps the smallest refusal it saw, so that when no model fits, the error names the best case.
    """

    __slots__ = ("_lines", "_totals", "refusal", "rejected")

    def __init__(self, lines: tuple[Line, ...], totals: Mapping[str, Totals]) -> None:
        self._lines = lines
        self._totals = totals
        self.refusal: Refusal | None = None
        self.rejected: list[tuple[str, Refusal]] = []

    def __call__(self, model: ModelInfo, worst_usd: float) -> str | None:
        refusal = BudgetBook.refusal(self._lines, self._totals, worst_usd)
        if refusal is None:
            return None
        if self.refusal is None or refusal.amount_usd < self.refusal.amount_usd:
            self.refusal = refusal
        self.rejected.append((model.name, refusal))
        return BudgetBook.downgrade_reason(refusal)


__all__ = [
    "Action",
    "Bookkeep",
    "Call",
    "Cancelled",
    "ClaimRate",
    "Close",
    "Decider",
    "DowngradeCheck",
    "Failed",
    "Fetch",
    "OpenStream",
    "Opened",
    "Publish",
    "Raise",
    "ReadTotals",
    "ReadUsage",
    "Release",
    "Reserve",
    "Return",
    "Settle",
    "Sleep",
    "Unchecked",
    "Warn",
    "Wrap",
]
