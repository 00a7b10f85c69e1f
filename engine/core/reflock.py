"""The reference lock: the bytes every reference recipe must produce, checked in as `resources/lock.json`.

A recipe id names how an artefact is built (builder sources, shipped files, package versions); the lock pins
what that build must produce (sha256 and size of the data file). The plan folds the locked digest into every
manifest fingerprint, the reference build refuses to publish other bytes, and every S0 refuses a reference
whose bytes differ, so a forged reference (even with a rewritten provenance.json) cannot enter a world.

Regenerate after changing a builder, a shipped file or a pinned package: `python -m engine lock-references
--write` (it builds every artefact from scratch in a temporary folder).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

from engine.core.canonical import sha256_file
from engine.core.errors import EngineError

LOCK_PATH = Path(__file__).resolve().parents[2] / "resources" / "lock.json"
REGENERATE = "python -m engine lock-references --write"


@cache
def _lock(path: Path = LOCK_PATH) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        raise EngineError(
            "E_REFERENCE_UNLOCKED",
            "the reference lock is missing",
            where=str(path),
            fix=f"restore it from the repository, or regenerate it: {REGENERATE}",
            state="reference-lock",
        )
    artefacts: dict[str, dict[str, Any]] = json.loads(path.read_text())["artefacts"]
    return artefacts


def locked(name: str, recipe_id: str, *, state: str = "config") -> dict[str, Any]:
    """The locked entry (recipe_id, file, sha256, bytes) of artefact `name`, built by `recipe_id`."""
    entry = _lock().get(name)
    if entry is None or entry["recipe_id"] != recipe_id:
        have = "no entry" if entry is None else f"recipe {entry['recipe_id'][:12]}"
        raise EngineError(
            "E_REFERENCE_UNLOCKED",
            f"{name}: the installed recipe {recipe_id[:12]} is not locked ({have} in the lock)",
            where=str(LOCK_PATH),
            fix="install the pinned packages (scripts/setup.sh); after changing a reference builder on "
            f"purpose, regenerate the lock: {REGENERATE}",
            state=state,
        )
    return entry


def locked_sha256(name: str, recipe_id: str, *, state: str = "config") -> str:
    return str(locked(name, recipe_id, state=state)["sha256"])


def check_locked_bytes(name: str, recipe_id: str, path: Path, *, state: str) -> str:
    """sha256 of `path` after checking it is exactly what the lock pins for (name, recipe_id)."""
    want = locked_sha256(name, recipe_id, state=state)
    digest = sha256_file(path)
    if digest != want:
        raise EngineError(
            "E_REFERENCE_LOCK_MISMATCH",
            f"{name} has sha256 {digest[:12]}, the lock pins {want[:12]} for recipe {recipe_id[:12]}",
            where=str(path),
            fix="delete the reference build folder and rerun to rebuild it; if a rebuild on this machine "
            f"still differs, report it (the build is not reproducible here) — never edit {LOCK_PATH.name}",
            state=state,
        )
    return digest


def build_lock(names: list[str], progress: bool = True) -> dict[str, Any]:
    """Build each artefact from scratch in a temporary folder; the lock document for them."""
    from engine.refdata.registry import ARTEFACTS, build, recipe_id

    artefacts = {}
    with tempfile.TemporaryDirectory(prefix="engine-lock-") as tmp:
        for name in names:
            started = time.perf_counter()
            out = Path(tmp) / name
            out.mkdir()
            build(name, out)
            data = out / ARTEFACTS[name].filename
            artefacts[name] = {
                "bytes": data.stat().st_size,
                "file": ARTEFACTS[name].filename,
                "recipe_id": recipe_id(name),
                "sha256": sha256_file(data),
            }
            if progress:
                print(f"[lock] {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return {"artefacts": artefacts, "regenerate": REGENERATE}


def lock_references(write: bool) -> int:
    """Rebuild every reference; --write stores the lock, otherwise compare with the checked-in one."""
    from engine.refdata.registry import ARTEFACTS

    doc = build_lock(sorted(ARTEFACTS))
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
    if write:
        LOCK_PATH.write_bytes(data)
        _lock.cache_clear()
        print(f"wrote {LOCK_PATH} ({len(doc['artefacts'])} artefacts)")
        return 0
    current = json.loads(LOCK_PATH.read_text())["artefacts"] if LOCK_PATH.is_file() else {}
    stale = sorted(n for n in doc["artefacts"] if current.get(n) != doc["artefacts"][n])
    if stale:
        raise EngineError(
            "E_REFERENCE_UNLOCKED",
            f"the lock differs from a fresh build for {', '.join(stale)}",
            where=str(LOCK_PATH),
            fix=f"if the builders changed on purpose: {REGENERATE}",
            state="reference-lock",
        )
    print(f"lock matches a fresh build of {len(doc['artefacts'])} artefacts")
    return 0
