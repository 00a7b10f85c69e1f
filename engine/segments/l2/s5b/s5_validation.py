"""5B.S5 — prove conservation, civil time, routing and realism, and publish 5B's bundle. Streaming scans:
each scenario-shard's arrivals are folded batch by batch (engine/segments/l2/s5b/scan.py), 5A's intensities
are re-summed batch by batch, and the S3 sampler is re-run in plain Python on ~10,000 sampled cells
(engine/segments/l2/s5b/replay.py) from λ, κ and the counter."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.core.contracts import dictionary, validate_table
from engine.core.group_sums import exact_sum, group_sums
from engine.core.horizon import Horizon
from engine.core.ids import splitmix64
from engine.core.state import StateContext
from engine.core.validation import (
    CheckBook,
    PhiloxBlocks,
    apply_checks,
    check_schemas,
    finish_segment,
    state_reports,
)
from engine.segments.l2.s5b import replay
from engine.segments.l2.s5b.batches import part_rows, unit_batches
from engine.segments.l2.s5b.civil_time import MAX_EXAMPLES, audit
from engine.segments.l2.s5b.common import PROFILE_KEY, US
from engine.segments.l2.s5b.policy import Counts
from engine.segments.l2.s5b.s3_counts import READ as SCENARIO_READ
from engine.segments.l2.s5b.s3_counts import day_weights_of, realised_lambda
from engine.segments.l2.s5b.scan import ArrivalScan
from engine.segments.l2.s5b.upstream import cutoff_seconds, routing_policy

PRODUCERS = ["5B.S1", "5B.S2", "5B.S3", "5B.S4"]
RERUN_CELLS = 10_000
BATCH_ROWS = 4_000_000
KEYS = ["merchant_id", "bucket_index", "legal_country_iso", "tzid", "channel_group"]
# local weekday of a 5A row's bucket midpoint (1970-01-01 was a Thursday: +3 makes Monday 0)
WEEKEND_5A = (
    ((pl.col("bucket_index").cast(pl.Int64) * 3600 + 1800 + pl.col("utc_offset_s")) // 86400 + 3) % 7
) >= 5


def strings(df: pl.DataFrame) -> pl.DataFrame:
    """Categorical/Enum columns as text, so tables written under different vocabularies join."""
    return df.with_columns(pl.col(pl.Categorical, pl.Enum).cast(pl.String))


@dataclass(frozen=True)
class World:
    """What every scenario and shard is checked against."""

    h: int
    start_us: int
    pol: Counts
    cells: pl.DataFrame  # profile key → group_id
    day_weights: pl.DataFrame | None
    sites: pl.DataFrame
    edges: pl.DataFrame
    transitions: pl.DataFrame
    cutoff_s: int
    budget: int  # S3 re-run cells per scenario-shard


@dataclass
class Tally:
    arrivals: int = 0
    count: int = 0
    lam_realised: float = 0.0
    count_blocks: int = 0
    conservation: int = 0  # segments whose arrivals ≠ counts
    totals: int = 0  # cell_totals rows disagreeing with the counts or with 5A's Σλ
    routing: int = 0
    routing_pairs: int = 0
    rerun: int = 0
    rerun_cells: int = 0
    in_bucket: int = 0  # outside their hour, or local ≠ utc + offset
    disorder: int = 0
    civil: dict[str, Any] = field(default_factory=lambda: {"rows": 0, "mismatches": 0, "examples": []})


def latent_stats(params: pl.DataFrame, lat: pl.DataFrame, h: int) -> dict[str, float]:
    """Mean factor, clipped share, and |mean lag-1 autocorrelation of z − mean φ| over groups with σ > 0."""
    z = lat.sort("group_id", "bucket_index")["z"].to_numpy().astype(np.float64).reshape(params.height, h)
    live = params.sort("group_id")["sigma"].to_numpy() > 0
    lag1 = []
    for row in z[live]:
        a, b = row[:-1] - row[:-1].mean(), row[1:] - row[1:].mean()
        den = math.sqrt(float((a * a).sum() * (b * b).sum()))
        if den > 0:
            lag1.append(float((a * b).sum()) / den)
    phi = float(params.sort("group_id")["phi"].to_numpy()[live].mean()) if live.any() else 0.0
    factor = lat["factor"].drop_nulls()
    return {
        "mean_factor": exact_sum(factor) / factor.len() if factor.len() else 0.0,
        "clipped": float(lat["clipped"].mean() or 0.0),
        "lag1_gap": abs(float(np.mean(lag1)) - phi) if lag1 else 0.0,
        "groups": int(live.sum()),
        "rows": lat.height,
    }


def conservation(got: pl.DataFrame, counts: pl.DataFrame) -> int:
    """(merchant, bucket) segments whose arrivals differ from bucket_counts' Σcount."""
    want = counts.group_by("merchant_id", "bucket_index").agg(pl.col("count").cast(pl.Int64).sum())
    both = want.join(got, on=["merchant_id", "bucket_index"], how="full", coalesce=True)
    return int((both["count"].fill_null(0) != both["arrivals"].cast(pl.Int64).fill_null(0)).sum())


