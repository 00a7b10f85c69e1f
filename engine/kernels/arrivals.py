"""5B.S4's arrival expansion (layer2_3 §2.6): counts → timestamped, routed, civil-time arrivals.

Per cell (merchant, zone, bucket, channel) arrival j is one `5B.arrival` block ⟨merchant_id, zone_code,
bucket_index << 8 | channel_code, j⟩: offset_us = ⌊u(w0)·3.6·10^9⌋ into the bucket, raw w1 to the router
(2B's `route_in_group` in the cell's tz group, or 3B's `route_virtual`). A segment is one (merchant, bucket):
its arrivals are sorted by (ts_utc, zone_rank, channel_code, j) — a stable sort on ts_utc of arrivals made in
(cell, j) order — and numbered `merchant_idx << 40 | (base + rank)`. Segments run in parallel; nothing
depends on which batch or shard a segment falls in.

Statuses per arrival: the router's (0 ok, 1 merchant without a slice, 3 tz group without sites) and 4, an
instant outside the tz cache. The alias slice is the router's own (`RouterTables`, `EdgeTables`) and is
decoded by its shared `_draw`; the slice is resolved once per cell and the merchant once per segment.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

from engine.kernels.frozen import frozen_fields
from engine.kernels.philox import philox4x64_10, u01
from engine.kernels.router import (
    GROUP_WITHOUT_SITES,
    OK,
    UNKNOWN_MERCHANT,
    EdgeTables,
    RouterTables,
    _draw,
    _row_of,
)

OUTSIDE_CACHE = 4
BUCKET_US = 3_600_000_000
DAY_US = 86_400_000_000
_BUCKET_F = float(BUCKET_US)
_NONE = np.uint64(0)  # never an id; a plain 0 would unify a u64 id with int64 into float64 and round it


class Clock(NamedTuple):
    """2A's tz_transitions flattened per tz_index: zone z's rows are first[z]..first[z+1]-1, valid_from µs."""

    first: np.ndarray  # i64 [Z+1]
    valid_from: np.ndarray  # i64, increasing within a zone
    offset_s: np.ndarray  # i64


class Targets(NamedTuple):
    """Per router member row (RouterTables.site_ids order) the site's country code; per edge member row
    (EdgeTables.edge_ids order) the edge's country code and tz_index."""

    site_country: np.ndarray  # i32
    edge_country: np.ndarray  # i32
    edge_tz: np.ndarray  # i64


class Cells(NamedTuple):
    """One batch of bucket_counts rows in (merchant_id, bucket_index, zone_rank, channel_code) order, and its
    segments: segment s is cells seg_first[s]..seg_first[s+1]-1, arrivals seg_out[s]..seg_out[s+1]-1."""

    merchant_id: np.ndarray  # u64
    merchant_idx: np.ndarray  # u64, 1-based rank in merchant_catalogue
    zone_code: np.ndarray  # u64
    c2: np.ndarray  # u64, bucket_index << 8 | channel_code
    bucket_start_us: np.ndarray  # i64
    tz_index: np.ndarray  # i64, the cell's zone
    country: np.ndarray  # i32, the cell's legal_country_iso code
    virtual: np.ndarray  # bool, routing VIRTUAL
    settle_tz: np.ndarray  # i64, the merchant's settlement tz_index (−1 when physical)
    count: np.ndarray  # i64
    seg_first: np.ndarray  # i64 [S+1]
    seg_out: np.ndarray  # i64 [S+1]
    seg_base: np.ndarray  # i64 [S], the merchant's arrivals before the segment


class Arrivals(NamedTuple):
    """Columnar output, one row per arrival, in (merchant_id, ts_utc, arrival_id) order."""

    arrival_id: np.ndarray  # u64
    cell: np.ndarray  # i64, the arrival's row in Cells
    ts_utc: np.ndarray  # i64 µs
    offset_s: np.ndarray  # i32, of the local clock
    tz_local: np.ndarray  # i32, tz_index of the local clock (the cell's, or the edge's)
    country: np.ndarray  # i32, the site's country (physical) or the cell's (virtual)
    site_id: np.ndarray  # u64, 0 when virtual
    edge_id: np.ndarray  # u64, 0 when physical
    edge_country: np.ndarray  # i32, −1 when physical
    settle_day: np.ndarray  # i32, days since 1970-01-01, −1 when physical
    status: np.ndarray  # u8


@njit(cache=True, nogil=True, inline="always")
def _offset_at(clock: Clock, tz: np.int64, ts: np.int64) -> np.int64:
    """UTC offset (s) in force at ts in zone tz: the last transition with valid_from ≤ ts; −2^31 outside."""
    lo, hi = clock.first[tz], clock.first[tz + 1]
    if hi <= lo or ts < clock.valid_from[lo]:
        return np.int64(-(1 << 31))
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if clock.valid_from[mid] <= ts:
            lo = mid
        else:
            hi = mid
    return clock.offset_s[lo]


