"""5B's latent field (layer2_3 §2.4): a stationary log-Gaussian AR(1) per group over the hourly buckets.

Normals come from `5B.latent` ⟨group_id, k, 0, 0⟩: one block gives buckets 4k..4k+3 through two Box–Muller
pairs, (u(w0), u(w1)) then (u(w2), u(w3)), each cos branch first and sin branch second, so a scenario that
changes σ or φ reuses the very same normals (common random numbers).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from engine.kernels.philox import philox4x64_10, u01

_TWO_PI = 2.0 * math.pi
_ZERO = np.uint64(0)


@njit(cache=True, nogil=True)
def _normals(k0: np.uint64, k1: np.uint64, group_id: np.uint64, n: int, out: np.ndarray) -> None:
    """out[0:n] = the group's normals, bucket t from block t // 4, pair (t % 4) // 2, cos if t is even."""
    for k in range((n + 3) // 4):
        w = philox4x64_10(group_id, np.uint64(k), _ZERO, _ZERO, k0, k1)
        for p in range(2):
            r = math.sqrt(-2.0 * math.log(u01(w[2 * p])))
            a = _TWO_PI * u01(w[2 * p + 1])
            t = 4 * k + 2 * p
            if t < n:
                out[t] = r * math.cos(a)
            if t + 1 < n:
                out[t + 1] = r * math.sin(a)


@njit(cache=True, nogil=True, parallel=True)
def latent_ar1(k0, k1, group_ids, sigma, phi, n_buckets, clip_lo, clip_hi, z, factor, clipped):  # type: ignore[no-untyped-def]
    """Per group g (rows of z/factor/clipped, shape [G, H]): Z_0 = σN_0, Z_t = φZ_{t−1} + σ√(1−φ²)N_t,
    factor = exp(Z − σ²/2) clipped to [clip_lo, clip_hi]. Arithmetic in f64; blocks used = ⌈H/4⌉ per group."""
    for g in prange(group_ids.shape[0]):
        nrm = np.empty(n_buckets, dtype=np.float64)
        _normals(k0, k1, group_ids[g], n_buckets, nrm)
        s = sigma[g]
        innov = s * math.sqrt(1.0 - phi[g] * phi[g])
        half_var = 0.5 * s * s
        zt = 0.0
        for t in range(n_buckets):
            zt = s * nrm[t] if t == 0 else phi[g] * zt + innov * nrm[t]
            f = math.exp(zt - half_var)
            z[g, t] = zt
            clipped[g, t] = f < clip_lo or f > clip_hi
            factor[g, t] = min(max(f, clip_lo), clip_hi)


def latent_field(
    key: tuple[int, int],
    group_ids: np.ndarray,
    sigma: np.ndarray,
    phi: np.ndarray,
    n_buckets: int,
    clip: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z f64, factor f64, clipped bool), each [G, H], for groups in the caller's order."""
    g = group_ids.shape[0]
    z = np.empty((g, n_buckets), dtype=np.float64)
    factor = np.empty((g, n_buckets), dtype=np.float64)
    clipped = np.empty((g, n_buckets), dtype=np.bool_)
    latent_ar1(
        np.uint64(key[0]),
        np.uint64(key[1]),
        np.ascontiguousarray(group_ids, dtype=np.uint64),
        np.ascontiguousarray(sigma, dtype=np.float64),
        np.ascontiguousarray(phi, dtype=np.float64),
        np.int64(n_buckets),
        np.float64(clip[0]),
        np.float64(clip[1]),
        z,
        factor,
        clipped,
    )
    return z, factor, clipped


def latent_blocks(n_groups: int, n_buckets: int) -> int:
    """`5B.latent` blocks of a field: ⌈H/4⌉ per group."""
    return n_groups * ((n_buckets + 3) // 4)