def routing_membership(scan: ArrivalScan, sites: pl.DataFrame, edges: pl.DataFrame) -> tuple[int, int]:
    """(bad, distinct pairs): a site must belong to the merchant and sit in the arrival's zone; an edge must
    belong to the merchant."""
    bad, total = 0, 0
    if scan.site_pairs:
        pairs = scan.sites().join(sites, on="site_id", how="left", suffix="_site")
        ok = (pl.col("merchant_id") == pl.col("merchant_id_site")) & (pl.col("tzid_local") == pl.col("tzid"))
        bad += pairs.height - int(pairs.select(ok.fill_null(False).sum()).item())
        total += pairs.height
    if scan.edge_pairs:
        pairs = scan.edges().join(edges, on="edge_id", how="left", suffix="_edge")
        bad += int((pairs["merchant_id"] != pairs["merchant_id_edge"]).fill_null(True).sum())
        total += pairs.height
    return bad, total


def expected_from_5a(parts: list[Path]) -> tuple[pl.DataFrame, float, float]:
    """Per profile row of a 5A partition: Σλ_scenario (l5a) and its part on local weekends (wk); and the two
    totals, each summed over sorted values so the float result does not depend on thread scheduling."""
    sums, total, weekend = [], 0.0, 0.0
    for b in unit_batches(parts, [*SCENARIO_READ, "utc_offset_s"], ["merchant_id"], BATCH_ROWS):
        lam = b.select(
            pl.col("lambda_scenario").cast(pl.Float64).alias("l"),
            pl.when(WEEKEND_5A).then(pl.col("lambda_scenario").cast(pl.Float64)).otherwise(0.0).alias("w"),
        )
        total += float(np.sort(lam["l"].to_numpy()).sum())
        weekend += float(np.sort(lam["w"].to_numpy()).sum())
        keyed = strings(b).select(*PROFILE_KEY).with_columns(lam.rename({"l": "l5a", "w": "wk"}))
        sums.append(group_sums(keyed, PROFILE_KEY, ["l5a", "wk"]))
    empty = pl.DataFrame(
        schema={
            "merchant_id": pl.UInt64,
            **{k: pl.String for k in PROFILE_KEY[1:]},
            "l5a": pl.Float64,
            "wk": pl.Float64,
        }
    )
    return (pl.concat(sums) if sums else empty), total, weekend


