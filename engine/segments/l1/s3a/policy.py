"""Pydantic models of 3A's policy packs; their JSON Schemas under contracts/ are generated from these."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.core.policy_model import FieldError, Positive, Prob, Strict, ordered, pair, validation_model

Count = Annotated[int, Field(ge=0)]


class EscalationRule(Strict):
    """Matches a pair whose zones_supported and site_count lie inside every bound it sets (bounds inclusive);
    a rule that sets none is a catch-all. `escalate`: never, always, or with probability theta_mix."""

    name: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    min_zones: Count | None = None
    max_zones: Count | None = None
    min_sites: Count | None = None
    max_sites: Count | None = None
    escalate: Literal["never", "always", "theta_mix"]

    def is_catch_all(self) -> bool:
        return all(b is None for b in (self.min_zones, self.max_zones, self.min_sites, self.max_sites))

    @model_validator(mode="after")
    def _ordered(self) -> EscalationRule:
        for what in ("zones", "sites"):
            lo, hi = getattr(self, f"min_{what}"), getattr(self, f"max_{what}")
            if lo is not None and hi is not None:
                ordered((lo, hi), f"min_{what}")
        return self


class ZoneEscalation(Strict):
    theta_mix: Prob
    rules: list[EscalationRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _ends_in_catch_all(self) -> ZoneEscalation:
        last = len(self.rules) - 1
        for i, rule in enumerate(self.rules):
            if rule.is_catch_all() and i != last:
                raise FieldError(
                    "a catch-all before the last rule leaves the rules after it unreachable", "rules", i
                )
        if not self.rules[last].is_catch_all():
            raise FieldError(
                "the last rule must be a catch-all (set no bounds) so every pair matches", "rules", last
            )
        return self


class ZonePriors(Strict):
    smoothing_share: Annotated[float, Field(ge=0.0, le=1.0)]
    zone_floor: Annotated[float, Field(ge=0.0, lt=1.0)]
    blend_site_share: Prob
    kappa0: Annotated[float, Field(ge=0.0)]
    kappa_per_site: Annotated[float, Field(ge=0.0)]
    kappa_range: pair(Positive)  # type: ignore[valid-type]
    alpha_floor: Annotated[float, Field(gt=0.0)]

    @model_validator(mode="after")
    def _kappa_ordered(self) -> ZonePriors:
        ordered(self.kappa_range, "kappa_range")
        return self


# the metrics 3A.S6 computes (engine/segments/l1/s3a/s6_validation.py)
METRICS = (
    "pair_coverage",
    "count_conservation",
    "median_share_shift",
    "multizone_two_zones_share",
    "median_top1_share",
    "median_country_tv",
    "escalated_share",
    "universe_hash_agreement",
)

POLICIES = {
    "zone_escalation": ZoneEscalation,
    "zone_priors": ZonePriors,
    "validation": validation_model("3A", METRICS),
}
