"""Pydantic models of 5B's policy packs; their JSON Schemas under contracts/ are generated from these."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.core.policy_model import Positive, Strict, ordered, pair, validation_model
from engine.segments.l2.s5a.policy import CLASSES

DemandClass = Literal[CLASSES]  # type: ignore[valid-type]
Role = Literal["BASELINE", "STRESS"]
Channel = Literal["CP", "CNP"]


class Scaled(Strict):
    """A parameter per scenario role × class multiplier (1 if unlisted) × channel multiplier (1 if unlisted),
    clamped (layer2_3 §2.1)."""

    base: dict[Role, Positive]
    by_class: dict[DemandClass, Positive] = Field(default_factory=dict)
    by_channel: dict[Channel, Positive] = Field(default_factory=dict)
    clamp: pair(Positive)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _complete(self) -> Scaled:
        ordered(self.clamp, "clamp")
        return self

    def value(self, role: str, demand_class: str, channel: str) -> float:
        raw = self.base[role] * self.by_class.get(demand_class, 1.0) * self.by_channel.get(channel, 1.0)
        return min(max(raw, self.clamp[0]), self.clamp[1])


class Grouping(Strict):
    in_stratum_buckets: Annotated[int, Field(ge=1, le=255)]
    min_median_group_rows: Annotated[int, Field(ge=1)]


class Latent(Strict):
    model: Literal["log_gaussian_ar1", "none"]
    sigma: Scaled
    corr_hours: Scaled
    factor_clip: pair(Positive)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _clip(self) -> Latent:
        ordered(self.factor_clip, "factor_clip")
        return self


class Counts(Strict):
    law: Literal["nb2", "poisson"]
    kappa: Scaled
    lambda_eps: Annotated[float, Field(ge=0.0, lt=1.0)]
    max_count_per_cell: Annotated[int, Field(ge=1, le=4_294_967_295)]
    use_day_effects: bool


class Arrivals(Strict):
    placement: Literal["uniform_us"]
    batch_max_arrivals: Annotated[int, Field(ge=1024, le=1 << 26)]
    physical_router: Literal["engine.kernels.router.route_in_group"]
    virtual_router: Literal["engine.kernels.router.route_virtual"]


# the metrics 5B.S5 computes (engine/segments/l2/s5b/s5_validation.py)
METRICS = (
    "count_conservation",
    "in_bucket_share",
    "civil_time_mismatches",
    "routing_membership",
    "count_to_lambda_ratio",
    "mean_factor",
    "clipped_share",
    "lag1_gap",
    "dispersion",
    "id_order",
    "rng_accounting",
    "virtual_share",
    "weekend_share_gap",
    "cp_peak_hour",
    "night_share_gap",
    "top_site_share",
)

POLICIES = {
    "grouping": Grouping,
    "latent": Latent,
    "counts": Counts,
    "arrivals": Arrivals,
    "validation": validation_model("5B", METRICS),
}
