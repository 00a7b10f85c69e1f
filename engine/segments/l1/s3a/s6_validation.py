"""3A.S6 — re-validate 3A: contracts, coverage, rules, priors, shares, conservation, RNG replays, the
universe hash and the realism bands; the bundle and its flag."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from engine.core.canonical import sha256_file
from engine.core.contracts import PART_FILE, dataset_dir
from engine.core.group_sums import group_means, group_sums
from engine.core.policy_model import Validation
from engine.core.state import StateContext
from engine.core.validation import (
    CheckBook,
    apply_checks,
    check_schemas,
    finish_segment,
    read_tables,
    run_replays,
    state_reports,
)
from engine.segments.l1.s3a import replay
from engine.segments.l1.s3a.pairs import PAIR
from engine.segments.l1.s3a.policy import ZoneEscalation, ZonePriors
from engine.segments.l1.s3a.universe import read_universe, universe_doc, universe_path

SEEDED = ["s1_pairs", "s1_pair_zones", "s3_zone_shares", "s4_zone_counts", "zone_alloc"]
SEED_FREE = ["s2_zone_priors"]
PRODUCERS = ["3A.S1", "3A.S2", "3A.S3", "3A.S4", "3A.S5"]
TOL = 1e-12
MULTI_SITES = 200  # 3A.R06: countries with at least this many sites


def first_rules(policy: ZoneEscalation, pairs: pl.DataFrame) -> tuple[list[str], list[str]]:
    """Each pair's first matching rule and its escalate mode, walking the rule list pair by pair."""
    names, modes = [], []
    for zones, sites in pairs.select("zones_supported", "site_count").iter_rows():
        for r in policy.rules:
            inside = (
                (r.min_zones is None or zones >= r.min_zones)
                and (r.max_zones is None or zones <= r.max_zones)
                and (r.min_sites is None or sites >= r.min_sites)
                and (r.max_sites is None or sites <= r.max_sites)
            )
            if inside:
                names.append(r.name)
                modes.append(r.escalate)
                break
    return names, modes


def remainder_counts(site_count: int, shares: list[float]) -> list[int]:
    """One per zone, the rest by largest remainder of share·rest (ties: lower position, i.e. tz_index)."""
    rest = site_count - len(shares)
    quota = [s * rest for s in shares]
    whole = [math.floor(q) for q in quota]
    order = sorted(range(len(shares)), key=lambda i: (-(quota[i] - whole[i]), i))
    for i in order[: rest - sum(whole)]:
        whole[i] += 1
    return [1 + w for w in whole]


def check_counts(book: CheckBook, pairs: pl.DataFrame, counts: pl.DataFrame, zones: pl.DataFrame) -> None:
    """Kept pairs keep their site counts; escalated pairs' counts re-derived by largest remainder."""
    joined = counts.join(zones, on=[*PAIR, "tz_index"]).join(pairs, on=PAIR).sort([*PAIR, "tz_index"])
    kept = joined.filter(~pl.col("is_escalated"))
    ok_kept = bool((kept["zone_site_count"] == kept["sites_in_zone"]).all())
    bad = 0
    for (_m, _c), grp in joined.filter(pl.col("is_escalated")).group_by(PAIR, maintain_order=True):
        want = remainder_counts(int(grp["site_count"][0]), grp["share"].to_list())
        bad += want != grp["zone_site_count"].to_list()
    book.structural(
        "counts.s4_zone_counts",
        ok_kept and bad == 0,
        f"{bad} escalated pairs differ from a largest-remainder re-derivation; kept pairs equal: {ok_kept}",
        "E_3A_COUNT_CONSERVATION",
    )


def check_shares(
    book: CheckBook, s3: pl.DataFrame, zones: pl.DataFrame, priors: pl.DataFrame, pol: ZonePriors
) -> None:
    """base_share and alpha recomputed from the site shares and the priors; share = G / ΣG summing to 1."""
    lo, hi = pol.kappa_range
    bad = 0
    merged = (
        s3.join(zones, on=[*PAIR, "tz_index"])
        .join(priors, on=["legal_country_iso", "tz_index"], how="left")
        .sort([*PAIR, "tz_index"])
    )
    for _key, grp in merged.group_by(PAIR, maintain_order=True):
        prior = [p or 0.0 for p in grp["prior_share"].to_list()]
        total = sum(prior)
        q = [p / total for p in prior] if total > 0 else [1.0 / len(prior)] * len(prior)
        kappa = min(max(pol.kappa0 + pol.kappa_per_site * int(grp["site_count"][0]), lo), hi)
        g = grp["gamma_draw"].to_list()
        for row, qz, share in zip(grp.iter_rows(named=True), q, [x / sum(g) for x in g], strict=True):
            b = pol.blend_site_share * row["site_share"] + (1.0 - pol.blend_site_share) * qz
            bad += not (
                abs(row["base_share"] - b) <= TOL
                and abs(row["alpha"] - max(kappa * b, pol.alpha_floor)) <= TOL * max(1.0, kappa)
                and abs(row["share"] - share) <= TOL
            )
        bad += abs(sum(grp["share"].to_list()) - 1.0) > TOL
    book.structural("shares.s3_zone_shares", bad == 0, f"{bad} rows or pairs off", "E_3A_SHARE_SUM")


