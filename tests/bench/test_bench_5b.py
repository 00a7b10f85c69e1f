"""Benchmark: 5B.S4's arrivals/s including Parquet writes (layer2_3 §0.6: ≥ 2·10^6 on 2 cores).
`pytest -m bench -s -k 5b`.

`test_bench_s4_pipeline`: S4's own loop (`stream_arrivals`: kernel, frame, writer thread) over a synthetic
world of 20,000 merchants (1–3 tz groups of 1–60 sites, 10 % virtual with 8 edges, 90 days of group tables)
and Poisson(2.5) counts per (merchant, zone, hour) over 3 days, written exactly as `ctx.stream` writes
(identity columns, column-wise contract check, PartWriter). `test_bench_seg5b`: the workflow on a preset,
S4's arrivals/s from its run reports (wall and peak RSS per 5B state).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.core.contracts import dictionary
from engine.core.parquet_io import PartWriter
from engine.core.state import StreamOut
from engine.kernels.alias_blob import AliasLayout, write_day_blocks, write_slices
from engine.kernels.arrivals import Clock, Targets
from engine.kernels.router import load_edge_router, load_router
from engine.segments.l2.s5b.batches import unit_batches
from engine.segments.l2.s5b.common import BAND, CHANNEL
from engine.segments.l2.s5b.s4_arrivals import READ, World, stream_arrivals
from tests.conftest import REPO, shipped_policy, snakemake_cmd

pytestmark = pytest.mark.bench

MERCHANTS, DAYS, HOURS, TZ = 20_000, 90, 72, 40
US = 1_000_000
START_US = 1_772_409_600 * US  # 2026-03-02T00:00:00Z


def synthetic_world(seed: int = 0) -> tuple[World, pl.DataFrame]:
    """A routing world and its bucket_counts rows (segment order)."""
    rng = np.random.default_rng(seed)
    layout = AliasLayout()
    site_items, group_items, edge_items, zones, site_n = [], [], [], [], 0
    for m in range(1, MERCHANTS + 1):
        tzs = sorted(rng.choice(TZ, size=int(rng.integers(1, 4)), replace=False).tolist())
        for tz in tzs:
            n = int(rng.integers(1, 61))
            site_items.append(({"merchant_id": m, "tz_index": tz}, rng.lognormal(0, 1, n)))
            site_n += n
        group_items.append(({"merchant_id": m}, tzs, np.ones((DAYS, len(tzs)))))
        if m % 10 == 0:
            edge_items.append(({"merchant_id": m}, rng.random(8) + 0.1))
        zones += [(m, tz, m % 10 == 0) for tz in tzs]
    sblob, sindex, _ = write_slices(site_items, layout)
    gblob, gindex, _ = write_day_blocks(group_items, layout)
    eblob, eindex, _ = write_slices(edge_items, layout)
    router = load_router(sindex, sblob, np.arange(1, site_n + 1, dtype=np.uint64), gindex, gblob, layout)
    edges = load_edge_router(eindex, eblob, np.arange(1, 8 * len(edge_items) + 1, dtype=np.uint64), layout)
    first = np.arange(0, 2 * TZ + 1, 2, dtype=np.int64)
    valid_from = np.tile([START_US - 10**13, START_US + 36 * 3600 * US], TZ).astype(np.int64)
    offsets = np.tile([-5 * 3600, -4 * 3600], TZ).astype(np.int64)
    tzid = pl.Enum([f"Zone/{i:03d}" for i in range(TZ)])
    country = pl.Enum(["DE", "FR", "US"])
    world = World(
        start_us=START_US,
        router=router,
        edges=edges,
        clock=Clock(first, valid_from, offsets),
        targets=Targets(
            rng.integers(0, 3, site_n).astype(np.int32),
            rng.integers(0, 3, 8 * len(edge_items)).astype(np.int32),
            rng.integers(0, TZ, 8 * len(edge_items)).astype(np.int64),
        ),
        cutoff_s=18 * 3600,
        merchant_ids=np.arange(1, MERCHANTS + 1, dtype=np.uint64),
        settle_ids=np.array([e[0]["merchant_id"] for e in edge_items], dtype=np.uint64),
        settle_tz=np.zeros(len(edge_items), dtype=np.int64),
        tzid=tzid,
        tz_pos=np.arange(TZ, dtype=np.int64),
        country=country,
    )
    z = np.array(zones, dtype=np.int64)
    rows = pl.DataFrame(
        {
            "merchant_id": np.repeat(z[:, 0], HOURS).astype(np.uint64),
            "bucket_index": np.tile(np.arange(HOURS, dtype=np.uint32), len(zones)),
            "legal_country_iso": pl.Series(np.repeat(["US"], len(zones) * HOURS)).cast(country),
            "channel_group": pl.Series(np.repeat(np.where(z[:, 2] == 1, "CNP", "CP"), HOURS)).cast(CHANNEL),
            "zone_code": np.repeat((840 << 16) | z[:, 1], HOURS).astype(np.uint64),
            "routing": pl.Series(np.repeat(np.where(z[:, 2] == 1, "VIRTUAL", "PHYSICAL"), HOURS)).cast(BAND),
            "count": rng.poisson(2.5, len(zones) * HOURS).astype(np.uint32),
        }
    )
    return world, rows.filter(pl.col("count") > 0).sort("merchant_id", "bucket_index", "zone_code")


def sink(folder: Path) -> tuple[PartWriter, object]:
    """ctx.stream's write path without a context: the same StreamOut (contract check per batch, constant
    identity columns, part writer) over a world's identity values."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = PartWriter(folder)
    identity = pl.DataFrame(
        {"seed": [42], "manifest_fingerprint": ["0" * 64], "scenario_id": ["baseline"], "shard": [0]},
        schema_overrides={"seed": pl.UInt64, "shard": pl.UInt16},
    )
    out = StreamOut(
        "arrival_events", dictionary()["arrival_events"]["schema"], identity, writer, "bench", "bench"
    )
    return writer, out.write


