"""1B.S2: population weights with a background share over populated land only; uniform when a country has no
population."""

import numpy as np
import pytest

from engine.segments.l1.s1b.s2_tile_weights import country_weights
from tests.conftest import shipped_policy

POLICY = shipped_policy("1B", "tile_weights")
AREA = np.full(3, 100.0)  # km²: a tile is populated from 100 persons (the shipped 1 person/km²)


def test_weights_formula_exact() -> None:
    w, basis = country_weights(np.array([0.0, 100.0, 300.0]), AREA, POLICY)
    assert basis == "POPULATION"
    assert w.tolist() == pytest.approx([0.0, 0.98 * 0.25 + 0.02 / 2, 0.98 * 0.75 + 0.02 / 2], abs=1e-16)
    assert w[0] == 0.0 and abs(w.sum() - 1.0) <= 1e-15


def test_background_only_on_populated_land() -> None:
    """Hand-computed: pops 0, 50, 100, 850 on 100 km² tiles. Σ = 1000. Tiles 2 and 3 reach 1 person/km²
    and share β = 0.02; tile 1 (0.5 /km²) keeps only its population share; tile 0 gets nothing."""
    w, _ = country_weights(np.array([0.0, 50.0, 100.0, 850.0]), np.full(4, 100.0), POLICY)
    assert w.tolist() == pytest.approx([0.0, 0.98 * 0.05, 0.98 * 0.10 + 0.01, 0.98 * 0.85 + 0.01], abs=1e-16)
    # the threshold is per km²: the same 50 persons on a 40 km² tile are populated
    w, _ = country_weights(np.array([0.0, 50.0]), np.array([100.0, 40.0]), POLICY)
    assert w.tolist() == [0.0, 1.0]


def test_threshold_zero_is_the_old_rule() -> None:
    """populated_density_min 0: every tile is populated, so the background reaches empty land again."""
    policy = POLICY.model_copy(update={"populated_density_min": 0.0})
    w, basis = country_weights(np.array([0.0, 10.0, 30.0]), AREA, policy)
    assert basis == "POPULATION"
    assert w.tolist() == pytest.approx([0.02 / 3, 0.98 * 0.25 + 0.02 / 3, 0.98 * 0.75 + 0.02 / 3])


def test_no_populated_tile_follows_population_alone() -> None:
    """People, but nowhere 1 person/km² (a thinly settled country at a coarse grid): β has nowhere to go."""
    w, basis = country_weights(np.array([0.0, 20.0, 60.0]), AREA, POLICY)
    assert basis == "POPULATION" and w.tolist() == [0.0, 0.25, 0.75]


def test_zero_population_gives_uniform() -> None:
    w, basis = country_weights(np.zeros(4), np.full(4, 100.0), POLICY)
    assert basis == "UNIFORM" and w.tolist() == [0.25] * 4


def test_many_tiles_still_sum_to_one() -> None:
    rng = np.random.default_rng(3)  # test data only
    pop = rng.pareto(1.2, 1_000_000) * (rng.random(1_000_000) < 0.6)  # 40 % empty tiles
    w, _ = country_weights(pop, np.full(pop.size, 1.0), POLICY)
    assert abs(w.sum() - 1.0) <= 1e-12
    assert ((w > 0) == (pop > 0)).all()  # exactly the tiles with people can be drawn
