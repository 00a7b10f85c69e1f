"""6B.S5's event stream (design §4.8 step 3, §5.2): every flow's message times, and the `events` rows as an
explode of per-flow templates.

Template: AUTH_REQUEST at ts_utc; with a challenge STEP_UP_CHALLENGE (+ stepup_challenge_us) and
STEP_UP_RESULT (+ stepup_user_us); AUTH_RESPONSE (+ auth_latency_us); if approved, REVERSAL (response +
reversal_delay_us) or, unless clearing is suppressed, CLEARING (response + clearing_delay_us); a refund of a
cleared flow at clearing + refund_delay_us; a chargeback at its dispute's timeline. REFUND and CHARGEBACK
follow in time order (a chargeback at the refund's microsecond moves 1 µs later), so event times strictly
increase with event_seq. Local times use the flow's zone at each event's own instant (2A's transitions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.kernels import njit
from engine.segments.l3.s6b.bank_columns import codes_of

EVENT_TYPES = (
    "AUTH_REQUEST",
    "STEP_UP_CHALLENGE",
    "STEP_UP_RESULT",
    "AUTH_RESPONSE",
    "CLEARING",
    "REVERSAL",
    "REFUND",
    "CHARGEBACK",
)
REQUEST, CHALLENGE, RESULT, RESPONSE, CLEARING, REVERSAL, REFUND, CHARGEBACK = range(8)
NONE = -1


@dataclass(frozen=True)
class Times:
    """Per flow, UTC µs of each message (−1: the flow has none)."""

    request: np.ndarray
    challenge: np.ndarray
    result: np.ndarray
    response: np.ndarray
    clearing: np.ndarray
    reversal: np.ndarray
    refund: np.ndarray


def flow_times(plan: pl.DataFrame, challenged: np.ndarray, approved: np.ndarray) -> Times:
    """The message times of one batch from its plan columns (ts_utc, the *_us offsets, reversal, refund,
    clearing_suppressed) and the decision."""
    ts = plan["ts_utc"].dt.epoch("us").to_numpy()

    def us(name: str) -> np.ndarray:
        return plan[name].to_numpy().astype(np.int64)

    challenge = ts + us("stepup_challenge_us")
    result = challenge + us("stepup_user_us")
    response = np.where(challenged, result, ts) + us("auth_latency_us")
    reversed_ = approved & plan["reversal"].to_numpy()
    cleared = approved & ~reversed_ & ~plan["clearing_suppressed"].to_numpy()
    clearing = response + us("clearing_delay_us")
    refunded = cleared & plan["refund"].to_numpy()
    return Times(
        request=ts,
        challenge=np.where(challenged, challenge, NONE),
        result=np.where(challenged, result, NONE),
        response=response,
        clearing=np.where(cleared, clearing, NONE),
        reversal=np.where(reversed_, response + us("reversal_delay_us"), NONE),
        refund=np.where(refunded, clearing + us("refund_delay_us"), NONE),
    )


def after_refund(chargeback: np.ndarray, refund: np.ndarray) -> np.ndarray:
    """A chargeback at its refund's microsecond moves 1 µs later, so no two events of a flow tie."""
    return np.where((chargeback >= 0) & (chargeback == refund), chargeback + 1, chargeback)


@dataclass(frozen=True)
class Exploded:
    flow: np.ndarray  # row of the flow in its batch
    seq: np.ndarray  # event_seq, from 0
    kind: np.ndarray  # EVENT_TYPES code
    ts: np.ndarray  # UTC µs


@njit(cache=True, nogil=True)
def _emit(i, k, code, t, at, flow, seq, kind, ts):  # type: ignore[no-untyped-def]
    flow[at], seq[at], kind[at], ts[at] = i, k, code, t


