"""scripts/io_floor.py on the tiny world: it re-encodes every sharded 6B table of shard 0 byte for byte as
the engine wrote it, counts the rows it wrote per state, and names the partition whose bytes it cannot
reproduce."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import REPO

SHARD_0 = "seed=42/*/scenario_id=baseline/shard=0/part-*.parquet"


def rows(root: Path, dataset: str) -> int:
    files = sorted((root / "data/layer3/6B" / dataset).glob(SHARD_0))
    assert files, dataset
    return sum(pq.read_metadata(f).num_rows for f in files)


def io_floor(root: Path, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "scripts/io_floor.py", str(root), "--json", str(out)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_floor_reencodes_every_state_output_of_shard_0(tiny_world: Path, tmp_path: Path) -> None:
    res = io_floor(tiny_world, tmp_path / "floor.json")
    assert res.returncode == 0, res.stderr[-2000:]
    got = {r["state"]: r for r in json.loads((tmp_path / "floor.json").read_text())}
    assert list(got) == ["6B.S1", "6B.S2", "6B.S4", "6B.S5", "6B.S5a", "6B.S7a"]
    flows = rows(tiny_world, "transactions")
    assert {r["flows"] for r in got.values()} == {flows}
    assert got["6B.S1"]["rows_written"] == rows(tiny_world, "s1_attachments")
    assert got["6B.S2"]["rows_written"] == rows(tiny_world, "s2_flow_plan")
    assert got["6B.S4"]["rows_written"] == rows(tiny_world, "s4_flows") == flows
    s5 = ("transactions", "events", "s5_case_triggers")
    assert got["6B.S5"]["rows_written"] == sum(rows(tiny_world, d) for d in s5)
    scans = ("s7_scan_sample", "s7_scan_cube", "s7_scan_keys", "s7_scan_amounts", "s7_scan_measures")
    assert got["6B.S7a"]["rows_written"] == sum(rows(tiny_world, d) for d in scans)
    assert got["6B.S1"]["decode_s"] == 0  # S1 reads no 6B table
    for r in got.values():
        assert abs(r["floor_s"] - r["decode_s"] - r["encode_s"]) <= 0.011


def test_floor_names_a_partition_written_otherwise(tiny_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "world"
    shutil.copytree(tiny_world / "data/layer3/6B", root / "data/layer3/6B")
    (part,) = (root / "data/layer3/6B/s2_flow_plan").glob(SHARD_0)
    pq.write_table(pq.read_table(part), part, compression="snappy")  # same rows, other bytes
    res = io_floor(root, tmp_path / "floor.json")
    assert res.returncode == 1
    assert res.stderr.startswith("E_IO_FLOOR_BYTES: re-encoding ")
    assert str(part.parent) in res.stderr
    assert not (tmp_path / "floor.json").exists()


def test_floor_names_a_root_without_6b(tmp_path: Path) -> None:
    res = io_floor(tmp_path, tmp_path / "floor.json")
    assert res.returncode == 1
    pattern = tmp_path.resolve() / "data/layer3/6B/transactions/seed=42/manifest_fingerprint=*"
    assert res.stderr.strip() == (
        f"E_IO_FLOOR_INPUT: {pattern}/scenario_id=baseline/shard=0 matches 0 partitions; "
        "fix: build 6B into this root first"
    )


def test_floor_names_a_missing_partition(tiny_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "world"
    shutil.copytree(tiny_world / "data/layer3/6B", root / "data/layer3/6B")
    (part,) = (root / "data/layer3/6B/s4_flows").glob(SHARD_0)
    part.unlink()
    res = io_floor(root, tmp_path / "floor.json")
    assert res.returncode == 1
    assert res.stderr.strip() == (
        f"E_IO_FLOOR_INPUT: {part.parent.resolve()} holds no part; fix: build 6B into this root first"
    )
