"""3A.S5 — publish every pair's zone allocation and the universe hash that binds it."""

from __future__ import annotations

import polars as pl

from engine.core.canonical import canonical_json_bytes, sha256_file
from engine.core.contracts import PART_FILE, dataset_dir
from engine.core.errors import EngineError
from engine.core.publish import publish_bytes
from engine.core.state import StateContext
from engine.segments.l1.s3a.pairs import PAIR
from engine.segments.l1.s3a.universe import read_universe, universe_doc, universe_path


def zone_alloc(pairs: pl.DataFrame, zones: pl.DataFrame, counts: pl.DataFrame) -> pl.DataFrame:
    return (
        zones.join(pairs, on=PAIR, how="inner")
        .join(counts, on=[*PAIR, "tz_index"], how="inner")
        .select(
            *PAIR,
            "tzid",
            "tz_index",
            "site_count",
            "sites_in_zone",
            "zone_site_count",
            pl.col("share").alias("zone_share"),
            "is_escalated",
            "rule",
        )
        .sort([*PAIR, "tz_index"])
    )


def run(ctx: StateContext) -> None:
    pairs = ctx.read("s1_pairs").select(*PAIR, "site_count", "is_escalated", "rule")
    zones = ctx.read("s1_pair_zones").select(*PAIR, "tz_index", "tzid", "sites_in_zone")
    counts = ctx.read("s4_zone_counts").select(*PAIR, "tz_index", "zone_site_count", "share")
    ctx.read("s2_zone_priors", seed_free=True)  # checks its bytes against the digest S2 recorded
    out = zone_alloc(pairs, zones, counts)
    conserved = out.group_by(PAIR).agg(pl.col("zone_site_count").sum(), pl.col("site_count").first())
    lost = pairs.height - conserved.height
    broken = conserved.filter(pl.col("zone_site_count") != pl.col("site_count")).height
    if lost or broken or out.height != zones.height:
        raise EngineError(
            "E_3A_COUNT_CONSERVATION",
            f"zone_alloc lost {lost} pairs, {zones.height - out.height} zone rows, and {broken} pairs do not "
            "conserve their site count",
            where="zone_alloc",
            state=ctx.state,
        )
    alloc_path = ctx.publish("zone_alloc", out)
    priors_path = dataset_dir(ctx.root, "s2_zone_priors", mf=ctx.mf) / PART_FILE
    assert ctx.seed is not None
    doc = universe_doc(
        ctx.sealed.parameter_hash,
        sha256_file(priors_path),
        sha256_file(alloc_path),
        ctx.sealed.inputs["site_timezones"].sha256,
    )
    path = universe_path(ctx.root, ctx.mf, ctx.seed)
    publish_bytes(path, canonical_json_bytes(doc), state=ctx.state)
    if read_universe(path) != doc:
        raise EngineError(
            "E_3A_UNIVERSE_HASH",
            "the published universe file differs from the hash recomputed from the data",
            where=str(path),
            fix="delete the zone_alloc_universe partition and rerun 3A.S5",
            state=ctx.state,
        )
    ctx.record_output("zone_alloc_universe", path, 1)
    ctx.facts["universe_hash"] = doc["universe_hash"]
