"""1B.S2: population weights with a background share; uniform when a country has no population."""

import numpy as np
import pytest

from engine.segments.l1.s1b.s2_tile_weights import country_weights
from tests.conftest import shipped_policy

POLICY = shipped_policy("1B", "tile_weights")


def test_weights_formula_exact() -> None:
    w, basis = country_weights(np.array([0.0, 10.0, 30.0]), POLICY)
    assert basis == "POPULATION"
    assert w == pytest.approx([0.02 / 3, 0.98 * 0.25 + 0.02 / 3, 0.98 * 0.75 + 0.02 / 3])
    assert abs(w.sum() - 1.0) <= 1e-15


def test_zero_population_gives_uniform() -> None:
    w, basis = country_weights(np.zeros(4), POLICY)
    assert basis == "UNIFORM" and w.tolist() == [0.25] * 4


def test_many_tiles_still_sum_to_one() -> None:
    pop = np.random.default_rng(3).pareto(1.2, 1_000_000)  # test data only
    w, _ = country_weights(pop, POLICY)
    assert abs(w.sum() - 1.0) <= 1e-12 and (w > 0).all()
