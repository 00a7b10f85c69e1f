"""Count kernels of 1A: outlet totals (NB2 body or power-law chain tail, K ≥ 2 acceptance) and zero-truncated
Poisson."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.kernels.philox import stream_blocks, stream_draws, stream_new, stream_next_u01
from engine.kernels.samplers import (
    POISSON_BOUND,
    check_sampler_bound,
    discrete_power_law,
    gamma,
    poisson,
    poisson_zero_truncated_inversion,
)

# counter ⟨entity, attempt t, block d, 0⟩: the block index is word 2
_BLOCK_WORD = 2


@njit(cache=True, nogil=True, parallel=True)
def outlet_counts(
    k0,
    k1,
    ids,
    mu,
    phi,
    p_chain,
    tail_min,
    n_max,
    tail_alpha,
    max_attempts,
    n_out,
    attempts,
    blocks,
    draws,
    exhausted,
    tail,
):  # type: ignore[no-untyped-def]
    """Attempt t first draws its component: with p_chain a power-law chain size on [tail_min, n_max] (always
    ≥ 2, so accepted), else the NB2 body G ~ Gamma(φ,1), λ = (μ/φ)·G, K ~ Poisson(λ); the first K ≥ 2 wins."""
    for i in prange(ids.shape[0]):
        n_blocks = 0
        n_draws = 0
        n_out[i] = 2
        attempts[i] = max_attempts
        exhausted[i] = True
        tail[i] = False
        for t in range(max_attempts):
            st = stream_new(k0, k1, ids[i], np.uint64(t), np.uint64(0), np.uint64(0), _BLOCK_WORD)
            is_tail = stream_next_u01(st) < p_chain[i]
            if is_tail:
                k = discrete_power_law(stream_next_u01(st), tail_min, n_max, tail_alpha)
            else:
                k = poisson(st, mu[i] / phi[i] * gamma(st, phi[i]))
            n_blocks += stream_blocks(st)
            n_draws += stream_draws(st)
            if k == POISSON_BOUND:  # a rejection loop hit its bound: no retry, the caller raises
                n_out[i] = k
                exhausted[i] = False
                break
            if k >= 2:
                n_out[i] = k
                attempts[i] = t + 1
                exhausted[i] = False
                tail[i] = is_tail
                break
        blocks[i] = n_blocks
        draws[i] = n_draws


@njit(cache=True, nogil=True, parallel=True)
def ztp_counts(k0, k1, ids, lam, max_attempts, k_out, attempts, blocks, draws, exhausted):  # type: ignore[no-untyped-def]
    """K ≥ 1 from Poisson(λ) | K ≥ 1: one truncated inversion for λ < 10; PTRS with redraw on 0 above."""
    for i in prange(ids.shape[0]):
        exhausted[i] = False
        if lam[i] < 10.0:
            st = stream_new(k0, k1, ids[i], np.uint64(0), np.uint64(0), np.uint64(0), _BLOCK_WORD)
            k_out[i] = poisson_zero_truncated_inversion(stream_next_u01(st), lam[i])
            attempts[i] = 1
            blocks[i] = stream_blocks(st)
            draws[i] = stream_draws(st)
            continue
        n_blocks = 0
        n_draws = 0
        k_out[i] = 1
        attempts[i] = max_attempts
        exhausted[i] = True
        for t in range(max_attempts):
            st = stream_new(k0, k1, ids[i], np.uint64(t), np.uint64(0), np.uint64(0), _BLOCK_WORD)
            k = poisson(st, lam[i])
            n_blocks += stream_blocks(st)
            n_draws += stream_draws(st)
            if k == POISSON_BOUND:  # a rejection loop hit its bound: no retry, the caller raises
                k_out[i] = k
                exhausted[i] = False
                break
            if k >= 1:
                k_out[i] = k
                attempts[i] = t + 1
                exhausted[i] = False
                break
        blocks[i] = n_blocks
        draws[i] = n_draws


def run_count_kernel(
    kernel,
    key: tuple[int, int],
    ids: np.ndarray,
    *params: np.ndarray | int | float,
    family: str,
    state: str,
    flags: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Allocate outputs, run a count kernel, return its columns; `flags` names extra per-row bool outputs
    the kernel writes after `exhausted`. A count of POISSON_BOUND (a sampler that hit its bound) raises
    E_SAMPLER_BOUND naming `family`."""
    n = ids.shape[0]
    out = {
        "k": np.empty(n, dtype=np.int64),
        "attempts": np.empty(n, dtype=np.int64),
        "blocks": np.empty(n, dtype=np.int64),
        "draws": np.empty(n, dtype=np.int64),
        "exhausted": np.empty(n, dtype=np.bool_),
        **{name: np.empty(n, dtype=np.bool_) for name in flags},
    }
    kernel(
        np.uint64(key[0]),
        np.uint64(key[1]),
        np.ascontiguousarray(ids, dtype=np.uint64),
        *params,
        *out.values(),
    )
    check_sampler_bound(out["k"] == POISSON_BOUND, family, state=state)
    return out
