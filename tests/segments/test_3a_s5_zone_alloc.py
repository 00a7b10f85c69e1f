"""3A.S5: zone_alloc covers every outlet pair and zone with sites; the universe hash recomputed by hand."""

import hashlib
import json
import struct
from pathlib import Path

import polars as pl

from engine.core.canonical import sha256_file


def test_zone_alloc_covers_every_pair_and_zone(tiny_world: Path) -> None:
    alloc = pl.read_parquet(next(tiny_world.glob("data/layer1/3A/zone_alloc/seed=42/*/part-00000.parquet")))
    site_tz = pl.read_parquet(
        next(tiny_world.glob("data/layer1/2A/site_timezones/seed=42/*/part-00000.parquet"))
    )
    want = site_tz.group_by("merchant_id", "legal_country_iso", "tzid").agg(pl.len().alias("n"))
    got = alloc.select("merchant_id", "legal_country_iso", "tzid", "sites_in_zone")
    both = want.join(got, on=["merchant_id", "legal_country_iso", "tzid"], how="full", coalesce=True)
    assert both.height == want.height == alloc.height
    assert (both["n"] == both["sites_in_zone"]).all()
    sums = alloc.group_by("merchant_id", "legal_country_iso").agg(
        pl.col("zone_share").sum(), pl.col("zone_site_count").sum(), pl.col("site_count").first()
    )
    assert ((sums["zone_share"] - 1.0).abs() <= 1e-12).all()
    assert (sums["zone_site_count"] == sums["site_count"]).all()


def test_universe_hash_recomputes(tiny_world: Path) -> None:
    path = next(tiny_world.glob("data/layer1/3A/zone_alloc_universe/seed=42/*/zone_alloc_universe.json"))
    doc = json.loads(path.read_text())
    mf = path.parent.name.removeprefix("manifest_fingerprint=")
    priors = next(
        tiny_world.glob(f"data/layer1/3A/s2_zone_priors/manifest_fingerprint={mf}/part-00000.parquet")
    )
    alloc = next(
        tiny_world.glob(f"data/layer1/3A/zone_alloc/seed=42/manifest_fingerprint={mf}/part-00000.parquet")
    )
    site_tz = next(tiny_world.glob("data/layer1/2A/site_timezones/seed=42/*/part-00000.parquet"))
    sealed = json.loads(
        next(tiny_world.glob(f"data/layer1/3A/gate/manifest_fingerprint={mf}/sealed_inputs.json")).read_text()
    )
    parts = [sealed["parameter_hash"], sha256_file(priors), sha256_file(alloc), sha256_file(site_tz)]
    assert [
        doc["parameter_hash"],
        doc["s2_zone_priors_sha256"],
        doc["zone_alloc_sha256"],
        doc["site_timezones_sha256"],
    ] == parts
    h = hashlib.sha256()
    for part in parts:
        h.update(struct.pack("<I", len(part)) + part.encode())
    assert doc["universe_hash"] == h.hexdigest()
