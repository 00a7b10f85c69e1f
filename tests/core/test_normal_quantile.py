"""The AS241 inverse normal CDF (engine/kernels/normal.py) against scipy.special.ndtri (Cephes).

Bound: 1.2e-15 relative to scipy over 10^6 points spread over the centre and both tails down to 1e-300
(measured max 1.03e-15). Both are a few ulps off the exact quantile: against 60-digit mpmath, AS241's largest
error on the worst points was 8.3e-16 and scipy's 6.8e-16, so the two can differ by their sum.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from engine.kernels.normal import _A, _B, _C, _D, _E, _F, lognormal_quantile, ndtri, ndtri_array

REL_BOUND = 1.2e-15
MAX_BACK_ULPS = 8  # measured 5
# AS241's region boundaries: |u − ½| = 0.425 and r = √(−ln u) = 5 (u = e^−25)
SPLITS = [0.075, 0.925, math.exp(-25.0), -math.expm1(-25.0)]


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / np.maximum(np.abs(b), np.finfo(float).tiny)


def test_agrees_with_scipy_on_a_million_points_including_tails() -> None:
    rng = np.random.default_rng(241)
    u = np.concatenate(
        [
            rng.random(500_000),
            np.exp(-rng.random(300_000) * 690.0),  # lower tail down to 1e-300
            -np.expm1(-rng.random(200_000) * 36.7),  # upper tail up to 1 − 1e-16
            [1e-300, 5e-324, 1e-16, 1.0 - 1e-16, 0.5, *SPLITS],
        ]
    )
    u = u[(u > 0.0) & (u < 1.0)]
    assert u.size > 999_000
    assert _rel(ndtri_array(u), special.ndtri(u)).max() <= REL_BOUND


@pytest.mark.parametrize(
    ("u", "x"),
    [
        (0.5, 0.0),
        (0.975, 1.959963984540054),
        (0.8413447460685429, 1.0),  # Φ(1)
        (0.022750131948179195, -2.0),  # Φ(−2)
        (1e-300, -37.0470962993612),
    ],
)
def test_known_quantiles(u: float, x: float) -> None:
    assert ndtri(u) == pytest.approx(x, rel=1e-15, abs=1e-15)


def test_edges_follow_scipy() -> None:
    for u in [0.0, 1.0, -0.1, 1.1, math.nan, math.inf]:
        ours, ref = ndtri(u), float(special.ndtri(u))
        assert ours == ref or (math.isnan(ours) and math.isnan(ref))


def test_monotone_at_draw_resolution() -> None:
    """Strictly increasing wherever neighbouring uniforms differ by far more than an ulp."""
    rng = np.random.default_rng(7)
    u = np.sort(np.concatenate([rng.random(200_000), np.exp(-rng.random(100_000) * 690.0)]))
    assert (np.diff(ndtri_array(u)) > 0.0).all()


def test_monotone_to_rounding_at_ulp_steps_across_region_boundaries() -> None:
    """Double by double, rounding can step back a few ulps of x (scipy's ndtri does too): never more than
    MAX_BACK_ULPS, including across AS241's region boundaries and on the u01 grid of Philox draws (2^-53)."""
    centres = [*SPLITS, 0.5, 0.8413447460685429, *np.random.default_rng(9).random(20)]
    steps = np.arange(-5_000, 5_000)
    for c in centres:
        for spacing in (np.spacing(c), 2.0**-53):
            u = c + steps * spacing
            x = ndtri_array(u[(u > 0.0) & (u < 1.0)])
            assert (np.diff(x) >= -MAX_BACK_ULPS * np.spacing(np.abs(x[1:]))).all()


def test_symmetric_where_one_minus_u_is_exact() -> None:
    u = np.random.default_rng(3).integers(1, 2**39, 100_000) / 2.0**40  # u and 1 − u both exact
    assert (ndtri_array(1.0 - u) == -ndtri_array(u)).all()


def test_scalar_and_array_agree() -> None:
    u = np.random.default_rng(5).random(1000)
    assert ndtri_array(u).tolist() == [ndtri(v) for v in u]


def _ndtri_py(u: float) -> float:
    """AS241 in plain Python: what a validation replay computes."""

    def ratio(num: tuple[float, ...], den: tuple[float, ...], x: float) -> float:
        p, q = num[7], den[7]
        for k in range(6, -1, -1):
            p, q = p * x + num[k], q * x + den[k]
        return p / q

    q = u - 0.5
    if abs(q) <= 0.425:
        return q * ratio(_A, _B, 0.180625 - q * q)
    r = math.sqrt(-math.log(min(u, 1.0 - u)))
    x = ratio(_C, _D, r - 1.6) if r <= 5.0 else ratio(_E, _F, r - 5.0)
    return math.copysign(x, q)


def test_plain_python_replay_is_bit_exact() -> None:
    """numba compiles without fused multiply-adds, so a replay with Python floats gives the same bits."""
    rng = np.random.default_rng(11)
    u = np.concatenate([rng.random(5_000), np.exp(-rng.random(5_000) * 690.0), SPLITS])
    assert [_ndtri_py(v) for v in u.tolist()] == ndtri_array(u).tolist()


def test_lognormal_quantile_against_scipy() -> None:
    assert lognormal_quantile(0.5, 35.0, 0.9) == 35.0
    for u, median, sigma in [(0.1, 35.0, 0.9), (0.99, 0.25, 0.6), (1e-9, 180.0, 1.2)]:
        ref = stats.lognorm.ppf(u, s=sigma, scale=median)
        assert lognormal_quantile(u, median, sigma) == pytest.approx(ref, rel=1e-14)
