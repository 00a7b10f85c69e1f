"""The golden tiny world: the data digests this engine version must reproduce, checked in under tests/golden.

Same CONTRACT_VERSION, same bytes, on any machine. An output change therefore needs a CONTRACT_VERSION bump
(new fingerprints, so new partitions beside the old ones in an existing output root) together with a
regenerated golden file; `write_golden` refuses to record changed bytes under an unchanged version.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from engine import CONTRACT_VERSION
from engine.core.canonical import sha256_file
from engine.core.errors import EngineError

REPO = Path(__file__).resolve().parents[2]
GOLDEN_PATH = REPO / "tests" / "golden" / "tiny_world.json"
REGENERATE = "python scripts/update_golden.py"


def world_digests(root: Path) -> dict[str, str]:
    """sha256 of every data file under ROOT/data (gates, datasets, bundles), by path relative to the root."""
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted((root / "data").rglob("*"))
        if p.is_file() and not any(part.startswith(".tmp-") for part in p.parts)
    }


def golden() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(GOLDEN_PATH.read_text())
    return doc


def write_golden(root: Path) -> bool:
    """Record ROOT's digests; True if the file changed. Changed bytes need a CONTRACT_VERSION bump."""
    files = world_digests(root)
    old = golden() if GOLDEN_PATH.is_file() else None
    if old is not None and old["files"] == files:
        return False
    if old is not None and old["contract_version"] == CONTRACT_VERSION:
        raise EngineError(
            "E_GOLDEN_VERSION",
            f"the tiny world's bytes changed but CONTRACT_VERSION is still {CONTRACT_VERSION}",
            where=str(GOLDEN_PATH),
            fix="bump CONTRACT_VERSION in engine/__init__.py (outputs changed), then regenerate",
            state="golden",
        )
    doc = {"contract_version": CONTRACT_VERSION, "files": files, "regenerate": REGENERATE}
    GOLDEN_PATH.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN_PATH.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return True


def build_tiny(root: Path) -> None:
    """The tiny world through the real workflow, as CI builds it."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "2",
        "--config",
        "preset=tiny",
        f"output_root={root}",
    ]
    if subprocess.run(cmd, cwd=REPO).returncode != 0:
        raise EngineError(
            "E_GOLDEN_BUILD",
            "the tiny world did not build",
            where=str(root),
            fix="fix the build (its ERROR line is above), then regenerate",
            state="golden",
        )
