"""2B.S8 — re-validate 2B: contracts, the S7 audit, coverage, realism 2B.R01–R10, RNG replay."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.group_sums import exact_sum, group_std
from engine.core.horizon import Horizon
from engine.core.policy_model import Validation
from engine.core.rng import SampleRule
from engine.core.state import StateContext
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
from engine.segments.l1.s2b import replay
from engine.segments.l1.s2b.common import GROUP_ALIAS, SITE_ALIAS, read_json, table_files
from engine.segments.l1.s2b.policy import Router

SEEDED = ["s1_site_weights", "s2_site_alias_members", "s3_day_effects", "s4_group_weights", "s6_router_probe"]
PRODUCERS = ["2B.S1", "2B.S2", "2B.S3", "2B.S4", "2B.S5", "2B.S6", "2B.S7"]


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if x.size else float("nan")


def site_share_metrics(weights: pl.DataFrame) -> dict[str, tuple[float, int]]:
    """R02–R04 and R08 from each merchant's site shares and tz groups."""
    per = weights.group_by("merchant_id").agg(
        pl.len().alias("n"),
        pl.col("p_weight").sort(descending=True).alias("p"),
        pl.col("tz_index").n_unique().alias("groups"),
    )
    three = per.filter(pl.col("n") >= 3)
    gap = np.array([p[0] - p[1] for p in three["p"].to_list()])
    multi = per.filter(pl.col("n") >= 2)
    hhi = np.array([float(np.sum(np.square(p))) for p in multi["p"].to_list()])
    ten = per.filter(pl.col("n") >= 10)
    top = np.array([p[0] for p in ten["p"].to_list()])
    iqr = float(np.subtract(*np.percentile(hhi, [75, 25]))) if hhi.size else float("nan")
    return {
        "median_top1_top2_gap": (_median(gap), gap.size),
        "hhi_iqr": (iqr, hhi.size),
        "median_top1_share_10plus": (_median(top), top.size),
        "multigroup_share_10plus": (
            float((ten["groups"] >= 2).mean()) if ten.height else float("nan"),
            ten.height,
        ),
    }


def day_metrics(
    effects: pl.DataFrame, mix: pl.DataFrame, merchants: int, days: int
) -> dict[str, tuple[float, int]]:
    """R05–R07 and R10 from the day effects and the daily group mix."""
    sd = group_std(effects, ["merchant_id", "tz_index"], "gamma")["gamma"].drop_nulls().to_numpy()
    per_day = mix.group_by("merchant_id", "day_index").agg(pl.len().alias("g"), pl.col("p_group").max())
    multi = per_day.filter(pl.col("g") >= 2)["p_group"].to_numpy()
    n = effects.height
    gamma = effects["gamma"].drop_nulls()
    return {
        "gamma_mean": (exact_sum(gamma) / gamma.len() if gamma.len() else float("nan"), n),
        "median_gamma_sd": (_median(sd), sd.size),
        "gamma_clipped_share": (float(effects["clipped"].mean()) if n else 0.0, n),
        "median_max_p_group": (_median(multi), multi.size),
        "group_weight_coverage": (
            per_day.height / (merchants * days) if merchants else 1.0,
            merchants * days,
        ),
    }


def run(ctx: StateContext) -> None:
    val: Validation = ctx.policy("2B/validation.yaml")
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    t = read_tables(ctx, SEEDED, [])
    book = CheckBook()
    check_schemas(ctx, book, t)
    weights = t["s1_site_weights"]
    book.structural(
        "coverage.s1_site_weights",
        same_keys(weights, ctx.sealed_table("site_locations"), "site_id"),
        code="E_2B_COVERAGE",
    )
    book.structural(
        "coverage.s2_site_alias_members",
        same_keys(t["s2_site_alias_members"], weights, "site_id"),
        code="E_2B_COVERAGE",
    )
    audit = read_json(ctx, "s7_audit")
    for check in audit["checks"]:
        book.structural(f"audit.{check['id']}", check["ok"], check["detail"], check["code"])
    probe = read_json(ctx, "s6_probe_summary")
    site_blob, site_index = table_files(ctx, SITE_ALIAS)
    group_blob, group_index = table_files(ctx, GROUP_ALIAS)
    exact = all(c["ok"] for c in audit["checks"] if c["id"] in ("site_tables", "group_tables"))
    merchants = weights["merchant_id"].n_unique()
    metrics = {
        "slices_exact_share": (
            1.0 if exact else 0.0,
            len(site_index["slices"]) + len(group_index["merchants"]),
        ),
        **site_share_metrics(weights),
        **day_metrics(t["s3_day_effects"], t["s4_group_weights"], merchants, horizon.days),
        "probe_membership_violations": (float(probe["membership_violations"]), probe["arrivals"]),
        "probe_slices_p_below_1e6": (float(probe["slices_p_below_1e-6"]), probe["slices_tested"]),
        "probe_share_p_below_001": (probe["share_p_below_0.01"], probe["slices_tested"]),
    }
    apply_checks(book, val, metrics)
    n_sites = weights.group_by("merchant_id").agg(pl.len().alias("n_sites"))
    router: Router = ctx.policy("2B/router.yaml")
    replays = [
        replay.site_profile(weights, ctx.policy("2B/site_weights.yaml")),
        replay.site_noise(weights),
        replay.day_effect(t["s3_day_effects"], n_sites, ctx.policy("2B/day_effects.yaml")),
        replay.probe(
            t["s6_router_probe"],
            (site_blob, site_index),
            (group_blob, group_index),
            t["s2_site_alias_members"],
            router.probe_arrivals_per_merchant,
        ),
    ]
    reports, recorded = state_reports(ctx, PRODUCERS)
    expected = run_replays(
        ctx, book, replays, recorded, rule=SampleRule.of(val.replay_sample), code="E_2B_REPLAY"
    )
    finish_segment(
        ctx, book, {"rng_accounting": {"recorded": recorded, "expected": expected}, "state_reports": reports}
    )
