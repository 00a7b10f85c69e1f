"""Philox4x64-10, the engine's only random generator, and the lane stream every sampler reads.

A draw is addressed by (key, counter), never by a position in a shared stream, so any subset of entities
replays identically on any shard in any order (design README §4, layer1 §0 "RNG").

Bit-exact with Random123's philox4x64-10 and with ``numpy.random.Philox``. Beware numpy's convention:
``np.random.Philox(counter=c, key=k).random_raw(4)`` increments the counter *before* its first block, so it
equals ``philox4x64_10(c + 1, k)`` here (the tests pin this down).

All integer arithmetic is done on ``np.uint64`` values: in numba, mixing uint64 with a plain int promotes to
float64, which would silently destroy the bits. The entry points that take key/counter integers are compiled
eagerly for uint64: a lazily typed dispatcher first compiled for int64 would reject a later Python int >= 2^63
(half of all keys) with an OverflowError instead of compiling a uint64 version.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# Random123 constants (philox.h): round multipliers and Weyl key increments.
_M0 = np.uint64(0xD2E7470EE14C6C93)
_M1 = np.uint64(0xCA5A826395121157)
_W0 = np.uint64(0x9E3779B97F4A7C15)
_W1 = np.uint64(0xBB67AE8584CAA73B)
_S11 = np.uint64(11)
_ONE = np.uint64(1)

# u01 constants. (m + 0.5) for m >= 2^52 is a tie in float64 and rounds to even, so m = 2^53 - 1 would give
# exactly 1.0: the result is clamped to the largest double below 1 to keep the open interval.
_TWO_M53 = 2.0**-53
_BELOW_ONE = 1.0 - 2.0**-53

# Lane-stream state layout (one uint64 array per stream).
_K0 = 0  # key word 0
_K1 = 1  # key word 1
_C = 2  # counter words c0..c3 at _C.._C+3; the block word holds the index of the *next* block
_BW = 6  # which counter word (0..3) is the block index
_POS = 7  # next lane in the buffer, 0..4 (4 = buffer exhausted)
_DRAWS = 8  # lanes consumed
_BLOCKS = 9  # blocks generated
_BUF = 10  # lanes w0..w3 of the current block at _BUF.._BUF+3
STREAM_WORDS = 14

_SIG_PHILOX = "UniTuple(uint64, 4)(uint64, uint64, uint64, uint64, uint64, uint64)"


@intrinsic
def _mulhilo(typingctx, a, b):  # type: ignore[no-untyped-def]
    """Full 64x64 -> 128-bit product as (hi, lo): numba has no uint128 type, but LLVM has i128, which x86-64
    and arm64 lower to one widening multiply (3× the block rate of the 32-bit-halves form it replaces)."""
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        i128 = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        lo = builder.trunc(product, ir.IntType(64))
        hi = builder.trunc(builder.lshr(product, ir.Constant(i128, 64)), ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (hi, lo))

    return sig, codegen


@njit(_SIG_PHILOX, cache=True, nogil=True)
def philox4x64_10(c0, c1, c2, c3, k0, k1) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:
    """One Philox4x64 block (10 rounds) for counter ⟨c0,c1,c2,c3⟩ and key (k0,k1): lanes (w0,w1,w2,w3)."""
    x0, x1, x2, x3 = c0, c1, c2, c3
    key0, key1 = k0, k1
    for r in range(10):
        if r > 0:
            key0 += _W0
            key1 += _W1
        hi0, lo0 = _mulhilo(_M0, x0)
        hi1, lo1 = _mulhilo(_M1, x2)
        x0, x1, x2, x3 = hi1 ^ x1 ^ key0, lo1, hi0 ^ x3 ^ key1, lo0
    return x0, x1, x2, x3


@njit("float64(uint64)", cache=True, nogil=True)
def u01(x) -> float:
    """Open-interval uniform ((x >> 11) + 0.5)·2^-53, clamped below 1 (see _BELOW_ONE): never 0, never 1."""
    u = (np.float64(x >> _S11) + 0.5) * _TWO_M53
    return min(u, _BELOW_ONE)


@njit("uint64[::1](uint64, uint64, uint64, uint64, uint64, uint64, int64)", cache=True, nogil=True)
def stream_new(k0, k1, c0, c1, c2, c3, block_word) -> np.ndarray:
    """A lane stream over counter ⟨c0..c3⟩; word `block_word` is the block index and starts at its value."""
    st = np.zeros(STREAM_WORDS, dtype=np.uint64)
    st[_K0] = k0
    st[_K1] = k1
    st[_C + 0] = c0
    st[_C + 1] = c1
    st[_C + 2] = c2
    st[_C + 3] = c3
    if block_word < 0 or block_word > 3:
        raise ValueError("block_word must be 0..3")
    st[_BW] = np.uint64(block_word)
    st[_POS] = np.uint64(4)
    return st


@njit(cache=True, nogil=True)
def stream_next_raw(st: np.ndarray) -> np.uint64:
    """Next raw 64-bit lane: w0..w3 of block d, then of block d+1, ...; blocks are generated lazily."""
    pos = st[_POS]
    if pos >= 4:
        w0, w1, w2, w3 = philox4x64_10(st[_C], st[_C + 1], st[_C + 2], st[_C + 3], st[_K0], st[_K1])
        st[_BUF] = w0
        st[_BUF + 1] = w1
        st[_BUF + 2] = w2
        st[_BUF + 3] = w3
        bw = _C + np.int64(st[_BW])
        st[bw] = st[bw] + _ONE
        st[_BLOCKS] += _ONE
        pos = np.uint64(0)
    st[_POS] = pos + _ONE
    st[_DRAWS] += _ONE
    return st[_BUF + np.int64(pos)]


@njit(cache=True, nogil=True)
def stream_next_u01(st: np.ndarray) -> float:
    """Next lane as an open uniform."""
    return u01(stream_next_raw(st))


@njit(cache=True, nogil=True)
def stream_draws(st: np.ndarray) -> int:
    """Lanes consumed so far (the ledger's `draws`)."""
    return np.int64(st[_DRAWS])


@njit(cache=True, nogil=True)
def stream_blocks(st: np.ndarray) -> int:
    """Blocks generated so far (the ledger's `blocks`); unconsumed lanes of a block count here only."""
    return np.int64(st[_BLOCKS])


@njit("void(uint64, uint64, uint64[:], uint64, uint64, uint64, int64, float64[:])", cache=True, nogil=True)
def uniforms_by_id(k0, k1, ids: np.ndarray, c1, c2, c3, lane, out: np.ndarray) -> None:
    """out[i] = u01 of lane `lane` of the block at counter ⟨ids[i], c1, c2, c3⟩: one block per entity."""
    if lane < 0 or lane > 3:
        raise ValueError("lane must be 0..3")
    for i in range(ids.shape[0]):
        w = philox4x64_10(ids[i], c1, c2, c3, k0, k1)
        out[i] = u01(w[lane])
