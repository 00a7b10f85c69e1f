"""6B.S1's attachment kernel (layer2_3 §4.4 steps 1–3 and 6): who each arrival is, and its session.

One shard's arrivals come in (merchant, ts) order — 5B's arrival_id order — so a merchant is a contiguous
segment, and merchants are independent: segments run in parallel and nothing depends on the batch, as
long as a batch never splits a merchant (continuation and sessions read the merchant's earlier arrivals).
Per arrival the `6B.attach` block 0 ⟨arrival_id, 0, 0, 0⟩ is read as raw lanes (the caller makes them with
`block_raw(key, arrival_id, 0, 0, 0, lanes=4)`), one job per lane:

- w0  continuation coin: the previous arrival at this merchant has the same channel, came at most `gap_us`
      earlier, and u(w0) < p_continue[channel] → the same customer (CONTINUATION).
- w1  source: u(w1) < p_regular → REGULAR; else (u − p_regular)/(1 − p_regular) < p_domestic → DOMESTIC;
      else FOREIGN. One lane for two sequential coins: the rescaled remainder is again uniform.
- w2  REGULAR: slot r = ⌊R·u(w2)^skew⌋ of the R slots of the arrival's (merchant, country, channel) (skew
      ≥ 1 makes the first slots the most regular); FOREIGN: the party's country, an alias draw on raw w2
      from the foreign table of the arrival's (country, channel) (countries weighted by their
      channel-eligible parties).
- w3  DOMESTIC / FOREIGN: the party, an alias draw on raw w3 from the (country, channel) pool.
      TRAVEL (amendment 8): on a travel channel (POS, ATM) a FOREIGN arrival goes to a traveller instead, when
      parties from abroad are visiting the arrival's country that day: uniform by u(w3) over them.

Branches never share a lane's meaning, so every arrival costs exactly one block. Sessions are cut per
(party, merchant): a flow joins its party's open session at this merchant when it comes at most `gap_us`
after the last flow and at most `max_session_us` after the first (and the session has < 65,535 flows);
session_id is the first flow's id, session_seq counts from 1.

Pools and tables are integer alias slices (engine/kernels/alias.py) concatenated per key; an empty slice
yields party 0 (never an id), which 6B.S1 raises as its no-candidate error (§4.4 validation).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from engine.kernels.alias import decode_draw
from engine.kernels.philox import u01

N_CHANNELS = 4  # POS 0, ECOM 1, ATM 2, TRANSFER 3 (layer2_3 §4.1 channels.yaml)
DOMESTIC, FOREIGN, REGULAR, CONTINUATION, TRAVEL = (
    0,
    1,
    2,
    3,
    4,
)  # attach_mode codes, the contract's enum order
DAY_US = 86_400_000_000
NO_PARTY = np.uint64(0)
MAX_SESSION_SEQ = 65_535  # session_seq is u16


class Arrivals(NamedTuple):
    """One shard's arrivals in (merchant, ts, flow_id) order."""

    flow_id: np.ndarray  # u64 (= arrival_id)
    merchant_row: np.ndarray  # i64, equal for one merchant's arrivals (a merchant is one segment)
    slot_row: (
        np.ndarray
    )  # i64, the row of the arrival's (merchant, country, channel) in RegularSlots, −1 none
    ts_us: np.ndarray  # i64, UTC µs
    country: np.ndarray  # i64, the arrival's country code (the pools' country index)
    channel: np.ndarray  # i64, 6B channel code 0..3
    lanes: np.ndarray  # u64 [n, 4], raw lanes of the 6B.attach block 0


class AliasSlices(NamedTuple):
    """Alias tables concatenated by key: key k's columns are first[k]..first[k+1]-1, value[j] the item of
    column j (a party id for pools, a country code for foreign tables)."""

    first: np.ndarray  # i64 [K + 1]
    prob_q: np.ndarray  # u32
    alias: np.ndarray  # u32, column index within the key's slice
    value: np.ndarray  # u64 (party ids) or i64 (country codes)


class RegularSlots(NamedTuple):
    """Per slot row k (a merchant's (country, channel) cell), its slot parties party[first[k]..first[k+1]-1]
    in slot order (the fixed `6B.regular` draws)."""

    first: np.ndarray  # i64 [K + 1]
    party: np.ndarray  # u64


