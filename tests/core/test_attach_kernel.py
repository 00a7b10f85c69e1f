"""6B.S1's attachment kernel (engine/kernels/attach.py): known answers on hand-made streams, a plain-Python
re-derivation from numpy's Philox, batch invariance, and a micro-benchmark (`bench`)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from numba import get_num_threads, set_num_threads

from engine.core.validation import PhiloxBlocks, u01
from engine.kernels.alias import encode, integer_masses
from engine.kernels.attach import (
    CONTINUATION,
    DOMESTIC,
    FOREIGN,
    N_CHANNELS,
    REGULAR,
    TRAVEL,
    AliasSlices,
    Arrivals,
    Attached,
    Probabilities,
    RegularSlots,
    Travellers,
    attach,
)
from engine.kernels.blocks import block_raw

POS, ECOM = 0, 1
S = 1_000_000  # µs per second
PROB = Probabilities(
    p_continue=np.array([0.02, 0.08, 0.03, 0.10]),
    p_regular=np.array([0.40, 0.30, 0.50, 0.20]),
    p_domestic=np.array([0.96, 0.82, 0.95, 0.93]),
    slot_skew=1.25,
    travel=np.array([True, False, True, False]),
    gap_us=1800 * S,
    max_session_us=12 * 3600 * S,
)
KEY = (0xA77A_C4ED_0000_0001, 0x6B00_0000_0000_0001)


def alias_slices(tables: list[tuple[list[float], list[int]]], value_dtype: type) -> AliasSlices:
    """Concatenated alias slices from (weights, values) per key; an empty list is an empty slice."""
    first, prob, alias, value = [0], [], [], []
    for weights, values in tables:
        if weights:
            q, a = encode(integer_masses(np.array(weights, dtype=np.float64), 32), 32)
            prob.append(q)
            alias.append(a)
            value.append(np.array(values, dtype=value_dtype))
        first.append(first[-1] + len(weights))

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return AliasSlices(
        np.array(first, dtype=np.int64), cat(prob, np.uint32), cat(alias, np.uint32), cat(value, value_dtype)
    )


def raw(u: float) -> int:
    """A raw lane whose open uniform is u (to 2^-53)."""
    return min(int(u * 2.0**64), 2**64 - 1)


def arrivals(
    ts_s: list[float], lanes: list[tuple[float, float, float, float]], **cols: list[int]
) -> Arrivals:
    """One merchant's hand-made arrivals (country 0, POS unless given), flow ids 1..n."""
    n = len(ts_s)
    merchant_row = np.array(cols.get("merchant_row", [0] * n), dtype=np.int64)
    channel = np.array(cols.get("channel", [POS] * n), dtype=np.int64)
    return Arrivals(
        flow_id=np.arange(1, n + 1, dtype=np.uint64),
        merchant_row=merchant_row,
        slot_row=merchant_row * N_CHANNELS + channel,
        ts_us=(np.array(ts_s) * S).astype(np.int64),
        country=np.array(cols.get("country", [0] * n), dtype=np.int64),
        channel=channel,
        lanes=np.array([[raw(u) for u in row] for row in lanes], dtype=np.uint64),
    )


# two countries; POS pools: country 0 → parties 11, 12, 13 (equal), 1 → party 21; ECOM: 0 → 31, 1 → none
POOLS = alias_slices(
    [([1, 1, 1], [11, 12, 13]), ([1], [31]), ([], []), ([], []), ([1], [21]), ([], []), ([], []), ([], [])],
    np.uint64,
)
# foreign tables per (country, channel): country 0 → country 1, country 1 → country 0, for every channel
FOREIGN_TABLE = alias_slices([([1.0], [1])] * N_CHANNELS + [([1.0], [0])] * N_CHANNELS, np.int64)
SLOTS = RegularSlots(
    np.array([0, 5, 5, 5, 5], dtype=np.int64), np.array([101, 102, 103, 104, 105], np.uint64)
)
NOT = 0.999  # a coin that never fires
DOM = (NOT, 0.5, 0.5, 0.5)  # u(w1) = 0.5 ≥ p_regular .40 and (0.5 − .4)/.6 < .96: domestic


def run(arr: Arrivals, prob: Probabilities = PROB) -> Attached:
    return attach(arr, POOLS, FOREIGN_TABLE, SLOTS, prob)


