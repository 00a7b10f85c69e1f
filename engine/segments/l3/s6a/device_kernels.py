"""numba kernels of 6A.S5: one device's attribute and link draws from its own lane stream.

A device's stream is family 6A.device at ⟨owner_id, slot, owner_code, d⟩, d = 0, 1, 2, … (4 lanes a block):
lane 0 its type, lane 1 its OS, lane 2 its age, lanes 3 … 3 + K − 1 one Bernoulli per link kind (K kinds), and
for operator devices lane 3 + K its country (drawn outside these kernels). A link of kind k drawn by lane u
with probability p gets usage weight weight_k·(0.5 + u/p): u/p is uniform on (0, 1) given the link, so no
extra lane is needed. A device that drew no link gets its fallback kind at weight_k.
"""

from __future__ import annotations

import math

import numpy as np

from engine.kernels import njit, prange
from engine.kernels.philox import philox4x64_10, u01

ATTR_LANES = 3


@njit(cache=True, nogil=True)
def _lane(k0, k1, c0, c1, c2, j):  # type: ignore[no-untyped-def]
    w = philox4x64_10(c0, c1, c2, np.uint64(j // 4), k0, k1)
    return u01(w[j % 4])


@njit(cache=True, nogil=True)
def _pick(u: float, cdf: np.ndarray) -> int:
    t = u * cdf[cdf.shape[0] - 1]
    j = 0
    while j < cdf.shape[0] - 1 and t >= cdf[j]:
        j += 1
    return j


@njit(cache=True, nogil=True)
def kind_p(k, dtype, seg, cbp, p_type_kind, seg_factor, tilt):  # type: ignore[no-untyped-def]
    """P(link of kind k) = min(1, p[type, k]·factor[segment, k]·exp(tilt_k·(cbp − 0.5)))."""
    p = p_type_kind[dtype, k] * seg_factor[seg, k] * math.exp(tilt[k] * (cbp - 0.5))
    return min(1.0, p)


@njit(cache=True, nogil=True, parallel=True)
def device_draws(  # type: ignore[no-untyped-def]
    k0, k1, c0, c1, c2, type_row, type_cdf, os_row, os_cdf, max_age, seg, cbp, p_type_kind, seg_factor, tilt
):
    """Per device: type (by its type_cdf row), OS (os_cdf[os_row, type]), age in days (u·max_age[type]) and
    the bit mask of the link kinds it drew."""
    n = c0.shape[0]
    kinds = p_type_kind.shape[1]
    dtype = np.empty(n, dtype=np.int64)
    os = np.empty(n, dtype=np.int64)
    age = np.empty(n, dtype=np.int64)
    mask = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        t = _pick(_lane(k0, k1, c0[i], c1[i], c2[i], 0), type_cdf[type_row[i]])
        dtype[i] = t
        os[i] = _pick(_lane(k0, k1, c0[i], c1[i], c2[i], 1), os_cdf[os_row[i], t])
        age[i] = np.int64(math.floor(_lane(k0, k1, c0[i], c1[i], c2[i], 2) * max_age[t]))
        m = 0
        for k in range(kinds):
            u = _lane(k0, k1, c0[i], c1[i], c2[i], ATTR_LANES + k)
            if u < kind_p(k, t, seg[i], cbp[i], p_type_kind, seg_factor, tilt):
                m |= 1 << k
        mask[i] = m
    return dtype, os, age, mask


@njit(cache=True, nogil=True, parallel=True)
def link_rows(  # type: ignore[no-untyped-def]
    k0, k1, c0, c1, c2, dtype, seg, cbp, p_type_kind, seg_factor, tilt, weight, mask, fallback, offsets
):
    """Per link, in device then kind order: its kind and usage weight (a device with mask 0 gets one link of
    its fallback kind). offsets[i] is device i's first link row."""
    total = offsets[offsets.shape[0] - 1]
    kind_out = np.empty(total, dtype=np.int64)
    weight_out = np.empty(total, dtype=np.float64)
    kinds = p_type_kind.shape[1]
    for i in prange(c0.shape[0]):
        r = offsets[i]
        if mask[i] == 0:
            kind_out[r] = fallback[i]
            weight_out[r] = weight[fallback[i]]
            continue
        for k in range(kinds):
            if mask[i] >> k & 1:
                u = _lane(k0, k1, c0[i], c1[i], c2[i], ATTR_LANES + k)
                p = kind_p(k, dtype[i], seg[i], cbp[i], p_type_kind, seg_factor, tilt)
                kind_out[r] = k
                weight_out[r] = weight[k] * (0.5 + u / p)
                r += 1
    return kind_out, weight_out
