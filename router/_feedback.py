"""``client.feedback(request_id, score)``: outcomes of routed requests, for ``router train --from-ledger``.

Each client keeps, for every request judged by learned adequacy (a route or feature with
``adequacy:``), what retraining needs — the model that answered and the prompt's term counts
under the adequacy file (``router.ledger._feedback``) — in the ledger's store. Rows are buffered
and written in batches (at ``FLUSH_EVERY`` rows, on ``feedback()``, and on ``close()``), so a
request pays a list append, not a write; a process that dies loses at most the unwritten batch
(those requests can't be scored later). Async clients write off the event loop.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from policies.adequacy import Adequacy, prompt_text
from router._exceptions import UnknownRequestError
from router.ledger._feedback import FeedbackStore, Routed, open_feedback

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from policies.plan import Plan
    from router._routing import RoutingRecord

FLUSH_EVERY: Final = 64
# While the store can't be written, rows wait in memory, the oldest dropped past this many.
MAX_PENDING: Final = 64 * FLUSH_EVERY


def request_id_of(request: object) -> str:
    """The id feedback takes: a string, or a routed response (``response.routing.request_id``)."""
    if isinstance(request, str):
        return request
    routing = getattr(request, "routing", None)
    found = getattr(routing, "request_id", None) or getattr(request, "_request_id", None)
    if isinstance(found, str):
        return found
    raise TypeError(
        "feedback() takes the routed request's id (response.routing.request_id) or the response itself; "
        f"got {type(request).__name__}."
    )


def check_score(score: object) -> float:
    if isinstance(score, bool):
        return 1.0 if score else 0.0
    if isinstance(score, int | float) and 0.0 <= float(score) <= 1.0:
        return float(score)
    raise ValueError(
        f"feedback score {score!r}: give 1/0, True/False, or a score between 0 and 1 "
        "(1 = the answer was good enough)."
    )


def encode_counts(idx: npt.NDArray[np.intp], counts: npt.NDArray[np.intp]) -> str:
    """Term counts as text: base64 of little-endian int32 indices, '.', base64 of int32 counts."""
    return (
        base64.b64encode(idx.astype("<i4").tobytes()).decode("ascii")
        + "."
        + base64.b64encode(counts.astype("<i4").tobytes()).decode("ascii")
    )


def decode_counts(text: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    import numpy as np

    idx, _, counts = text.partition(".")
    return (
        np.frombuffer(base64.b64decode(idx), dtype="<i4").astype(np.intp),
        np.frombuffer(base64.b64decode(counts), dtype="<i4").astype(np.intp),
    )


def featurizer_spec(adequacy: Adequacy) -> str:
    """What the store keeps once per featurizer: the adequacy file's featurizer without its IDF."""
    spec = {k: v for k, v in adequacy.data["featurizer"].items() if k != "idf"}
    return json.dumps(spec, ensure_ascii=False, separators=(",", ":"))


class Outcomes:
    """One client's buffer of routed requests, and its feedback into the ledger's store."""

    def __init__(
        self,
        ledger_url: str | None,
        *,
        log_content: bool,
        wall_clock: Callable[[], float],
        background: bool = False,
    ) -> None:
        self._url = ledger_url
        self._log_content = log_content
        self._wall_clock = wall_clock
        # Async clients: full batches are written on a worker thread, never on the event loop.
        self._background = background
        self._store: FeedbackStore | None = None
        self._lock = threading.Lock()
        self._pending: list[tuple[Routed, Any]] = []
        self._featurizers: dict[str, Adequacy] = {}
        self._saved: set[str] = set()

    def routed(self, plan: Plan, record: RoutingRecord, messages: Any) -> None:
        """Keep what feedback needs of a request that was answered (the hot path: an append)."""
        text = prompt_text(messages) if self._log_content else None
        if (plan.adequacy is None and text is None) or record.model is None:
            return
        featurizer = None
        if plan.adequacy is not None:
            featurizer = plan.adequacy.featurizer_id
        row = Routed(
            request_id=record.request_id,
            at=self._wall_clock(),
            route=record.route,
            feature=record.feature,
            model=record.model,
            cost_usd=record.cost_usd,
            featurizer=featurizer,
            features=None,
            text=text,
        )
        with self._lock:
            self._pending.append((row, plan.adequacy_counts))
            if featurizer is not None and featurizer not in self._saved:
                self._featurizers[featurizer] = plan.adequacy  # type: ignore[assignment]
            full = len(self._pending) >= FLUSH_EVERY
        if full:
            if self._background:
                threading.Thread(target=self._flush_quietly, name="router-feedback", daemon=True).start()
            else:
                self._flush_quietly()

    def _open(self) -> FeedbackStore:
        if self._store is None:
            self._store = open_feedback(self._url)
        return self._store

    def flush(self) -> None:
        """Write the buffered rows (and any featurizer not stored yet) to the ledger's store."""
        with self._lock:
            pending, self._pending = self._pending, []
            featurizers, self._featurizers = self._featurizers, {}
        if not pending and not featurizers:
            return
        rows = [
            row if counts is None else _with_features(row, encode_counts(*counts)) for row, counts in pending
        ]
        specs = {key: featurizer_spec(adequacy) for key, adequacy in featurizers.items()}
        try:
            self._open().add(rows, specs, now=self._wall_clock())
        except BaseException:
            with self._lock:  # kept for the next try
                self._pending[:0] = pending
                del self._pending[:-MAX_PENDING]
                self._featurizers.update(featurizers)
            raise
        with self._lock:
            self._saved.update(specs)

    def _flush_quietly(self) -> None:
        """A batch write on the request path must not fail the request: it is retried with the next."""
        with contextlib.suppress(Exception):  # the rows stay buffered; feedback() reports the error
            self.flush()

    def feedback(self, request: object, score: object) -> None:
        """Record ``score`` for a routed request; UnknownRequestError if the store doesn't keep it."""
        request_id = request_id_of(request)
        value = check_score(score)
        self.flush()
        if not self._open().score(request_id, value, now=self._wall_clock()):
            raise UnknownRequestError(
                f"no routed request {request_id!r} in the feedback store of the ledger "
                f"({self._url or 'the default SQLite ledger'}). Feedback is kept for requests answered "
                "through a route or feature with `adequacy:` (or any request when the policy's "
                "logging.log_content is on), by a client using this ledger, for 30 days; pass "
                "response.routing.request_id of such a response."
            )

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._store is not None:
                self._store.close()
                self._store = None


def _with_features(row: Routed, features: str) -> Routed:
    from dataclasses import replace

    return replace(row, features=features)
