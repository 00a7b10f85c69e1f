"""5A.S2: unit-mass shapes, the weekend rotation, and the sanity checks that refuse a bad template."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.core.errors import EngineError
from engine.core.yaml12 import load
from engine.segments.l2.s5a.policy import Shapes, Template
from engine.segments.l2.s5a.s2_shapes import library, sanity_problems, shape_values

POLICIES = Path(__file__).resolve().parents[2] / "config" / "policies" / "5A"


def shipped() -> Shapes:
    return Shapes.model_validate(load((POLICIES / "shapes.yaml").read_text()))


def flat(dow: list[float]) -> Template:
    """Hours all equal (amp 0): each day's mass is its weight / Σ weights."""
    return Template(
        demand_class="consumer_daytime",
        channel_group="ANY",
        dow_weights=dow,
        components=[{"center_min": 600.0, "sigma_min": 60.0, "amp": 0.0}],
        floor=1.0,
        power=1.0,
    )


def test_library_unit_mass_and_size() -> None:
    lib = library(shipped(), "5A.S2")
    assert lib.height == 10 * 2 * 3 * 3 * 168
    values = lib["value"].to_numpy().reshape(-1, 168)
    assert np.abs(values.sum(axis=1) - 1.0).max() <= 1e-12
    assert (values > 0).all()
    assert lib["shape_id"].n_unique() == 180


def test_one_gaussian_by_hand() -> None:
    """floor 0, one component at 12:30 (σ 60 min), flat days: bucket 12 of each day holds the peak
    exp(0)/Σ, bucket 13 exp(−½)/Σ with Σ = 7·Σ_h exp(−½((60h + 30 − 750)/60)²)."""
    t = Template(
        demand_class="consumer_daytime",
        channel_group="ANY",
        dow_weights=[1.0] * 7,
        components=[{"center_min": 750.0, "sigma_min": 60.0, "amp": 1.0}],
        floor=0.0,
        power=1.0,
    )
    v = shape_values(t, 0.0, 1.0, "SAT_SUN")
    total = 7 * sum(math.exp(-0.5 * ((60 * h + 30 - 750) / 60) ** 2) for h in range(24))
    assert v[12] == pytest.approx(1.0 / total, rel=1e-12)
    assert v[24 + 13] == pytest.approx(math.exp(-0.5) / total, rel=1e-12)
    shifted = shape_values(t, 60.0, 1.0, "SAT_SUN")  # variant shift: the peak moves one hour later
    assert shifted[13] == pytest.approx(1.0 / total, rel=1e-12)


def test_weekend_rotation() -> None:
    """SAT_SUN keeps Monday..Sunday; FRI_SAT puts Saturday's weight on Friday and Sunday's on Saturday;
    FRI puts them on Thursday and Friday."""
    dow = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    for conv, want in (
        ("SAT_SUN", [1, 2, 3, 4, 5, 6, 7]),
        ("FRI_SAT", [2, 3, 4, 5, 6, 7, 1]),
        ("FRI", [3, 4, 5, 6, 7, 1, 2]),
    ):
        day_mass = shape_values(flat(dow), 0.0, 1.0, conv).reshape(7, 24).sum(axis=1)
        assert day_mass == pytest.approx(np.array(want) / 28.0, rel=1e-12), conv


def test_sanity_checks() -> None:
    flat_week = shape_values(flat([1.0] * 7), 0.0, 1.0, "SAT_SUN")
    assert any("max/min" in p for p in sanity_problems("consumer_daytime", flat_week, "SAT_SUN", 1.5))
    office = np.zeros(168)
    office.reshape(7, 24)[5:, :] = 1.0  # all on the weekend
    office = (office + 1e-3) / (office + 1e-3).sum()
    problems = sanity_problems("office_hours", office, "SAT_SUN", 1.5)
    assert problems == ["office_hours weekday 08–18 share below 0.65"]
    assert any(
        "weekend share" in p
        for p in sanity_problems("travel_hospitality", np.roll(office, 72), "SAT_SUN", 1.5)
    )
    assert sanity_problems("online_24h", flat_week, "SAT_SUN", 1.0) == []  # night share 6/24


def test_bad_template_refused() -> None:
    doc = load((POLICIES / "shapes.yaml").read_text())
    office = next(t for t in doc["templates"] if t["demand_class"] == "office_hours")
    office["dow_weights"] = [1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 3.0]
    with pytest.raises(EngineError) as err:
        library(Shapes.model_validate(doc), "5A.S2")
    assert err.value.code == "E_5A_SHAPE_INVALID"