@njit(cache=True, nogil=True)
def _explode(slots, refund, chargeback):  # type: ignore[no-untyped-def]
    """Rows (flow, seq, kind, ts) of the fixed slots (rows of `slots` in EVENT_TYPES order, −1 = absent), then
    REFUND and CHARGEBACK in time order, flow by flow."""
    n = refund.shape[0]
    total = 0
    for i in range(n):
        for j in range(slots.shape[0]):
            total += slots[j, i] >= 0
        total += (refund[i] >= 0) + (chargeback[i] >= 0)
    flow = np.empty(total, dtype=np.int64)
    seq = np.empty(total, dtype=np.uint8)
    kind = np.empty(total, dtype=np.int8)
    ts = np.empty(total, dtype=np.int64)
    at = 0
    for i in range(n):
        k = 0
        for j in range(slots.shape[0]):
            if slots[j, i] >= 0:
                _emit(i, k, j, slots[j, i], at, flow, seq, kind, ts)
                at += 1
                k += 1
        late = chargeback[i] >= 0 and (refund[i] < 0 or chargeback[i] < refund[i])
        if late:
            _emit(i, k, CHARGEBACK, chargeback[i], at, flow, seq, kind, ts)
            at += 1
            k += 1
        if refund[i] >= 0:
            _emit(i, k, REFUND, refund[i], at, flow, seq, kind, ts)
            at += 1
            k += 1
        if chargeback[i] >= 0 and not late:
            _emit(i, k, CHARGEBACK, chargeback[i], at, flow, seq, kind, ts)
            at += 1
    return flow, seq, kind, ts


def explode(t: Times, chargeback: np.ndarray) -> Exploded:
    """One row per message, in flow order then event_seq (time) order."""
    slots = np.stack([t.request, t.challenge, t.result, t.response, t.clearing, t.reversal]).astype(np.int64)
    return Exploded(*_explode(slots, t.refund.astype(np.int64), chargeback.astype(np.int64)))


def check_order(ev: Exploded, flow_ids: np.ndarray, state: str) -> None:
    """E_6B_EVENT_ORDER: within a flow, event times strictly increase with event_seq."""
    same = ev.flow[1:] == ev.flow[:-1]
    bad = np.flatnonzero(same & (ev.ts[1:] <= ev.ts[:-1]))
    if bad.size:
        i = int(bad[0]) + 1
        raise EngineError(
            "E_6B_EVENT_ORDER",
            f"{bad.size} events not after their predecessor, e.g. flow {int(flow_ids[ev.flow[i]])} "
            f"{EVENT_TYPES[ev.kind[i]]} at {int(ev.ts[i])} µs",
            where="6B.S5 events",
            fix="this is an engine defect: report it with the flow id",
            state=state,
        )


