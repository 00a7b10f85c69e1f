"""One Philox block per row: the open uniforms of its lanes, for families that draw once per entity."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.kernels.frozen import frozen
from engine.kernels.philox import philox4x64_10, u01


@njit(cache=True, nogil=True, parallel=True)
def _block_uniforms(k0, k1, c0, c1, c2, c3, out):  # type: ignore[no-untyped-def]
    for i in prange(c0.shape[0]):
        w0, w1, w2, w3 = philox4x64_10(c0[i], c1[i], c2[i], c3[i], k0, k1)
        lanes = (w0, w1, w2, w3)
        for j in range(out.shape[1]):
            out[i, j] = u01(lanes[j])


def _words(n: int, word: np.ndarray | int) -> np.ndarray:
    """A counter word per row, read-only (one kernel signature for arrays, scalars and any batch size)."""
    arr = np.asarray(word, dtype=np.uint64)
    return frozen(np.ascontiguousarray(np.broadcast_to(arr, (n,))))


def block_uniforms(
    key: tuple[int, int],
    c0: np.ndarray,
    c1: np.ndarray | int = 0,
    c2: np.ndarray | int = 0,
    c3: np.ndarray | int = 0,
    *,
    lanes: int = 1,
) -> np.ndarray:
    """u(w0..w{lanes-1}) of block ⟨c0,c1,c2,c3⟩ for every row; shape (n, lanes)."""
    if not 1 <= lanes <= 4:
        raise ValueError("a block has 4 lanes")
    c0 = frozen(np.ascontiguousarray(c0, dtype=np.uint64))
    n = c0.shape[0]
    out = np.empty((n, lanes), dtype=np.float64)
    _block_uniforms(
        np.uint64(key[0]), np.uint64(key[1]), c0, _words(n, c1), _words(n, c2), _words(n, c3), out
    )
    return out


@njit(cache=True, nogil=True, parallel=True)
def _block_raw(k0, k1, c0, c1, c2, c3, out):  # type: ignore[no-untyped-def]
    for i in prange(c0.shape[0]):
        lanes = philox4x64_10(c0[i], c1[i], c2[i], c3[i], k0, k1)
        for j in range(out.shape[1]):
            out[i, j] = lanes[j]


def block_raw(
    key: tuple[int, int],
    c0: np.ndarray,
    c1: np.ndarray | int = 0,
    c2: np.ndarray | int = 0,
    c3: np.ndarray | int = 0,
    *,
    lanes: int = 1,
) -> np.ndarray:
    """The raw 64-bit lanes w0..w{lanes-1} of block ⟨c0,c1,c2,c3⟩ per row, shape (n, lanes): alias decoding
    needs the whole word."""
    if not 1 <= lanes <= 4:
        raise ValueError("a block has 4 lanes")
    c0 = frozen(np.ascontiguousarray(c0, dtype=np.uint64))
    n = c0.shape[0]
    out = np.empty((n, lanes), dtype=np.uint64)
    _block_raw(np.uint64(key[0]), np.uint64(key[1]), c0, _words(n, c1), _words(n, c2), _words(n, c3), out)
    return out


def block_raw_lane0(
    key: tuple[int, int],
    c0: np.ndarray,
    c1: np.ndarray | int = 0,
    c2: np.ndarray | int = 0,
    c3: np.ndarray | int = 0,
) -> np.ndarray:
    """The raw lane w0 of block ⟨c0,c1,c2,c3⟩ per row."""
    return block_raw(key, c0, c1, c2, c3)[:, 0]
