"""5A.S4's calendar by hand: paydays rolled back over weekends and holidays, holiday and eve factors (with the
STRESS scaling), the PEAK ramp, the within-type rule, the promo count law against scipy, and the promo draws
re-derived from numpy's Philox."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import poisson

from engine.core.validation import PhiloxBlocks, u01
from engine.core.yaml12 import load
from engine.segments.l2.s5a import overlays
from engine.segments.l2.s5a.horizon_map import day_number
from engine.segments.l2.s5a.overlays import Days
from engine.segments.l2.s5a.policy import Overlays, Scenario

POLICIES = Path(__file__).resolve().parents[2] / "config" / "policies" / "5A"
D = dt.date


def pol(name: str, model: type) -> object:
    return model.model_validate(load((POLICIES / f"{name}.yaml").read_text()))


def horizon_days() -> Days:
    return Days(day_number(D(2026, 3, 1)), day_number(D(2026, 3, 17)))


def test_paydays_roll_back() -> None:
    """DE (last business day): 27 Feb 2026 (28th is a Saturday), 31 Mar 2026 (a Tuesday). US semi-monthly:
    13 Mar (15th is a Sunday). JP (the 25th): 25 Mar 2026, a Wednesday. A holiday on the day rolls back."""
    ov = pol("overlays", Overlays)
    sat_sun = (5, 6)
    business = {D(2026, 1, 1) + dt.timedelta(days=i) for i in range(200)}
    months = [(2026, 2), (2026, 3)]
    assert overlays.payday_dates("DE", months, ov, business, sat_sun) == [D(2026, 2, 27), D(2026, 3, 31)]  # type: ignore[arg-type]
    us = overlays.payday_dates("US", months, ov, business, sat_sun)  # type: ignore[arg-type]
    assert us == [D(2026, 2, 13), D(2026, 2, 27), D(2026, 3, 13), D(2026, 3, 31)]
    assert overlays.payday_dates("JP", [(2026, 3)], ov, business, sat_sun) == [D(2026, 3, 25)]  # type: ignore[arg-type]
    holiday = business - {D(2026, 3, 31), D(2026, 3, 30)}
    assert overlays.payday_dates("DE", [(2026, 3)], ov, holiday, sat_sun) == [D(2026, 3, 27)]  # type: ignore[arg-type]
    assert overlays.payday_dates("SA", [(2026, 4)], ov, business, (4, 5)) == [D(2026, 4, 30)]  # type: ignore[arg-type]
    assert overlays.months_between(D(2026, 1, 3), D(2026, 2, 1)) == [(2025, 12), (2026, 1), (2026, 2)]


def test_country_class_events_and_stress_scaling() -> None:
    """A holiday on 10 March: office_hours 0.30 that day, grocery's eve 1.25 on the 9th; STRESS scales the
    deviations by 1.2 (0.30 → 0.16, 1.25 → 1.30). Paydays: DE's 27 Feb payday reaches 1 March with
    its day-2 factor."""
    ov = pol("overlays", Overlays)
    base = pol("scenarios/baseline", Scenario)
    stress = pol("scenarios/holiday_peak", Scenario)
    days = horizon_days()
    ev = overlays.country_class_events(
        "DE", ["office_hours", "grocery_daily"], days, {D(2026, 3, 10)}, (5, 6), ov, base
    )  # type: ignore[arg-type]
    got = {(t, k, d): f for t, _, k, d, f in ev}
    assert got[("HOLIDAY", "office_hours", D(2026, 3, 10))] == 0.30
    assert got[("HOLIDAY_EVE", "grocery_daily", D(2026, 3, 9))] == 1.25
    assert ("HOLIDAY_EVE", "office_hours", D(2026, 3, 9)) not in got  # factor 1: no event
    assert got[("PAYDAY", "grocery_daily", D(2026, 3, 1))] == 1.03  # 27 Feb + 2 days
    assert ("PAYDAY", "office_hours", D(2026, 3, 1)) not in got
    ev = overlays.country_class_events(
        "DE", ["office_hours", "grocery_daily"], days, {D(2026, 3, 10)}, (5, 6), ov, stress
    )  # type: ignore[arg-type]
    got = {(t, k, d): f for t, _, k, d, f in ev}
    assert got[("HOLIDAY", "office_hours", D(2026, 3, 10))] == pytest.approx(1 - 0.7 * 1.2)
    assert got[("HOLIDAY_EVE", "grocery_daily", D(2026, 3, 9))] == pytest.approx(1.3)


def test_peak_ramp() -> None:
    """Window days 3..9 from 2 March with a 2-day ramp: online_24h (peak 1.9) gets 1.3, 1.6, then 1.9."""
    stress = pol("scenarios/holiday_peak", Scenario)
    peaks = overlays.peak_events(stress, D(2026, 3, 2), horizon_days())  # type: ignore[arg-type]
    online = {d: f for _, k, d, f in peaks if k == "online_24h"}
    assert sorted(online) == [D(2026, 3, 5) + dt.timedelta(days=i) for i in range(7)]
    assert [online[d] for d in sorted(online)][:4] == pytest.approx([1.3, 1.6, 1.9, 1.9])
    office = {d: f for _, k, d, f in peaks if k == "office_hours"}
    assert office[D(2026, 3, 11)] == pytest.approx(1.1)  # the default peak
    assert overlays.peak_events(pol("scenarios/baseline", Scenario), D(2026, 3, 2), horizon_days()) == []  # type: ignore[arg-type]


def test_day_factors_types_multiply_largest_deviation_wins() -> None:
    days = Days(day_number(D(2026, 3, 1)), day_number(D(2026, 3, 3)))
    events = [
        ("PROMO", 7, D(2026, 3, 2), 1.2),
        ("PROMO", 7, D(2026, 3, 2), 1.5),  # the larger deviation wins within a type
        ("PEAK", 7, D(2026, 3, 2), 0.5),
        ("PEAK", 7, D(2026, 3, 9), 3.0),  # outside the days: ignored
    ]
    table = overlays.day_factors(events, days)[7]  # type: ignore[arg-type]
    assert table.tolist() == pytest.approx([1.0, 1.5 * 0.5, 1.0])


def test_promo_count_matches_scipy() -> None:
    mean = 0.25 * 14 / 28
    u = np.linspace(0.0005, 0.9995, 2000)
    want = np.minimum(poisson.ppf(u, mean), 8)
    assert overlays.promo_count(u, mean, 8).tolist() == want.astype(int).tolist()
    assert overlays.promo_count(np.array([1 - 1e-16]), 30.0, 8).tolist() == [8]  # capped


def test_promos_rederived_from_numpy_philox() -> None:
    """Count on w0 of ⟨m,0,0,0⟩; promo k on ⟨m,k,0,0⟩ lanes w0..w2, all from numpy's generator."""
    ov = pol("overlays", Overlays)
    key = (0x1234, 0x5678)
    merchants = np.arange(1, 400, dtype=np.uint64)
    rows, u = overlays.promos(key, merchants, ov.promo, 14)  # type: ignore[arg-type]
    gen = PhiloxBlocks(key)
    mean = 0.25 * 14 / 28
    lo, hi = ov.promo.duration_days  # type: ignore[attr-defined]
    a, b = ov.promo.amplitude  # type: ignore[attr-defined]
    want = []
    for m in merchants.tolist():
        um = u01(gen.block(m, 0, 0, 0)[0])
        assert um == u[m - 1]
        n = min(int(poisson.ppf(um, mean)), 8)
        for k in range(1, n + 1):
            w = [u01(x) for x in gen.block(m, k, 0, 0)[:3]]
            want.append(
                (
                    m,
                    k,
                    math.floor(w[0] * 14),
                    lo + math.floor(w[1] * (hi - lo + 1)),
                    float(np.float32(a + (b - a) * w[2])),
                )
            )
    got = [
        tuple(r) for r in rows.select("merchant_id", "k", "start_day", "duration", "amplitude").iter_rows()
    ]
    assert got == want
    assert len(want) > 20
