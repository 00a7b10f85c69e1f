"""The zone-allocation universe hash (3A.S5): binds 3A's parameters, priors, allocation and the sites' zones
it was built from, so 5A can refuse an allocation that does not belong to its world."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.core.canonical import hash_parts
from engine.core.contracts import dataset_dir

FILE = "zone_alloc_universe.json"
PARTS = ("parameter_hash", "s2_zone_priors_sha256", "zone_alloc_sha256", "site_timezones_sha256")


def universe_path(root: Path, mf: str, seed: int) -> Path:
    """data/layer1/3A/zone_alloc_universe/seed=…/manifest_fingerprint=…/zone_alloc_universe.json."""
    alloc = dataset_dir(root, "zone_alloc", mf=mf, seed=seed)
    return alloc.parent.parent.parent / "zone_alloc_universe" / alloc.parent.name / alloc.name / FILE


def universe_doc(parameter_hash: str, priors_sha: str, alloc_sha: str, site_tz_sha: str) -> dict[str, Any]:
    """The four digests, and universe_hash = SHA-256 of their length-prefixed concatenation (PARTS order)."""
    doc = dict(zip(PARTS, (parameter_hash, priors_sha, alloc_sha, site_tz_sha), strict=True))
    doc["universe_hash"] = hash_parts(*(doc[p] for p in PARTS)).hex()
    return doc


def read_universe(path: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc
