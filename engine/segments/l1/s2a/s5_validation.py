"""2A.S5 — re-validate 2A: contracts, coverage, fallback rates, the tz cache and the DST windows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from engine.core.horizon import Horizon
from engine.core.policy_model import Validation
from engine.core.state import StateContext
from engine.core.tzdb import force_tzdata
from engine.core.validation import (
    CheckBook,
    apply_checks,
    check_schemas,
    finish_segment,
    read_tables,
    run_replays,
    same_keys,
    state_reports,
)
from engine.segments.l1.s2a.dst import independent_windows
from engine.segments.l1.s2a.policy import TzResolution
from engine.segments.l1.s2a.tz_cache import check_hourly

SEEDED = ["s1_tz_lookup", "site_timezones", "tz_in_use"]
SEED_FREE = ["tz_transitions", "tz_dst_windows"]
PRODUCERS = ["2A.S1", "2A.S2", "2A.S3", "2A.S4"]
# COUNTRY_SINGLETON is reached only in a country with one zone.tab zone, where it is exact, not a fallback
# (layer1.md amendment 7); OVERLAP_POLICY is a polygon hit decided by the policy's preference list.
FALLBACK = (
    "OVERRIDE_SITE",
    "OVERRIDE_MCC",
    "OVERRIDE_COUNTRY",
    "NEAREST_WITHIN",
    "NEAREST_BEYOND",
)


def fallback_shares(stz: pl.DataFrame, min_sites: int) -> tuple[float, float, int]:
    """2A.R02 and R03: the global fallback share, the largest per-country share among countries with at
    least `min_sites` sites, and how many such countries there are."""
    n = stz.height
    per_country = stz.group_by("legal_country_iso").agg(
        pl.len().alias("n"), pl.col("resolution_method").is_in(list(FALLBACK)).mean().alias("fb")
    )
    big = per_country.filter(pl.col("n") >= min_sites)
    share = float(stz["resolution_method"].is_in(list(FALLBACK)).mean()) if n else 0.0
    return share, (float(big["fb"].max()) if big.height else 0.0), big.height


def listed_sites(stz: pl.DataFrame, tz_country: pl.DataFrame) -> int:
    """2A.R01: sites whose tzid is a zone.tab zone of their country or one zone1970.tab lists for it."""
    legal = tz_country.select(pl.col("iso2").alias("legal_country_iso"), "tzid")
    shared = (
        tz_country.select(pl.col("zone1970").alias("legal_country_iso"), "tzid")
        .explode("legal_country_iso")
        .drop_nulls()
    )
    pairs = pl.concat([legal, shared]).unique()
    return stz.join(pairs, on=["legal_country_iso", "tzid"], how="semi").height


def zone_entropy(counts: np.ndarray, k: int) -> float:
    """Shannon entropy of a country's sites over its zones, normalised by ln(k)."""
    p = counts / counts.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / math.log(k)) if k > 1 else 0.0


def legality(site_tz: pl.DataFrame, windows: pl.DataFrame) -> dict[str, Any]:
    """Per tzid in use: sites, gaps and folds inside the horizon; share of sites in zones with one."""
    inside = windows.filter(pl.col("in_horizon")).group_by("tzid", "kind").len()
    per = {}
    moving = 0
    for tzid, n_sites in site_tz.group_by("tzid").len().sort("tzid").iter_rows():
        kinds = dict(inside.filter(pl.col("tzid") == tzid).select("kind", "len").iter_rows())
        per[tzid] = {"sites": n_sites, "gaps": kinds.get("GAP", 0), "folds": kinds.get("FOLD", 0)}
        moving += n_sites if kinds else 0
    return {
        "per_tzid": per,
        "share_sites_with_transition": moving / site_tz.height if site_tz.height else 0.0,
    }