@njit(cache=True, nogil=True)
def local_offsets(clock: Clock, tz: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Offsets (s) of instants ts (µs) in zones tz; −2^31 where the cache does not cover the instant."""
    out = np.empty(ts.shape[0], dtype=np.int64)
    for i in range(ts.shape[0]):
        out[i] = _offset_at(clock, np.int64(tz[i]), np.int64(ts[i]))
    return out


@njit(cache=True, nogil=True, inline="always")
def _settle_day(clock: Clock, tz: np.int64, ts: np.int64, cutoff_us: np.int64) -> np.int32:
    """3B's cut-off rule: the settlement zone's local date, +1 when local time is at or past the cut-off."""
    off = _offset_at(clock, tz, ts)
    if off == -(1 << 31):
        return np.int32(-(1 << 31))
    local = ts + off * 1_000_000
    day = local // DAY_US
    if local - day * DAY_US >= cutoff_us:
        day += 1
    return np.int32(day)


@njit(cache=True, nogil=True, inline="always")
def _stable_order(ts: np.ndarray, lo: np.int64, hi: np.int64, order: np.ndarray) -> None:
    """order[lo:hi] = a stable ascending sort of ts[lo:hi] as offsets from lo: insertion sort for the short
    segments that dominate, numba's merge sort above 32."""
    n = hi - lo
    if n > 32:
        order[lo:hi] = np.argsort(ts[lo:hi], kind="mergesort")
        return
    for r in range(n):
        q = r
        t = ts[lo + r]
        while q > 0 and ts[lo + order[lo + q - 1]] > t:
            order[lo + q] = order[lo + q - 1]
            q -= 1
        order[lo + q] = r


@njit(cache=True, nogil=True, inline="always")
def _cell_slice(router, edges, m_site: np.int64, m_edge: np.int64, virtual: bool, tz: np.int64):  # type: ignore[no-untyped-def]
    """(status, u32-word offset, n, first member row) of the alias slice a cell's arrivals draw from: the
    merchant's edge slice, or its site slice in the cell's tz group (2B's route_in_group, resolved once per
    cell instead of once per arrival)."""
    if virtual:
        if m_edge < 0:
            return np.int64(UNKNOWN_MERCHANT), np.int64(0), np.int64(0), np.int64(0)
        f = edges.e_first[m_edge]
        return np.int64(OK), edges.e_word[m_edge], edges.e_first[m_edge + 1] - f, f
    if m_site < 0:
        return np.int64(UNKNOWN_MERCHANT), np.int64(0), np.int64(0), np.int64(0)
    for g in range(router.g_first[m_site], router.g_first[m_site + 1]):
        if router.grp_tz[g] == tz:
            sl = router.grp_site[g]
            if sl < 0:
                break
            f = router.s_first[sl]
            return np.int64(OK), router.s_word[sl], router.s_first[sl + 1] - f, f
    return np.int64(GROUP_WITHOUT_SITES), np.int64(0), np.int64(0), np.int64(0)


@njit(cache=True, nogil=True)
def _segment(s, k0, k1, cells, router, edges, clock, targets, cutoff_us, out, scratch):  # type: ignore[no-untyped-def]
    """Segment s (one merchant, one bucket): draw its arrivals in (cell, j) order, sort them stably by ts_utc,
    then route and clock them. scratch = (ts, cell, w1, order) per arrival slot and (status, word, n, first)
    per cell."""
    ts_seg, cell_seg, w_seg, order, c_status, c_word, c_n, c_first = scratch
    c_lo, c_hi = cells.seg_first[s], cells.seg_first[s + 1]
    mid = cells.merchant_id[c_lo]
    m_site = _row_of(router.merchant_ids, mid)
    m_edge = _row_of(edges.merchant_ids, mid)
    o0 = cells.seg_out[s]
    o = o0
    for c in range(c_lo, c_hi):
        c_status[c], c_word[c], c_n[c], c_first[c] = _cell_slice(
            router, edges, m_site, m_edge, cells.virtual[c], cells.tz_index[c]
        )
        for j in range(cells.count[c]):
            w0, w1, _, _ = philox4x64_10(mid, cells.zone_code[c], cells.c2[c], np.uint64(j), k0, k1)
            off = min(np.int64(u01(w0) * _BUCKET_F), BUCKET_US - 1)
            ts_seg[o] = cells.bucket_start_us[c] + off
            cell_seg[o] = c
            w_seg[o] = w1
            o += 1
    _stable_order(ts_seg, o0, o, order)
    base = cells.seg_base[s]
    for r in range(o - o0):
        p = o0 + r
        q = o0 + order[p]
        c = cell_seg[q]
        ts = ts_seg[q]
        out.ts_utc[p] = ts
        out.cell[p] = c
        out.arrival_id[p] = (cells.merchant_idx[c] << np.uint64(40)) | np.uint64(base + r)
        status = np.uint8(c_status[c])
        row = np.int64(-1)
        if status == OK:
            row = c_first[c] + _draw(
                edges.edge_u32 if cells.virtual[c] else router.site_u32, c_word[c], c_n[c], w_seg[q]
            )
        if cells.virtual[c]:
            out.site_id[p] = 0
            out.edge_id[p] = edges.edge_ids[row] if row >= 0 else _NONE
            out.country[p] = cells.country[c]
            out.edge_country[p] = targets.edge_country[row] if row >= 0 else -1
            tz = targets.edge_tz[row] if row >= 0 else cells.tz_index[c]
            out.settle_day[p] = _settle_day(clock, cells.settle_tz[c], ts, cutoff_us)
        else:
            out.site_id[p] = router.site_ids[row] if row >= 0 else _NONE
            out.edge_id[p] = 0
            out.country[p] = targets.site_country[row] if row >= 0 else cells.country[c]
            out.edge_country[p] = -1
            tz = cells.tz_index[c]
            out.settle_day[p] = -1
        off_s = _offset_at(clock, tz, ts)
        if off_s == -(1 << 31) and status == OK:
            status = np.uint8(OUTSIDE_CACHE)
        out.tz_local[p] = tz
        out.offset_s[p] = off_s
        out.status[p] = status


@njit(cache=True, nogil=True, parallel=True)
def expand(k0, k1, cells, router, edges, clock, targets, cutoff_us, out, scratch):  # type: ignore[no-untyped-def]
    """Fill `out` (an Arrivals of length seg_out[-1]) segment by segment, in parallel."""
    for s in prange(cells.seg_first.shape[0] - 1):
        _segment(s, k0, k1, cells, router, edges, clock, targets, cutoff_us, out, scratch)


def segments(
    merchant_id: np.ndarray, bucket_index: np.ndarray, count: np.ndarray, carry: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """(seg_first, seg_out, seg_base, carry') of a batch of cells in segment order. `carry` is (merchant_id,
    its arrivals in earlier batches) for the merchant the previous batch ended on; carry' is this batch's."""
    n = merchant_id.shape[0]
    if n == 0:
        empty = np.zeros(1, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.int64), carry
    new_seg = np.ones(n, dtype=bool)
    new_seg[1:] = (merchant_id[1:] != merchant_id[:-1]) | (bucket_index[1:] != bucket_index[:-1])
    starts = np.flatnonzero(new_seg)
    seg_first = np.append(starts, n).astype(np.int64)
    seg_n = np.add.reduceat(count.astype(np.int64), starts)
    seg_out = np.concatenate([[0], np.cumsum(seg_n)]).astype(np.int64)
    seg_m = merchant_id[starts]
    new_m = np.ones(starts.size, dtype=bool)
    new_m[1:] = seg_m[1:] != seg_m[:-1]
    m_first = np.flatnonzero(new_m)
    # exclusive running total within each merchant
    seg_base = seg_out[:-1] - np.repeat(seg_out[m_first], np.diff(np.append(m_first, starts.size)))
    if int(seg_m[0]) == carry[0]:
        seg_base[: (m_first[1] if m_first.size > 1 else starts.size)] += carry[1]
    last = int(seg_m[-1])
    last_total = int(seg_base[-1] + seg_n[-1])
    return seg_first, seg_out, seg_base.astype(np.int64), (last, last_total)


def expand_arrivals(
    key: tuple[int, int],
    cells: Cells,
    router: RouterTables,
    edges: EdgeTables,
    clock: Clock,
    targets: Targets,
    cutoff_s: int,
) -> Arrivals:
    """Allocate and fill the batch's arrival columns."""
    n = int(cells.seg_out[-1])
    out = Arrivals(
        np.empty(n, np.uint64),
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.empty(n, np.int32),
        np.empty(n, np.int32),
        np.empty(n, np.int32),
        np.empty(n, np.uint64),
        np.empty(n, np.uint64),
        np.empty(n, np.int32),
        np.empty(n, np.int32),
        np.empty(n, np.uint8),
    )
    expand(  # inputs read-only whatever made them: one signature (frozen.py)
        np.uint64(key[0]),
        np.uint64(key[1]),
        frozen_fields(cells),
        frozen_fields(router),
        frozen_fields(edges),
        frozen_fields(clock),
        frozen_fields(targets),
        np.int64(cutoff_s * 1_000_000),
        out,
        (
            np.empty(n, np.int64),
            np.empty(n, np.int64),
            np.empty(n, np.uint64),
            np.empty(n, np.int64),
            *(np.empty(cells.count.shape[0], np.int64) for _ in range(4)),
        ),
    )
    return out


def kernel_threads(n: int | None = None) -> int:
    """The parallel kernels' thread count before the call; `n` sets it (S4 leaves a core to its writer
    thread while a batch is being written)."""
    before = int(get_num_threads())
    if n is not None:
        set_num_threads(max(1, n))
    return before
