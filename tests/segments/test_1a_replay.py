"""1A's replay re-derivations (engine/segments/l1/s1a/replay.py) against known answers and, bit for
bit, against the engine's numba count kernels: two independent implementations of the same sampling rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from engine.core.rng import family_key
from engine.core.validation import Lanes, PhiloxBlocks
from engine.kernels.count_models import run_count_kernel, ztp_counts
from engine.segments.l1.s1a.policy import HurdleNb
from engine.segments.l1.s1a.replay import (
    gamma,
    nb_event,
    poisson_inversion,
    power_law_tail,
    std_normal,
    ztp_event,
)
from engine.segments.l1.s1a.s2_nb_outlets import draw_outlets
from tests.conftest import shipped_policy

KEY = family_key(11, "ef" * 32, "1A.test")


def _inputs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 2**63, n, dtype=np.uint64)


@pytest.mark.parametrize(
    ("mu", "phi", "p_chain", "max_attempts"),
    [
        ((0.5, 8.0), (0.15, 0.95), (0.0, 0.0), 64),  # body only, α < 1: the boost lane; λ mostly < 10
        ((8.0, 90.0), (1.0, 6.0), (0.0, 0.0), 64),  # body only, α ≥ 1; λ often ≥ 10 (PTRS)
        ((0.2, 1.0), (0.5, 2.0), (0.0, 0.0), 1),  # K ≥ 2 rare: exhaustion after one attempt
        ((0.3, 20.0), (0.3, 4.0), (0.0, 1.0), 64),  # both components, rejected body attempts between
    ],
)
def test_nb_event_is_the_kernel_bit_for_bit(mu, phi, p_chain, max_attempts) -> None:
    rng = np.random.default_rng(3)
    n = 1_500
    ids, m, p, c = _inputs(n, 4), rng.uniform(*mu, n), rng.uniform(*phi, n), rng.uniform(*p_chain, n)
    shipped: HurdleNb = shipped_policy("1A", "hurdle_nb")  # type: ignore[assignment]
    policy = shipped.model_copy(update={"nb": shipped.nb.model_copy(update={"max_attempts": max_attempts})})
    kernel = draw_outlets(KEY, ids, m, p, c, policy)
    gen = PhiloxBlocks(KEY)
    events = [
        nb_event(gen, int(i), float(a), float(b), float(x), policy)
        for i, a, b, x in zip(ids, m, p, c, strict=True)
    ]
    for field in ("k", "attempts", "draws", "blocks", "tail"):
        assert [e[field] for e in events] == kernel[field].tolist(), field
    assert kernel["exhausted"].any() == (max_attempts == 1)
    assert kernel["tail"].any() == (p_chain[1] > 0)


def test_power_law_tail_walk_known_answers() -> None:
    """P(K ≥ k) = (k^−α − 101^−α) / (10^−α − 101^−α) on [10, 100], α = 1: K is the largest k whose
    survival still exceeds 1 − u. By hand: P(K ≥ 11) = (1/11 − 1/101)/(1/10 − 1/101) = 0.89910…,
    P(K ≥ 20) = 0.44505…, P(K ≥ 100) = 0.0011…"""
    assert power_law_tail(0.0, 10, 100, 1.0) == 10
    assert power_law_tail(0.1008, 10, 100, 1.0) == 10  # 1 − u = 0.8992 > P(K ≥ 11)
    assert power_law_tail(0.1010, 10, 100, 1.0) == 11  # 1 − u = 0.8990 < P(K ≥ 11)
    assert power_law_tail(0.5549, 10, 100, 1.0) == 19  # 1 − u = 0.4451 > P(K ≥ 20)
    assert power_law_tail(0.5551, 10, 100, 1.0) == 20
    assert power_law_tail(0.9985, 10, 100, 1.0) == 99  # 1 − u = 0.0015 > P(K ≥ 100)
    assert power_law_tail(0.99999, 10, 100, 1.0) == 100


def test_ztp_event_is_the_kernel_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    lam = np.concatenate([rng.uniform(1e-4, 10.0, 1_000), [9.999999, 10.0], rng.uniform(10.0, 400.0, 1_000)])
    ids = _inputs(lam.size, 6)
    kernel = run_count_kernel(ztp_counts, KEY, ids, lam, 64, family="1A.ztp", state="1A.S4")
    gen = PhiloxBlocks(KEY)
    events = [ztp_event(gen, int(i), float(x), 64) for i, x in zip(ids, lam, strict=True)]
    for field in ("k", "attempts", "draws", "blocks"):
        assert [e[field] for e in events] == kernel[field].tolist(), field
    assert min(e["k"] for e in events) >= 1
    assert {e["draws"] for e in events[:1_000]} == {1}  # one inversion lane below λ = 10


def test_poisson_inversion_is_the_quantile_function() -> None:
    """Known answers from scipy: the smallest k whose CDF reaches u (away from CDF steps)."""
    rng = np.random.default_rng(7)
    for lam in (0.01, 0.7, 3.0, 9.5):
        u = rng.uniform(0.0, 1.0, 2_000)
        dist = stats.poisson(lam)
        want = dist.ppf(u).astype(int)
        clear = np.abs(dist.cdf(want) - u) > 1e-9
        got = np.array([poisson_inversion(x, lam, from_one=False) for x in u])
        assert np.array_equal(got[clear], want[clear]), lam
        p0 = dist.pmf(0)
        truncated = dist.ppf(p0 + u * (1.0 - p0)).astype(int)  # u' = e^−λ + u·(1 − e^−λ)
        got1 = np.array([poisson_inversion(x, lam, from_one=True) for x in u])
        clear1 = np.abs(dist.cdf(truncated) - (p0 + u * (1.0 - p0))) > 1e-9
        assert np.array_equal(got1[clear1], truncated[clear1]) and got1.min() >= 1, lam


def test_normal_and_gamma_lane_counts() -> None:
    """std_normal reads 2 lanes; Gamma(α ≥ 1) 3 per try; the α < 1 boost one more (README §4)."""
    gen = PhiloxBlocks(KEY)
    lanes = Lanes(gen, (1, 0, 0, 0), 3)
    std_normal(lanes)
    assert (lanes.draws, lanes.blocks) == (2, 1)
    for alpha, extra in ((2.5, 0), (0.3, 1)):
        lanes = Lanes(gen, (2, 0, 0, 0), 3)
        assert gamma(lanes, alpha) > 0.0
        assert (lanes.draws - extra) % 3 == 0 and lanes.draws >= 3 + extra
