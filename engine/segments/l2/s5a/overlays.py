"""5A.S4's calendar: the overlay events of a scenario and the factor they give each row on each local date.

Every event covers whole local dates, so a row's factor is a function of (its country, class, merchant, local
date): S4 builds a factor table per row over the local days the horizon reaches (one day either side of its
UTC dates) and gathers it through the horizon map's local day of each bucket. Types multiply; within a type
the largest deviation from 1 wins (each type has one scope here, so specificity never has to break a tie);
the product is clamped.
"""

from __future__ import annotations

import calendar as cal
import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.core.ids import assign_ids
from engine.kernels.blocks import block_uniforms
from engine.segments.l2.s5a.common import CLASS, EVENT_TYPE
from engine.segments.l2.s5a.horizon_map import date_of, day_number
from engine.segments.l2.s5a.policy import CLASSES, Overlays, Promo, Scenario

BUSINESS_WEEKEND = {"SAT_SUN": (5, 6), "FRI_SAT": (4, 5), "FRI": (4,)}  # Monday = 0


@dataclass(frozen=True)
class Days:
    """The local days a factor table spans: day numbers first..last inclusive."""

    first: int
    last: int

    @property
    def n(self) -> int:
        return self.last - self.first + 1

    def index(self, day: int) -> int | None:
        return day - self.first if self.first <= day <= self.last else None


def stronger(current: float, new: float) -> float:
    """Within a type: the larger deviation from 1 wins (ties keep the first)."""
    return new if abs(new - 1.0) > abs(current - 1.0) else current


def payday_dates(
    country: str,
    months: list[tuple[int, int]],
    ov: Overlays,
    business: set[dt.date],
    weekend: tuple[int, ...],
) -> list[dt.date]:
    """The country's paydays in these months, each rolled back to a business day."""
    fixed = {iso: rule.day for rule in ov.payday.fixed_day for iso in rule.countries}
    out = []
    for year, month in months:
        last = dt.date(year, month, cal.monthrange(year, month)[1])
        if country in fixed:
            raw = [dt.date(year, month, fixed[country])]
        elif country in ov.payday.semi_monthly:
            raw = [dt.date(year, month, 15), last]
        else:
            raw = [last]
        for d in raw:
            while d.weekday() in weekend or d not in business:
                d -= dt.timedelta(days=1)
            out.append(d)
    return out


def months_between(first: dt.date, last: dt.date) -> list[tuple[int, int]]:
    """Every (year, month) from the month before `first` (its payday's tail days reach in) to `last`'s."""
    y, m = (first.year, first.month - 1) if first.month > 1 else (first.year - 1, 12)
    out = []
    while (y, m) <= (last.year, last.month):
        out.append((y, m))
        y, m = (y, m + 1) if m < 12 else (y + 1, 1)
    return out


def country_class_events(
    country: str,
    classes: list[str],
    days: Days,
    holidays: set[dt.date],
    weekend: tuple[int, ...],
    ov: Overlays,
    scen: Scenario,
) -> list[tuple[str, str, str, dt.date, float]]:
    """(type, country, class, local date, amplitude) of the HOLIDAY, HOLIDAY_EVE and PAYDAY events a country's
    classes see inside `days` (amplitude ≠ 1 only)."""
    scale = scen.peak.holiday_deviation_scale if scen.peak is not None else None

    def scaled(f: float) -> float:
        return f if scale is None else 1.0 + (f - 1.0) * scale

    first, last = date_of(days.first), date_of(days.last)
    out = []
    if scen.holidays:
        for d in sorted(h for h in holidays if first <= h <= last):
            for cls in classes:
                f = ov.holiday[cls]
                out.append(("HOLIDAY", country, cls, d, scaled(f)))
        for h in sorted(holidays):
            eve = h - dt.timedelta(days=1)
            if first <= eve <= last:
                for cls in classes:
                    f = ov.holiday_eve.get(cls, 1.0)
                    if f != 1.0:
                        out.append(("HOLIDAY_EVE", country, cls, eve, scaled(f)))
    if scen.paydays:
        business = {first + dt.timedelta(days=i) for i in range(-62, days.n + 62)} - holidays
        for pay in payday_dates(country, months_between(first, last), ov, business, weekend):
            for cls in classes:
                factors = (
                    ov.payday.bills_factors
                    if cls == "bills_utilities"
                    else ov.payday.day_factors
                    if cls in ov.payday.classes
                    else []
                )
                for k, f in enumerate(factors):
                    d = pay + dt.timedelta(days=k)
                    if first <= d <= last:
                        out.append(("PAYDAY", country, cls, d, f))
    return out


def peak_events(scen: Scenario, start: dt.date, days: Days) -> list[tuple[str, str, dt.date, float]]:
    """(PEAK, class, local date, amplitude): a linear ramp over the first ramp_days, then the class peak."""
    if scen.peak is None:
        return []
    a, b = scen.peak.window(start)
    out = []
    for i in range((b - a).days + 1):
        d = a + dt.timedelta(days=i)
        if days.index(day_number(d)) is None:
            continue
        ramp = min(1.0, (i + 1) / (scen.peak.ramp_days + 1))
        for cls in CLASSES:
            peak = scen.peak.class_peaks.get(cls, scen.peak.default_peak)
            out.append(("PEAK", cls, d, 1.0 + (peak - 1.0) * ramp))
    return out


