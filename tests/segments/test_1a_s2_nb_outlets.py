"""1A.S2: the NB2 outlet kernel — K ≥ 2, replayable, and marginally NB2 truncated at 2."""

import numpy as np
from scipy import stats

from engine.segments.l1.s1a.s2_nb_outlets import draw_outlets

KEY = (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321)


def test_counts_at_least_two_and_replayable_in_any_order() -> None:
    ids = np.arange(1, 2001, dtype=np.uint64) * np.uint64(7919)
    mu = np.full(ids.size, 6.0)
    phi = np.full(ids.size, 1.6)
    a = draw_outlets(KEY, ids, mu, phi, 64)
    perm = np.random.default_rng(0).permutation(ids.size)  # test-side shuffling only
    b = draw_outlets(KEY, ids[perm], mu[perm], phi[perm], 64)
    assert (a["k"] >= 2).all()
    assert np.array_equal(a["k"][perm], b["k"])
    assert np.array_equal(a["blocks"][perm], b["blocks"])
    assert (a["attempts"] >= 1).all()


def test_marginal_is_nb2_conditioned_on_at_least_two() -> None:
    n = 40_000
    ids = np.arange(1, n + 1, dtype=np.uint64)
    mu, phi = 8.0, 1.6
    k = draw_outlets(KEY, ids, np.full(n, mu), np.full(n, phi), 64)["k"]
    p = phi / (phi + mu)
    dist = stats.nbinom(phi, p)
    support = np.arange(2, 40)
    pmf = dist.pmf(support) / dist.sf(1)
    observed = np.array([(k == s).sum() for s in support])
    expected = pmf * n
    tail_obs = n - observed.sum()
    tail_exp = n - expected.sum()
    chi2 = ((observed - expected) ** 2 / expected).sum() + (tail_obs - tail_exp) ** 2 / tail_exp
    assert stats.chi2.sf(chi2, support.size) > 1e-4