class Probabilities(NamedTuple):
    """Per channel code (length N_CHANNELS) the §4.1 attachment.yaml probabilities, and the session rule."""

    p_continue: np.ndarray  # f64
    p_regular: np.ndarray  # f64
    p_domestic: np.ndarray  # f64
    slot_skew: float  # attachment.yaml regular_slots.skew
    travel: np.ndarray  # bool [N_CHANNELS]: the channels a traveller pays on abroad
    gap_us: int  # sessions.yaml gap_seconds · 10^6; also the continuation window
    max_session_us: int  # sessions.yaml max_session_hours · 3.6·10^9


class Travellers(NamedTuple):
    """Per key (country·N_CHANNELS + channel)·days + day, the parties from abroad visiting that country that
    horizon day who can pay on the channel: party[first[k]..first[k+1]-1]."""

    first: np.ndarray  # i64 [C·N_CHANNELS·days + 1]
    party: np.ndarray  # u64
    start_us: int  # horizon start (day 0), UTC µs
    days: int


def no_travellers() -> Travellers:
    return Travellers(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint64), 0, 0)


class Attached(NamedTuple):
    """Per arrival, in input order."""

    party: np.ndarray  # u64, 0 = an empty pool or foreign table: no candidate
    mode: np.ndarray  # u8, DOMESTIC / FOREIGN / REGULAR / CONTINUATION / TRAVEL
    copy_of: np.ndarray  # i64, the row whose entities a CONTINUATION copies (the chain's first), else −1
    session_id: np.ndarray  # u64
    session_seq: np.ndarray  # u16


@njit(cache=True, nogil=True, inline="always")
def _alias_pick(tables: AliasSlices, key: np.int64, w: np.uint64) -> np.int64:
    """Column of key's alias slice chosen by raw lane w, or −1 when the slice is empty."""
    lo, hi = tables.first[key], tables.first[key + 1]
    if hi <= lo:
        return np.int64(-1)
    return lo + np.int64(decode_draw(w, tables.prob_q[lo:hi], tables.alias[lo:hi]))


@njit(cache=True, nogil=True, inline="always")
def regular_slot(u: float, n_slots: np.int64, skew: float) -> np.int64:
    """⌊R·u^skew⌋ in [0, R−1]: slot r has probability ((r+1)/R)^(1/skew) − (r/R)^(1/skew)."""
    r = np.int64(math.floor(n_slots * u**skew))
    return min(max(r, np.int64(0)), n_slots - 1)


@njit(cache=True, nogil=True)
def _traveller(trav, country, ch, ts_us, w):  # type: ignore[no-untyped-def]
    """A visitor to `country` on the arrival's day who pays on `ch`, by raw lane w; NO_PARTY if none."""
    day = (ts_us - trav.start_us) // DAY_US
    if day < 0 or day >= trav.days:
        return NO_PARTY
    k = (country * N_CHANNELS + ch) * trav.days + day
    if k + 1 >= trav.first.shape[0]:
        return NO_PARTY
    lo, hi = trav.first[k], trav.first[k + 1]
    if hi <= lo:
        return NO_PARTY
    return trav.party[lo + min(np.int64(u01(w) * (hi - lo)), hi - lo - 1)]


@njit(cache=True, nogil=True)
def _attach_segment(lo, hi, arr, pools, foreign, slots, trav, prob, party, mode, copy_of):  # type: ignore[no-untyped-def]
    """Steps 1–3 of §4.4 for one merchant's arrivals lo..hi-1."""
    for i in range(lo, hi):
        ch = arr.channel[i]
        w0, w1, w2, w3 = arr.lanes[i, 0], arr.lanes[i, 1], arr.lanes[i, 2], arr.lanes[i, 3]
        if (
            i > lo
            and arr.channel[i - 1] == ch
            and arr.ts_us[i] - arr.ts_us[i - 1] <= prob.gap_us
            and u01(w0) < prob.p_continue[ch]
        ):
            party[i] = party[i - 1]
            mode[i] = CONTINUATION
            copy_of[i] = copy_of[i - 1] if copy_of[i - 1] >= 0 else i - 1
            continue
        copy_of[i] = -1
        u = u01(w1)
        p_reg = prob.p_regular[ch]
        if u < p_reg:
            k = arr.slot_row[i]
            mode[i] = REGULAR
            if k < 0 or slots.first[k + 1] <= slots.first[k]:
                party[i] = NO_PARTY
            else:
                s_lo = slots.first[k]
                party[i] = slots.party[
                    s_lo + regular_slot(u01(w2), slots.first[k + 1] - s_lo, prob.slot_skew)
                ]
            continue
        country = arr.country[i]
        mode[i] = DOMESTIC
        if (u - p_reg) / (1.0 - p_reg) >= prob.p_domestic[ch]:
            if prob.travel[ch]:
                visitor = _traveller(trav, country, ch, arr.ts_us[i], w3)
                if visitor != NO_PARTY:
                    party[i] = visitor
                    mode[i] = TRAVEL
                    continue
            mode[i] = FOREIGN
            j = _alias_pick(foreign, country * N_CHANNELS + ch, w2)
            if j < 0:
                party[i] = NO_PARTY
                continue
            country = np.int64(foreign.value[j])
        j = _alias_pick(pools, country * N_CHANNELS + ch, w3)
        party[i] = NO_PARTY if j < 0 else pools.value[j]


