"""5A.S2 — the unit-mass local-week shapes per (class, channel group, weekend convention, variant); no RNG.

Template day weights are written for a SAT_SUN weekend; another convention rotates them so the template's
Saturday/Sunday pattern lands on that convention's weekend: FRI_SAT takes Monday..Sunday weights from one day
later (Friday gets Saturday's, Saturday Sunday's, Sunday Monday's), FRI from two days later (Thursday gets
Saturday's, Friday Sunday's: Iran's half-day Thursday and its Friday). The sanity checks read the weekend as
those two days.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.segments.l2.s5a.common import CHANNEL, CLASS, CONVENTION, WEEK, shape_id
from engine.segments.l2.s5a.policy import CHANNELS, CLASSES, CONVENTIONS, Shapes, Template

ROTATION = {"SAT_SUN": 0, "FRI_SAT": 1, "FRI": 2}
WEEKEND_DAYS = {"SAT_SUN": (5, 6), "FRI_SAT": (4, 5), "FRI": (3, 4)}
SUM_TOL = 1e-12


def shape_values(t: Template, shift_min: float, amp_scale: float, convention: str) -> np.ndarray:
    """v_k = (dow_w[d]·g(m))^power at each hour's midpoint minute m, normalised to sum 1."""
    k = np.arange(WEEK)
    day, minute = k // 24, 60.0 * (k % 24) + 30.0
    g = np.full(WEEK, t.floor)
    for c in t.components:
        g += amp_scale * c.amp * np.exp(-0.5 * ((minute - (c.center_min + shift_min)) / c.sigma_min) ** 2)
    dow = np.asarray(t.dow_weights)[(day + ROTATION[convention]) % 7]
    v = (dow * g) ** t.power
    return v / v.sum()


def hour_share(values: np.ndarray, days: tuple[int, ...] | range, hours: range) -> float:
    week = values.reshape(7, 24)
    return float(week[list(days)][:, list(hours)].sum())


def sanity_problems(cls: str, values: np.ndarray, convention: str, min_peak_to_trough: float) -> list[str]:
    """The spec's unit-mass, positivity, peak/trough and per-class checks (E_5A_SHAPE_INVALID)."""
    out = []
    if abs(values.sum() - 1.0) > SUM_TOL:
        out.append(f"sums to {values.sum()!r}")
    if (values < 0).any() or not np.isfinite(values).all():
        out.append("has negative or non-finite values")
    elif values.min() <= 0 or values.max() / values.min() < min_peak_to_trough:
        out.append(f"max/min below {min_peak_to_trough}")
    weekend = WEEKEND_DAYS[convention]
    workdays = tuple(d for d in range(7) if d not in weekend)
    if cls == "online_24h" and hour_share(values, range(7), range(0, 6)) < 0.08:
        out.append("online_24h night share (00–06) below 0.08")
    if cls == "office_hours" and hour_share(values, workdays, range(8, 18)) < 0.65:
        out.append("office_hours weekday 08–18 share below 0.65")
    if cls in ("evening_weekend", "travel_hospitality") and hour_share(values, weekend, range(24)) < 0.30:
        out.append(f"{cls} weekend share below 0.30")
    return out


def library(pol: Shapes, state: str) -> pl.DataFrame:
    """Every shape's 168 values, in (shape_id, week_bucket) order; refuses an invalid shape."""
    frames = []
    for ci, cls in enumerate(CLASSES):
        for hi, ch in enumerate(CHANNELS):
            t = pol.template(cls, ch)
            for vi, conv in enumerate(CONVENTIONS):
                for variant in range(3):
                    values = shape_values(
                        t, pol.variants.shift_min[variant], pol.variants.amp_scale[variant], conv
                    )
                    problems = sanity_problems(cls, values, conv, pol.min_peak_to_trough)
                    if problems:
                        raise EngineError(
                            "E_5A_SHAPE_INVALID",
                            f"shape {cls}/{ch}/{conv}/variant {variant}: {'; '.join(problems)}",
                            where="5A/shapes.yaml",
                            fix="adjust the template's day weights, components or floor",
                            state=state,
                        )
                    frames.append(
                        pl.DataFrame(
                            {
                                "shape_id": pl.Series(
                                    [shape_id(ci, hi, vi, variant)] * WEEK, dtype=pl.UInt16
                                ),
                                "demand_class": pl.Series([cls] * WEEK, dtype=CLASS),
                                "channel_group": pl.Series([ch] * WEEK, dtype=CHANNEL),
                                "weekend_convention": pl.Series([conv] * WEEK, dtype=CONVENTION),
                                "variant": pl.Series([variant] * WEEK, dtype=pl.UInt8),
                                "week_bucket": pl.Series(np.arange(WEEK), dtype=pl.UInt8),
                                "value": values,
                            }
                        )
                    )
    return pl.concat(frames).sort("shape_id", "week_bucket")


def run(ctx: StateContext) -> None:
    pol: Shapes = ctx.policy("5A/shapes.yaml")
    out = library(pol, ctx.state)
    ctx.facts["shapes"] = out["shape_id"].n_unique()
    ctx.publish("shape_library", out, seed_free=True)
