"""2A.S1 — resolve every site to one tzid through the fallback ladder (the tz resolver)."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.horizon import Horizon
from engine.core.state import StateContext
from engine.segments.l1.s2a.policy import TzOverrides, TzResolution
from engine.segments.l1.s2a.resolver import Override, TzIndex, active_overrides, resolve


def tz_country_map(tz_country: pl.DataFrame) -> dict[str, list[str]]:
    return {iso2: sorted(g["tzid"].to_list()) for (iso2,), g in tz_country.group_by(["iso2"])}


def overrides_of(policy: TzOverrides) -> list[Override]:
    return [Override(e.scope, e.target, e.tzid, e.reason, e.expires) for e in policy.overrides]


def run(ctx: StateContext) -> None:
    policy: TzResolution = ctx.policy("2A/tz_resolution.yaml")
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    tz_country = ctx.sealed_table("ref_tz_country")
    tzmap = tz_country_map(tz_country)
    tzids = sorted(set(tz_country["tzid"].to_list()))
    index = TzIndex.from_table(tzids, ctx.sealed_table("ref_tz_polygons"))
    sites = ctx.sealed_table("site_locations").sort("site_id")
    mcc = sites.join(
        ctx.sealed_table("merchant_catalogue").select("merchant_id", "mcc"), on="merchant_id", how="left"
    )["mcc"]
    site_countries = {
        ("site", str(s)): [c] for s, c in sites.select("site_id", "legal_country_iso").iter_rows()
    }
    mcc_countries: dict[tuple[str, str], list[str]] = {}
    for code, iso2 in zip(mcc.to_list(), sites["legal_country_iso"].to_list(), strict=True):
        mcc_countries.setdefault(("mcc", f"{code:04d}"), []).append(iso2)
    active = active_overrides(
        overrides_of(ctx.policy("2A/tz_overrides.yaml")),
        horizon.start().date(),
        tz_country=tzmap,
        target_countries={**site_countries, **{k: sorted(set(v)) for k, v in mcc_countries.items()}},
    )
    ctx.progress(f"resolving {sites.height} sites against {len(tzids)} zones")
    res = resolve(
        index,
        sites["lon_deg"].to_numpy(),
        sites["lat_deg"].to_numpy(),
        sites["legal_country_iso"].to_numpy(),
        sites["site_id"].to_numpy(),
        mcc.to_numpy(),
        tzmap,
        active,
        policy.epsilon_deg,
    )
    out = sites.select("site_id", "merchant_id", "legal_country_iso").with_columns(
        pl.Series("tzid", res["tzid"], dtype=pl.String),
        pl.Series("tz_index", res["tz_index"], dtype=pl.UInt16),
        pl.Series("resolution_method", res["resolution_method"], dtype=pl.String),
        pl.Series("n_candidates", res["n_candidates"], dtype=pl.UInt8),
        pl.Series("nearest_km", np.asarray(res["nearest_km"], dtype=np.float64)).fill_nan(None),
    )
    if out.height != sites.height:
        raise EngineError("E_2A_COVERAGE", "not one row per site", where="s1_tz_lookup", state=ctx.state)
    for method, count in out.group_by("resolution_method").len().iter_rows():
        if method not in ("POLYGON", "NUDGE"):
            ctx.count(method.lower(), count)
    if index.dropped_tzids:
        ctx.warnings.append(
            f"tz polygons without a zone.tab country, unused: {', '.join(index.dropped_tzids)}"
        )
    ctx.publish("s1_tz_lookup", out)