def poisson_cdf(mean: float, kmax: int) -> np.ndarray:
    """F(0..kmax) of Poisson(mean), summed term by term."""
    terms = [math.exp(-mean)]
    for k in range(1, kmax + 1):
        terms.append(terms[-1] * mean / k)
    return np.cumsum(terms)


def promo_count(u: np.ndarray, mean: float, kmax: int) -> np.ndarray:
    """Inversion: the smallest n with F(n) ≥ u, capped at kmax."""
    return np.minimum(np.searchsorted(poisson_cdf(mean, kmax), u, side="left"), kmax).astype(np.int64)


def promos(
    key: tuple[int, int], merchants: np.ndarray, promo: Promo, horizon_days: int
) -> tuple[pl.DataFrame, np.ndarray]:
    """Each merchant's promotions from 5A.promo: the count on w0 of ⟨m, 0, 0, 0⟩, then per promo k ≥ 1 the
    block ⟨m, k, 0, 0⟩: start day ⌊u0·days⌋, duration lo + ⌊u1·(hi − lo + 1)⌋ days, amplitude U[a, b] on u2.
    Returns one row per promo (merchant_id, k, start_day, duration, amplitude as f32, the precision events
    publish) and each merchant's count uniform."""
    u = block_uniforms(key, merchants)[:, 0]
    n = promo_count(u, promo.rate_per_28d * horizon_days / 28.0, promo.max_per_merchant)
    ids = np.repeat(merchants, n)
    k = (np.arange(ids.size) - np.repeat(np.cumsum(n) - n, n) + 1).astype(np.uint64)
    lanes = block_uniforms(key, ids, k, lanes=3)
    lo, hi = promo.duration_days
    a, b = promo.amplitude
    return (
        pl.DataFrame(
            {
                "merchant_id": ids,
                "k": k,
                "start_day": np.floor(lanes[:, 0] * horizon_days).astype(np.int64),
                "duration": lo + np.floor(lanes[:, 1] * (hi - lo + 1)).astype(np.int64),
                "amplitude": (a + (b - a) * lanes[:, 2]).astype(np.float32).astype(np.float64),
            }
        ),
        u,
    )


def events_table(
    cc: list[tuple[str, str, str, dt.date, float]],
    peaks: list[tuple[str, str, dt.date, float]],
    promo: pl.DataFrame,
    start: dt.date,
    countries: pl.Enum,
) -> pl.DataFrame:
    """scenario_events rows; event_id = hid("5A.event", type, country, merchant, class, first, last, f32
    amplitude as text): two promotions of a merchant may share their dates, never all of these."""
    rows: list[tuple[str, str | None, int | None, str | None, dt.date, dt.date, float]] = [
        (t, c, None, cls, d, d, f) for t, c, cls, d, f in cc
    ]
    rows += [(t, None, None, cls, d, d, f) for t, cls, d, f in peaks]
    for m, s, dur, amp in promo.select("merchant_id", "start_day", "duration", "amplitude").iter_rows():
        first = start + dt.timedelta(days=s)
        rows.append(("PROMO", None, m, None, first, first + dt.timedelta(days=dur - 1), amp))
    keys = [
        (t, c or "", m or 0, cls or "", a.isoformat(), b.isoformat(), repr(float(np.float32(f))))
        for t, c, m, cls, a, b, f in rows
    ]
    ids, probes = assign_ids("5A.event", keys)
    df = pl.DataFrame(
        {
            "event_id": pl.Series(ids, dtype=pl.UInt64),
            "event_type": pl.Series([r[0] for r in rows], dtype=EVENT_TYPE),
            "country_iso": pl.Series([r[1] for r in rows], dtype=countries),
            "merchant_id": pl.Series([r[2] for r in rows], dtype=pl.UInt64),
            "demand_class": pl.Series([r[3] for r in rows], dtype=CLASS),
            "local_start": pl.Series([r[4] for r in rows], dtype=pl.Date),
            "local_end": pl.Series([r[5] for r in rows], dtype=pl.Date),
            "amplitude": pl.Series([r[6] for r in rows], dtype=pl.Float32),
        }
    )
    return df.sort("event_id"), probes


def day_factors(events: list[tuple[str, object, dt.date, float]], days: Days) -> dict[object, np.ndarray]:
    """scope key → factor per day of `days`: within a type the largest deviation wins, types multiply."""
    by_type: dict[tuple[str, object], np.ndarray] = {}
    for kind, key, day, f in events:
        j = days.index(day_number(day))
        if j is None:
            continue
        table = by_type.setdefault((kind, key), np.ones(days.n))
        table[j] = stronger(table[j], float(np.float32(f)))  # events publish f32 amplitudes
    out: dict[object, np.ndarray] = {}
    for (_, key), table in by_type.items():
        out[key] = out.get(key, np.ones(days.n)) * table
    return out