def test_continuation_copies_the_previous_customer_within_the_gap() -> None:
    cont = (0.0, 0.5, 0.5, 0.9)  # w0 fires; the other lanes would pick another party if drawn
    arr = arrivals(
        [0, 100, 200, 2001, 2100],
        [(NOT, 0.5, 0.5, 0.1), cont, cont, cont, cont],
        channel=[POS, POS, POS, POS, ECOM],
    )
    out = run(arr)
    assert out.mode.tolist() == [DOMESTIC, CONTINUATION, CONTINUATION, DOMESTIC, DOMESTIC]
    assert out.party.tolist() == [11, 11, 11, 13, 31]  # 2001 s is 1801 s after 200 s; then a channel change
    assert out.copy_of.tolist() == [-1, 0, 0, -1, -1]  # a chain copies its first arrival


def test_regular_slot_is_the_skewed_draw() -> None:
    # R = 5, skew 1.25: u = 0.5 → ⌊5·0.5^1.25⌋ = ⌊2.10⌋ = 2; u = 0.3 → ⌊1.11⌋ = 1; u → 0: 0; u → 1: the last
    lanes = [(NOT, 0.1, u, 0.5) for u in (0.5, 0.3, 1e-9, 1 - 1e-12)]
    out = run(arrivals([0, 3600, 7200, 10800], lanes))
    assert out.mode.tolist() == [REGULAR] * 4
    assert out.party.tolist() == [103, 102, 101, 105]


def test_foreign_draws_country_then_party_and_empty_pools_give_no_party() -> None:
    # (0.99 − .4)/.6 ≥ .96 → foreign: country 0's table holds only country 1, whose POS pool holds party 21
    arr = arrivals(
        [0, 3600, 7200],
        [(NOT, 0.99, 0.5, 0.5), (NOT, 0.95, 0.5, 0.5), (NOT, 0.5, 0.5, 0.5)],
        country=[0, 1, 1],
        channel=[POS, ECOM, ECOM],
    )
    out = run(arr)
    assert out.mode.tolist() == [FOREIGN, FOREIGN, DOMESTIC]
    assert out.party.tolist() == [21, 31, 0]  # ECOM in country 1 has no pool: party 0 (no candidate)


def test_foreign_card_present_arrivals_go_to_the_day_s_visitors() -> None:
    # 3 days, 2 countries: party 77 visits country 0 on day 1, parties 88 and 99 on day 2 (POS); none on ECOM
    first = np.zeros(2 * N_CHANNELS * 3 + 1, dtype=np.int64)
    first[1 + 1 :] += 1  # key (0·4 + POS)·3 + 1 holds one party
    first[2 + 1 :] += 2  # key (0·4 + POS)·3 + 2 holds two
    trav = Travellers(first, np.array([77, 88, 99], dtype=np.uint64), 0, 3)
    day = 86_400.0
    foreign = (NOT, 0.99, 0.5, 0.75)  # the foreign branch; u(w3) = .75 picks the second of two visitors
    arr = arrivals(
        [0.5 * day, 1.5 * day, 2.5 * day, 2.6 * day, 3.5 * day],
        [foreign] * 5,
        channel=[POS, POS, POS, ECOM, POS],
    )
    out = attach(arr, POOLS, FOREIGN_TABLE, SLOTS, PROB, trav)
    # day 0: nobody visits → FOREIGN from country 1's pool; day 3 lies outside the travellers' days
    assert out.mode.tolist() == [FOREIGN, TRAVEL, TRAVEL, FOREIGN, FOREIGN]
    assert out.party.tolist() == [21, 77, 99, 0, 21]  # ECOM abroad: country 1 has no ECOM pool


def test_a_1801_s_gap_opens_a_new_session_and_1800_s_does_not() -> None:
    one = (NOT, 0.5, 0.5, 0.1)  # always party 11
    arr = arrivals([0, 1800, 3601, 3602], [one] * 4)
    out = run(arr)
    assert out.party.tolist() == [11] * 4
    assert out.session_id.tolist() == [1, 1, 3, 3]
    assert out.session_seq.tolist() == [1, 2, 1, 2]


