"""Pydantic models of 2B's policy packs; their JSON Schemas under contracts/ are generated from these."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.core.policy_model import (
    Exponent,
    FieldError,
    Positive,
    Prob,
    Strict,
    ordered,
    pair,
    validation_model,
)
from engine.segments.l1.alias_layout import AliasLayoutPolicy

PROFILES = ("HUB", "HEAVY", "FLAT")
Sigma = Annotated[float, Field(ge=0.0, le=3.0)]


class ProfileTier(Strict):
    """Profile probabilities for merchants whose site count is at least `min_sites`."""

    min_sites: Annotated[int, Field(ge=2)]
    HUB: Prob
    HEAVY: Prob
    FLAT: Prob

    @model_validator(mode="after")
    def _sums_to_one(self) -> ProfileTier:
        if abs(self.HUB + self.HEAVY + self.FLAT - 1.0) > 1e-9:
            raise FieldError("HUB + HEAVY + FLAT must be 1", "HUB")
        return self


def _ascending_tiers(tiers: list, first: int, field: str) -> None:
    """Tiers start at `first` and ascend strictly, so every site count maps to exactly one tier."""
    if tiers[0].min_sites != first:
        raise FieldError(f"the first tier must start at {first}", field, 0, "min_sites")
    for i in range(1, len(tiers)):
        if tiers[i].min_sites <= tiers[i - 1].min_sites:
            raise FieldError("min_sites must ascend", field, i, "min_sites")


class ProfileSigma(Strict):
    HUB: Sigma
    HEAVY: Sigma
    FLAT: Sigma


class SiteWeights(Strict):
    profiles: list[ProfileTier] = Field(min_length=1)
    sigma: ProfileSigma
    hub_boost: Annotated[float, Field(ge=1.0, le=100.0)]
    pop_exponent: Exponent
    top1_cap: Annotated[float, Field(gt=0.0, le=1.0)]

    @model_validator(mode="after")
    def _tiers(self) -> SiteWeights:
        _ascending_tiers(self.profiles, 2, "profiles")
        return self


class SigmaTier(Strict):
    min_sites: Annotated[int, Field(ge=1)]
    sigma: Annotated[float, Field(gt=0.0, le=2.0)]


class DayEffects(Strict):
    # the spec's alternative gamma_mean1 (Marsaglia–Tsang, a variable lane count per row) is not built: the
    # policy refuses it rather than let S3 draw something else than it names
    distribution: Literal["lognormal_mean1"]
    sigma: list[SigmaTier] = Field(min_length=1)
    clip: pair(Positive)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _tiers(self) -> DayEffects:
        _ascending_tiers(self.sigma, 1, "sigma")
        ordered(self.clip, "clip")
        if not self.clip[0] <= 1.0 <= self.clip[1]:
            raise FieldError("the clip range must contain the mean 1", "clip")
        return self


class Router(Strict):
    probe_arrivals_per_merchant: Annotated[int, Field(ge=1, le=1 << 20)]


# the metrics 2B.S8 computes (engine/segments/l1/s2b/s8_validation.py)
METRICS = (
    "slices_exact_share",
    "median_top1_top2_gap",
    "hhi_iqr",
    "median_top1_share_10plus",
    "gamma_mean",
    "median_gamma_sd",
    "gamma_clipped_share",
    "median_max_p_group",
    "multigroup_share_10plus",
    "probe_membership_violations",
    "probe_slices_p_below_1e6",
    "probe_share_p_below_001",
    "group_weight_coverage",
)

POLICIES = {
    "site_weights": SiteWeights,
    "alias_layout": AliasLayoutPolicy,
    "day_effects": DayEffects,
    "router": Router,
    "validation": validation_model("2B", METRICS),
}