def country_tv(alloc: pl.DataFrame, priors: pl.DataFrame) -> dict[str, float]:
    """3A.R06: per country with ≥ 2 prior zones and ≥ 200 sites, the total-variation distance between its
    demand mix over zones (zone_site_count) and its prior."""
    sites = alloc.group_by("legal_country_iso", "tz_index").agg(pl.col("zone_site_count").sum().alias("n"))
    out = {}
    for (iso2,), prior in priors.group_by(["country_iso"], maintain_order=True):
        mine = sites.filter(pl.col("legal_country_iso") == iso2)
        total = int(mine["n"].sum())
        if prior.height < 2 or total < MULTI_SITES:
            continue
        mix = dict(mine.select("tz_index", "n").iter_rows())
        zones = set(mix) | set(prior["tz_index"].to_list())
        p = dict(prior.select("tz_index", "prior_share").iter_rows())
        out[iso2] = 0.5 * sum(abs(mix.get(z, 0) / total - p.get(z, 0.0)) for z in zones)
    return out


def check_structure(
    ctx: StateContext, book: CheckBook, t: dict[str, pl.DataFrame], esc: ZoneEscalation, pol: ZonePriors
) -> pl.Series:
    """Coverage against the sealed outlets and sites, the rules re-walked, priors, shares and counts
    re-derived. Returns each pair's escalate mode (s1_pairs order)."""
    pairs, zones, s3 = t["s1_pairs"], t["s1_pair_zones"], t["s3_zone_shares"]
    outlet_pairs = (
        ctx.sealed_table("outlet_catalogue").group_by(PAIR).agg(pl.len().cast(pl.UInt32).alias("n"))
    )
    pair_keys = pairs.select(*PAIR, pl.col("site_count").alias("n"))
    book.structural(
        "coverage.s1_pairs", pair_keys.sort(PAIR).equals(outlet_pairs.sort(PAIR)), code="E_3A_SITE_COUNT"
    )
    zone_keys = zones.select(*PAIR, "tz_index", "tzid", pl.col("sites_in_zone").alias("k"))
    book.structural("coverage.s1_pair_zones", zone_keys.equals(site_zone_counts(ctx)), code="E_3A_SITE_COUNT")
    names, modes = first_rules(esc, pairs)
    book.structural("rules.s1_pairs", names == pairs["rule"].to_list(), code="E_3A_RULE")
    mode = pl.Series("mode", modes, dtype=pl.String)
    fixed = mode != "theta_mix"
    book.structural(
        "rules.fixed_escalation",
        bool((pairs.filter(fixed)["is_escalated"] == (mode.filter(fixed) == "always")).all()),
        code="E_3A_RULE",
    )
    priors = t["s2_zone_priors"]
    prior_sums = group_sums(priors, ["country_iso"], ["prior_share"])
    book.structural(
        "priors.sum", bool(((prior_sums["prior_share"] - 1.0).abs() <= TOL).all()), code="E_3A_PRIOR_SUM"
    )
    check_shares(
        book,
        s3,
        zones.join(pairs.select(*PAIR, "site_count"), on=PAIR),
        priors.select(pl.col("country_iso").alias("legal_country_iso"), "tz_index", "prior_share"),
        pol,
    )
    escalated = zones.join(pairs.filter(pl.col("is_escalated")), on=PAIR, how="semi").select(
        *PAIR, "tz_index"
    )
    book.structural(
        "coverage.s3_zone_shares",
        s3.select(*PAIR, "tz_index").sort([*PAIR, "tz_index"]).equals(escalated.sort([*PAIR, "tz_index"])),
        code="E_3A_SHARE_SUM",
    )
    check_counts(book, pairs, t["s4_zone_counts"], zones)
    return mode


def site_zone_counts(ctx: StateContext) -> pl.DataFrame:
    """Sites per (pair, zone) straight from the sealed site_timezones, in key order."""
    return (
        ctx.sealed_table("site_timezones")
        .group_by([*PAIR, "tz_index", "tzid"])
        .agg(pl.len().cast(pl.UInt32).alias("k"))
        .sort([*PAIR, "tz_index"])
    )


