"""The shared integer alias encoder/decoder: exact masses, exact decode, draws follow the masses."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from engine.kernels.alias import decode_draw, decoded_masses, encode, integer_masses
from engine.kernels.philox import philox4x64_10


def test_integer_masses_exact_rounding_and_floor_of_one() -> None:
    mass = integer_masses(np.array([0.5, 0.25, 0.125, 0.125, 1e-12]), 32)
    assert mass.tolist() == [2**31 - 1, 2**30, 2**29, 2**29, 1]  # the zero was raised to 1 from the largest
    assert int(mass.sum()) == 2**32


def test_deficit_goes_to_largest_fractions_ties_lower_index() -> None:
    mass = integer_masses(np.array([1.0, 1.0, 1.0]), 4)  # 16/3 = 5.33 each, deficit 1 → index 0
    assert mass.tolist() == [6, 5, 5]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(1e-9, 1e3), min_size=1, max_size=300), st.sampled_from([8, 16, 32]))
def test_decode_recovers_masses_exactly(weights: list[float], bits: int) -> None:
    w = np.array(weights)
    if w.size > 2**bits:
        return
    mass = integer_masses(w, bits)
    prob_q, alias = encode(mass, bits)
    assert int(mass.sum()) == 2**bits and (mass >= 1).all()
    assert np.array_equal(decoded_masses(prob_q, alias, bits), mass)


def test_draws_follow_masses() -> None:
    w = np.array([5.0, 1.0, 3.0, 0.5, 0.5])
    mass = integer_masses(w, 32)
    prob_q, alias = encode(mass, 32)
    n = 50_000
    counts = np.zeros(w.size, dtype=np.int64)
    for i in range(n):
        w0 = philox4x64_10(
            np.uint64(i), np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(7), np.uint64(9)
        )[0]
        counts[decode_draw(np.uint64(w0), prob_q, alias)] += 1
    expected = mass / 2**32 * n
    assert stats.chisquare(counts, expected).pvalue > 1e-4
