"""2A.S1 — resolve every site to one tzid through the fallback ladder (the tz resolver)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.horizon import Horizon
from engine.core.state import StateContext
from engine.core.tzdb import force_tzdata
from engine.segments.l1.s2a.policy import TzOverrides, TzResolution
from engine.segments.l1.s2a.resolver import Override, TzIndex, active_overrides, resolve
from engine.segments.l1.s2a.tz_cache import epoch_s, load_zone, zone_transitions


def tz_country_map(tz_country: pl.DataFrame) -> dict[str, list[str]]:
    """The legal list: country → its zone.tab zones."""
    return {iso2: sorted(g["tzid"].to_list()) for (iso2,), g in tz_country.group_by(["iso2"])}


def zone1970_map(tz_country: pl.DataFrame) -> dict[str, list[str]]:
    """Country → the zones zone1970.tab lists for it (the `zone1970` column of ref_tz_country)."""
    pairs = tz_country.select("tzid", pl.col("zone1970").alias("iso2")).explode("iso2").drop_nulls()
    return {iso2: sorted(g["tzid"].to_list()) for (iso2,), g in pairs.group_by(["iso2"])}


def same_clock_over(start: dt.datetime, end: dt.datetime) -> Callable[[str, str], bool]:
    """Whether two zones keep the same UTC offsets at every instant of [start, end] (pinned tzdata): the
    condition for publishing a single-zone country's own zone for a site in a zone1970.tab zone."""
    force_tzdata()
    start_s, end_s = epoch_s(start), epoch_s(end)

    @cache
    def offsets(tzid: str) -> tuple[tuple[int, int], ...]:
        out: list[tuple[int, int]] = []
        for s, (off, _dst, _abbrev) in zone_transitions(load_zone(tzid), start_s, end_s):
            if not out or out[-1][1] != off:
                out.append((s, off))
        return tuple(out)

    return lambda a, b: offsets(a) == offsets(b)


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
        zone1970=zone1970_map(tz_country),
        zone1970_tzid=policy.zone1970_tzid,
        overlap_preference=policy.overlap_preference,
        same_clock=same_clock_over(*horizon.window()),
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
