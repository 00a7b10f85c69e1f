"""5B's bucket counts (layer2_3 §2.5): NB2 or Poisson per (merchant, zone, bucket, channel) cell.

A cell's draws are the lane stream of `5B.count` ⟨merchant_id, zone_code, bucket_index << 8 | channel_code, i⟩
with i the block index (word 3), so a cell's count depends on its own key alone: never on the shard, the
batch, the scenario (common random numbers) or its neighbours. NB2: G ~ Gamma(κ, 1/κ) by Marsaglia–Tsang,
then N ~ Poisson(λG) (inversion below 10, PTRS above); a cell with λ ≤ lambda_eps draws nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.kernels.philox import stream_blocks, stream_draws, stream_new
from engine.kernels.samplers import gamma, poisson

_BLOCK_WORD = 3
LAW_POISSON, LAW_NB2 = 0, 1
_ZERO = np.uint64(0)


@njit(cache=True, nogil=True, parallel=True)
def cell_counts(k0, k1, merchant_id, zone_code, c2, lam, kappa, law, lambda_eps, count, blocks, draws):  # type: ignore[no-untyped-def]
    """count[i] (i64) and the blocks and lanes its stream used; c2 = bucket_index << 8 | channel_code."""
    for i in prange(lam.shape[0]):
        if not lam[i] > lambda_eps:
            count[i] = 0
            blocks[i] = 0
            draws[i] = 0
            continue
        st = stream_new(k0, k1, merchant_id[i], zone_code[i], c2[i], _ZERO, _BLOCK_WORD)
        mean = lam[i]
        if law == LAW_NB2:
            mean = lam[i] * gamma(st, kappa[i]) / kappa[i]
        count[i] = poisson(st, mean)
        blocks[i] = stream_blocks(st)
        draws[i] = stream_draws(st)


def bucket_counts(
    key: tuple[int, int],
    merchant_id: np.ndarray,
    zone_code: np.ndarray,
    bucket_index: np.ndarray,
    channel_code: np.ndarray,
    lam: np.ndarray,
    kappa: np.ndarray,
    *,
    law: int,
    lambda_eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, blocks, draws), each i64, per cell, cells in the caller's order."""
    n = lam.shape[0]
    count = np.empty(n, dtype=np.int64)
    blocks = np.empty(n, dtype=np.int64)
    draws = np.empty(n, dtype=np.int64)
    c2 = np.asarray(bucket_index, dtype=np.uint64) << np.uint64(8) | np.asarray(channel_code, dtype=np.uint64)
    cell_counts(
        np.uint64(key[0]),
        np.uint64(key[1]),
        np.ascontiguousarray(merchant_id, dtype=np.uint64),
        np.ascontiguousarray(zone_code, dtype=np.uint64),
        np.ascontiguousarray(c2),
        np.ascontiguousarray(lam, dtype=np.float64),
        np.ascontiguousarray(kappa, dtype=np.float64),
        np.int64(law),
        np.float64(lambda_eps),
        count,
        blocks,
        draws,
    )
    return count, blocks, draws
