"""The 2B router (layer1 §2B.S6): group draw, then site draw, straight off the alias blobs.

5B routes ~10^8 arrivals, so everything per arrival is numba over a few flat arrays (`RouterTables`), which a
caller's own kernels take as one argument: no Python, no allocation per draw. The blobs stay as u32 words
(mapped, not copied); Python only builds the offset tables once and checks digests and headers at load.
Statuses: 0 ok, 1 unknown merchant, 2 day outside the horizon, 3 group without sites. No fallbacks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from engine.kernels import njit, prange
from engine.kernels.alias_blob import MAGIC, AliasLayout, alias_error, check_index_head
from engine.kernels.philox import philox4x64_10

OK, UNKNOWN_MERCHANT, DAY_OUTSIDE_HORIZON, GROUP_WITHOUT_SITES = 0, 1, 2, 3
_LO32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


class RouterTables(NamedTuple):
    """Flat arrays; merchants in merchant_id order, groups in tz_index order within a merchant."""

    merchant_ids: np.ndarray  # u64 [M], sorted
    g_word: np.ndarray  # i64 [M], u32-word offset of the merchant's day-0 group slice
    g_stride: np.ndarray  # i64 [M], words from one day's slice to the next
    g_days: np.ndarray  # i64 [M]
    g_first: np.ndarray  # i64 [M+1], the merchant's groups are rows g_first[m]..g_first[m+1]-1
    grp_tz: np.ndarray  # i64 [groups], tz_index of each group
    grp_site: np.ndarray  # i64 [groups], site slice row of each group, -1 when it has none
    s_word: np.ndarray  # i64 [S], u32-word offset of each site slice
    s_first: np.ndarray  # i64 [S+1], slice s's members are site_ids[s_first[s]:s_first[s+1]]
    site_ids: np.ndarray  # u64 [members], in slice then member order
    group_u32: np.ndarray  # u32, the group blob
    site_u32: np.ndarray  # u32, the site blob


def _words(blob: bytes | str | Path) -> tuple[np.ndarray, str, int]:
    """The blob as little-endian u32 words (memory-mapped for a path) and its sha256."""
    if isinstance(blob, (str, Path)):
        with open(blob, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        size = Path(blob).stat().st_size
        words = np.asarray(np.memmap(blob, dtype="<u4", mode="r")) if size else np.zeros(0, np.uint32)
        return words, digest, size
    return np.frombuffer(blob, dtype="<u4"), hashlib.sha256(blob).hexdigest(), len(blob)


def _check_headers(words: np.ndarray, at: np.ndarray, n: np.ndarray, layout: AliasLayout, what: str) -> None:
    """Every slice header (magic, n, prob_qbits, mass_bits) at once, against the index and the policy."""
    if at.size and (at.min() < 0 or (at + 4 + 2 * n).max() > words.size):
        raise alias_error("E_2B_ALIAS_HEADER", "a slice offset points past the blob", what)
    head = words[at[:, None] + np.arange(4)].astype(np.int64)
    expect = np.stack([np.full_like(n, MAGIC), n, np.full_like(n, layout.prob_qbits), np.full_like(n, 0)], 1)
    expect[:, 3] = layout.mass_bits
    bad = np.flatnonzero((head != expect).any(axis=1))
    if bad.size:
        raise alias_error("E_2B_ALIAS_HEADER", f"header {head[bad[0]].tolist()} at word {at[bad[0]]}", what)


def _slice_table(
    index: Mapping[str, Any],
    slices: Sequence[Mapping[str, Any]],
    blob: bytes | str | Path,
    member_ids: Sequence[int] | np.ndarray,
    layout: AliasLayout,
    what: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A per-slice blob (site or edge tables) checked against its index: (words, u32-word offset of each
    slice, first member row of each slice + end, member ids). `slices` in member order."""
    words, digest, size = _words(blob)
    check_index_head(index, size, digest, layout, f"{what} alias blob")
    n = np.array([int(s["n"]) for s in slices], dtype=np.int64)
    at = np.array([int(s["offset"]) // 4 for s in slices], dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(n)]).astype(np.int64)
    ids = np.ascontiguousarray(member_ids, dtype=np.uint64)
    if ids.size != first[-1]:
        raise ValueError(f"{ids.size} member {what} ids for {first[-1]} slice members")
    _check_headers(words, at, n, layout, f"{what} alias blob")
    return words, at, first, ids


def load_router(
    site_index: Mapping[str, Any],
    site_blob: bytes | str | Path,
    member_site_ids: Sequence[int] | np.ndarray,
    group_index: Mapping[str, Any],
    group_blob: bytes | str | Path,
    layout: AliasLayout,
) -> RouterTables:
    """Router tables over the two blobs. `member_site_ids` is s2_site_alias_members.site_id in its PK order
    (= slice order, then member order). Checks both blob digests and every slice header against the index."""
    slices = site_index["slices"]
    sw, s_word, s_first, site_ids = _slice_table(
        site_index, slices, site_blob, member_site_ids, layout, "site"
    )
    gw, gdig, gsize = _words(group_blob)
    check_index_head(group_index, gsize, gdig, layout, "group alias blob")
    row_of = {(int(s["merchant_id"]), int(s["tz_index"])): i for i, s in enumerate(slices)}

    ms = sorted(group_index["merchants"], key=lambda m: int(m["merchant_id"]))
    n_g = np.array([int(m["n_groups"]) for m in ms], dtype=np.int64)
    g_first = np.concatenate([[0], np.cumsum(n_g)]).astype(np.int64)
    grp_tz = np.array([int(t) for m in ms for t in m["tz_indexes"]], dtype=np.int64)
    grp_site = np.array(
        [row_of.get((int(m["merchant_id"]), int(t)), -1) for m in ms for t in m["tz_indexes"]], dtype=np.int64
    )
    g_word = np.array([int(m["offset"]) // 4 for m in ms], dtype=np.int64)
    g_stride = np.array([int(m["slice_length"]) // 4 for m in ms], dtype=np.int64)
    g_days = np.array([int(m["days"]) for m in ms], dtype=np.int64)
    day_at = np.repeat(g_word, g_days) + np.repeat(g_stride, g_days) * (
        np.arange(g_days.sum()) - np.repeat(np.cumsum(g_days) - g_days, g_days)
    )
    _check_headers(gw, day_at.astype(np.int64), np.repeat(n_g, g_days), layout, "group alias blob")
    return RouterTables(
        np.array([int(m["merchant_id"]) for m in ms], dtype=np.uint64),
        g_word,
        g_stride,
        g_days,
        g_first,
        grp_tz,
        grp_site,
        s_word,
        s_first,
        site_ids,
        gw,
        sw,
    )


@njit(cache=True, nogil=True, inline="always")
def _draw(words: np.ndarray, at: np.int64, n: np.int64, w: np.uint64) -> np.int64:
    """§2B.S2's shared decoder (as alias.decode_draw) on an interleaved slice whose header is at word `at`:
    prob_q[j] and alias[j] sit side by side, so a draw touches one cache line."""
    j = np.int64(((w >> _S32) * np.uint64(n)) >> _S32)
    p = at + np.int64(4) + np.int64(2) * j
    if (w & _LO32) < np.uint64(words[p]):
        return j
    return np.int64(words[p + 1])


@njit(cache=True, nogil=True, inline="always")
def _row_of(ids: np.ndarray, merchant_id: np.uint64) -> np.int64:
    """Lower bound by hand (numba's np.searchsorted costs ~8x more per call); −1 if absent."""
    key = np.uint64(merchant_id)
    lo, hi = np.int64(0), np.int64(ids.shape[0])
    while lo < hi:
        mid = (lo + hi) >> 1
        if ids[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < ids.shape[0] and ids[lo] == key:
        return lo
    return np.int64(-1)


@njit(cache=True, nogil=True)
def route_physical(
    t: RouterTables, merchant_id: np.uint64, day_index: np.int64, w_group: np.uint64, w_site: np.uint64
) -> tuple[np.int64, np.int64, np.uint64]:
    """(status, tz_index, site_id) of one physical arrival: the (merchant, day) group slice on w_group, then
    the (merchant, group) site slice on w_site; site_id 0 (never an id) unless status is 0. A convenience
    over route_batch (one-row arrays); volume goes through route_batch."""
    status, tz, site = route_batch(
        t,
        np.full(1, merchant_id, dtype=np.uint64),
        np.full(1, day_index, dtype=np.int64),
        np.full(1, w_group, dtype=np.uint64),
        np.full(1, w_site, dtype=np.uint64),
    )
    return np.int64(status[0]), np.int64(tz[0]), site[0]


@njit(cache=True, nogil=True, inline="always")
def route_in_group(
    t: RouterTables, merchant_id: np.uint64, tz_index: np.int64, w_site: np.uint64
) -> tuple[np.int64, np.uint64]:
    """(status, site_id) for a caller that already fixed the tz group."""
    m = _row_of(t.merchant_ids, merchant_id)
    if m < 0:
        return np.int64(UNKNOWN_MERCHANT), np.uint64(0)
    for g in range(t.g_first[m], t.g_first[m + 1]):
        if t.grp_tz[g] == tz_index:
            s = t.grp_site[g]
            if s < 0:
                break
            k = _draw(t.site_u32, t.s_word[s], t.s_first[s + 1] - t.s_first[s], w_site)
            return np.int64(OK), t.site_ids[t.s_first[s] + k]
    return np.int64(GROUP_WITHOUT_SITES), np.uint64(0)


# rows per parallel chunk: inside a chunk the loop is sequential, so the merchant looked up last is reused
# (5B emits arrivals in merchant order: one binary search per merchant and chunk, not per arrival)
CHUNK = 8192


@njit(cache=True, nogil=True, inline="always")
def _route_row(
    t: RouterTables, m: np.int64, d: np.int64, w_group: np.uint64, w_site: np.uint64
) -> tuple[np.uint8, np.int32, np.uint64]:
    """(status, tz_index, site_id) of one arrival of merchant row m (−1: unknown); inlined into the batch
    loops (a real call per arrival that takes the tables costs more than the draw once they outgrow the
    caches)."""
    if m < 0:
        return np.uint8(UNKNOWN_MERCHANT), np.int32(-1), np.uint64(0)
    if d < 0 or d >= t.g_days[m]:
        return np.uint8(DAY_OUTSIDE_HORIZON), np.int32(-1), np.uint64(0)
    g0 = t.g_first[m]
    g = g0 + _draw(t.group_u32, t.g_word[m] + d * t.g_stride[m], t.g_first[m + 1] - g0, w_group)
    s = t.grp_site[g]
    if s < 0:
        return np.uint8(GROUP_WITHOUT_SITES), np.int32(t.grp_tz[g]), np.uint64(0)
    k = _draw(t.site_u32, t.s_word[s], t.s_first[s + 1] - t.s_first[s], w_site)
    return np.uint8(OK), np.int32(t.grp_tz[g]), t.site_ids[t.s_first[s] + k]


@njit(cache=True, nogil=True, parallel=True)
def route_batch(
    t: RouterTables, merchant_ids: np.ndarray, day_index: np.ndarray, w_group: np.ndarray, w_site: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's (status u8, tz_index i32 (−1 if none), site_id u64 (0 if none)) from its two raw lanes,
    chunks of rows in parallel (layer1 §2B.S6 target: ≥ 2·10^7 draws/s a core; docs/benchmarks.md)."""
    n = merchant_ids.shape[0]
    status = np.zeros(n, dtype=np.uint8)
    tz = np.full(n, -1, dtype=np.int32)
    site = np.zeros(n, dtype=np.uint64)
    for c in prange((n + CHUNK - 1) // CHUNK):
        last, m = np.uint64(0), np.int64(-1)  # 0 is never a merchant id
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            if merchant_ids[i] != last:
                last = merchant_ids[i]
                m = _row_of(t.merchant_ids, last)
            status[i], tz[i], site[i] = _route_row(t, m, np.int64(day_index[i]), w_group[i], w_site[i])
    return status, tz, site


@njit(cache=True, nogil=True, parallel=True)
def route_keyed(
    t: RouterTables,
    k0: np.uint64,
    k1: np.uint64,
    c0: np.ndarray,
    c1: np.ndarray,
    c2: np.ndarray,
    c3: np.ndarray,
    merchant_ids: np.ndarray,
    day_index: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As route_batch, drawing each row's lanes itself: w0 (group) and w1 (site) of the caller's family
    block ⟨c0, c1, c2, c3⟩ under key (k0, k1). Fused so the lanes never travel through memory."""
    n = merchant_ids.shape[0]
    status = np.zeros(n, dtype=np.uint8)
    tz = np.full(n, -1, dtype=np.int32)
    site = np.zeros(n, dtype=np.uint64)
    for c in prange((n + CHUNK - 1) // CHUNK):
        last, m = np.uint64(0), np.int64(-1)
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            if merchant_ids[i] != last:
                last = merchant_ids[i]
                m = _row_of(t.merchant_ids, last)
            w0, w1, _, _ = philox4x64_10(c0[i], c1[i], c2[i], c3[i], k0, k1)
            status[i], tz[i], site[i] = _route_row(t, m, np.int64(day_index[i]), w0, w1)
    return status, tz, site


# ---------------------------------------------------------------------------------------------- 3B edges


class EdgeTables(NamedTuple):
    """3B's edge tables (layer1 §3B.S3–S4): one slice per virtual or hybrid merchant, merchant_id order."""

    merchant_ids: np.ndarray  # u64 [M], sorted
    e_word: np.ndarray  # i64 [M], u32-word offset of the merchant's edge slice
    e_first: np.ndarray  # i64 [M+1], the merchant's members are edge_ids[e_first[m]:e_first[m+1]]
    edge_ids: np.ndarray  # u64 [members], in slice then member (edge_id) order
    edge_u32: np.ndarray  # u32, the edge blob


def load_edge_router(
    edge_index: Mapping[str, Any],
    edge_blob: bytes | str | Path,
    member_edge_ids: Sequence[int] | np.ndarray,
    layout: AliasLayout,
) -> EdgeTables:
    """Edge tables over `edge_alias.bin`. `member_edge_ids` is s3_edge_alias_members.edge_id in its PK order
    (merchant_id, member_index). Checks the blob digest and every slice header against the index."""
    slices = sorted(edge_index["slices"], key=lambda s: int(s["merchant_id"]))
    words, at, first, ids = _slice_table(edge_index, slices, edge_blob, member_edge_ids, layout, "edge")
    merchants = np.array([int(s["merchant_id"]) for s in slices], dtype=np.uint64)
    return EdgeTables(merchants, at, first, ids, words)


@njit(cache=True, nogil=True)
def route_virtual(t: EdgeTables, merchant_id: np.uint64, w_edge: np.uint64) -> tuple[np.int64, np.uint64]:
    """(status, edge_id) of one virtual arrival: the merchant's edge slice decoded on one raw lane w_edge
    (§2B.S2's shared decoder); edge_id 0 (never an id) with status UNKNOWN_MERCHANT for a merchant without
    edges (a physical one). Only that merchant's edges can come back."""
    m = _row_of(t.merchant_ids, merchant_id)
    if m < 0:
        return np.int64(UNKNOWN_MERCHANT), np.uint64(0)
    k = _draw(t.edge_u32, t.e_word[m], t.e_first[m + 1] - t.e_first[m], w_edge)
    return np.int64(OK), t.edge_ids[t.e_first[m] + k]
