"""Benchmark (issue 11): the Parquet floor of 6B's sharded states, `scripts/io_floor.py` on one shard.
`pytest -m bench -s -k io_floor`.

The world is `ENGINE_IO_FLOOR_ROOT` (e.g. a large world) or else the default world of seed 42
(tests/bench/worlds.py). Prints each state's floor; the script itself fails unless every re-encoded part is
byte-identical to the published one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.worlds import default_6b_world
from tests.conftest import REPO

pytestmark = pytest.mark.bench


def test_io_floor_of_each_sharded_state(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    given = os.environ.get("ENGINE_IO_FLOOR_ROOT")
    root = Path(given) if given else default_6b_world(42, tmp_path_factory)
    out = tmp_path / "floor.json"
    cmd = [sys.executable, "scripts/io_floor.py", str(root), "--json", str(out)]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr[-4000:]
    rows = json.loads(out.read_text())
    print(f"\nBENCH io floor of {root} (shard 0, one thread)\n{res.stdout}")
    assert [r["state"] for r in rows] == ["6B.S1", "6B.S2", "6B.S4", "6B.S5", "6B.S5a", "6B.S7a"]
    assert all(r["floor_s"] > 0 for r in rows)