class LocalClock:
    """UTC → local wall clock per zone from 2A's tz_transitions (tz_index, tzid, valid_from µs, utc_offset_s):
    one searchsorted over (zone, valid_from) keys packed into one i64 (µs since 1970 < 2^51)."""

    SHIFT = 51

    def __init__(self, transitions: pl.DataFrame) -> None:
        tr = transitions.select(pl.col("tzid").cast(pl.String), "valid_from", "utc_offset_s").sort(
            "tzid", "valid_from"
        )
        self.zones = sorted(set(tr["tzid"].to_list()))
        zone = np.searchsorted(np.array(self.zones, dtype=object), tr["tzid"].to_numpy())
        self.keys = (zone.astype(np.int64) << self.SHIFT) | tr["valid_from"].to_numpy().astype(np.int64)
        self.offset = tr["utc_offset_s"].to_numpy().astype(np.int64)
        self.first = np.searchsorted(zone, np.arange(len(self.zones)))

    def zone_codes(self, tzid: pl.Series) -> np.ndarray:
        """Zone positions of a tzid column (Enum or string); a zone 2A does not know is a defect."""
        codes = codes_of(tzid, self.zones)
        if (codes < 0).any():
            raise ValueError(f"tzid {tzid.filter(pl.Series(codes < 0))[0]} has no transitions")
        return codes

    def local_us(self, zone: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Local wall-clock µs of UTC µs `ts` in zone codes `zone` (the last transition at or before ts)."""
        at = np.searchsorted(self.keys, (zone.astype(np.int64) << self.SHIFT) | ts, side="right") - 1
        at = np.maximum(at, self.first[zone])
        return ts + self.offset[at] * 1_000_000


@njit(cache=True, nogil=True)
def _stream_order(merchant: np.ndarray, ts: np.ndarray, flow_id: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """The permutation that sorts events (given in flow order, so each merchant's events are contiguous) by
    (merchant, ts, flow_id, seq): a stable argsort of ts per merchant run, then an insertion pass that orders
    the rare equal-time events by (flow_id, seq)."""
    n = ts.shape[0]
    out = np.empty(n, dtype=np.int64)
    a = 0
    while a < n:
        b = a + 1
        while b < n and merchant[b] == merchant[a]:
            b += 1
        part = np.argsort(ts[a:b], kind="mergesort")
        for i in range(b - a):
            out[a + i] = a + part[i]
        for i in range(a + 1, b):
            j = i
            cur = out[i]
            while j > a:
                prev = out[j - 1]
                if ts[prev] != ts[cur] or (flow_id[prev], seq[prev]) <= (flow_id[cur], seq[cur]):
                    break
                out[j] = prev
                j -= 1
            out[j] = cur
        a = b
    return out


STREAM_KEYS = ("merchant_id", "ts_utc", "flow_id", "event_seq")


class HeldEvents:
    """The events stream across row batches cut anywhere in s4_flows' (merchant_id, ts_utc, flow_id) order,
    so one merchant's flows can span batches and no batch outgrows its row limit.

    A later batch's events all sort at or after its first flow's (merchant_id, ts_utc), its request: the
    events held before that key are final and leave; the rest (clearings, refunds and chargebacks of the
    cut merchant's earlier flows) wait and merge with the next batch's events."""

    def __init__(self) -> None:
        self.held: pl.DataFrame | None = None

    def release_before(self, merchant_id: int, ts_us: int) -> pl.DataFrame | None:
        """The held events that sort before (merchant_id, ts_us); the rest stay held."""
        if self.held is None:
            return None
        merchant = self.held["merchant_id"].to_numpy()
        ts = self.held["ts_utc"].dt.epoch("us").to_numpy()
        n = int(np.count_nonzero((merchant < merchant_id) | ((merchant == merchant_id) & (ts < ts_us))))
        out, rest = self.held.slice(0, n), self.held.slice(n)
        self.held = rest if rest.height else None
        return out

    def add(self, events: pl.DataFrame) -> None:
        """A batch's events, already in stream order. What is held belongs to one merchant, the one the batch
        opens with (it sorts at or after the batch's first request), so only that merchant's events merge."""
        if self.held is None:
            self.held = events
            return
        merchant = self.held["merchant_id"][0]
        n = int(np.count_nonzero(events["merchant_id"].to_numpy() == merchant))  # a prefix: events are sorted
        merged = pl.concat([self.held, events.slice(0, n)]).sort(STREAM_KEYS)
        self.held = pl.concat([merged, events.slice(n)])

    def release_all(self) -> pl.DataFrame | None:
        out, self.held = self.held, None
        return out


def stream_order(ev: Exploded, merchant: np.ndarray, flow_id: np.ndarray) -> Exploded:
    """The events reordered by (merchant_id, ts_utc, flow_id, event_seq); `merchant`, `flow_id` per flow."""
    at = _stream_order(
        merchant[ev.flow].astype(np.int64), ev.ts, flow_id[ev.flow].astype(np.int64), ev.seq.astype(np.int64)
    )
    return Exploded(flow=ev.flow[at], seq=ev.seq[at], kind=ev.kind[at], ts=ev.ts[at])