def realism_metrics(
    ctx: StateContext, t: dict[str, pl.DataFrame], tvs: dict[str, float]
) -> dict[str, tuple[float, int]]:
    """3A.R01–R08 (value, support) from the egress, the shares and the universe file."""
    pairs, s3, alloc = t["s1_pairs"], t["s3_zone_shares"], t["zone_alloc"]
    per_pair = (
        alloc.group_by(PAIR)
        .agg(
            pl.col("zone_site_count").sum().alias("n"),
            pl.col("site_count").first(),
            (pl.col("zone_site_count") >= 1).all().alias("ge1"),
            pl.col("zone_share").max().alias("top1"),
            (pl.col("zone_share") >= 0.05).sum().alias("big"),
            pl.len().alias("zones"),
        )
        .join(group_sums(alloc, PAIR, ["zone_share"]).rename({"zone_share": "s"}), on=PAIR)
    )
    n_outlet_pairs = ctx.sealed_table("outlet_catalogue").select(PAIR).unique().height
    covered = alloc.select(*PAIR, "tz_index", "tzid", pl.col("sites_in_zone").alias("k"))
    coverage_ok = per_pair.height == n_outlet_pairs and covered.equals(site_zone_counts(ctx))
    conserved = (
        (per_pair["n"] == per_pair["site_count"]) & per_pair["ge1"] & ((per_pair["s"] - 1.0).abs() <= TOL)
    )
    gaps = s3.select(*PAIR, (pl.col("share") - pl.col("base_share")).abs().alias("d"))
    shift = group_means(gaps, PAIR, "d")["d"]
    multi = per_pair.filter(pl.col("zones") >= 2)
    flags = pairs.filter(pl.col("zones_supported") >= 2)["is_escalated"]
    want = universe_doc(
        ctx.sealed.parameter_hash,
        sha256_file(dataset_dir(ctx.root, "s2_zone_priors", mf=ctx.mf) / PART_FILE),
        sha256_file(dataset_dir(ctx.root, "zone_alloc", mf=ctx.mf, seed=ctx.seed) / PART_FILE),
        ctx.sealed.inputs["site_timezones"].sha256,
    )
    published = read_universe(universe_path(ctx.root, ctx.mf, ctx.seed or 0))

    def share(mask: pl.Series) -> float:
        return float(mask.mean()) if mask.len() else float("nan")  # type: ignore[arg-type]

    def median(values: pl.Series | list[float]) -> float:
        return float(np.median(values)) if len(values) else float("nan")

    return {
        "pair_coverage": (1.0 if coverage_ok else 0.0, n_outlet_pairs),
        "count_conservation": (1.0 if bool(conserved.all()) else 0.0, per_pair.height),
        "median_share_shift": (median(shift), shift.len()),
        "multizone_two_zones_share": (share(multi["big"] >= 2), multi.height),
        "median_top1_share": (median(multi["top1"]), multi.height),
        "median_country_tv": (median(list(tvs.values())), len(tvs)),
        "escalated_share": (share(flags), flags.len()),
        "universe_hash_agreement": (1.0 if published == want else 0.0, 1),
    }


def run(ctx: StateContext) -> None:
    val: Validation = ctx.policy("3A/validation.yaml")
    esc: ZoneEscalation = ctx.policy("3A/zone_escalation.yaml")
    pol: ZonePriors = ctx.policy("3A/zone_priors.yaml")
    t = read_tables(ctx, SEEDED, SEED_FREE)
    book = CheckBook()
    check_schemas(ctx, book, t)
    t = {name: df.drop("seed", "manifest_fingerprint", strict=False) for name, df in t.items()}
    t["s2_zone_priors"] = t["s2_zone_priors"].sort("country_iso", "tz_index")
    mode = check_structure(ctx, book, t, esc, pol)
    tvs = country_tv(t["zone_alloc"], t["s2_zone_priors"])
    apply_checks(book, val, realism_metrics(ctx, t, tvs))

    iso_num = ctx.sealed_table("ref_countries").select(pl.col("iso2").alias("legal_country_iso"), "iso_num")
    drawn = t["s1_pairs"].filter(mode == "theta_mix").join(iso_num, on="legal_country_iso", how="left")
    reports, recorded = state_reports(ctx, PRODUCERS)
    expected = run_replays(
        ctx,
        book,
        [
            replay.escalate(drawn, esc.theta_mix),
            replay.zone_dirichlet(t["s3_zone_shares"].join(iso_num, on="legal_country_iso", how="left")),
        ],
        recorded,
        code="E_3A_REPLAY",
    )
    extra: dict[str, Any] = {"zone_mix_tv": dict(sorted((k, round(v, 9)) for k, v in tvs.items()))}
    finish_segment(
        ctx,
        book,
        {
            "rng_accounting": {"recorded": recorded, "expected": expected},
            "state_reports": reports,
            "extra": extra,
        },
    )
