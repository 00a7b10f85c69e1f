"""2A.S3 — the UTC-offset history of every tzid over the horizon plus margins, from the pinned tzdata."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from engine.core.canonical import canonical_json_bytes, sha256_file
from engine.core.contracts import dataset_dir
from engine.core.errors import EngineError
from engine.core.horizon import Horizon
from engine.core.publish import publish_bytes
from engine.core.state import StateContext
from engine.core.tzdb import force_tzdata
from engine.segments.l1.s2a.tz_cache import check_hourly, transitions

MANIFEST = "tz_cache_manifest.json"


def all_tzids(tz_country: pl.DataFrame) -> list[str]:
    """The ASCII-sorted tzid list of the sealed reference: position = tz_index."""
    return sorted(set(tz_country["tzid"].to_list()))


def manifest_path(root: Path, mf: str) -> Path:
    """data/layer1/2A/tz_cache_manifest/manifest_fingerprint=…/tz_cache_manifest.json (seed-free)."""
    return (
        dataset_dir(root, "tz_transitions", mf=mf).parent.parent
        / "tz_cache_manifest"
        / f"manifest_fingerprint={mf}"
        / MANIFEST
    )


def run(ctx: StateContext) -> None:
    version = force_tzdata()
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    tzdb = ctx.sealed_table("ref_tzdb")
    if tzdb["tzdata_version"][0] != version:
        raise EngineError(
            "E_2A_TZDATA_VERSION",
            f"installed tzdata {version} differs from the sealed {tzdb['tzdata_version'][0]}",
            where="ref_tzdb",
            state=ctx.state,
        )
    tzids = all_tzids(ctx.sealed_table("ref_tz_country"))
    start, end = horizon.window()
    ctx.progress(f"transitions of {len(tzids)} zones over {start:%Y-%m-%d} .. {end:%Y-%m-%d}")
    table = transitions(tzids, start, end)
    mismatches = check_hourly(table, tzids, start, end)
    if mismatches:
        raise EngineError(
            "E_2A_TZ_CACHE_MISMATCH",
            f"{len(mismatches)} hourly disagreements, e.g. {mismatches[0]}",
            where="tz_transitions",
            state=ctx.state,
        )
    out = ctx.publish("tz_transitions", table, seed_free=True)
    manifest = {
        "horizon_sha256": ctx.sealed.inputs["CFG/horizon.yaml"].sha256,
        "rows": table.height,
        "transitions_sha256": sha256_file(out),
        "tzdata_version": version,
        "window_end_utc": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "window_start_utc": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "zones": len(tzids),
    }
    path = manifest_path(ctx.root, ctx.mf)
    publish_bytes(path, canonical_json_bytes(manifest), state=ctx.state)
    ctx.record_output("tz_cache_manifest", path, 1)
