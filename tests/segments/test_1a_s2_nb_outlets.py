"""1A.S2: the two-component outlet count — K ≥ 2, replayable, NB2 body, power-law chain tail."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from engine.core.errors import EngineError
from engine.core.validation import Lanes, PhiloxBlocks
from engine.segments.l1.s1a.policy import HurdleNb
from engine.segments.l1.s1a.s2_nb_outlets import draw_outlets
from tests.conftest import shipped_policy

KEY = (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321)
POLICY: HurdleNb = shipped_policy("1A", "hurdle_nb")  # type: ignore[assignment]


def _draw(ids: np.ndarray, mu: float, phi: float, p_chain: float, policy: HurdleNb = POLICY) -> dict:
    n = ids.size
    return draw_outlets(KEY, ids, np.full(n, mu), np.full(n, phi), np.full(n, p_chain), policy)


def tail_pmf(k: np.ndarray, lo: int, hi: int, alpha: float) -> np.ndarray:
    """P(K = k) of the chain tail, written from its survival function (k^−α − (hi+1)^−α) / norm."""
    top = (hi + 1.0) ** -alpha
    norm = lo**-alpha - top
    return (k.astype(float) ** -alpha - (k + 1.0) ** -alpha) / norm


def test_counts_at_least_two_and_replayable_in_any_order() -> None:
    ids = np.arange(1, 2001, dtype=np.uint64) * np.uint64(7919)
    a = _draw(ids, 6.0, 1.6, 0.2)
    perm = np.random.default_rng(0).permutation(ids.size)  # test-side shuffling only
    b = _draw(ids[perm], 6.0, 1.6, 0.2)
    assert (a["k"] >= 2).all()
    for field in ("k", "blocks", "attempts", "tail"):
        assert np.array_equal(a[field][perm], b[field]), field
    assert (a["attempts"] >= 1).all()


def test_body_alone_is_nb2_conditioned_on_at_least_two() -> None:
    n = 40_000
    mu, phi = 8.0, 1.6
    res = _draw(np.arange(1, n + 1, dtype=np.uint64), mu, phi, 0.0)
    assert not res["tail"].any()
    k = res["k"]
    dist = stats.nbinom(phi, phi / (phi + mu))
    support = np.arange(2, 40)
    expected = dist.pmf(support) / dist.sf(1) * n
    observed = np.array([(k == s).sum() for s in support])
    tail_obs, tail_exp = n - observed.sum(), n - expected.sum()
    chi2 = ((observed - expected) ** 2 / expected).sum() + (tail_obs - tail_exp) ** 2 / tail_exp
    assert stats.chi2.sf(chi2, support.size) > 1e-4


def test_tail_alone_is_the_truncated_power_law() -> None:
    """p_chain = 1: every attempt is a chain draw on [20, 5000] with P(K ≥ k) ∝ k^−1.2 − 5001^−1.2."""
    n = 40_000
    res = _draw(np.arange(1, n + 1, dtype=np.uint64), 6.0, 1.6, 1.0)
    k = res["k"]
    c = POLICY.chain
    assert res["tail"].all() and (res["attempts"] == 1).all() and (res["draws"] == 2).all()
    assert k.min() >= c.tail_min and k.max() <= POLICY.nb.n_max
    edges = np.array([20, 21, 23, 26, 30, 40, 60, 100, 200, 500, 1000, 5001])
    pmf = tail_pmf(np.arange(20, 5001), c.tail_min, POLICY.nb.n_max, c.tail_alpha)
    expected = np.array([pmf[lo - 20 : hi - 20].sum() for lo, hi in itertools.pairwise(edges)]) * n
    observed = np.histogram(k, bins=edges)[0]
    assert expected.sum() == pytest.approx(n)
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert stats.chi2.sf(chi2, edges.size - 2) > 1e-4
    # P(K ≥ 1000) = (1000^−1.2 − 5001^−1.2) / (20^−1.2 − 5001^−1.2) = 0.007953…
    assert (k >= 1000).mean() == pytest.approx(0.007953, abs=0.0015)


def test_mixture_share_of_the_tail_among_accepted_counts() -> None:
    """An attempt is accepted with p + (1 − p)·P(NB ≥ 2), so the tail's share of accepted draws is
    p / (p + (1 − p)·P(NB ≥ 2)); with μ = 1.5, φ = 1.6 and q = φ/(φ + μ),
    P(NB ≥ 2) = 1 − q^φ·(1 + φ(1 − q)) = 0.3842…"""
    n, p, mu, phi = 30_000, 0.3, 1.5, 1.6
    res = _draw(np.arange(1, n + 1, dtype=np.uint64), mu, phi, p)
    accept_nb = stats.nbinom(phi, phi / (phi + mu)).sf(1)
    assert accept_nb == pytest.approx(0.38424, abs=1e-5)
    want = p / (p + (1 - p) * accept_nb)
    se = math.sqrt(want * (1 - want) / n)
    assert abs(res["tail"].mean() - want) < 5 * se
    assert (res["k"][res["tail"]] >= 20).all()


def test_a_chain_tail_draw_replays_from_its_counter() -> None:
    """Known answer, re-derived by hand: merchant 987654322, attempt 0 is block ⟨id, 0, 0, 0⟩ of numpy's
    Philox; lane 0 picks the tail (u < p_chain), lane 1 is inverted in closed form."""
    mid = 987_654_322
    res = _draw(np.array([mid], dtype=np.uint64), 6.0, 1.6, 0.5)
    lanes = Lanes(PhiloxBlocks(KEY), (mid, 0, 0, 0), 2)
    u_component, u_size = lanes.u(), lanes.u()
    assert u_component < 0.5  # this merchant's first attempt takes the tail
    c = POLICY.chain
    r = (c.tail_min / (POLICY.nb.n_max + 1.0)) ** c.tail_alpha
    want = math.floor(c.tail_min * (1.0 - u_size * (1.0 - r)) ** (-1.0 / c.tail_alpha))
    assert res["tail"][0] and res["attempts"][0] == 1 and res["draws"][0] == 2
    assert res["k"][0] == want == 25  # by hand: 20·(1 − 0.24726·(1 − 0.0013264))^(−1/1.2) = 25.33


def test_a_bounded_sampler_stops_with_its_code_instead_of_retrying() -> None:
    """A NaN NB2 rate (μ NaN) makes Poisson return its bound sentinel: 1A.S2 raises E_SAMPLER_BOUND naming
    the family rather than treating it as a rejected K < 2 and drawing again."""
    ids = np.arange(1, 4, dtype=np.uint64)
    mu = np.array([6.0, math.nan, 6.0])
    with pytest.raises(EngineError) as err:
        draw_outlets(KEY, ids, mu, np.full(3, 1.6), np.zeros(3), POLICY)
    assert err.value.code == "E_SAMPLER_BOUND" and "1A.nb" in str(err.value)
