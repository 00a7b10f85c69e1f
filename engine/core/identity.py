"""Identity laws: parameter_hash, manifest_fingerprint (a Merkle chain across segments), run_id."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from engine.core.canonical import canonical_json_bytes, lp, sha256_hex


def parameter_hash(files: Mapping[str, bytes]) -> str:
    """Name-aware, order-independent digest of a segment's policy files.

    Per file (sorted by name): sha256(lp(name) ‖ sha256(bytes)); then sha256 over the concatenation.
    """
    outer = hashlib.sha256()
    for name in sorted(files):
        inner = hashlib.sha256(lp(name.encode("utf-8")) + hashlib.sha256(files[name]).digest())
        outer.update(inner.digest())
    return outer.hexdigest()


def manifest_fingerprint(
    *,
    segment: str,
    parameter_hash_hex: str,
    upstream: Mapping[str, str],
    references: Mapping[str, Any],
    contract_version: str,
    extra: Mapping[str, str] | None = None,
) -> str:
    """Fingerprint of one segment's world: upstream fingerprints, sealed references (recipe id and the
    locked sha256 of each), its own policies."""
    return sha256_hex(
        canonical_json_bytes(
            {
                "contract_version": contract_version,
                "extra": dict(extra or {}),
                "parameter_hash": parameter_hash_hex,
                "references": dict(references),
                "segment": segment,
                "upstream": dict(upstream),
            }
        )
    )


def reference_identity(refs: Iterable[Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """What a fingerprint folds of each reference (plan spec entries): its recipe id and locked sha256."""
    return {r["id"]: {"recipe_id": r["recipe_id"], "sha256": r["sha256"]} for r in refs}


def new_run_id() -> str:
    """Identifies one execution for logs and reports only; never enters a data path, key or byte."""
    return sha256_hex(f"{time.time_ns()}:{os.getpid()}:{os.urandom(8).hex()}".encode())[:16]