def test_sessions_are_per_party_and_capped_at_12_hours() -> None:
    a, b = (NOT, 0.5, 0.5, 0.1), (NOT, 0.5, 0.5, 0.5)  # parties 11 and 12
    ts = [1000.0 * k for k in range(46)]  # party 11 every 1000 s for 12.5 h
    lanes = [a] * 46
    ts += [500.0, 1500.0, 9500.0]  # party 12 in between: its own sessions (1500 → 9500 is > 1800 s)
    lanes += [b] * 3
    order = np.argsort(ts, kind="stable")
    arr = arrivals([ts[i] for i in order], [lanes[i] for i in order])
    out = run(arr)
    by_ts = {ts[i]: r for r, i in enumerate(order)}
    sid = [int(out.session_id[by_ts[1000.0 * k]]) for k in range(46)]
    first = int(arr.flow_id[by_ts[0.0]])
    assert sid[:44] == [first] * 44  # 0 … 43,000 s: within 12 h of the start
    assert sid[44] == int(arr.flow_id[by_ts[44_000.0]]) and sid[45] == sid[44]  # 44,000 s > 43,200 s
    assert out.session_seq[by_ts[43_000.0]] == 44 and out.session_seq[by_ts[45_000.0]] == 2
    b_sid = [int(out.session_id[by_ts[t]]) for t in (500.0, 1500.0, 9500.0)]
    assert b_sid[0] == b_sid[1] == int(arr.flow_id[by_ts[500.0]]) != b_sid[2]


# ------------------------------------------------------------------------------ plain-Python re-derivation


def _pick(tables: AliasSlices, key: int, w: int) -> int | None:
    lo, hi = int(tables.first[key]), int(tables.first[key + 1])
    if hi <= lo:
        return None
    j = ((w >> 32) * (hi - lo)) >> 32
    col = j if (w & 0xFFFFFFFF) < int(tables.prob_q[lo + j]) else int(tables.alias[lo + j])
    return int(tables.value[lo + col])


def _replay(arr: Arrivals, pools: AliasSlices, foreign: AliasSlices, slots: RegularSlots) -> list[int]:
    """§4.4 steps 1–3 from numpy's Philox, walking rows as a reviewer would."""
    gen = PhiloxBlocks(KEY)
    party: list[int] = []
    for i in range(arr.flow_id.shape[0]):
        w = gen.block(int(arr.flow_id[i]), 0, 0, 0)
        ch, c = int(arr.channel[i]), int(arr.country[i])
        same_merchant = i > 0 and arr.merchant_row[i] == arr.merchant_row[i - 1]
        if (
            same_merchant
            and arr.channel[i - 1] == ch
            and arr.ts_us[i] - arr.ts_us[i - 1] <= PROB.gap_us
            and u01(w[0]) < PROB.p_continue[ch]
        ):
            party.append(party[-1])
            continue
        u = u01(w[1])
        if u < PROB.p_regular[ch]:
            k = int(arr.slot_row[i])
            lo, n = int(slots.first[k]), int(slots.first[k + 1] - slots.first[k])
            r = min(math.floor(n * u01(w[2]) ** PROB.slot_skew), n - 1)
            party.append(int(slots.party[lo + r]))
            continue
        if (u - PROB.p_regular[ch]) / (1.0 - PROB.p_regular[ch]) >= PROB.p_domestic[ch]:
            c = _pick(foreign, c * N_CHANNELS + ch, w[2])
        party.append(_pick(pools, c * N_CHANNELS + ch, w[3]) or 0)
    return party


