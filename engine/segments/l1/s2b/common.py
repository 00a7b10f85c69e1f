"""Where 2B's alias blobs and JSON evidence live, and the policy lookups several 2B states share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.canonical import canonical_json_bytes
from engine.core.layout import seg_dir
from engine.core.publish import publish_partition
from engine.core.state import StateContext

# blob + index directories (published together, as one partition) and JSON evidence, by name, with the
# state that publishes them
SITE_ALIAS = ("site_alias", "site_alias.bin", "site_alias_index.json")
GROUP_ALIAS = ("group_alias", "group_alias.bin", "group_alias_index.json")
PRODUCER = {"site_alias": "2B.S2", "group_alias": "2B.S5", "s6_probe_summary": "2B.S6", "s7_audit": "2B.S7"}


def partition_dir(root: Path, name: str, mf: str, seed: int | None) -> Path:
    """data/layer1/2B/<name>/seed=…/manifest_fingerprint=…/ (the layout of the Parquet datasets)."""
    return seg_dir(root, "2B") / name / f"seed={seed}" / f"manifest_fingerprint={mf}"


def publish_files(ctx: StateContext, name: str, files: dict[str, bytes], rows: dict[str, int]) -> Path:
    """Publish several files as one write-once partition (a blob never appears without its index) and
    vouch for each in the run report."""
    target = partition_dir(ctx.root, name, ctx.mf, ctx.seed)

    def write(tmp: Path) -> None:
        for fname, data in files.items():
            (tmp / fname).write_bytes(data)

    publish_partition(target, write, state=ctx.state)
    for fname in files:
        ctx.record_output(fname.split(".")[0], target / fname, rows[fname])
    return target


def publish_json(ctx: StateContext, name: str, doc: dict[str, Any]) -> Path:
    """A JSON evidence file of this state as its own partition."""
    return publish_files(ctx, name, {f"{name}.json": canonical_json_bytes(doc)}, {f"{name}.json": 1})


def tier_values(n_sites: np.ndarray, thresholds: list[int], values: np.ndarray) -> np.ndarray:
    """The value of the tier with the largest threshold ≤ n, per merchant (tiers ascend from the first)."""
    return np.asarray(values)[np.searchsorted(np.asarray(thresholds), n_sites, side="right") - 1]


def read_file(ctx: StateContext, name: str, fname: str) -> bytes:
    """A file of an earlier 2B state's partition, refused unless it matches the sha256 its producer
    recorded."""
    path = partition_dir(ctx.root, name, ctx.mf, ctx.seed) / fname
    return ctx.read_recorded(path, fname.split(".")[0], PRODUCER[name])


def read_json(ctx: StateContext, name: str) -> Any:
    """An earlier 2B state's JSON evidence file (<name>/<name>.json), digest-checked."""
    return json.loads(read_file(ctx, name, f"{name}.json"))


def table_files(ctx: StateContext, which: tuple[str, str, str]) -> tuple[bytes, dict[str, Any]]:
    """A blob and its index as published by this seed's S2 or S5, both digest-checked."""
    name, blob_name, index_name = which
    return read_file(ctx, name, blob_name), json.loads(read_file(ctx, name, index_name))


def tzids_of(ctx: StateContext) -> dict[int, str]:
    return dict(ctx.sealed_table("tz_in_use").select("tz_index", "tzid").iter_rows())
