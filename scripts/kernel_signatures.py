"""Rebuild engine/kernels/signatures.json, the registry the workflow's kernels_warm rule compiles from.

Builds the tiny and default worlds in a scratch folder with an empty numba cache and ENGINE_KERNEL_SIGNATURES
set, so every state records the signatures it compiles; one core, so which state compiles a shared kernel
first never depends on timing. Run it after changing a kernel's argument types (tests/e2e/test_tiny_world.py
fails when a tiny world's state uses a signature the registry lacks). Takes ≈ 10 min.

    python scripts/kernel_signatures.py [--presets tiny,default]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.kernels.signatures import RECORD_ENV, REGISTRY, merge, registry_text  # noqa: E402
from engine.states import STATES  # noqa: E402


def record(presets: list[str], scratch: Path) -> list[dict[str, object]]:
    env = {**os.environ, RECORD_ENV: str(scratch / "signatures"), "NUMBA_CACHE_DIR": str(scratch / "numba")}
    for preset in presets:
        cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "all", "--config", f"preset={preset}"]
        cmd.append(f"output_root={scratch / preset}")
        print(f"building {preset} …", flush=True)
        subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True)
    return [row for f in sorted((scratch / "signatures").glob("*.json")) for row in json.loads(f.read_text())]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="tiny,default", help="comma-separated presets to build")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="kernel-signatures-") as scratch:
        entries = merge(record(args.presets.split(","), Path(scratch)), list(STATES))
    REGISTRY.write_text(registry_text(entries))
    print(f"{REGISTRY.relative_to(REPO)}: {len(entries)} signatures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
