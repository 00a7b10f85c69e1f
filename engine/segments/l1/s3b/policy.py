"""Pydantic models of 3B's policy packs; their JSON Schemas under contracts/ are generated from these."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.core.policy_model import (
    Exponent,
    FieldError,
    Iso2,
    Mcc,
    NumberText,
    Positive,
    Prob,
    Strict,
    expand_codes,
    ordered,
    pair,
    validation_model,
)
from engine.segments.l1.alias_layout import AliasLayoutPolicy
from engine.segments.l1.s1a.policy import SectorName

Mode = Literal["PHYSICAL", "HYBRID", "VIRTUAL_ONLY"]
Channel = Literal["card_present", "card_not_present"]
Sector = SectorName  # 1A's sectors: a misspelt one would silently match no merchant


class Rule(Strict):
    """One classification rule; a condition left out matches everything (P99 leaves out all of them)."""

    id: Annotated[str, Field(pattern=r"^[A-Z][0-9]{2}$")]
    version: Annotated[str, NumberText, Field(pattern=r"^[0-9]+(\.[0-9]+)*$")]  # "1", "1.2"
    sectors: list[Sector] | None = None
    mccs: list[Mcc] | None = None
    mcc_ranges: list[pair(Mcc)] | None = None  # type: ignore[valid-type]
    channel: Channel | None = None
    n_outlets_ge: Annotated[int, Field(ge=1)] | None = None
    decision: Mode

    def mcc_set(self) -> set[int] | None:
        """The MCCs the rule names (listed plus ranges), or None when it names none."""
        if self.mccs is None and self.mcc_ranges is None:
            return None
        return set(expand_codes(self.mccs or [], list(self.mcc_ranges or [])))

    def is_catch_all(self) -> bool:
        return (
            self.sectors is None
            and self.mcc_set() is None
            and self.channel is None
            and self.n_outlets_ge is None
        )


class Beta(Strict):
    alpha: Positive
    beta: Positive
    clip: pair(Prob)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _clip(self) -> Beta:
        ordered(self.clip, "clip")
        return self


class VirtualRules(Strict):
    rules: list[Rule] = Field(min_length=1)
    hybrid_virtual_share: Beta

    @model_validator(mode="after")
    def _rules(self) -> VirtualRules:
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                raise FieldError(f"rule id {rule.id} repeats rules.{seen[rule.id]}", "rules", i, "id")
            seen[rule.id] = i
            if rule.mcc_ranges:
                for k, lo_hi in enumerate(rule.mcc_ranges):
                    ordered(lo_hi, "rules", i, "mcc_ranges", k)
            if rule.is_catch_all() and i != len(self.rules) - 1:
                raise FieldError(f"catch-all rule {rule.id} hides every rule after it", "rules", i)
        if not self.rules[-1].is_catch_all():
            raise FieldError(
                "the last rule must be a catch-all (no conditions)", "rules", len(self.rules) - 1
            )
        return self


class Settlement(Strict):
    offshore_prob: dict[Literal["VIRTUAL_ONLY", "HYBRID"], Prob]
    hubs: dict[Iso2, Positive] = Field(min_length=1)
    city_top_k: Annotated[int, Field(ge=1, le=100_000)]
    city_pop_exponent: Exponent

    @model_validator(mode="after")
    def _modes(self) -> Settlement:
        missing = {"VIRTUAL_ONLY", "HYBRID"} - set(self.offshore_prob)
        if missing:
            raise FieldError(f"offshore_prob lacks {', '.join(sorted(missing))}", "offshore_prob")
        return self


class EdgeCount(Strict):
    base: dict[Literal["VIRTUAL_ONLY", "HYBRID"], Annotated[float, Field(gt=0.0, le=1000.0)]]
    size_slope: Annotated[float, Field(ge=0.0, le=5.0)]
    sigma: Annotated[float, Field(ge=0.0, le=3.0)]
    range: pair(Annotated[int, Field(ge=1, le=65_535)])  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _count(self) -> EdgeCount:
        ordered(self.range, "range")
        missing = {"VIRTUAL_ONLY", "HYBRID"} - set(self.base)
        if missing:
            raise FieldError(f"base lacks {', '.join(sorted(missing))}", "base")
        return self


class CdnWeights(Strict):
    pop_exponent: Exponent
    gdp_pc_exponent: Exponent
    hubs: list[Iso2]
    hub_boost: Annotated[float, Field(ge=1.0, le=100.0)]


class Edges(Strict):
    edge_count: EdgeCount
    cdn_weights: CdnWeights
    locality_km: Annotated[float, Field(gt=0.0, le=40_000.0)]
    kappa: Prob
    settlement_share_range: pair(Prob)  # type: ignore[valid-type]
    edge_weight_sigma: Annotated[float, Field(ge=0.0, le=3.0)]
    jitter_max_attempts: Annotated[int, Field(ge=1, le=255)]

    @model_validator(mode="after")
    def _range(self) -> Edges:
        ordered(self.settlement_share_range, "settlement_share_range")
        return self


class VirtualRouting(Strict):
    primary_clock: Literal["operational", "settlement"]
    settlement_cutoff_local: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


# the metrics 3B.S5 computes (engine/segments/l1/s3b/s5_validation.py)
METRICS = (
    "virtual_only_share",
    "hybrid_share",
    "rule_stamped_share",
    "distinct_rules_fired",
    "cv_edges_per_merchant",
    "cv_countries_per_merchant",
    "median_top1_edge_share",
    "median_settlement_country_share",
    "median_weighted_settlement_km",
    "min_settlement_city_ratio",
    "max_settlement_top_city_share",
    "exact_slice_and_inside_share",
    "edge_fallback_share",
    "edge_tz_fallback_share",
    "mean_hybrid_virtual_share",
)

POLICIES = {
    "virtual_rules": VirtualRules,
    "settlement": Settlement,
    "edges": Edges,
    "alias_layout": AliasLayoutPolicy,
    "virtual_routing": VirtualRouting,
    "validation": validation_model("3B", METRICS),
}
