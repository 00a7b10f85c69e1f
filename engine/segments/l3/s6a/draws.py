"""The count samplers and mix tables 6A.S2, 6A.S4 and 6A.S5 share: a count consumes exactly one uniform, so
the draw accounting is one lane per count whatever the value (design §0.4: bounded loops)."""

from __future__ import annotations

import math

import numpy as np

from engine.kernels import njit, prange


@njit(cache=True, nogil=True)
def truncated_poisson_one(u: float, lam: float, lo: int, k_max: int) -> int:
    """Inverse CDF of Poisson(λ) restricted to [lo, k_max]: the smallest k with u·Z ≤ Σ_{lo..k} p_j, where Z
    is the support's mass (a loop bounded by k_max)."""
    total = 0.0
    term = math.exp(-lam)
    for k in range(k_max + 1):
        if k >= lo:
            total += term
        term *= lam / (k + 1)
    acc = 0.0
    term = math.exp(-lam)
    for k in range(k_max + 1):
        if k >= lo:
            acc += term
            if u * total <= acc:
                return k
        term *= lam / (k + 1)
    return k_max


@njit(cache=True, nogil=True, parallel=True)
def truncated_poisson_rows(u: np.ndarray, lam: np.ndarray, kmax: int) -> np.ndarray:
    """Poisson(λ) conditioned on [0, kmax] by inversion (`truncated_poisson_one`), row by row over uniforms
    `u` and means `lam`."""
    out = np.empty(u.shape[0], dtype=np.int64)
    for i in prange(u.shape[0]):
        out[i] = truncated_poisson_one(u[i], lam[i], 0, kmax)
    return out


def cdf_table(mixes: list[dict[str, float]], categories: tuple[str, ...]) -> np.ndarray:
    """Rows of cumulative probabilities in `categories` order (a category a mix leaves out has p 0), for
    device_kernels' inverse-CDF picks."""
    return np.array([np.cumsum([m.get(c, 0.0) for c in categories]) for m in mixes], dtype=np.float64)


def truncated_poisson_tail(lam: float, kmax: int) -> float:
    """P(X > kmax) for X ~ Poisson(λ): the mass a cap at kmax cuts off (S0's cap-consistency check)."""
    term = math.exp(-lam)
    cdf = term
    for k in range(1, kmax + 1):
        term *= lam / k
        cdf += term
    return max(0.0, 1.0 - cdf)
