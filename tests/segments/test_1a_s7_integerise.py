"""1A.S7: largest-remainder integerisation with a home floor."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from engine.segments.l1.s1a.common import ceil_share
from engine.segments.l1.s1a.s7_integerise import integerise


def test_exact_split_with_floor() -> None:
    shares, n_sites, rr = integerise(10, np.array([0.2, 0.5, 0.3]), np.array([0, 1, 2]), 0.75)
    assert shares[0] == 0.75  # home lifted to the floor, foreigns rescaled
    assert n_sites.tolist() == [8, 1, 1]
    assert sorted(rr.tolist()) == [0, 1, 2]


def test_ceil_share_ignores_float_noise() -> None:
    assert ceil_share(np.array([0.7, 0.75, 0.6]), np.array([10, 4, 5])).tolist() == [7, 3, 3]


@given(
    st.integers(2, 3000),
    st.lists(st.floats(0.001, 1.0), min_size=1, max_size=8),
    st.sampled_from([0.5, 0.6, 0.7, 0.75]),
)
def test_conserves_and_respects_floor(n: int, weights: list[float], h: float) -> None:
    k = len(weights) - 1
    if n - int(ceil_share(np.array([h]), np.array([n]))[0]) < k:
        return  # k_cap would never allow it
    _, n_sites, _ = integerise(n, np.array(weights), np.arange(len(weights)), h)
    assert n_sites.sum() == n
    assert (n_sites >= 1).all()
    assert n_sites[0] >= ceil_share(np.array([h]), np.array([n]))[0]