@njit(cache=True, nogil=True)
def _session_segment(lo, hi, arr, party, prob, session_id, session_seq):  # type: ignore[no-untyped-def]
    """Sessions of one merchant's arrivals lo..hi-1: a stable sort by party keeps each party's flows in time
    order, so each party's run is walked once."""
    order = np.argsort(party[lo:hi], kind="mergesort")
    prev = np.int64(-1)
    start_ts = np.int64(0)
    for r in range(hi - lo):
        i = lo + order[r]
        ts = arr.ts_us[i]
        if (
            prev >= 0
            and party[prev] == party[i]
            and ts - arr.ts_us[prev] <= prob.gap_us
            and ts - start_ts <= prob.max_session_us
            and session_seq[prev] < MAX_SESSION_SEQ
        ):
            session_id[i] = session_id[prev]
            session_seq[i] = session_seq[prev] + 1
        else:
            session_id[i] = arr.flow_id[i]
            session_seq[i] = 1
            start_ts = ts
        prev = i


@njit(cache=True, nogil=True, parallel=True)
def _attach_all(seg_first, arr, pools, foreign, slots, trav, prob, out):  # type: ignore[no-untyped-def]
    for s in prange(seg_first.shape[0] - 1):
        lo, hi = seg_first[s], seg_first[s + 1]
        _attach_segment(lo, hi, arr, pools, foreign, slots, trav, prob, out.party, out.mode, out.copy_of)
        _session_segment(lo, hi, arr, out.party, prob, out.session_id, out.session_seq)


def merchant_segments(merchant_row: np.ndarray) -> np.ndarray:
    """Row offsets [S+1] of the runs of equal merchant_row (the input is merchant-sorted)."""
    n = merchant_row.shape[0]
    starts = np.flatnonzero(merchant_row[1:] != merchant_row[:-1]) + 1
    return np.concatenate(([0], starts, [n])).astype(np.int64) if n else np.zeros(1, dtype=np.int64)


def attach(
    arr: Arrivals,
    pools: AliasSlices,
    foreign: AliasSlices,
    slots: RegularSlots,
    prob: Probabilities,
    travellers: Travellers | None = None,
) -> Attached:
    """Party, attach mode, continuation source and session of every arrival of one shard."""
    trav = no_travellers() if travellers is None else travellers
    n = arr.flow_id.shape[0]
    out = Attached(
        party=np.empty(n, dtype=np.uint64),
        mode=np.empty(n, dtype=np.uint8),
        copy_of=np.empty(n, dtype=np.int64),
        session_id=np.empty(n, dtype=np.uint64),
        session_seq=np.empty(n, dtype=np.uint16),
    )
    _attach_all(merchant_segments(arr.merchant_row), arr, pools, foreign, slots, trav, prob, out)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _alias_values(tables, keys, w, out):  # type: ignore[no-untyped-def]
    for i in prange(keys.shape[0]):
        j = _alias_pick(tables, keys[i], w[i])
        out[i] = NO_PARTY if j < 0 else tables.value[j]


def alias_values(tables: AliasSlices, keys: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per row, the value of key's alias slice picked by raw lane w (0 where the slice is empty): the regular
    slots' fixed `6B.regular` draws."""
    out = np.empty(keys.shape[0], dtype=np.uint64)
    _alias_values(tables, np.ascontiguousarray(keys, dtype=np.int64), np.ascontiguousarray(w), out)
    return out