def run(ctx: StateContext) -> None:
    force_tzdata()
    val: Validation = ctx.policy("2A/validation.yaml")
    policy: TzResolution = ctx.policy("2A/tz_resolution.yaml")
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    t = read_tables(ctx, SEEDED, SEED_FREE)
    book = CheckBook()
    check_schemas(ctx, book, t)
    locations = ctx.sealed_table("site_locations")
    stz = t["site_timezones"]
    book.structural(
        "coverage.site_timezones",
        same_keys(stz, locations, "site_id"),
        code="E_2A_COVERAGE",
    )
    tz_country = ctx.sealed_table("ref_tz_country")
    n_listed = listed_sites(stz, tz_country)
    n = stz.height
    method = stz["resolution_method"]
    per_country = stz.group_by("legal_country_iso").agg(
        pl.len().alias("n"), pl.col("resolution_method").is_in(list(FALLBACK)).mean().alias("fb")
    )
    fb_share, fb_country_max, n_big = fallback_shares(stz, policy.fallback_country_min_sites)
    zones_per_country = tz_country.group_by("iso2").agg(pl.col("tzid").n_unique().alias("k"))
    multi = per_country.join(zones_per_country, left_on="legal_country_iso", right_on="iso2").filter(
        (pl.col("k") >= 2) & (pl.col("n") >= 300)
    )
    using_two, entropies = [], []
    for iso2, k in multi.select("legal_country_iso", "k").iter_rows():
        counts = stz.filter(pl.col("legal_country_iso") == iso2).group_by("tzid").len()["len"].to_numpy()
        using_two.append(counts.size >= 2)
        entropies.append(zone_entropy(counts, k))
    tzids = sorted(set(tz_country["tzid"].to_list()))
    start, end = horizon.window()
    # S3 already refused to publish a cache that disagrees anywhere; here the window is re-checked against
    # the horizon and every zone in use is re-evaluated hourly (all 400+ zones would double S3's cost)
    in_use = sorted(set(stz["tzid"].to_list()))
    cached = t["tz_transitions"].drop("manifest_fingerprint").filter(pl.col("tzid").is_in(in_use))
    covers = t["tz_transitions"].group_by("tzid").agg(pl.col("valid_from").min()).get_column("valid_from")
    window_ok = bool((covers == int(start.timestamp()) * 1_000_000).all())
    cache_ok = window_ok and not check_hourly(cached, in_use, start, end)
    ours = (
        t["tz_dst_windows"]
        .filter(pl.col("in_horizon"))
        .select("tzid", "kind", "transition_utc", "local_start", "local_end")
        .sort("tzid", "transition_utc")
    )
    theirs = (
        independent_windows(tzids, horizon.start(), horizon.end())
        .select("tzid", "kind", "transition_utc", "local_start", "local_end")
        .sort("tzid", "transition_utc")
    )
    metrics: dict[str, tuple[float, int]] = {
        "tzid_listed_share": (n_listed / n if n else 1.0, n),
        "fallback_share": (fb_share, n),
        "max_country_fallback_share": (fb_country_max, n_big),
        "nearest_beyond_share": (float((method == "NEAREST_BEYOND").mean()) if n else 0.0, n),
        "override_share": (float(method.str.starts_with("OVERRIDE").mean()) if n else 0.0, n),
        "multizone_countries_using_two": (
            float(np.mean(using_two)) if using_two else float("nan"),
            len(using_two),
        ),
        "median_zone_entropy": (float(np.median(entropies)) if entropies else float("nan"), len(entropies)),
        "cache_agreement": (1.0 if cache_ok else 0.0, len(tzids)),
        "dst_windows_agreement": (1.0 if ours.equals(theirs) else 0.0, len(tzids)),
    }
    apply_checks(book, val, metrics)
    reports, recorded = state_reports(ctx, PRODUCERS)
    # 2A draws no randomness: no family to replay, and the law checks that no state recorded one
    expected = run_replays(ctx, book, [], recorded, code="E_RNG_ACCOUNTING")
    extra = {"s4_legality": legality(stz, t["tz_dst_windows"])}
    finish_segment(
        ctx,
        book,
        {
            "rng_accounting": {"recorded": recorded, "expected": expected},
            "state_reports": reports,
            "extra": extra,
        },
    )
