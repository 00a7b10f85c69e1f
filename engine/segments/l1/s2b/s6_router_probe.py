"""2B.S6 — the router proved on a deterministic probe: P arrivals per merchant, routed and tallied against
the probabilities the tables were built from (chi-square per site slice)."""

from __future__ import annotations

import time

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.group_sums import group_sums
from engine.core.state import StateContext
from engine.kernels.router import route_keyed
from engine.segments.l1.s2b.common import publish_json
from engine.segments.l1.s2b.policy import Router
from engine.segments.l1.s2b.tables import router_of

MIN_EXPECTED = 5.0


def probe_arrivals(merchant_ids: np.ndarray, per_merchant: int, days: int) -> pl.DataFrame:
    """Arrival k of each merchant falls on day k mod days."""
    k = np.tile(np.arange(per_merchant, dtype=np.uint64), merchant_ids.size)
    return pl.DataFrame(
        {
            "merchant_id": np.repeat(merchant_ids.astype(np.uint64), per_merchant),
            "k": k,
            "day_index": (k % np.uint64(days)).astype(np.int64),
        }
    )


def expected_counts(weights: pl.DataFrame, mix: pl.DataFrame, per_merchant: int, days: int) -> pl.DataFrame:
    """Σ_d n_d · p_group(d, tz) · p_weight / base_share per (merchant, tz_index, site_id)."""
    d = np.arange(days)
    n_d = pl.DataFrame({"day_index": d.astype(np.uint16), "n_d": (per_merchant - 1 - d) // days + 1})
    # summed exactly (group_sums): polars sums a group on its thread pool, where the order partial sums meet
    # (so the last bit) changes with the machine and its load
    terms = (
        mix.join(n_d, on="day_index")
        .sort("merchant_id", "tz_index", "day_index")
        .with_columns((pl.col("n_d").cast(pl.Float64) * pl.col("p_group")).alias("e_group"))
    )
    keys = ["merchant_id", "tz_index"]
    shares = terms.unique(keys, keep="first", maintain_order=True).select(*keys, "base_share")
    per_group = group_sums(terms, keys, ["e_group"]).join(shares, on=keys, how="left", maintain_order="left")
    return (
        weights.join(per_group, on=["merchant_id", "tz_index"])
        .select(
            "merchant_id",
            "tz_index",
            "site_id",
            (pl.col("e_group") * pl.col("p_weight") / pl.col("base_share")).alias("expected"),
        )
        .sort("merchant_id", "tz_index", "site_id")
    )


def merged_chi2(expected: np.ndarray, observed: np.ndarray) -> tuple[float, int]:
    """Pearson's statistic with cells of expected < 5 merged forward in member order (a short tail joins
    the last full cell); returns (statistic, cells)."""
    e_bins, o_bins, e_acc, o_acc = [], [], 0.0, 0.0
    for e, o in zip(expected, observed, strict=True):
        e_acc, o_acc = e_acc + e, o_acc + o
        if e_acc >= MIN_EXPECTED:
            e_bins.append(e_acc)
            o_bins.append(o_acc)
            e_acc, o_acc = 0.0, 0.0
    if e_acc > 0 and e_bins:
        e_bins[-1] += e_acc
        o_bins[-1] += o_acc
    e_arr, o_arr = np.array(e_bins), np.array(o_bins)
    return float(((o_arr - e_arr) ** 2 / e_arr).sum()) if e_arr.size else 0.0, int(e_arr.size)


def slice_tests(table: pl.DataFrame) -> pl.DataFrame:
    """One chi-square test per site slice that has at least two merged cells."""
    from scipy.stats import chi2  # only this state needs scipy

    rows = []
    for (mid, tz), grp in table.group_by(["merchant_id", "tz_index"], maintain_order=True):
        stat, cells = merged_chi2(grp["expected"].to_numpy(), grp["observed"].to_numpy())
        if cells >= 2:
            rows.append((mid, tz, cells, stat, float(chi2.sf(stat, cells - 1))))
    schema = {
        "merchant_id": pl.UInt64,
        "tz_index": pl.UInt16,
        "cells": pl.Int64,
        "chi2": pl.Float64,
        "p": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def run(ctx: StateContext) -> None:
    per_merchant = ctx.policy("2B/router.yaml")
    assert isinstance(per_merchant, Router)
    p = per_merchant.probe_arrivals_per_merchant
    tables = router_of(ctx)
    mix = ctx.read("s4_group_weights")
    days = int(mix["day_index"].max()) + 1
    arrivals = probe_arrivals(tables.merchant_ids, p, days)
    mids, ks = arrivals["merchant_id"].to_numpy(), arrivals["k"].to_numpy()
    k0, k1 = (np.uint64(k) for k in ctx.family_key("probe"))
    zeros = np.zeros(mids.size, dtype=np.uint64)
    route_keyed(tables, k0, k1, mids[:1], ks[:1], zeros[:1], zeros[:1], mids[:1], zeros[:1])  # compile once
    began = time.perf_counter()
    status, tz, site = route_keyed(
        tables, k0, k1, mids, ks, zeros, zeros, mids, arrivals["day_index"].to_numpy()
    )
    rate = mids.size / max(time.perf_counter() - began, 1e-9)
    ctx.progress(f"routed {mids.size} probe arrivals at {rate / 1e6:.1f} M/s")
    if status.any():
        bad = int(np.flatnonzero(status)[0])
        raise EngineError(
            "E_2B_ROUTE",
            f"router status {int(status[bad])} for merchant {int(mids[bad])} "
            f"on day {int(arrivals['day_index'][bad])}",
            where="s6_router_probe",
            fix="the alias tables are incomplete: rerun 2B from S2",
            state=ctx.state,
        )
    merchants = tables.merchant_ids
    ctx.record_draws(
        "probe", (merchants,), draws=2 * p, blocks=p, streams=p, value=np.full(merchants.size, p)
    )
    weights = ctx.read("s1_site_weights")
    routed = pl.DataFrame({"merchant_id": mids, "tz_index": tz.astype(np.uint16), "site_id": site})
    observed = routed.group_by("merchant_id", "tz_index", "site_id").len("observed")
    table = expected_counts(weights, mix, p, days).join(
        observed, on=["merchant_id", "tz_index", "site_id"], how="full", coalesce=True
    )
    violations = int(table["expected"].null_count())
    table = table.with_columns(pl.col("observed").fill_null(0).cast(pl.UInt32)).sort(
        "merchant_id", "tz_index", "site_id"
    )
    tests = slice_tests(table.drop_nulls("expected"))
    ctx.publish("s6_router_probe", table.drop_nulls("expected"))
    summary = {
        "arrivals": int(mids.size),
        "arrivals_per_merchant": p,
        "membership_violations": violations,
        "slices": int(table.select("merchant_id", "tz_index").n_unique()),
        "slices_tested": tests.height,
        "slices_p_below_1e-6": int((tests["p"] < 1e-6).sum()),
        "share_p_below_0.01": float((tests["p"] < 0.01).mean()) if tests.height else 0.0,
        "tests": [
            {"merchant_id": str(m), "tz_index": t, "cells": c, "chi2": s, "p": pv}
            for m, t, c, s, pv in tests.iter_rows()
        ],
    }
    publish_json(ctx, "s6_probe_summary", summary)
    ctx.facts["probe"] = {k: v for k, v in summary.items() if k != "tests"}
