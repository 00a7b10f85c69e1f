"""Shared fixtures: one tiny world built by the real Snakemake workflow, reused by the tests that read it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from engine.core.canonical import sha256_file
from engine.core.config import load_run_config
from engine.core.plan import SegmentPlan, build_plan

REPO = Path(__file__).resolve().parents[1]


def snakemake_cmd(
    root: Path, *extra: str, cores: int = 2, target: str = "all", preset: str = "tiny"
) -> list[str]:
    """The workflow's command line; `extra` are more --config items or flags."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), target]
    return [*cmd, "--config", f"preset={preset}", f"output_root={root}", *extra]


def run_snakemake(
    root: Path, *extra: str, cores: int = 2, target: str = "all", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Snakemake on the tiny preset; `extra` are more --config items or flags, `env` more variables."""
    cmd = snakemake_cmd(root, *extra, cores=cores, target=target)
    environ = {**os.environ, **(env or {})}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=environ, timeout=900)


@contextlib.contextmanager
def mounted_tmpfs(path: Path, size: str = "64m") -> Iterator[Path]:
    """A real tmpfs at `path`, to fill a disk or remount read-only (root ignores chmod); the test is skipped
    where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only_bind(path: Path) -> Iterator[Path]:
    """`path` read-only in place (a read-only bind mount of itself) while the block runs; files already
    open elsewhere stay writable, so a running job can meet it. Skipped where mounting is not allowed."""
    res = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {res.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def data_digests(root: Path) -> dict[str, str]:
    """sha256 of every file under root/data, by path relative to root: what "the same world" means."""
    files = sorted(p for p in (root / "data").rglob("*") if p.is_file())
    return {str(p.relative_to(root)): sha256_file(p) for p in files}


def remount(path: Path, mode: str) -> None:
    """Remount a `mounted_tmpfs` read-only (`ro`) or writable again (`rw`), keeping its files."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def shipped_policy(seg: str, name: str) -> BaseModel:
    """A shipped policy file, validated into its model."""
    from engine.core.policy import policy_model

    doc = yaml.safe_load((REPO / "config" / "policies" / seg / f"{name}.yaml").read_text())
    return policy_model(seg, name).model_validate(doc)


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
