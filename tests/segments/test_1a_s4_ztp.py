"""1A.S4: zero-truncated Poisson counts and the k_cap law."""

import numpy as np
import pytest

from engine.core.errors import EngineError
from engine.kernels.count_models import run_count_kernel, ztp_counts
from engine.segments.l1.s1a.s4_ztp import k_cap
from tests.conftest import shipped_policy

POLICY = shipped_policy("1A", "crossborder")


def test_k_cap_respects_candidates_and_home_floor() -> None:
    # N=2 (h=.5): room 1; N=10 (h=.75): room 2; N=10 with 2 candidates (1 foreign): 1
    got = k_cap(np.array([3, 5, 5, 1]), np.array([6, 9, 2, 9]), np.array([2, 10, 10, 200]), POLICY)
    assert got.tolist() == [1, 2, 1, 1]


def test_ztp_never_zero_for_small_and_large_lambda() -> None:
    ids = np.arange(1, 5001, dtype=np.uint64)
    for lam in (0.05, 2.0, 12.0):
        res = run_count_kernel(
            ztp_counts, (11, 22), ids, np.full(ids.size, lam), 64, family="1A.ztp", state="1A.S4"
        )
        assert (res["k"] >= 1).all()
        assert abs(res["k"].mean() - lam / (1 - np.exp(-lam))) < 0.05 * max(1.0, lam)
        if lam < 10:
            assert (res["attempts"] == 1).all() and (res["draws"] == 1).all()


def test_a_nan_rate_stops_with_the_sampler_bound_code() -> None:
    """PTRS's bound sentinel is not a zero to redraw: the kernel stops and the caller raises
    E_SAMPLER_BOUND."""
    ids = np.arange(1, 4, dtype=np.uint64)
    with pytest.raises(EngineError) as err:
        run_count_kernel(
            ztp_counts, (11, 22), ids, np.array([12.0, np.nan, 3.0]), 64, family="1A.ztp", state="1A.S4"
        )
    assert err.value.code == "E_SAMPLER_BOUND" and "1A.ztp" in str(err.value)