def rerun_counts(
    gen: PhiloxBlocks,
    parts: list[Path],
    counts: pl.DataFrame,
    factor: np.ndarray,
    kappa: np.ndarray,
    world: World,
) -> tuple[int, int]:
    """(cells re-run, mismatches): 5A cells whose hash falls in the sample, recounted by the plain-Python
    sampler from λ, κ and the counter, against bucket_counts (absent = 0)."""
    mod = np.uint64(max(1, part_rows(parts) // max(world.budget, 1)))
    have = counts.select(*KEYS, "count")
    nb2 = world.pol.law == "nb2"
    done, bad = 0, 0
    for raw in unit_batches(parts, SCENARIO_READ, ["merchant_id"], BATCH_ROWS):
        batch = strings(raw).join(world.cells, on=PROFILE_KEY, how="left", maintain_order="left")
        c2 = (batch["bucket_index"].to_numpy().astype(np.uint64) << np.uint64(8)) | (
            batch["channel_group"] == "CNP"
        ).to_numpy().astype(np.uint64)
        key = splitmix64(batch["merchant_id"].to_numpy() ^ splitmix64(batch["zone_code"].to_numpy() ^ c2))
        pick = np.flatnonzero(key % mod == 0)[: max(world.budget - done, 0)]
        if pick.size == 0:
            continue
        sub = batch[pick]
        lam = realised_lambda(sub, factor, world.day_weights)
        got = sub.select(KEYS).join(have, on=KEYS, how="left", maintain_order="left")["count"].fill_null(0)
        rows = sub.select("merchant_id", "zone_code", "group_id").iter_rows()
        for i, (m, zone, g) in enumerate(rows):
            c = int(c2[pick[i]])
            want, _, _ = replay.cell_count(
                gen, m, zone, c, float(lam[i]), float(kappa[g]), nb2, world.pol.lambda_eps
            )
            bad += int(want != got[i])
        done += pick.size
    return done, bad


def check_shard(
    ctx: StateContext,
    book: CheckBook,
    world: World,
    tally: Tally,
    scan: ArrivalScan,
    scenario: str,
    shard: int,
    latent: tuple[np.ndarray, np.ndarray],
) -> tuple[int, float, float]:
    """One scenario-shard: schemas, conservation, cell totals against the counts and 5A's Σλ, the S3 re-run;
    its arrivals are folded into `scan`. Returns (arrivals, Σλ_5A, weekend Σλ_5A)."""
    counts = ctx.read("bucket_counts", scenario=scenario, shard=shard)
    tot = ctx.read("cell_totals", scenario=scenario, shard=shard)
    for name, df in (("bucket_counts", counts), ("cell_totals", tot)):
        schema = dictionary()[name]["schema"]
        book.guarded(
            f"schema.{name}.{scenario}.{shard}",
            lambda df=df, schema=schema, name=name: validate_table(df, schema, where=name, state=ctx.state),
        )
    before, first = scan.rows, len(scan.segments)
    scan.add_parts(ctx.part_files("arrival_events", scenario=scenario, shard=shard))
    counts, tot = strings(counts), strings(tot)
    tally.conservation += conservation(scan.segment_counts(first), counts)
    del scan.segments[first:]  # merchants never span shards: this shard's segments are done with
    recount = counts.group_by(PROFILE_KEY).agg(pl.col("count").cast(pl.UInt64).sum().alias("c"))
    joined = tot.join(recount, on=PROFILE_KEY, how="left")
    tally.totals += int((joined["count_sum"] != joined["c"].fill_null(0)).sum())
    parts = ctx.sealed_parts("merchant_zone_scenario", scenario=scenario, shard=shard)
    lam5a, lam_total, weekend_total = expected_from_5a(parts)
    both = tot.join(lam5a, on=PROFILE_KEY, how="full", coalesce=True)
    rel = (both["lambda_scenario_sum"] - both["l5a"]).abs() / both["l5a"].abs().clip(1e-9)
    tally.totals += int(rel.fill_null(1.0).gt(1e-6).sum())
    tally.count += int(tot["count_sum"].sum())
    tally.lam_realised += float(tot["lambda_realised_sum"].sum())
    tally.count_blocks += int(tot["rng_blocks"].sum())
    done, wrong = rerun_counts(PhiloxBlocks(ctx.family_key("count")), parts, counts, *latent, world)
    tally.rerun_cells += done
    tally.rerun += wrong
    return scan.rows - before, lam_total, weekend_total


def check_scenario(
    ctx: StateContext, book: CheckBook, world: World, tally: Tally, scenario: str
) -> dict[str, Any]:
    """Every shard of one scenario, then its routing, civil time and realism figures (its summary entry)."""
    params = ctx.read("group_params", scenario=scenario).sort("group_id")
    lat = ctx.read("latent_field", scenario=scenario).sort("group_id", "bucket_index")
    check_schemas(ctx, book, {"group_params": params, "latent_field": lat})
    book.structural(
        f"latent_rows.{scenario}", lat.height == params.height * world.h, code="E_5B_LATENT_NUMERIC"
    )
    factor = lat["factor"].to_numpy().astype(np.float64).reshape(params.height, world.h)
    kappa = params["kappa"].to_numpy().astype(np.float64)
    scan = ArrivalScan(world.start_us, world.transitions)
    per_shard, lam5a, weekend5a = [], 0.0, 0.0
    for shard in range(ctx.shards):
        rows, lam, wk = check_shard(ctx, book, world, tally, scan, scenario, shard, (factor, kappa))
        per_shard.append(rows)
        lam5a += lam
        weekend5a += wk
    bad, pairs = routing_membership(scan, world.sites, world.edges)
    tally.routing += bad
    tally.routing_pairs += pairs
    found = audit(scan.civil_sample(), world.cutoff_s)
    tally.civil["rows"] += found["rows"]
    tally.civil["mismatches"] += found["mismatches"]
    tally.civil["examples"] += found["examples"][: MAX_EXAMPLES - len(tally.civil["examples"])]
    tally.arrivals += scan.rows
    tally.in_bucket += scan.outside_bucket + scan.local_mismatch
    tally.disorder += scan.id_disorder + scan.ts_disorder
    per_site = scan.sites()["arrivals"].to_numpy() if scan.site_pairs else np.zeros(0)
    cp = scan.hours["CP"]
    return {
        "arrivals": scan.rows,
        "arrivals_per_shard": per_shard,
        "virtual_share": scan.virtual / max(scan.rows, 1),
        "local_hour_histogram": {ch: scan.hours[ch].tolist() for ch in ("CP", "CNP")},
        "weekend_share": scan.weekend / max(scan.rows, 1),
        "weekend_share_5A": weekend5a / lam5a if lam5a else 0.0,
        "cp_peak_hour": int(np.argmax(cp)) if cp.sum() else -1,
        "cp_arrivals": int(cp.sum()),
        "night_share": {ch: scan.night[ch] / max(scan.by_channel[ch], 1) for ch in ("CP", "CNP")},
        "top_site_share": top_share(per_site, world.sites.height),
        "latent": latent_stats(params, lat, world.h),
    }


def top_share(per_site: np.ndarray, n_sites: int) -> float:
    """Share of physical arrivals on the busiest 10 % of sites (sites without arrivals count as zeros)."""
    total = float(per_site.sum())
    if total == 0 or n_sites == 0:
        return 0.0
    k = max(1, n_sites // 10)
    return float(np.sort(per_site)[::-1][:k].sum()) / total


def expected_accounting(merchants: int, latent_blocks: int, tally: Tally) -> dict[str, dict[str, int]]:
    """Blocks per family recomputed from the outputs: one per merchant, ⌈H/4⌉ per group and scenario, the
    cells' recorded stream blocks, one per arrival."""
    return {
        "5B.group": {"blocks": merchants},
        "5B.latent": {"blocks": latent_blocks},
        "5B.count": {"blocks": tally.count_blocks},
        "5B.arrival": {"blocks": tally.arrivals},
    }


def metrics_of(
    tally: Tally, scenarios: dict[str, Any], dispersion: tuple[float, int], acct_ok: bool, n_sites: int
) -> dict[str, tuple[float, int]]:
    """Realism metrics; scenario-specific shares are the first scenario's (the baseline)."""
    lat = [s["latent"] for s in scenarios.values()]
    rows = sum(int(d["rows"]) for d in lat)
    groups = sum(int(d["groups"]) for d in lat)
    base = next(iter(scenarios.values()))
    lam = tally.lam_realised
    bound = max(0.01, 4.0 / math.sqrt(lam)) if lam > 0 else 1.0
    n = tally.arrivals
    return {
        "count_conservation": (float(tally.conservation == 0 and tally.totals == 0), n),
        "in_bucket_share": (1.0 - tally.in_bucket / max(n, 1), n),
        "civil_time_mismatches": (float(tally.civil["mismatches"]), tally.civil["rows"]),
        "routing_membership": (1.0 - tally.routing / max(tally.routing_pairs, 1), tally.routing_pairs),
        "count_to_lambda_ratio": (abs(tally.count / lam - 1.0) / bound if lam else 0.0, tally.count),
        "mean_factor": (sum(d["mean_factor"] * d["rows"] for d in lat) / max(rows, 1), groups),
        "clipped_share": (sum(d["clipped"] * d["rows"] for d in lat) / max(rows, 1), rows),
        "lag1_gap": (max((d["lag1_gap"] for d in lat), default=0.0), groups),
        "dispersion": (dispersion[0] / dispersion[1] if dispersion[1] else float("nan"), dispersion[1]),
        "id_order": (float(tally.disorder == 0), n),
        "rng_accounting": (float(acct_ok and tally.rerun == 0), tally.rerun_cells),
        "virtual_share": (base["virtual_share"], base["arrivals"]),
        "weekend_share_gap": (abs(base["weekend_share"] - base["weekend_share_5A"]), base["arrivals"]),
        "cp_peak_hour": (float(base["cp_peak_hour"]), base["cp_arrivals"]),
        "night_share_gap": (base["night_share"]["CNP"] - base["night_share"]["CP"], base["arrivals"]),
        "top_site_share": (base["top_site_share"], n_sites),
    }


def world_of(ctx: StateContext, book: CheckBook) -> tuple[World, int]:
    """The scenario-free tables, checked (schemas, grouping complete, grid rows); returns the world and the
    number of merchants."""
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    pol: Counts = ctx.policy("5B/counts.yaml")
    h = 24 * horizon.days
    grid, grouping = ctx.read("time_grid"), ctx.read("grouping")
    check_schemas(ctx, book, {"time_grid": grid, "grouping": grouping})
    profile = strings(ctx.sealed_table("merchant_zone_profile"))
    complete = (
        grouping.height == profile.height
        and strings(grouping).join(profile, on=PROFILE_KEY, how="anti").is_empty()
    )
    book.structural("grouping_complete", complete, code="E_5B_GROUP_INCOMPLETE")
    book.structural("time_grid_rows", grid.height == h)
    world = World(
        h=h,
        start_us=int(horizon.start().timestamp()) * US,
        pol=pol,
        cells=strings(grouping).select(*PROFILE_KEY, "group_id"),
        day_weights=day_weights_of(ctx, pol.use_day_effects),
        sites=strings(ctx.sealed_table("site_timezones").select("site_id", "merchant_id", "tzid")),
        edges=ctx.sealed_table("edge_catalogue").select("edge_id", "merchant_id"),
        transitions=strings(
            ctx.sealed_table("tz_dst_windows").filter(pl.col("in_horizon")).select("tzid", "transition_utc")
        ),
        cutoff_s=cutoff_seconds(routing_policy(ctx)),
        budget=RERUN_CELLS // max(len(ctx.scenarios) * ctx.shards, 1),
    )
    return world, int(profile["merchant_id"].n_unique())


def run(ctx: StateContext) -> None:
    book = CheckBook()
    world, merchants = world_of(ctx, book)
    tally = Tally()
    scenarios = {s: check_scenario(ctx, book, world, tally, s) for s in ctx.scenarios}
    reports, recorded = state_reports(ctx, PRODUCERS)
    latent_blocks = sum(int(s["latent"]["groups"]) * ((world.h + 3) // 4) for s in scenarios.values())
    expected = expected_accounting(merchants, latent_blocks, tally)
    acct_ok = all(int(recorded.get(f, {}).get("blocks", -1)) == e["blocks"] for f, e in expected.items())
    s3 = [r["facts"]["dispersion"] for k, r in reports.items() if k.startswith("5B.S3/")]
    dispersion = (sum(d["sum"] for d in s3), sum(d["cells"] for d in s3))
    book.structural(
        "count_conservation", tally.conservation == 0, f"{tally.conservation} segments", "E_5B_COUNT_MISMATCH"
    )
    book.structural("cell_totals", tally.totals == 0, f"{tally.totals} cells", "E_5B_COUNT_MISMATCH")
    book.structural("s3_rerun", tally.rerun == 0, f"{tally.rerun} of {tally.rerun_cells}", "E_5B_REPLAY")
    book.structural("rng_accounting", acct_ok, "", "E_5B_REPLAY")
    apply_checks(
        book,
        ctx.policy("5B/validation.yaml"),
        metrics_of(tally, scenarios, dispersion, acct_ok, world.sites.height),
    )
    summary = {
        "scenarios": scenarios,
        "totals": {"arrivals": tally.arrivals, "count": tally.count, "lambda_realised": tally.lam_realised},
    }
    finish_segment(
        ctx,
        book,
        {
            "rng_accounting": {"recorded": recorded, "expected": expected},
            "state_reports": reports,
            "extra": {"summary": summary, "civil_time_audit": tally.civil},
        },
    )
