"""Every sampler against scipy (KS or chi-square), its lane consumption, and the RNG ledger.

Fixed family keys make every test deterministic; n ~ 20k–50k with p > 1e-4 keeps them stable while a wrong
sampler (wrong shape, off-by-one, broken tail) fails by orders of magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from engine.core.rng import RngLedger, family_key
from engine.kernels.philox import stream_blocks, stream_draws, stream_new, stream_next_u01
from engine.kernels.samplers import (
    categorical_inverse_cdf,
    dirichlet,
    gamma,
    gumbel_from_u,
    normal_from_u,
    poisson,
    poisson_zero_truncated_inversion,
    std_normal,
)

P_MIN = 1e-4
PHASH = "0" * 64


def new_stream(label: str, entity: int = 1) -> np.ndarray:
    """A sequential stream for one test: counter ⟨entity, 0, 0, d⟩ under a fixed test family key."""
    return stream_new(*family_key(2024, PHASH, label), entity, 0, 0, 0, 3)


def draw(label: str, n: int, sample: Callable[[np.ndarray], float]) -> np.ndarray:
    s = new_stream(label)
    return np.array([sample(s) for _ in range(n)])


def chi2_pvalue(samples: np.ndarray, lo: int, probs: np.ndarray, min_expected: float = 20.0) -> float:
    """Chi-square of integer samples against P(X = lo + i) = probs[i] (tails folded into the end cells);
    adjacent cells are merged until each expects at least `min_expected`."""
    n = samples.size
    counts = np.bincount(np.clip(samples, lo, lo + probs.size - 1) - lo, minlength=probs.size)
    obs, exp = [], []
    acc_o, acc_e = 0, 0.0
    for o, p in zip(counts, probs, strict=True):
        acc_o += o
        acc_e += n * p
        if acc_e >= min_expected:
            obs.append(acc_o)
            exp.append(acc_e)
            acc_o, acc_e = 0, 0.0
    obs[-1] += acc_o
    exp[-1] += acc_e
    exp_arr = np.array(exp)
    return float(stats.chisquare(obs, exp_arr * n / exp_arr.sum()).pvalue)


def poisson_cells(lam: float, lo: int = 0) -> tuple[int, np.ndarray]:
    """Poisson pmf on its 1e-12..1-1e-12 quantile range (from `lo`), tails folded in."""
    dist = stats.poisson(lam)
    start = max(lo, int(dist.ppf(1e-12)))
    stop = int(dist.ppf(1 - 1e-12))
    probs = dist.pmf(np.arange(start, stop + 1))
    probs[0] += dist.cdf(start - 1) - dist.cdf(lo - 1)
    probs[-1] += dist.sf(stop)
    return start, probs


def test_normal_from_u_is_box_muller_cos_branch():
    assert normal_from_u(np.exp(-0.5), 0.0) == pytest.approx(1.0, rel=1e-15)
    assert normal_from_u(np.exp(-2.0), 0.5) == pytest.approx(-2.0, rel=1e-15)


def test_std_normal_ks_and_two_lanes_each():
    s = new_stream("t.normal")
    x = np.array([std_normal(s) for _ in range(50_000)])
    assert stats.kstest(x, stats.norm.cdf).pvalue > P_MIN
    assert (stream_draws(s), stream_blocks(s)) == (100_000, 25_000)


@pytest.mark.parametrize("alpha", [0.3, 1.0, 2.5, 40.0])
def test_gamma_ks(alpha):
    x = draw(f"t.gamma.{alpha}", 30_000, lambda s: gamma(s, alpha))
    assert stats.kstest(x, stats.gamma(alpha).cdf).pvalue > P_MIN


@pytest.mark.parametrize(("alpha", "extra"), [(0.3, 1), (2.5, 0)])
def test_gamma_uses_three_lanes_per_try_plus_boost(alpha, extra):
    s = new_stream(f"t.gamma_lanes.{alpha}")
    tries = 0
    for _ in range(2_000):
        before = stream_draws(s)
        gamma(s, alpha)
        used = stream_draws(s) - before - extra
        assert used > 0
        assert used % 3 == 0
        tries += used // 3
    assert 2_000 <= tries < 2_000 * 1.1  # Marsaglia–Tsang accepts > 95 % of tries


def test_gamma_tiny_alpha_is_finite():
    x = draw("t.gamma_tiny", 2_000, lambda s: gamma(s, 0.01))
    assert np.all(np.isfinite(x))
    assert np.all(x >= 0.0)


@pytest.mark.parametrize("lam", [0.5, 3.0, 9.9])
def test_poisson_inversion_chi2_and_one_lane_each(lam):
    n = 50_000
    s = new_stream(f"t.poisson.{lam}")
    x = np.array([poisson(s, lam) for _ in range(n)])
    assert chi2_pvalue(x, *poisson_cells(lam)) > P_MIN
    assert (stream_draws(s), stream_blocks(s)) == (n, n // 4)


@pytest.mark.parametrize("lam", [10.0, 37.5, 1e3, 1e6])
def test_poisson_ptrs_chi2_mean_var(lam):
    n = 40_000
    s = new_stream(f"t.ptrs.{lam}")
    x = np.array([poisson(s, lam) for _ in range(n)])
    assert chi2_pvalue(x, *poisson_cells(lam)) > P_MIN
    assert abs(x.mean() - lam) < 5 * np.sqrt(lam / n)
    assert abs(x.var(ddof=1) / lam - 1) < 5 * np.sqrt(2 / n + 1 / (lam * n))
    draws = stream_draws(s)
    assert draws % 2 == 0
    assert 2 * n <= draws < 2 * n * 1.4  # PTRS: ~1.32 tries per variate at λ = 10, ~1.12 at 1e6


@pytest.mark.parametrize("lam", [0.2, 2.0, 9.5])
def test_zero_truncated_poisson_chi2(lam):
    x = draw(f"t.ztp.{lam}", 40_000, lambda s: poisson_zero_truncated_inversion(stream_next_u01(s), lam))
    assert x.min() >= 1
    lo, probs = poisson_cells(lam, lo=1)
    assert chi2_pvalue(x, lo, probs / probs.sum()) > P_MIN


def test_zero_truncated_poisson_small_lambda_and_extremes():
    lam = 1e-3
    assert poisson_zero_truncated_inversion(2.0**-54, lam) == 1
    assert poisson_zero_truncated_inversion(1.0 - 2.0**-53, lam) >= 2
    # P(K ≥ 2 | K ≥ 1) = 1 − λ e^-λ / (1 − e^-λ): the boundary sits there, not at the untruncated CDF.
    p1 = lam * np.exp(-lam) / -np.expm1(-lam)
    assert poisson_zero_truncated_inversion(p1 * (1 - 1e-9), lam) == 1
    assert poisson_zero_truncated_inversion(p1 * (1 + 1e-9), lam) == 2
    with pytest.raises(ValueError, match="lam < 10"):
        poisson_zero_truncated_inversion(0.5, 10.0)


def test_gumbel_ks():
    x = draw("t.gumbel", 50_000, lambda s: gumbel_from_u(stream_next_u01(s)))
    assert stats.kstest(x, stats.gumbel_r.cdf).pvalue > P_MIN
    assert np.isfinite(gumbel_from_u(2.0**-54))
    assert np.isfinite(gumbel_from_u(1.0 - 2.0**-53))


def test_dirichlet_marginals_are_beta_and_rows_sum_to_one():
    alpha = np.array([0.3, 1.0, 2.5, 6.0])
    n = 20_000
    s = new_stream("t.dirichlet")
    x = np.empty((n, alpha.size))
    for i in range(n):
        dirichlet(s, alpha, x[i])
    np.testing.assert_allclose(x.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    for j, a in enumerate(alpha):
        assert stats.kstest(x[:, j], stats.beta(a, alpha.sum() - a).cdf).pvalue > P_MIN


def test_dirichlet_consumes_its_gammas_lanes_in_order():
    alpha = np.array([0.5, 3.0])
    key_stream, ref = new_stream("t.dir_lanes"), new_stream("t.dir_lanes")
    out = np.empty(2)
    dirichlet(key_stream, alpha, out)
    g = np.array([gamma(ref, 0.5), gamma(ref, 3.0)])
    np.testing.assert_allclose(out, g / g.sum(), rtol=1e-14)
    assert stream_draws(key_stream) == stream_draws(ref)


def test_dirichlet_tiny_alpha_never_divides_by_zero():
    s = new_stream("t.dir_tiny")
    out = np.empty(3)
    for _ in range(500):
        dirichlet(s, np.full(3, 1e-3), out)
        assert np.all(np.isfinite(out))
        assert out.sum() == pytest.approx(1.0, abs=1e-12)


def test_categorical_chi2_and_zero_weights_never_chosen():
    weights = np.array([0.1, 0.0, 0.25, 0.4, 0.25, 0.0])
    cdf = np.cumsum(weights) * (1 + 1e-12)  # a total that is not exactly 1
    x = draw("t.categorical", 50_000, lambda s: categorical_inverse_cdf(stream_next_u01(s), cdf))
    counts = np.bincount(x, minlength=weights.size)
    assert counts[1] == 0
    assert counts[5] == 0
    keep = weights > 0
    assert stats.chisquare(counts[keep], weights[keep] * x.size).pvalue > P_MIN


def test_categorical_boundaries():
    cdf = np.array([0.25, 0.5, 0.75, 1.0])
    assert categorical_inverse_cdf(0.25, cdf) == 1
    assert categorical_inverse_cdf(np.nextafter(0.25, 0), cdf) == 0
    assert categorical_inverse_cdf(2.0**-54, cdf) == 0
    assert categorical_inverse_cdf(1.0 - 2.0**-53, cdf) == 3
    tail_zero = np.array([0.0, 0.5, 1.0, 1.0])
    assert categorical_inverse_cdf(2.0**-54, tail_zero) == 1
    assert categorical_inverse_cdf(1.0, tail_zero) == 2  # out-of-contract u = 1 still avoids the zero tail
    assert categorical_inverse_cdf(0.9999, np.array([0.5, 0.9999999])) == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.0, 10.0), min_size=1, max_size=12).filter(lambda w: sum(w) > 0),
    st.floats(2.0**-54, 1.0 - 2.0**-53),
)
@example(weights=[2.2250738585e-313], u=1.0 - 2.0**-52)  # a subnormal total: u·total rounds to the total
def test_categorical_matches_searchsorted(weights, u):
    cdf = np.cumsum(weights)
    target = u * cdf[-1]
    # where rounding puts the target at the total (subnormal totals do), the contract is the first index
    # reaching the total; elsewhere it is searchsorted's
    expected = np.searchsorted(
        cdf, cdf[-1] if target >= cdf[-1] else target, side="left" if target >= cdf[-1] else "right"
    )
    assert categorical_inverse_cdf(u, cdf) == expected


class NumpyLanes:
    """new_stream's open uniforms re-derived without the kernels: numpy's Philox gives block ⟨entity, 0, 0, d⟩
    (it bumps its counter before each block, so it starts one below) and u = ((x >> 11) + ½)·2^-53."""

    def __init__(self, label: str, entity: int) -> None:
        self.key = np.array(family_key(2024, PHASH, label), dtype=np.uint64)
        self.entity = entity
        self.lanes: list[int] = []
        self.used = 0

    def __call__(self) -> float:
        if self.used % 4 == 0:
            counter = np.array([self.entity - 1, 0, 0, self.used // 4], dtype=np.uint64)
            self.lanes = [int(x) for x in np.random.Philox(counter=counter, key=self.key).random_raw(4)]
        x = self.lanes[self.used % 4]
        self.used += 1
        return min(((x >> 11) + 0.5) * 2.0**-53, 1.0 - 2.0**-53)


def textbook_normal(u: NumpyLanes) -> float:
    """Box–Muller's cos branch: radius from the first lane, angle from the second."""
    radius = math.sqrt(-2.0 * math.log(u()))
    return radius * math.cos(2.0 * math.pi * u())