def test_bench_s4_pipeline(tmp_path: Path) -> None:
    world, rows = synthetic_world()
    rows.write_parquet(tmp_path / "bucket_counts.parquet")
    batch_max = shipped_policy("5B", "arrivals").batch_max_arrivals
    keys = ["merchant_id", "bucket_index"]
    batches = list(unit_batches([tmp_path / "bucket_counts.parquet"], READ, keys, batch_max, "count"))
    # warm-up (numba compile / cache load) on a small slice
    _, warm = sink(tmp_path / "warm")
    stream_arrivals(world, (1, 2), [rows.slice(0, 1000)], warm, lambda *_: None, "bench")
    writer, write = sink(tmp_path / "arrival_events")
    t0 = time.perf_counter()
    n = stream_arrivals(world, (1, 2), batches, write, lambda *_: None, "bench")
    writer.close()
    wall = time.perf_counter() - t0
    print(
        f"\nBENCH 5B.S4 pipeline: {n:,} arrivals in {wall:.2f} s = {n / wall:,.0f} arrivals/s (incl. Parquet)"
    )
    assert n == int(rows["count"].sum())


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_bench_seg5b(preset: str, tmp_path: Path) -> None:
    root = tmp_path / preset
    start = time.perf_counter()
    res = subprocess.run(
        snakemake_cmd(root, target="seg5B", preset=preset), cwd=REPO, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    assert res.returncode == 0, res.stderr[-4000:]
    lines = []
    for path in sorted(root.glob("reports/5B/*/**/run_report.json")):
        r = json.loads(path.read_text())
        op = r["operational"]
        rate = (
            f" {r['facts']['arrivals'] / op['wall_seconds']:,.0f} arrivals/s"
            if "arrivals" in r["facts"]
            else ""
        )
        lines.append(
            f"{path.relative_to(root / 'reports')}: {op['wall_seconds']} s, {op['peak_rss_mib']} MiB{rate}"
        )
    print(f"\nBENCH seg5B preset={preset}: workflow {wall:.0f} s\n" + "\n".join(lines))
