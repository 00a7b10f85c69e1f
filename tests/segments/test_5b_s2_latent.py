"""5B.S2's group parameters from the shipped latent and counts policies (layer2_3 §2.1, §2.4): role ×
class × channel multipliers, clamps, φ = exp(−1/L)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from engine.segments.l2.s5b.policy import Counts, Latent
from engine.segments.l2.s5b.s2_latent import group_params
from tests.conftest import shipped_policy

ROWS = pl.DataFrame(
    {
        "group_id": [0, 0, 1, 2],
        "demand_class": ["online_bursty", "online_bursty", "office_hours", "grocery_daily"],
        "channel_group": ["CNP", "CNP", "CP", "CP"],
        "virtual_band": ["VIRTUAL", "VIRTUAL", "PHYSICAL", "PHYSICAL"],
        "zone_band": [3, 3, 3, 7],
    }
)


@pytest.mark.parametrize(
    ("role", "sigma0", "hours0", "kappa0"), [("BASELINE", 0.22, 24, 30), ("STRESS", 0.35, 12, 12)]
)
def test_parameters_follow_role_class_and_channel(
    role: str, sigma0: float, hours0: float, kappa0: float
) -> None:
    latent, counts = shipped_policy("5B", "latent"), shipped_policy("5B", "counts")
    assert isinstance(latent, Latent) and isinstance(counts, Counts)
    p = group_params(ROWS, latent, counts, role)
    assert p["members"].to_list() == [2, 1, 1]
    clamp = lambda x, lo, hi: min(max(x, lo), hi)  # noqa: E731
    assert p["sigma"][0] == pytest.approx(clamp(sigma0 * 1.6 * 1.1, 0.05, 1.0), rel=1e-6)
    assert p["sigma"][1] == pytest.approx(sigma0 * 0.8, rel=1e-6)
    assert p["sigma"][2] == pytest.approx(sigma0, rel=1e-6)
    assert p["corr_hours"].to_list() == pytest.approx([max(hours0 * 0.5, 2), hours0 * 1.3, hours0], rel=1e-6)
    assert p["phi"].to_list() == pytest.approx([math.exp(-1 / c) for c in p["corr_hours"].to_list()])
    assert p["kappa"].to_list() == pytest.approx([max(kappa0 * 0.4, 2), kappa0, kappa0], rel=1e-6)


def test_model_none_has_no_latent_variance() -> None:
    latent = shipped_policy("5B", "latent").model_copy(update={"model": "none"})
    p = group_params(ROWS, latent, shipped_policy("5B", "counts"), "BASELINE")
    assert p["sigma"].to_list() == [0.0, 0.0, 0.0]
