"""The shared integer alias encoder/decoder (layer1 §2B.S2), used by 1B, 2B and 3B.

Masses are exact integers summing to G = 2^mass_bits, so a table can be decoded back to its masses and
compared bit for bit; draws take one raw 64-bit lane: the high word picks a column, the low word the coin.
"""

from __future__ import annotations

import numpy as np
from numba import njit

PROB_QBITS = 32


@njit(cache=True, nogil=True)
def integer_masses(weights: np.ndarray, mass_bits: int) -> np.ndarray:
    """⌊G·p_i/Σp⌋, the deficit +1 to the largest fractional parts (ties: lower index), zeros raised to 1."""
    n = weights.shape[0]
    g = np.uint64(1) << np.uint64(mass_bits)
    total = weights.sum()
    scaled = weights / total * float(g)
    mass = np.floor(scaled).astype(np.uint64)
    frac = scaled - np.floor(scaled)
    deficit = int(g) - int(mass.sum())
    if deficit > 0:
        order = np.argsort(-frac, kind="mergesort")  # stable: ties keep the lower index first
        for k in range(deficit):
            mass[order[k % n]] += np.uint64(1)
    for i in range(n):
        if mass[i] == 0:
            j = 0
            for m in range(n):
                if mass[m] > mass[j]:
                    j = m
            mass[j] -= np.uint64(1)
            mass[i] = np.uint64(1)
    return mass


@njit(cache=True, nogil=True)
def encode(mass: np.ndarray, mass_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer Walker–Vose over exact masses; returns (prob_q as u32, alias as u32)."""
    n = mass.shape[0]
    g = np.int64(1) << np.int64(mass_bits)
    s = mass.astype(np.int64) * np.int64(n)
    prob = np.full(n, g, dtype=np.int64)
    alias = np.arange(n).astype(np.int64)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    ns = 0
    nl = 0
    for i in range(n):
        if s[i] < g:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    hs = 0
    hl = 0
    while hs < ns and hl < nl:
        a = small[hs]
        hs += 1
        b = large[hl]
        hl += 1
        prob[a] = s[a]
        alias[a] = b
        s[b] -= g - s[a]
        if s[b] < g:
            small[ns] = b
            ns += 1
        else:
            large[nl] = b
            nl += 1
    shift = PROB_QBITS - mass_bits
    cap = (np.int64(1) << np.int64(PROB_QBITS)) - 1
    prob_q = np.empty(n, dtype=np.uint32)
    for i in range(n):
        q = prob[i] << shift if shift >= 0 else prob[i] >> -shift
        prob_q[i] = min(q, cap)
    return prob_q, alias.astype(np.uint32)


@njit(cache=True, nogil=True)
def decode_draw(w: np.uint64, prob_q: np.ndarray, alias: np.ndarray) -> int:
    """Column j from the high word, coin r from the low word: j if r < prob_q[j] else alias[j]."""
    n = np.uint64(prob_q.shape[0])
    j = ((w >> np.uint64(32)) * n) >> np.uint64(32)
    r = w & np.uint64(0xFFFFFFFF)
    if r < np.uint64(prob_q[j]):
        return int(j)
    return int(alias[j])


@njit(cache=True, nogil=True)
def decoded_masses(prob_q: np.ndarray, alias: np.ndarray, mass_bits: int) -> np.ndarray:
    """The masses a table implies: column j gives prob[j] to j and G − prob[j] to alias[j], over n."""
    n = prob_q.shape[0]
    g = np.int64(1) << np.int64(mass_bits)
    shift = PROB_QBITS - mass_bits
    acc = np.zeros(n, dtype=np.int64)
    for j in range(n):
        if alias[j] == j:
            acc[j] += g
        else:
            p = np.int64(prob_q[j]) >> shift if shift >= 0 else np.int64(prob_q[j]) << -shift
            acc[j] += p
            acc[alias[j]] += g - p
    out = np.empty(n, dtype=np.uint64)
    for j in range(n):
        out[j] = np.uint64(acc[j] // n)
    return out