def _world(
    n_merchants: int,
    per_merchant: int,
    n_countries: int,
    pool_size: int,
    seed: int,
    span_s: int = 14 * 86_400,
):  # type: ignore[no-untyped-def]
    """A random shard with real Philox lanes: merchants in row order, each with sorted times."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 2 * per_merchant, n_merchants)
    merchant_row = np.repeat(np.arange(n_merchants), sizes)
    ts = np.concatenate([np.sort(rng.integers(0, span_s * S, k)) for k in sizes])  # sorted per merchant
    home = rng.integers(0, n_countries, n_merchants)
    country = home[merchant_row]
    channel = np.where(rng.random(n_merchants) < 0.5, POS, ECOM)[merchant_row]
    flow_id = (merchant_row.astype(np.uint64) + 1 << np.uint64(40)) | np.concatenate(
        [np.arange(k) for k in sizes]
    ).astype(np.uint64)
    arr = Arrivals(
        flow_id,
        merchant_row,
        merchant_row * N_CHANNELS + channel,
        ts,
        country.astype(np.int64),
        channel.astype(np.int64),
        block_raw(KEY, flow_id, 0, 0, 0, lanes=4),
    )
    next_id = 1
    tables = []
    for _ in range(n_countries * N_CHANNELS):
        k = int(rng.integers(1, pool_size))
        tables.append((list(rng.pareto(2.3, k) + 0.01), list(range(next_id, next_id + k))))
        next_id += k
    pools = alias_slices(tables, np.uint64)
    foreign = alias_slices(
        [
            (
                [4.0 if (o - c) % 3 == 0 else 1.0 for o in range(n_countries) if o != c],
                [o for o in range(n_countries) if o != c],
            )
            for c in range(n_countries)
            for _ in range(N_CHANNELS)
        ],
        np.int64,
    )
    r_m = rng.integers(5, 40, n_merchants * N_CHANNELS)
    slots = RegularSlots(
        np.concatenate(([0], np.cumsum(r_m))).astype(np.int64),
        rng.integers(1, next_id, int(r_m.sum())).astype(np.uint64),
    )
    return arr, pools, foreign, slots


def test_decisions_match_a_plain_python_replay() -> None:
    arr, pools, foreign, slots = _world(40, 60, 5, 50, seed=1)
    out = attach(arr, pools, foreign, slots, PROB)
    assert out.party.tolist() == _replay(arr, pools, foreign, slots)
    modes = np.bincount(out.mode, minlength=4)
    assert modes.min() > 0  # every branch was exercised
    assert ((out.copy_of >= 0) == (out.mode == CONTINUATION)).all()
    assert (out.party[out.copy_of[out.copy_of >= 0]] == out.party[out.copy_of >= 0]).all()


def test_sessions_match_a_plain_python_walk() -> None:
    arr, pools, foreign, slots = _world(
        30, 80, 3, 4, seed=2, span_s=8 * 3600
    )  # tiny pools, 8 h: parties come back
    out = attach(arr, pools, foreign, slots, PROB)
    open_: dict[tuple[int, int], tuple[int, int, int, int]] = {}  # (merchant, party) → id, first, last, seq
    for i in range(arr.flow_id.shape[0]):
        key, ts = (int(arr.merchant_row[i]), int(out.party[i])), int(arr.ts_us[i])
        s = open_.get(key)
        if s and ts - s[2] <= PROB.gap_us and ts - s[1] <= PROB.max_session_us:
            s = (s[0], s[1], ts, s[3] + 1)
        else:
            s = (int(arr.flow_id[i]), ts, ts, 1)
        open_[key] = s
        assert (out.session_id[i], out.session_seq[i]) == (s[0], s[3])
    assert (out.session_seq > 1).mean() > 0.2


def test_any_split_into_merchant_batches_gives_the_same_rows() -> None:
    arr, pools, foreign, slots = _world(50, 40, 4, 30, seed=3)
    whole = attach(arr, pools, foreign, slots, PROB)
    cut = int(np.searchsorted(arr.merchant_row, 23))
    parts = [
        attach(Arrivals(*(c[sl] for c in arr)), pools, foreign, slots, PROB)
        for sl in (slice(0, cut), slice(cut, None))
    ]
    for name in ("party", "mode", "session_id", "session_seq"):
        assert np.concatenate([getattr(p, name) for p in parts]).tolist() == getattr(whole, name).tolist()


@pytest.mark.bench
def test_bench_attach_and_sessions_rows_per_second_on_one_core() -> None:
    arr, pools, foreign, slots = _world(20_000, 100, 40, 20_000, seed=4)
    attach(Arrivals(*(c[:1000] for c in arr)), pools, foreign, slots, PROB)  # compile
    threads = get_num_threads()
    set_num_threads(1)
    try:
        t = time.perf_counter()
        attach(arr, pools, foreign, slots, PROB)
        rate = arr.flow_id.shape[0] / (time.perf_counter() - t)
    finally:
        set_num_threads(threads)
    print(f"attach + sessions: {arr.flow_id.shape[0]:,} arrivals, {rate:,.0f} rows/s on one core")
    assert rate >= 1e6
