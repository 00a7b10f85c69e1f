"""E_SAMPLER_BOUND (layer2_3 §0.4): the rejection samplers stop after 64 tries with a sentinel, and the caller
turns the sentinel into an EngineError — never a silent fallback.

A real 64-try failure has probability below 1e-90, so the tests lower the bound to 1 on a stream whose first
try is known to reject (found by its lane count: a try that rejects costs a whole extra try of lanes)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from engine.core.errors import EngineError
from engine.core.rng import family_key
from engine.kernels.bucket_counts import LAW_NB2, bucket_counts
from engine.kernels.philox import stream_draws, stream_new
from engine.kernels.samplers import MAX_TRIES, POISSON_BOUND, check_sampler_bound, gamma, poisson

KEY = family_key(7, "0" * 64, "bound")


def _stream(entity: int) -> np.ndarray:
    return stream_new(*KEY, entity, 0, 0, 0, 3)


def _first_rejecting(sample: Callable[[np.ndarray], float], lanes_per_try: int, extra: int = 0) -> int:
    """The first entity whose stream rejects the first try and accepts the second (`extra` lanes after)."""
    for entity in range(100_000):
        st = _stream(entity)
        sample(st)
        if stream_draws(st) == 2 * lanes_per_try + extra:
            return entity
    raise AssertionError("no rejecting stream in 1e5 entities")


def test_the_bound_is_64_tries() -> None:
    assert MAX_TRIES == 64


@pytest.mark.parametrize(("alpha", "boost"), [(1.0, 0), (2.5, 0), (0.3, 1)])
def test_gamma_bound_returns_nan_and_the_default_is_unchanged(alpha: float, boost: int) -> None:
    entity = _first_rejecting(lambda st: gamma(st, alpha), 3, boost)
    st = _stream(entity)
    assert math.isnan(gamma(st, alpha, 1))
    assert stream_draws(st) == 3 + boost  # one Marsaglia–Tsang try, plus the α < 1 boost lane
    full, two = _stream(entity), _stream(entity)
    value = gamma(full, alpha)
    assert value > 0.0 and gamma(two, alpha, 2) == value  # two tries suffice, so the bound changes nothing


def test_poisson_ptrs_bound_returns_the_sentinel() -> None:
    lam = 50.0  # PTRS
    entity = _first_rejecting(lambda st: poisson(st, lam), 2)
    st = _stream(entity)
    assert poisson(st, lam, 1) == POISSON_BOUND
    assert stream_draws(st) == 2
    assert poisson(_stream(entity), lam, 2) == poisson(_stream(entity), lam) >= 0


def test_poisson_of_nan_is_the_sentinel_without_a_draw() -> None:
    st = _stream(1)
    assert poisson(st, math.nan) == POISSON_BOUND
    assert stream_draws(st) == 0


def test_nb2_cell_with_a_bounded_gamma_raises_e_sampler_bound() -> None:
    """5B's count kernel hands a NaN rate (what a bounded gamma yields) on as the Poisson sentinel, and the
    check 5B.S3 runs on every batch raises; the healthy cells are untouched."""
    n = 3
    count, _, _ = bucket_counts(
        KEY,
        np.arange(1, n + 1, dtype=np.uint64),
        np.zeros(n, dtype=np.uint64),
        np.zeros(n, dtype=np.int64),
        np.zeros(n, dtype=np.uint8),
        np.full(n, 20.0),
        np.array([30.0, math.nan, 30.0]),
        law=LAW_NB2,
        lambda_eps=1e-9,
    )
    assert count[1] == POISSON_BOUND and (count[[0, 2]] >= 0).all()
    with pytest.raises(EngineError) as err:
        check_sampler_bound(count == POISSON_BOUND, "5B.count", state="5B.S3")
    assert err.value.code == "E_SAMPLER_BOUND" and err.value.state == "5B.S3"
    assert "1 draws of 5B.count (first at batch row 1)" in err.value.what


def test_check_sampler_bound_passes_clean_batches() -> None:
    check_sampler_bound(np.zeros(5, dtype=bool), "5B.count")
