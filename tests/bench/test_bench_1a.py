"""Benchmark: the whole 1A chain (ingress → 1A.S9), tiny, default and large presets. `pytest -m bench -s`."""

from __future__ import annotations

import json
import resource
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO, snakemake_cmd

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("preset", ["tiny", "default", "large"])
def test_bench_seg1a(preset: str, tmp_path: Path) -> None:
    root = tmp_path / preset
    cmd = snakemake_cmd(root, target="seg1A", preset=preset)
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    assert res.returncode == 0, res.stderr[-4000:]
    peak_children_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    reports = [json.loads(p.read_text()) for p in sorted(root.glob("reports/1A/*/**/run_report.json"))]
    state_seconds = sum(r["operational"]["wall_seconds"] for r in reports)
    state_peak = max(r["operational"]["peak_rss_mib"] for r in reports)
    outlets = pl.read_parquet(next(root.glob("data/layer1/1A/outlet_catalogue/seed=42/*/part-00000.parquet")))
    merchants = outlets["merchant_id"].n_unique()
    print(
        f"\nBENCH seg1A preset={preset}: merchants={merchants} outlets={outlets.height} "
        f"workflow_wall={wall:.1f}s state_compute={state_seconds:.2f}s "
        f"compute_rate={outlets.height / state_seconds:,.0f} outlet rows/s "
        f"peak_rss_state={state_peak:.0f}MiB peak_rss_any_process={peak_children_mib:.0f}MiB"
    )
