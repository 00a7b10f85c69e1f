"""rng_event_log end to end: `sample` changes no data or bundle byte of `off` and logs each drawing state."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from engine.core.canonical import sha256_file
from tests.conftest import run_snakemake

pytestmark = pytest.mark.e2e

SEGMENTS = ("ING", "1A", "1B")


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): sha256_file(p)
        for seg in SEGMENTS
        for p in sorted((root / "data" / "layer1" / seg).rglob("*"))
        if p.is_file()
    }


def test_sampled_event_log_changes_no_byte_and_logs_every_drawing_state(
    tiny_world: Path, tmp_path: Path
) -> None:
    root = tmp_path / "logged"
    res = run_snakemake(root, "rng_event_log=sample", target="seg1B")
    assert res.returncode == 0, res.stderr[-4000:]
    assert _digests(root) == _digests(tiny_world)  # data, gates and validation bundles alike
    drawing = {}
    for report in sorted(root.glob("reports/*/*/seed=42/*/run_report.json")):
        doc = json.loads(report.read_text())
        if doc["rng_accounting"]:
            drawing[doc["state"]] = doc
    assert set(drawing) == {"1A.S1", "1A.S2", "1A.S3", "1A.S4", "1A.S6", "1B.S5", "1B.S6"}
    for state, doc in drawing.items():
        events = pl.read_parquet(root / doc["operational"]["rng_event_log"])
        assert set(events["family"]) == set(doc["rng_accounting"]), state
        for family, totals in doc["rng_accounting"].items():  # under 10^5 events the sample is all of them
            mine = events.filter(pl.col("family") == family)
            assert [int(mine[q].sum()) for q in ("draws", "blocks", "streams")] == [
                totals["draws"],
                totals["blocks"],
                totals["streams"],
            ], (state, family)
            assert (
                str(mine["c0"].min()) == totals["counter_lo"]
                and str(mine["c0"].max()) == totals["counter_hi"]
            )
    assert not list(tiny_world.glob("logs/**/rng_events.parquet"))  # off (the default) writes none
