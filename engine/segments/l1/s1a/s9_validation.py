"""1A.S9 — re-validate 1A: contracts, conservation, RNG accounting, replays, realism; bundle + flag."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from engine.core.policy_model import Validation
from engine.core.rng import SampleRule
from engine.core.state import StateContext
from engine.core.validation import (
    CheckBook,
    Replay,
    apply_checks,
    check_schemas,
    finish_segment,
    gini,
    read_tables,
    run_replays,
    spearman,
    state_reports,
)
from engine.segments.l1.s1a import replay
from engine.segments.l1.s1a.common import ceil_share, home_floor, select_top
from engine.segments.l1.s1a.policy import Crossborder

SEEDED = ["s1_hurdle", "s2_outlet_count", "s3_candidates", "s3_open", "s4_foreign_count", "s6_foreign_set",
          "s7_country_counts", "outlet_catalogue", "merchant_catalogue"]  # fmt: skip
PRODUCERS = ["1A.S1", "1A.S2", "1A.S3", "1A.S4", "1A.S5", "1A.S6", "1A.S7", "1A.S8"]


def nb_rejection_z(s2: pl.DataFrame) -> tuple[float, int]:
    """Observed rejections (attempts − 1) vs their geometric expectation: an attempt is rejected only when it
    takes the NB2 body (probability 1 − p_chain) and that gives K ≤ 1 (from μ, φ)."""
    m = s2.filter(pl.col("attempts") > 0)
    mu, phi, p_chain = m["mu"].to_numpy(), m["phi"].to_numpy(), m["p_chain"].to_numpy()
    p = phi / (phi + mu)
    q = (1.0 - p_chain) * p**phi * (1.0 + phi * (1.0 - p))  # (1 − p_chain)·(P(K = 0) + P(K = 1))
    observed = float((m["attempts"].to_numpy().astype(np.float64) - 1.0).sum())
    expected = float((q / (1.0 - q)).sum())
    var = float((q / (1.0 - q) ** 2).sum())
    return ((observed - expected) / math.sqrt(var) if var > 0 else 0.0), m.height


def structural(
    ctx: StateContext, t: dict[str, pl.DataFrame], universe: pl.DataFrame, book: CheckBook
) -> None:
    check_schemas(ctx, book, t)
    n_univ = universe.height
    book.structural("coverage.s1", t["s1_hurdle"].height == n_univ, code="E_1A_COVERAGE")
    book.structural("coverage.s2", t["s2_outlet_count"].height == n_univ, code="E_1A_COVERAGE")
    s2 = t["s2_outlet_count"].join(t["s1_hurdle"].select("merchant_id", "is_multi"), on="merchant_id")
    book.structural(
        "single_site_n1",
        s2.filter(~pl.col("is_multi") & (pl.col("n_outlets") != 1)).height == 0,
        code="E_1A_COVERAGE",
    )
    book.structural(
        "multi_n_ge2",
        s2.filter(pl.col("is_multi") & (pl.col("n_outlets") < 2)).height == 0,
        code="E_1A_COVERAGE",
    )
    s7 = t["s7_country_counts"]
    sums = s7.group_by("merchant_id").agg(
        pl.col("n_sites").sum().cast(pl.Int64).alias("sum"), pl.col("is_home").sum().alias("homes")
    )
    cons = sums.join(
        t["s2_outlet_count"].select("merchant_id", "n_outlets"), on="merchant_id", how="full", coalesce=True
    )
    book.structural(
        "conservation.s7",
        cons.filter((pl.col("sum") != pl.col("n_outlets")) | pl.col("sum").is_null()).height == 0,
        code="E_1A_COUNT_CONSERVATION",
    )
    book.structural("home_row_once", (sums["homes"] == 1).all(), code="E_1A_COUNT_CONSERVATION")
    policy: Crossborder = ctx.policy("1A/crossborder.yaml")
    home = s7.filter(pl.col("is_home")).join(
        t["s2_outlet_count"].select("merchant_id", "n_outlets"), on="merchant_id"
    )
    n = home["n_outlets"].to_numpy().astype(np.int64)
    floor = ceil_share(
        home_floor(n, [x.n_max for x in policy.home_floor], [x.h for x in policy.home_floor]), n
    )
    book.structural(
        "home_floor", bool((home["n_sites"].to_numpy() >= floor).all()), code="E_1A_COUNT_CONSERVATION"
    )
    per_country = t["outlet_catalogue"].group_by("merchant_id", "legal_country_iso").len("rows")
    site_cons = s7.join(
        per_country,
        left_on=["merchant_id", "country_iso"],
        right_on=["merchant_id", "legal_country_iso"],
        how="full",
        coalesce=True,
    )
    book.structural(
        "conservation.s8",
        site_cons.filter(
            (pl.col("rows") != pl.col("n_sites").cast(pl.UInt32))
            | pl.col("rows").is_null()
            | pl.col("n_sites").is_null()
        ).height
        == 0,
        code="E_1A_COUNT_CONSERVATION",
    )
    book.structural(
        "every_merchant_has_site",
        universe.join(t["outlet_catalogue"], on="merchant_id", how="anti").height == 0,
        code="E_1A_MERCHANT_WITHOUT_SITE",
    )
    book.structural("fk.merchant_catalogue", t["merchant_catalogue"].height == n_univ, code="E_1A_COVERAGE")
    s6 = t["s6_foreign_set"]
    book.structural(
        "fk.s6_in_candidates",
        s6.join(t["s3_candidates"], on=["merchant_id", "country_iso"], how="anti").height == 0,
        code="E_1A_SELECTION_COUNT",
    )
    sel = (
        s6.group_by("merchant_id")
        .agg(pl.col("selected").sum().alias("n_sel"))
        .join(t["s4_foreign_count"].select("merchant_id", "k_cap"), on="merchant_id", how="left")
    )
    book.structural(
        "selection_count",
        sel.filter(pl.col("n_sel") != pl.col("k_cap").fill_null(0)).height == 0,
        code="E_1A_SELECTION_COUNT",
    )
    ranks = (
        t["s3_candidates"]
        .group_by("merchant_id")
        .agg(
            (pl.col("candidate_rank").max() + 1 == pl.len()).alias("ok"),
            (pl.col("candidate_rank") == 0).sum().alias("h"),
        )
    )
    book.structural(
        "ranks_contiguous", bool(ranks["ok"].all() and (ranks["h"] == 1).all()), code="E_1A_RANK_GAP"
    )


def replays(ctx: StateContext, t: dict[str, pl.DataFrame], universe: pl.DataFrame) -> list[Replay]:
    """Every RNG family of 1A, as the replay law takes them."""
    iso_num = ctx.sealed_table("ref_countries").select(pl.col("iso2").alias("country_iso"), "iso_num")
    hurdle_nb = ctx.policy("1A/hurdle_nb.yaml")
    return [
        replay.hurdle(t["s1_hurdle"], universe, hurdle_nb),
        replay.nb(t["s2_outlet_count"], hurdle_nb),
        replay.xb_open(t["s3_open"]),
        replay.ztp(t["s4_foreign_count"], ctx.policy("1A/crossborder.yaml")),
        replay.gumbel(t["s6_foreign_set"], iso_num),
    ]


def selection(t: dict[str, pl.DataFrame], book: CheckBook) -> None:
    """The foreign set recomputed from the stored Gumbel keys (top k_cap, ties by candidate_rank)."""
    s6 = t["s6_foreign_set"]
    k_cap = t["s4_foreign_count"].select("merchant_id", pl.col("k_cap").cast(pl.Int64))
    again = select_top(
        s6.select("merchant_id", "country_iso", "candidate_rank", "weight", "gumbel_key"), k_cap
    )
    book.structural(
        "recompute.selection",
        again["selected"].equals(s6["selected"]) and again["select_order"].equals(s6["select_order"]),
        code="E_1A_SELECTION_COUNT",
    )


def realism(
    t: dict[str, pl.DataFrame],
    universe: pl.DataFrame,
    macro: pl.DataFrame,
    book: CheckBook,
    val: Validation,
    exhausted: int,
) -> None:
    mc = t["merchant_catalogue"]
    oc = t["outlet_catalogue"]
    n_all = mc.height
    n = mc["n_outlets_total"].to_numpy().astype(np.float64)
    multi = mc.filter(pl.col("is_multi"))
    by_size = np.sort(n)[::-1]
    top10 = by_size[: max(1, math.ceil(0.1 * n_all))]
    top1 = by_size[: max(1, math.ceil(0.01 * n_all))]
    foreign_rows = (oc["legal_country_iso"] != oc["home_country_iso"]).sum()
    per_m = oc.group_by("merchant_id").agg(
        (pl.col("legal_country_iso") != pl.col("home_country_iso")).mean().alias("f"), pl.len().alias("n")
    )
    per_m = per_m.join(multi.select("merchant_id"), on="merchant_id", how="semi").sort(["n", "merchant_id"])
    if per_m.height:
        q90 = np.quantile(per_m["n"].to_numpy(), 0.9)
        half = np.median(per_m["n"].to_numpy())
        top = per_m.filter(pl.col("n") >= q90)
        bottom = per_m.filter(pl.col("n") <= half)
        r07 = float(
            (top["f"] * top["n"]).sum() / top["n"].sum()
            - (bottom["f"] * bottom["n"]).sum() / bottom["n"].sum()
        )
    else:
        r07 = float("nan")
    cands = t["s3_candidates"].filter(pl.col("candidate_rank") > 0).group_by("merchant_id").len("c")
    opened = (
        t["s3_open"]
        .filter(pl.col("is_open"))
        .select("merchant_id")
        .join(cands, on="merchant_id", how="left")
        .with_columns(pl.col("c").fill_null(0))
    )
    sel = t["s6_foreign_set"].group_by("merchant_id").agg(pl.col("selected").sum().alias("s"))
    opened = opened.join(sel, on="merchant_id", how="left").with_columns(pl.col("s").fill_null(0))
    homes = (
        universe.group_by("home_country_iso")
        .len("k")
        .sort(["k", "home_country_iso"], descending=[True, False])
    )
    small = universe.join(
        macro.select(pl.col("iso2").alias("home_country_iso"), "population"),
        on="home_country_iso",
        how="left",
    )
    mcc = universe.group_by("mcc").len("k").sort(["k", "mcc"], descending=[True, False])
    clamped = int(t["s2_outlet_count"]["clamped"].sum()) + exhausted
    s2 = t["s2_outlet_count"]
    z, nb_support = nb_rejection_z(s2)
    metrics: dict[str, tuple[float, int]] = {
        "single_site_share": (float((~mc["is_multi"]).mean()), n_all),
        "median_n_multi": (float(multi["n_outlets_total"].median() or float("nan")), multi.height),
        "gini_outlets": (gini(n), n_all),
        "top10pct_outlet_share": (float(top10.sum() / n.sum()), n_all),
        "top1pct_outlet_share": (float(top1.sum() / n.sum()), n_all),
        "multi_country_share": (float((mc["n_countries"] >= 2).mean()), n_all),
        # its noise comes from the few merchants that carry foreign outlets, so they are its support
        "foreign_outlet_share": (float(foreign_rows / oc.height), int((mc["n_countries"] >= 2).sum())),
        "foreign_share_top_decile_minus_bottom_half": (r07, per_m.height),
        "median_candidates_open": (float(opened["c"].median() or float("nan")), opened.height),
        "spearman_candidates_selected": (
            spearman(opened["c"].to_numpy(), opened["s"].to_numpy()),
            opened.height,
        ),
        "nb_rejection_zscore": (z, nb_support),
        "clamped_or_exhausted_share": (clamped / n_all, n_all),
        "top1_home_share": (float(homes["k"][0] / n_all), n_all),
        "small_home_share": (float((small["population"] < 1_000_000).mean()), n_all),
        "top10_home_share": (float(homes["k"].head(10).sum() / n_all), n_all),
        "cnp_share": (float((mc["channel"] == "card_not_present").mean()), n_all),
        "top5_mcc_share": (float(mcc["k"].head(5).sum() / n_all), n_all),
        "sectors_present": (float(mc["sector"].n_unique()), n_all),
    }
    apply_checks(book, val, metrics)


def run(ctx: StateContext) -> None:
    val: Validation = ctx.policy("1A/validation.yaml")
    t = read_tables(ctx, SEEDED, ["ccy_country_weights"])
    universe = ctx.sealed_table("merchant_universe")
    book = CheckBook()
    ctx.progress("structural checks")
    structural(ctx, t, universe, book)
    selection(t, book)
    ctx.progress("replays")
    reports, recorded = state_reports(ctx, PRODUCERS)
    rule = SampleRule.of(val.replay_sample)
    expected = run_replays(ctx, book, replays(ctx, t, universe), recorded, rule=rule, code="E_1A_REPLAY")
    exhausted = int(reports["1A.S2"]["deviations"].get("nb_exhausted", 0))
    realism(t, universe, ctx.sealed_table("ref_country_macro"), book, val, exhausted)
    evidence = {"rng_accounting": {"recorded": recorded, "expected": expected}, "state_reports": reports}
    finish_segment(ctx, book, evidence)
