"""The memory ledger's own bookkeeping: settled ids are remembered for their keep time, then forgotten."""

from __future__ import annotations

from router.ledger import Hold, Line, Totals
from router.ledger._types import SETTLED_KEEP_S
from router.ledger.memory import MemoryLedger

T0 = 1_764_547_000.0
TOTAL = Line("*", "total", 0.0, None, 1_000_000.0)


def _hold(ledger: MemoryLedger, now: float) -> Hold:
    result = ledger.reserve([TOTAL], 0.001, ttl_s=60, now=now)
    assert isinstance(result, Hold), result
    return result


def _spent(ledger: MemoryLedger, now: float) -> float:
    return ledger.totals([TOTAL], now=now)[TOTAL.key].spent_usd


def test_a_settle_replayed_within_its_keep_time_counts_once_after_thousands_of_others() -> None:
    # More settles than the 1,024 at which the old bookkeeping began to sweep on every settle.
    ledger = MemoryLedger()
    first = _hold(ledger, T0)
    ledger.settle(first, 0.5, now=T0)
    for n in range(3_000):
        ledger.settle(_hold(ledger, T0 + n), 0.0, now=T0 + n)
    assert ledger.settle(first, 0.5, now=T0 + 3_000) == {TOTAL.key: Totals(0.5, 0.0)}


def test_settled_ids_are_forgotten_once_their_keep_time_has_passed_and_not_before() -> None:
    ledger = MemoryLedger()
    early, late = _hold(ledger, T0), _hold(ledger, T0)
    ledger.settle(early, 0.25, now=T0)
    ledger.settle(late, 0.5, now=T0 + 100)
    # The early settle's week (after its hold's expiry) has passed; the late one's has not.
    now = T0 + 60 + SETTLED_KEEP_S + 1
    ledger.settle(_hold(ledger, now), 0.0, now=now)
    ledger.settle(late, 0.5, now=now)  # still remembered: a replay, not counted again
    assert _spent(ledger, now) == 0.75
    ledger.settle(early, 0.25, now=now)  # forgotten: counted as a new settle
    assert _spent(ledger, now) == 1.0


def test_an_id_behind_one_still_kept_is_kept_longer_never_shorter() -> None:
    # A long hold settled first keeps its id past a short hold's settled after it: the short one's
    # id, queued behind, is forgotten only with it, so a replay within either keep time counts once.
    ledger = MemoryLedger()
    long_hold = ledger.reserve([TOTAL], 0.001, ttl_s=3_600, now=T0)
    assert isinstance(long_hold, Hold)
    short = _hold(ledger, T0)
    ledger.settle(long_hold, 0.25, now=T0)
    ledger.settle(short, 0.5, now=T0)
    now = T0 + 60 + SETTLED_KEEP_S + 1  # the short one's keep time is over, the long one's is not
    ledger.settle(_hold(ledger, now), 0.0, now=now)
    ledger.settle(short, 0.5, now=now)
    ledger.settle(long_hold, 0.25, now=now)
    assert _spent(ledger, now) == 0.75
