"""Pydantic models of 5A's policy packs; their JSON Schemas under contracts/ are generated from these."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.core.policy_model import (
    FieldError,
    Iso2,
    Mcc,
    Positive,
    Prob,
    Strict,
    expand_codes,
    ordered,
    pair,
    validation_model,
)

CLASSES = (
    "consumer_daytime",
    "grocery_daily",
    "evening_weekend",
    "office_hours",
    "fuel_convenience",
    "travel_hospitality",
    "bills_utilities",
    "cash_access",
    "online_24h",
    "online_bursty",
)
CHANNELS = ("CP", "CNP")
CONVENTIONS = ("SAT_SUN", "FRI_SAT", "FRI")
ROLES = ("PRIMARY", "SECONDARY", "TAIL")
VARIANTS = 3
DemandClass = Literal[CLASSES]  # type: ignore[valid-type]
Channel = Literal["CP", "CNP"]
Factor = Annotated[float, Field(gt=0.0, le=10.0)]
Minute = Annotated[float, Field(ge=0.0, lt=1440.0)]


# --- merchant_class.yaml ----------------------------------------------------------------------------------
class Sector(Strict):
    """MCCs listed by code win over ranges; ranges only catch codes no sector lists."""

    mccs: list[Mcc] = Field(default_factory=list)
    ranges: list[pair(Mcc)] = Field(default_factory=list)  # type: ignore[valid-type]
    classes: dict[Channel, DemandClass]

    @model_validator(mode="after")
    def _both_channels(self) -> Sector:
        if set(self.classes) != set(CHANNELS):
            raise FieldError("give a class for both channel groups CP and CNP", "classes")
        return self


class MerchantClass(Strict):
    sectors: dict[Annotated[str, Field(pattern=r"^[a-z][a-z_]*$")], Sector] = Field(min_length=1)
    virtual_only_class: DemandClass
    # VIRTUAL_ONLY merchants of these sectors get this class instead (travel → online_bursty)
    virtual_only_overrides: dict[str, DemandClass] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unambiguous(self) -> MerchantClass:
        listed: dict[int, str] = {}
        for name, sector in self.sectors.items():
            for i, code in enumerate(sector.mccs):
                if code in listed:
                    raise FieldError(
                        f"MCC {code} is also listed by {listed[code]}", "sectors", name, "mccs", i
                    )
                listed[code] = name
        ranged: dict[int, str] = {}
        for name, sector in self.sectors.items():
            for code in expand_codes([], list(sector.ranges), "sectors", name):
                if code in ranged and ranged[code] != name:
                    raise FieldError(f"MCC {code} lies in ranges of {ranged[code]} too", "sectors", name)
                ranged[code] = name
        for name in self.virtual_only_overrides:
            if name not in self.sectors:
                raise FieldError(f"unknown sector {name!r}", "virtual_only_overrides", name)
        return self

    def sector_of(self) -> dict[int, str]:
        """MCC → sector: listed codes first, then the ranges."""
        out: dict[int, str] = {}
        for name, sector in self.sectors.items():
            for code in expand_codes([], list(sector.ranges)):
                out[code] = name
        for name, sector in self.sectors.items():
            out.update(dict.fromkeys(sector.mccs, name))
        return out


# --- demand_scale.yaml ------------------------------------------------------------------------------------
class ClassScale(Strict):
    median_weekly_per_site: Positive
    pareto_alpha: Annotated[float, Field(gt=1.0, le=10.0)]


class ZoneRoles(Strict):
    primary_min_share: Prob
    tail_max_share: Prob
    multipliers: dict[Literal[ROLES], Factor]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _coherent(self) -> ZoneRoles:
        if self.tail_max_share >= self.primary_min_share:
            raise FieldError("tail_max_share must lie below primary_min_share", "tail_max_share")
        if set(self.multipliers) != set(ROLES):
            raise FieldError("give a multiplier for PRIMARY, SECONDARY and TAIL", "multipliers")
        return self


class DemandScale(Strict):
    classes: dict[DemandClass, ClassScale]
    per_site_clip: Annotated[float, Field(ge=1.0)]
    zone_roles: ZoneRoles
    channel_multipliers: dict[Channel, Factor]
    brand_exponent: Annotated[float, Field(ge=0.0, le=1.0)]
    target_arrivals: Annotated[float, Field(gt=0.0, le=1e12)]
    soft_cap_to_mean: Annotated[float, Field(gt=1.0)]
    soft_cap_slope: Annotated[float, Field(ge=0.0, le=1.0)]
    soft_cap_ceiling: Annotated[float, Field(ge=1.0)]
    hard_cap_to_mean: Annotated[float, Field(gt=1.0)]

    @model_validator(mode="after")
    def _complete(self) -> DemandScale:
        if set(self.classes) != set(CLASSES):
            raise FieldError(f"give a scale for every class: {', '.join(CLASSES)}", "classes")
        if set(self.channel_multipliers) != set(CHANNELS):
            raise FieldError("give a multiplier for CP and CNP", "channel_multipliers")
        return self


# --- shapes.yaml ------------------------------------------------------------------------------------------
class Component(Strict):
    center_min: Minute
    sigma_min: Annotated[float, Field(gt=0.0, le=1440.0)]
    amp: Annotated[float, Field(ge=0.0)]


class Template(Strict):
    """A local-week shape; dow_weights run Monday..Sunday and are written for a SAT_SUN weekend."""

    demand_class: DemandClass
    channel_group: Literal["CP", "CNP", "ANY"]
    dow_weights: Annotated[list[Annotated[float, Field(gt=0.0)]], Field(min_length=7, max_length=7)]
    components: list[Component] = Field(min_length=1)
    floor: Annotated[float, Field(ge=0.0)]
    power: Annotated[float, Field(gt=0.0, le=4.0)]


class Variants(Strict):
    shift_min: Annotated[
        list[Annotated[float, Field(ge=-180.0, le=180.0)]], Field(min_length=3, max_length=3)
    ]
    amp_scale: Annotated[list[Positive], Field(min_length=3, max_length=3)]


class Shapes(Strict):
    templates: list[Template] = Field(min_length=1)
    variants: Variants
    weekend: dict[Literal["FRI_SAT", "FRI"], list[Iso2]]
    min_peak_to_trough: Annotated[float, Field(ge=1.0)]

    @model_validator(mode="after")
    def _covering(self) -> Shapes:
        seen: set[tuple[str, str]] = set()
        for i, t in enumerate(self.templates):
            key = (t.demand_class, t.channel_group)
            if key in seen:
                raise FieldError(f"template {key} repeats", "templates", i)
            seen.add(key)
        for cls in CLASSES:
            for ch in CHANNELS:
                if (cls, ch) not in seen and (cls, "ANY") not in seen:
                    raise FieldError(f"no template for {cls} {ch} (nor ANY)", "templates")
        countries: dict[str, str] = {}
        for conv, isos in self.weekend.items():
            for j, iso in enumerate(isos):
                if iso in countries:
                    raise FieldError(f"{iso} is also listed under {countries[iso]}", "weekend", conv, j)
                countries[iso] = conv
        return self

    def template(self, cls: str, channel: str) -> Template:
        by_key = {(t.demand_class, t.channel_group): t for t in self.templates}
        return by_key.get((cls, channel)) or by_key[(cls, "ANY")]

    def convention_of(self) -> dict[str, str]:
        """iso2 → weekend convention for the countries that do not keep SAT_SUN."""
        return {iso: conv for conv, isos in self.weekend.items() for iso in isos}


# --- overlays.yaml ----------------------------------------------------------------------------------------
class FixedPayday(Strict):
    day: Annotated[int, Field(ge=1, le=28)]
    countries: list[Iso2]


class PaydayRules(Strict):
    semi_monthly: list[Iso2]  # the 15th and the last business day
    fixed_day: list[FixedPayday]  # e.g. the 25th
    day_factors: Annotated[list[Factor], Field(min_length=1, max_length=7)]  # day 0, 1, 2 after payday
    classes: list[DemandClass]
    bills_factors: Annotated[list[Factor], Field(min_length=1, max_length=7)]  # bills_utilities, days 0..

    @model_validator(mode="after")
    def _disjoint(self) -> PaydayRules:
        listed = list(self.semi_monthly) + [c for rule in self.fixed_day for c in rule.countries]
        if len(listed) != len(set(listed)):
            raise FieldError("a country may follow one payday rule only", "fixed_day")
        return self


class Promo(Strict):
    rate_per_28d: Annotated[float, Field(ge=0.0, le=20.0)]
    duration_days: pair(Annotated[int, Field(ge=1, le=60)])  # type: ignore[valid-type]
    amplitude: pair(Annotated[float, Field(gt=0.0, le=10.0)])  # type: ignore[valid-type]
    max_per_merchant: Annotated[int, Field(ge=0, le=64)]

    @model_validator(mode="after")
    def _ordered(self) -> Promo:
        ordered(self.duration_days, "duration_days")
        ordered(self.amplitude, "amplitude")
        return self


class Overlays(Strict):
    holiday: dict[DemandClass, Factor]
    holiday_eve: dict[DemandClass, Factor]
    payday: PaydayRules
    promo: Promo
    # within a type only the largest deviation acts, so at most one event per type (five) acts on a row-bucket
    clamp: pair(Annotated[float, Field(gt=0.0, le=100.0)])  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _complete(self) -> Overlays:
        if set(self.holiday) != set(CLASSES):
            raise FieldError("give a holiday factor for every class", "holiday")
        ordered(self.clamp, "clamp")
        return self


# --- scenarios/<id>.yaml ----------------------------------------------------------------------------------
class Peak(Strict):
    """A surge over horizon days [first, last] (0-based local dates from the horizon's start date) or absolute
    dates, ramping linearly to the class peaks over the first `ramp_days`."""

    window_days: pair(Annotated[int, Field(ge=0, le=3660)]) | None = None  # type: ignore[valid-type]
    window_dates: pair(dt.date) | None = None  # type: ignore[valid-type]
    ramp_days: Annotated[int, Field(ge=0, le=30)]
    class_peaks: dict[DemandClass, Factor]
    default_peak: Factor
    holiday_deviation_scale: Annotated[float, Field(ge=0.0, le=5.0)]

    @model_validator(mode="after")
    def _one_window(self) -> Peak:
        if (self.window_days is None) == (self.window_dates is None):
            raise FieldError("give exactly one of window_days and window_dates", "window_days")
        ordered(self.window_days or self.window_dates, "window_days" if self.window_days else "window_dates")
        return self

    def window(self, start: dt.date) -> tuple[dt.date, dt.date]:
        if self.window_dates is not None:
            return self.window_dates
        first, last = self.window_days
        return start + dt.timedelta(days=first), start + dt.timedelta(days=last)


class Scenario(Strict):
    role: Literal["BASELINE", "STRESS"]
    holidays: bool
    paydays: bool
    promos: bool
    peak: Peak | None = None

    @model_validator(mode="after")
    def _peak_is_stress(self) -> Scenario:
        if (self.peak is not None) != (self.role == "STRESS"):
            raise FieldError("a STRESS scenario has a peak and a BASELINE one has none", "peak")
        return self


# the metrics 5A.S5 computes (engine/segments/l2/s5a/s5_validation.py)
METRICS = (
    "shape_and_weekly_sums",
    "horizon_and_dst_audit",
    "classes_with_two_percent",
    "max_class_volume_share",
    "per_site_p99_over_p50",
    "top1pct_merchant_share",
    "soft_capped_share",
    "hard_cap_hits",
    "target_ratio",
    "baseline_mean_overlay",
    "clamped_share",
    "stress_over_baseline",
    "cnp_minus_cp_night_share",
    "office_holiday_factor",
    "countries_without_holidays",
)

SCENARIO_IDS = ("baseline", "holiday_peak")
POLICIES = {
    "merchant_class": MerchantClass,
    "demand_scale": DemandScale,
    "shapes": Shapes,
    "overlays": Overlays,
    **{f"scenarios/{s}": Scenario for s in SCENARIO_IDS},
    "validation": validation_model("5A", METRICS),
}
