"""Shared fixtures: one tiny world built by the real Snakemake workflow, reused by the tests that read it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from engine.core.config import load_run_config
from engine.core.plan import SegmentPlan, build_plan

REPO = Path(__file__).resolve().parents[1]


def run_snakemake(
    root: Path, *extra: str, cores: int = 2, target: str = "all"
) -> subprocess.CompletedProcess[str]:
    """Snakemake on the tiny preset; `extra` are more --config items or flags."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), target]
    cmd += ["--config", "preset=tiny", f"output_root={root}", *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=dict(os.environ), timeout=900)


def shipped_policy(seg: str, name: str) -> BaseModel:
    """A shipped policy file, validated into its model."""
    from engine.core.policy import MODELS

    doc = yaml.safe_load((REPO / "config" / "policies" / seg / f"{name}.yaml").read_text())
    return MODELS[seg][name].model_validate(doc)


def tiny_plan(root: Path) -> dict[str, SegmentPlan]:
    return build_plan(load_run_config({"preset": "tiny", "output_root": str(root)}))


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny world at its baseline config; tests must not change it (copy it first)."""
    root = tmp_path_factory.mktemp("tiny") / "world"
    res = run_snakemake(root)
    assert res.returncode == 0, res.stderr[-4000:]
    return root


@pytest.fixture(scope="session")
def forced_tzdata() -> str:
    """zoneinfo on the pinned tzdata package, as every 2A state runs it; returns the IANA release."""
    from engine.core.tzdb import force_tzdata

    return force_tzdata()
