"""The default world the 6B benchmarks read: built once per seed with `snakemake seg6B`, or reused from
`ENGINE_6B_WORLD_<seed>=<root>` (a root already built with the same code)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, snakemake_cmd


def default_6b_world(seed: int, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """≈ 5 min on 2 cores when built."""
    given = os.environ.get(f"ENGINE_6B_WORLD_{seed}")
    if given:
        return Path(given)
    root = tmp_path_factory.mktemp(f"default{seed}") / "world"
    start = time.perf_counter()
    cmd = snakemake_cmd(root, f"seeds=[{seed}]", target="seg6B", preset="default")
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    print(f"\nBENCH default seed={seed} built to 6B in {time.perf_counter() - start:.0f} s")
    return root
