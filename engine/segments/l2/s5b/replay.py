"""5B's count sampler re-derived in plain Python over numpy's Philox (engine.core.validation.Lanes), never
the numba kernels: 5B.S5 re-runs S3 on sampled cells with it, and the kernel tests compare against it. The
Marsaglia–Tsang gamma and the Poisson (inversion below 10, PTRS above) are 1A's plain-Python replays: the
same README §4 samplers, written out once."""

from __future__ import annotations

from engine.core.validation import Lanes, PhiloxBlocks
from engine.segments.l1.s1a.replay import gamma, poisson

COUNT_BLOCK_WORD = 3  # `5B.count` ⟨merchant_id, zone_code, b << 8 | channel, i⟩: i is the block index


def cell_count(
    gen: PhiloxBlocks,
    merchant_id: int,
    zone_code: int,
    c2: int,
    lam: float,
    kappa: float,
    nb2: bool,
    eps: float,
) -> tuple[int, int, int]:
    """(count, blocks, draws) of one cell; λ ≤ eps draws nothing. NB2: G ~ Gamma(κ)/κ, N ~ Poisson(λG)."""
    if not lam > eps:
        return 0, 0, 0
    s = Lanes(gen, [merchant_id, zone_code, c2, 0], block_word=COUNT_BLOCK_WORD)
    mean = lam * gamma(s, kappa) / kappa if nb2 else lam
    return poisson(s, mean), s.blocks, s.draws
