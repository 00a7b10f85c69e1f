"""Pydantic models of 2A's policy packs; their JSON Schemas under contracts/ are generated from these."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from engine.core.policy_codes import Code
from engine.core.policy_model import FieldError, NumberText, Strict, validation_model

Share = Annotated[float, Field(ge=0.0, le=1.0)]


def _iso_date(value: Any) -> Any:
    """A calendar date as YAML 1.2 reads it (text `YYYY-MM-DD`); never a number or a timestamp."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a calendar date") from exc
    if type(value) is dt.date:
        return value
    raise ValueError(f"{value!r} is not a date: write YYYY-MM-DD")


TzidCode = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"), Code("tzid")]


class TzResolution(Strict):
    epsilon_deg: Annotated[float, Field(gt=0.0, lt=1.0)]
    # amendment 7: a site whose one candidate is a zone zone1970.tab (not zone.tab) lists for its country
    # publishes its country's own zone ("country": single-zone countries whose zone keeps the same offsets
    # over the cache window; else the polygon's) or always the polygon's zone ("polygon")
    zone1970_tzid: Literal["country", "polygon"]
    # where several candidate polygons cover a site, the first of these zones among them wins
    overlap_preference: list[TzidCode]
    fallback_max: Share
    fallback_country_max: Share
    fallback_country_min_sites: Annotated[int, Field(ge=1)]
    nearest_beyond_max: Share
    override_max: Share

    @model_validator(mode="after")
    def _unique_preference(self) -> TzResolution:
        seen: set[str] = set()
        for i, tz in enumerate(self.overlap_preference):
            if tz in seen:
                raise FieldError(f"{tz} is listed twice", "overlap_preference", i)
            seen.add(tz)
        return self


TARGET_SHAPES = {"site": r"^[0-9]+$", "mcc": r"^[0-9]{4}$", "country": r"^[A-Z]{2}$"}


class OverrideEntry(Strict):
    scope: Literal["site", "mcc", "country"]
    target: Annotated[
        str,
        NumberText,
        Field(min_length=1),
        Code(by="scope"),
    ]
    tzid: TzidCode
    reason: Annotated[str, Field(min_length=1)]
    expires: Annotated[dt.date, BeforeValidator(_iso_date)] | None = None

    @model_validator(mode="after")
    def _target_shape(self) -> OverrideEntry:
        if not re.fullmatch(TARGET_SHAPES[self.scope], self.target):
            raise FieldError(f"target {self.target!r} is not a valid {self.scope} target", "target")
        return self


class TzOverrides(Strict):
    overrides: list[OverrideEntry]


# the metrics 2A.S5 computes (engine/segments/l1/s2a/s5_validation.py)
METRICS = (
    "tzid_listed_share",
    "fallback_share",
    "max_country_fallback_share",
    "nearest_beyond_share",
    "override_share",
    "multizone_countries_using_two",
    "median_zone_entropy",
    "cache_agreement",
    "dst_windows_agreement",
)

POLICIES = {
    "tz_resolution": TzResolution,
    "tz_overrides": TzOverrides,
    "validation": validation_model("2A", METRICS),
}
