"""3B's non-table outputs (the edge alias blob and its index, the edge universe, the routing policy): their
paths beside the datasets, write-once publishing, and reads checked against the producer's recorded digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.core.canonical import canonical_json_bytes, hash_parts, sha256_file, sha256_hex
from engine.core.contracts import dataset_file
from engine.core.layout import seg_dir
from engine.core.publish import publish_bytes
from engine.core.state import StateContext

# file name → (folder under data/layer1/3B, producing state)
FILES = {
    "edge_alias.bin": ("edge_alias", "3B.S3"),
    "edge_alias_index.json": ("edge_alias", "3B.S3"),
    "edge_universe.json": ("edge_universe", "3B.S3"),
    "virtual_routing_policy.json": ("virtual_routing_policy", "3B.S4"),
}


def file_path(root: Path, name: str, seed: int | str, mf: str) -> Path:
    """data/layer1/3B/<folder>/seed=…/manifest_fingerprint=…/<name>."""
    return seg_dir(root, "3B") / FILES[name][0] / f"seed={seed}" / f"manifest_fingerprint={mf}" / name


def publish_file(ctx: StateContext, name: str, data: bytes | dict[str, Any]) -> Path:
    """Publish write-once and vouch for it in the run report (so the bundle and `engine verify` cover it)."""
    assert ctx.seed is not None
    raw = data if isinstance(data, bytes) else canonical_json_bytes(data)
    path = file_path(ctx.root, name, ctx.seed, ctx.mf)
    publish_bytes(path, raw, state=ctx.state)
    ctx.record_output(name.rsplit(".", 1)[0], path, 1)
    return path


def read_file(ctx: StateContext, name: str) -> bytes:
    """The bytes of an earlier 3B state's file, refused unless they match its recorded sha256."""
    assert ctx.seed is not None
    path = file_path(ctx.root, name, ctx.seed, ctx.mf)
    return ctx.read_recorded(path, name.rsplit(".", 1)[0], FILES[name][1])


def read_json(ctx: StateContext, name: str) -> Any:
    return json.loads(read_file(ctx, name))


def edge_universe(ctx: StateContext, blob: bytes, index_bytes: bytes) -> tuple[dict[str, str], str]:
    """The sha256 of the four files an edge universe binds, and its hash: SHA-256 over the length-prefixed
    3B parameter_hash and those digests, in this order (layer1 3B.S3)."""
    digests = {
        "edge_catalogue": sha256_file(dataset_file(ctx.root, "edge_catalogue", mf=ctx.mf, seed=ctx.seed)),
        "edge_alias_bin": sha256_hex(blob),
        "edge_alias_index": sha256_hex(index_bytes),
        "virtual_settlement": sha256_file(
            dataset_file(ctx.root, "virtual_settlement", mf=ctx.mf, seed=ctx.seed)
        ),
    }
    return digests, hash_parts(ctx.sealed.parameter_hash, *digests.values()).hex()
