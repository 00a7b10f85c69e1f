"""Pydantic models of 2A's policy packs; their JSON Schemas under contracts/ are generated from these."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.segments.l1.s1a.policy import Strict, Validation

Share = Annotated[float, Field(ge=0.0, le=1.0)]


class TzResolution(Strict):
    epsilon_deg: Annotated[float, Field(gt=0.0, lt=1.0)]
    fallback_max: Share
    fallback_country_max: Share
    fallback_country_min_sites: Annotated[int, Field(ge=1)]
    nearest_beyond_max: Share
    override_max: Share


class OverrideEntry(Strict):
    scope: Literal["site", "mcc", "country"]
    target: Annotated[str, Field(min_length=1)]
    tzid: Annotated[str, Field(min_length=1)]
    reason: Annotated[str, Field(min_length=1)]
    expires: dt.date | None = None

    @model_validator(mode="after")
    def _target_shape(self) -> OverrideEntry:
        shapes = {"site": r"^[0-9]+$", "mcc": r"^[0-9]{4}$", "country": r"^[A-Z]{2}$"}
        if not re.fullmatch(shapes[self.scope], self.target):
            raise ValueError(f"target {self.target!r} is not a valid {self.scope} target")
        return self


class TzOverrides(Strict):
    overrides: list[OverrideEntry]


POLICIES = {"tz_resolution": TzResolution, "tz_overrides": TzOverrides, "validation": Validation}
