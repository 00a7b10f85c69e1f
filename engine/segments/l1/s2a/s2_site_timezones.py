"""2A.S2 — the site_timezones egress, the zones in use, and per-method resolution counts."""

from __future__ import annotations

import polars as pl

from engine.core.canonical import canonical_json_bytes
from engine.core.errors import EngineError
from engine.core.layout import report_file
from engine.core.publish import replace_bytes
from engine.core.state import StateContext

OVERRIDES = ("OVERRIDE_SITE", "OVERRIDE_MCC", "OVERRIDE_COUNTRY")


def resolution_summary(lookup: pl.DataFrame) -> dict[str, object]:
    def counts(df: pl.DataFrame) -> dict[str, int]:
        return dict(df.group_by("resolution_method").len().sort("resolution_method").iter_rows())

    per_country = {
        iso2: counts(grp)
        for (iso2,), grp in lookup.sort("legal_country_iso").group_by(
            ["legal_country_iso"], maintain_order=True
        )
    }
    return {"global": counts(lookup), "per_country": per_country, "sites": lookup.height}


def run(ctx: StateContext) -> None:
    lookup = ctx.read("s1_tz_lookup")
    locations = ctx.sealed_table("site_locations").select("site_id", "site_order")
    out = (
        lookup.join(locations, on="site_id", how="inner")
        .select(
            "site_id",
            "merchant_id",
            "legal_country_iso",
            "site_order",
            "tzid",
            "tz_index",
            "resolution_method",
        )
        .sort(["merchant_id", "legal_country_iso", "site_order"])
    )
    if out.height != locations.height:
        raise EngineError(
            "E_2A_COVERAGE",
            "site_timezones differs from site_locations",
            where="site_timezones",
            state=ctx.state,
        )
    in_use = (
        out.group_by("tz_index", "tzid")
        .agg(
            pl.len().cast(pl.UInt64).alias("n_sites"),
            pl.col("merchant_id").n_unique().cast(pl.UInt64).alias("n_merchants"),
        )
        .sort("tz_index")
    )
    ctx.publish("site_timezones", out)
    ctx.publish("tz_in_use", in_use)
    summary = resolution_summary(lookup)
    ctx.facts["resolution"] = summary["global"]
    path = report_file(ctx.root, ctx.segment, ctx.name, ctx.mf, ctx.seed).with_name(
        "s2_resolution_summary.json"
    )
    replace_bytes(path, canonical_json_bytes(summary))
