"""5A.S1 by hand: the Pareto per-site volume, the soft cap, the channel domain and the class map."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.core.yaml12 import load
from engine.segments.l2.s5a.policy import DemandScale, MerchantClass
from engine.segments.l2.s5a.s1_class_scale import classify, domain, pareto_site, scale_to_target, soft_cap

POLICIES = Path(__file__).resolve().parents[2] / "config" / "policies" / "5A"


def policy(name: str, model: type) -> object:
    return model.model_validate(load((POLICIES / f"{name}.yaml").read_text()))


def test_pareto_known_answers() -> None:
    """x = m·2^(−1/α)·(1−u)^(−1/α): u = 1/2 gives the median, u = 3/4, α = 2 gives m·√2; the tail clips."""
    x = pareto_site(np.array([0.5, 0.75, 1.0 - 1e-15]), np.full(3, 300.0), np.full(3, 2.0), 50.0)
    assert x[0] == pytest.approx(300.0, rel=1e-15)
    assert x[1] == pytest.approx(300.0 * math.sqrt(2.0), rel=1e-15)
    assert x[2] == 50.0 * 300.0
    x = pareto_site(np.array([0.5]), np.array([600.0]), np.array([2.4]), 50.0)
    assert x[0] == pytest.approx(600.0, rel=1e-15)  # the median of any α


def test_soft_cap_hand_made_profile() -> None:
    """999 rows of 1 and one of 10^6: mean 1000.999, C = 200·mean; the big row becomes
    min(C + 0.15·(10^6 − C), 1.10·C) = 1.10·C, and the others keep their value."""
    pol = policy("demand_scale", DemandScale)
    weekly = np.array([1.0] * 999 + [1e6])
    capped, over, mean = soft_cap(weekly, pol)  # type: ignore[arg-type]
    c = 200.0 * (999.0 + 1e6) / 1000.0
    assert mean == pytest.approx(1000.999, rel=1e-15)
    assert over.tolist() == [False] * 999 + [True]
    assert capped[-1] == pytest.approx(min(c + 0.15 * (1e6 - c), 1.10 * c), rel=1e-15)
    assert capped[-1] == pytest.approx(220219.78, rel=1e-12)
    assert (capped[:-1] == 1.0).all()


def test_domain_splits_hybrids_and_keeps_physical_channels() -> None:
    alloc = pl.DataFrame(
        {
            "merchant_id": pl.Series([1, 2, 3, 3], dtype=pl.UInt64),
            "legal_country_iso": ["US", "DE", "FR", "FR"],
            "tzid": ["America/New_York", "Europe/Berlin", "Europe/Paris", "Indian/Reunion"],
            "tz_index": pl.Series([1, 2, 3, 4], dtype=pl.UInt16),
            "zone_site_count": pl.Series([2, 1, 3, 1], dtype=pl.UInt32),
            "zone_share": [1.0, 1.0, 0.75, 0.25],
        }
    )
    merchants = pl.DataFrame(
        {
            "merchant_id": pl.Series([1, 2, 3], dtype=pl.UInt64),
            "mcc": pl.Series([5411, 5818, 4511], dtype=pl.UInt16),
            "channel": ["card_present", "card_not_present", "card_present"],
            "n_outlets_total": pl.Series([2, 1, 4], dtype=pl.UInt32),
        }
    )
    virtual = pl.DataFrame(
        {
            "merchant_id": pl.Series([1, 2, 3], dtype=pl.UInt64),
            "virtual_mode": ["PHYSICAL", "VIRTUAL_ONLY", "HYBRID"],
            "virtual_share": [0.0, 1.0, 0.3],
        }
    )
    rows = domain(alloc, merchants, virtual).sort("merchant_id", "tzid", "channel_group")
    got = [
        (m, z, str(c), s)
        for m, z, c, s in rows.select("merchant_id", "tzid", "channel_group", "share").iter_rows()
    ]
    assert got == [
        (1, "America/New_York", "CP", 1.0),
        (2, "Europe/Berlin", "CNP", 1.0),
        (3, "Europe/Paris", "CP", 0.7),
        (3, "Europe/Paris", "CNP", 0.3),
        (3, "Indian/Reunion", "CP", 0.7),
        (3, "Indian/Reunion", "CNP", 0.3),
    ]
    cls = classify(rows, policy("merchant_class", MerchantClass))  # type: ignore[arg-type]
    by = {
        (m, z, str(c)): str(k)
        for m, z, c, k in cls.select("merchant_id", "tzid", "channel_group", "demand_class").iter_rows()
    }
    assert by[(1, "America/New_York", "CP")] == "grocery_daily"
    assert by[(2, "Europe/Berlin", "CNP")] == "online_24h"  # VIRTUAL_ONLY (not travel): the virtual class
    assert by[(3, "Europe/Paris", "CP")] == "travel_hospitality"
    assert by[(3, "Europe/Paris", "CNP")] == "online_bursty"


def test_every_mcc_maps_to_one_sector() -> None:
    sector_of = policy("merchant_class", MerchantClass).sector_of()  # type: ignore[attr-defined]
    assert set(sector_of) == set(range(10000))
    assert (sector_of[5411], sector_of[5812], sector_of[3005], sector_of[6011], sector_of[4829]) == (
        "grocery_pharmacy",
        "dining",
        "travel",
        "cash_financial",
        "cash_financial",
    )
    assert sector_of[5912] == "grocery_pharmacy"  # listed by code: wins over the retail range


def test_overlapping_ranges_refused() -> None:
    doc = load((POLICIES / "merchant_class.yaml").read_text())
    doc["sectors"]["dining"]["ranges"] = [[5811, 5820]]
    with pytest.raises(ValueError, match="lies in ranges"):
        MerchantClass.model_validate(doc)


def test_the_capped_world_holds_exactly_the_target() -> None:
    """The same hand-made profile scaled to a weekly target of 10^6: the cap trims the big row in raw units
    (to 1.10·C = 220,219.78), then every row is scaled by G = 10^6 / (999 + 220,219.78), so the total is the
    target and the 999 small rows each hold G."""
    pol = policy("demand_scale", DemandScale)
    raw = np.array([1.0] * 999 + [1e6])
    final, over, cap_reference, gain = scale_to_target(raw, 1e6, pol)  # type: ignore[arg-type]
    big = 1.10 * 200.0 * (999.0 + 1e6) / 1000.0
    assert gain == pytest.approx(1e6 / (999.0 + big), rel=1e-12)
    assert final.sum() == pytest.approx(1e6, rel=1e-12)
    assert final[-1] == pytest.approx(big * gain, rel=1e-12) and (final[:-1] == gain).all()
    assert cap_reference == pytest.approx(1000.999 * gain, rel=1e-12)
    assert over.sum() == 1
