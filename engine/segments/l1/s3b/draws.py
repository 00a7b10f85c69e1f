"""3B's per-row Philox draws: whole blocks (raw lanes and their uniforms) and the hybrid Beta share."""

from __future__ import annotations

import math

import numpy as np

from engine.kernels import njit, prange
from engine.kernels.philox import philox4x64_10, stream_blocks, stream_draws, stream_new, u01
from engine.kernels.samplers import check_sampler_bound, gamma, normal_from_u


@njit(cache=True, nogil=True, parallel=True)
def _blocks(k0, k1, c0, c1, c2, c3, raw, uni, z):  # type: ignore[no-untyped-def]
    for i in prange(c0.shape[0]):
        lanes = philox4x64_10(c0[i], c1[i], c2[i], c3[i], k0, k1)
        for j in range(4):
            raw[i, j] = lanes[j]
            uni[i, j] = u01(lanes[j])
        z[i, 0] = normal_from_u(uni[i, 0], uni[i, 1])
        z[i, 1] = normal_from_u(uni[i, 2], uni[i, 3])


def blocks(
    key: tuple[int, int], c0: np.ndarray, c1: np.ndarray | int = 0, c2: np.ndarray | int = 0, c3: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw lanes w0..w3 (u64) and their open uniforms of block ⟨c0,c1,c2,c3⟩ per row, each (n, 4), and the
    Box–Muller normals of (w0, w1) and (w2, w3), (n, 2): edges need a raw lane (the tile's alias decode)
    beside uniforms and a normal of the same block."""
    c0 = np.ascontiguousarray(c0, dtype=np.uint64)
    n = c0.shape[0]
    words = [np.ascontiguousarray(np.broadcast_to(np.asarray(w, np.uint64), (n,))) for w in (c1, c2, c3)]
    raw = np.empty((n, 4), dtype=np.uint64)
    uni = np.empty((n, 4), dtype=np.float64)
    z = np.empty((n, 2), dtype=np.float64)
    _blocks(np.uint64(key[0]), np.uint64(key[1]), c0, *words, raw, uni, z)
    return raw, uni, z


@njit(cache=True, nogil=True)
def _beta_shares(k0, k1, ids, alpha, beta, lo, hi, share, draws, nblocks):  # type: ignore[no-untyped-def]
    for i in range(ids.shape[0]):
        st = stream_new(k0, k1, ids[i], np.uint64(0), np.uint64(0), np.uint64(0), 3)
        g1 = gamma(st, alpha)
        g2 = gamma(st, beta)
        # a gamma that hit its bound is NaN: keep it NaN for the caller (min/max would clip it away)
        share[i] = g1 / (g1 + g2) if math.isnan(g1 + g2) else min(max(g1 / (g1 + g2), lo), hi)
        draws[i] = stream_draws(st)
        nblocks[i] = stream_blocks(st)


def beta_shares(
    key: tuple[int, int], merchant_ids: np.ndarray, alpha: float, beta: float, clip: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per merchant G₁/(G₁+G₂) from Gamma(α) then Gamma(β) on ⟨merchant_id, 0, 0, d⟩, clipped; returns
    (share, draws, blocks)."""
    ids = np.ascontiguousarray(merchant_ids, dtype=np.uint64)
    n = ids.shape[0]
    share = np.empty(n, dtype=np.float64)
    draws = np.empty(n, dtype=np.int64)
    nblocks = np.empty(n, dtype=np.int64)
    _beta_shares(
        np.uint64(key[0]), np.uint64(key[1]), ids, alpha, beta, clip[0], clip[1], share, draws, nblocks
    )
    check_sampler_bound(np.isnan(share), "3B.hybrid_share", state="3B.S1")
    return share, draws, nblocks
