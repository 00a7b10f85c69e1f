"""3A.S1 — every (merchant, legal country) pair's zone support and whether its zone split is escalated."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.segments.l1.s3a.pairs import PAIR, refuse_pairs
from engine.segments.l1.s3a.policy import ZoneEscalation


def match_rules(policy: ZoneEscalation, zones: pl.Series, sites: pl.Series) -> tuple[pl.Series, pl.Series]:
    """The first matching rule per pair (its name) and its escalate mode; the last rule catches all."""
    rule = pl.Series("rule", [None] * zones.len(), dtype=pl.String)
    mode = pl.Series("mode", [None] * zones.len(), dtype=pl.String)
    open_ = np.ones(zones.len(), dtype=bool)
    z, s = zones.to_numpy(), sites.to_numpy()
    for r in policy.rules:
        hit = open_.copy()
        for value, lo, hi in ((z, r.min_zones, r.max_zones), (s, r.min_sites, r.max_sites)):
            if lo is not None:
                hit &= value >= lo
            if hi is not None:
                hit &= value <= hi
        rule = rule.scatter(np.flatnonzero(hit), r.name)
        mode = mode.scatter(np.flatnonzero(hit), r.escalate)
        open_ &= ~hit
    return rule, mode


def pair_zones(outlets: pl.DataFrame, site_tz: pl.DataFrame, state: str) -> pl.DataFrame:
    """Sites per (pair, zone) and the zone's share of the pair; the pair's site_count is its outlet count."""
    counts = outlets.group_by(PAIR).agg(pl.len().cast(pl.UInt32).alias("site_count"))
    zones = site_tz.group_by([*PAIR, "tz_index", "tzid"]).agg(pl.len().cast(pl.UInt32).alias("sites_in_zone"))
    joined = zones.join(counts, on=PAIR, how="full", coalesce=True)
    sums = joined.group_by(PAIR).agg(pl.col("sites_in_zone").sum(), pl.col("site_count").first())
    bad = sums.filter(pl.col("site_count").is_null() | (pl.col("sites_in_zone") != pl.col("site_count")))
    refuse_pairs(
        bad,
        "E_3A_SITE_COUNT",
        "whose zoned sites differ from their outlet count",
        "{sites_in_zone} sites in site_timezones, {site_count} outlets in outlet_catalogue",
        where="site_timezones",
        fix="rebuild 2A from the same 1A/1B world (site_timezones must cover every outlet)",
        state=state,
    )
    return joined.with_columns((pl.col("sites_in_zone") / pl.col("site_count")).alias("site_share")).sort(
        [*PAIR, "tz_index"]
    )


def run(ctx: StateContext) -> None:
    policy: ZoneEscalation = ctx.policy("3A/zone_escalation.yaml")
    zones = pair_zones(ctx.sealed_table("outlet_catalogue"), ctx.sealed_table("site_timezones"), ctx.state)
    pairs = (
        zones.group_by(PAIR)
        .agg(pl.col("site_count").first(), pl.len().cast(pl.UInt16).alias("zones_supported"))
        .sort(PAIR)
    )
    rule, mode = match_rules(policy, pairs["zones_supported"], pairs["site_count"])
    pairs = pairs.with_columns(rule, mode)
    iso_num = dict(ctx.sealed_table("ref_countries").select("iso2", "iso_num").iter_rows())
    mixed = pairs.filter(pl.col("mode") == "theta_mix")
    nums = mixed["legal_country_iso"].replace_strict(iso_num, return_dtype=pl.UInt64).to_numpy()
    ids = mixed["merchant_id"].to_numpy()
    u = block_uniforms(ctx.family_key("escalate"), ids, nums)[:, 0]
    ctx.record_draws("escalate", (ids, nums, 0, 0), draws=1, blocks=1, value=u)
    drawn = mixed.select(*PAIR, pl.Series("escalate_draw", u < policy.theta_mix))
    pairs = (
        pairs.join(drawn, on=PAIR, how="left")
        .with_columns(
            pl.when(pl.col("mode") == "theta_mix")
            .then(pl.col("escalate_draw"))
            .otherwise(pl.col("mode") == "always")
            .alias("is_escalated")
        )
        .select(*PAIR, "site_count", "zones_supported", "rule", "is_escalated")
    )
    for name, n in pairs.group_by("rule").len().sort("rule").iter_rows():
        ctx.count(f"rule_{name.lower()}", n)
    ctx.facts["escalated_pairs"] = int(pairs["is_escalated"].sum())
    ctx.publish("s1_pairs", pairs)
    ctx.publish("s1_pair_zones", zones.select(*PAIR, "tz_index", "tzid", "sites_in_zone", "site_share"))