def textbook_gamma(u: NumpyLanes, alpha: float) -> float:
    """Marsaglia & Tsang (2000): each try a normal (2 lanes), then its uniform; for α < 1, G(α+1)·U^(1/α)
    with U the lane after the accepted try."""
    d = (alpha if alpha >= 1.0 else alpha + 1.0) - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x, v_u = textbook_normal(u), u()
        t = 1.0 + c * x
        if t > 0.0:
            v = t**3
            if v_u < 1.0 - 0.0331 * x**4 or math.log(v_u) < 0.5 * x**2 + d * (1.0 - v + math.log(v)):
                break
    return d * v if alpha >= 1.0 else d * v * u() ** (1.0 / alpha)


def test_samplers_read_the_lanes_the_textbook_algorithms_read() -> None:
    """Values and lane counts re-derived from numpy's Philox and the published algorithms (Poisson λ < 10 by
    inverting scipy's CDF): reading another lane, swapping two, or skipping one changes what comes out."""
    s, u = new_stream("t.replay", entity=99), NumpyLanes("t.replay", 99)
    for _ in range(1_000):  # α = 1 puts ~0.7 % of tries at t ≤ 0, whose uniform is still drawn
        assert std_normal(s) == pytest.approx(textbook_normal(u), rel=1e-13, abs=1e-300)
        assert gamma(s, 0.7) == pytest.approx(textbook_gamma(u, 0.7), rel=1e-12, abs=1e-300)
        assert poisson(s, 4.2) == int(stats.poisson.ppf(u(), 4.2))
        assert gamma(s, 1.0) == pytest.approx(textbook_gamma(u, 1.0), rel=1e-12)
        assert stream_draws(s) == u.used
    assert stream_blocks(s) == -(-u.used // 4)


def test_ledger_exact_values_and_merge():
    a = RngLedger()
    a.record("1A.ztp", draws=7, blocks=3, counter_lo=10, counter_hi=20)
    a.record("1A.ztp", draws=5, blocks=2, counter_lo=4, counter_hi=12)
    a.record("1A.gumbel", draws=100, blocks=100, counter_lo=2**63, counter_hi=2**64 - 1, streams=100)
    b = RngLedger()
    b.record("1A.ztp", draws=1, blocks=1, counter_lo=30, counter_hi=30)
    b.record("1A.hurdle", draws=2, blocks=2, counter_lo=0, counter_hi=1, streams=2)
    a.merge(b)
    assert a.as_dict() == {
        "1A.gumbel": {
            "draws": 100,
            "blocks": 100,
            "streams": 100,
            "counter_lo": "9223372036854775808",
            "counter_hi": "18446744073709551615",
        },
        "1A.hurdle": {"draws": 2, "blocks": 2, "streams": 2, "counter_lo": "0", "counter_hi": "1"},
        "1A.ztp": {"draws": 13, "blocks": 6, "streams": 3, "counter_lo": "4", "counter_hi": "30"},
    }
    assert list(a.as_dict()) == ["1A.gumbel", "1A.hurdle", "1A.ztp"]
    a.record("1A.hurdle", draws=1, blocks=1, counter_lo=0, counter_hi=0)
    assert b.as_dict()["1A.hurdle"]["draws"] == 2  # merge copies: it never aliases the other ledger's tallies


def test_ledger_merge_is_order_independent():
    shards = []
    for i in range(3):
        led = RngLedger()
        led.record("5B.arrivals", draws=10 * i + 1, blocks=i + 1, counter_lo=100 * i, counter_hi=100 * i + 9)
        shards.append(led)
    forward, backward = RngLedger(), RngLedger()
    for led in shards:
        forward.merge(led)
    for led in reversed(shards):
        backward.merge(led)
    assert forward.as_dict() == backward.as_dict()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"draws": -1, "blocks": 0, "counter_lo": 0, "counter_hi": 0},
        {"draws": 0, "blocks": 0, "counter_lo": 5, "counter_hi": 4},
        {"draws": 0, "blocks": 0, "counter_lo": 0, "counter_hi": 2**64},
        {"draws": 0, "blocks": 0, "counter_lo": 0, "counter_hi": 0, "streams": -2},
    ],
)
def test_ledger_rejects_bad_records(kwargs):
    with pytest.raises(ValueError, match="fam"):
        RngLedger().record("fam", **kwargs)
