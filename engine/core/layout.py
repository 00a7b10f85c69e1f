"""Paths of the non-dataset files: gate, validation bundle, run reports (relative to an output root)."""

from __future__ import annotations

from pathlib import Path

LAYER = {"ING": 1, "1A": 1, "1B": 1, "2A": 1, "2B": 1, "3A": 1, "3B": 1, "5A": 2, "5B": 2, "6A": 3, "6B": 3}


def seg_dir(root: Path, seg: str) -> Path:
    return root / "data" / f"layer{LAYER[seg]}" / seg


def gate_dir(root: Path, seg: str, mf: str, seed: int | str | None = None) -> Path:
    """Seed-free gate files (receipt, sealed inputs); with a seed, that seed's sealed_upstream.json."""
    base = seg_dir(root, seg) / "gate"
    if seed is not None:
        base = base / f"seed={seed}"
    return base / f"manifest_fingerprint={mf}"


def bundle_dir(root: Path, seg: str, seed: int, mf: str) -> Path:
    return seg_dir(root, seg) / "validation" / f"seed={seed}" / f"manifest_fingerprint={mf}"


def report_file(
    root: Path,
    seg: str,
    state: str,
    mf: str,
    seed: int | str | None = None,
    scenario: str | None = None,
    shard: int | str | None = None,
) -> Path:
    """Per-state run report; `state` is the short name (e.g. s1_hurdle). A scenario or sharded state has one
    per (scenario, shard), scoped like its outputs."""
    base = root / "reports" / seg / state
    if seed is not None:
        base = base / f"seed={seed}"
    base = base / f"manifest_fingerprint={mf}"
    if scenario is not None:
        base = base / f"scenario_id={scenario}"
    if shard is not None:
        base = base / f"shard={shard}"
    return base / "run_report.json"


def failed_checks_file(root: Path, seg: str, seed: int, mf: str) -> Path:
    return (
        root / "reports" / seg / "validation" / f"seed={seed}" / f"manifest_fingerprint={mf}" / "checks.json"
    )


def ingress_report_path(root: Path, mf: str) -> Path:
    return root / "reports" / "ING" / f"manifest_fingerprint={mf}" / "ingress_report.json"
