"""3B.S3: edge slices in 2B's layout (decoded from the bytes), corrupted bytes caught with their codes, and
the edge universe hash recomputed by hand."""

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.core.errors import EngineError
from engine.kernels.alias_blob import AliasLayout, write_slices
from engine.segments.l1.s3b.s3_edge_alias import audit

LAYOUT = AliasLayout()


def _blob() -> tuple[bytes, dict, list[np.ndarray]]:
    return write_slices(
        [({"merchant_id": 5}, np.array([0.6, 0.4])), ({"merchant_id": 9}, np.array([1.0, 2.0, 3.0]))], LAYOUT
    )


def test_one_corrupted_byte_is_caught_with_its_code() -> None:
    blob, index, masses = _blob()
    audit(blob, index, LAYOUT, masses, "3B.S3")
    bad = bytearray(blob)
    bad[index["slices"][1]["offset"] + 16] ^= 0x80  # merchant 9's first prob_q
    with pytest.raises(EngineError) as err:
        audit(bytes(bad), index, LAYOUT, masses, "3B.S3")
    assert err.value.code == "E_2B_ALIAS_DIGEST"
    # a header rewritten under another mass_bits, its digests forged to match: 3B's own header code
    bad = bytearray(blob)
    off = index["slices"][0]["offset"]
    bad[off + 12 : off + 16] = struct.pack("<I", 20)
    forged = json.loads(json.dumps(index))
    forged["blob_sha256"] = hashlib.sha256(bytes(bad)).hexdigest()
    forged["slices"][0]["sha256"] = hashlib.sha256(
        bytes(bad[off : off + index["slices"][0]["length"]])
    ).hexdigest()
    with pytest.raises(EngineError) as err:
        audit(bytes(bad), forged, LAYOUT, masses, "3B.S3")
    assert err.value.code == "E_3B_ALIAS_HEADER"


def _files(root: Path, folder: str) -> Path:
    return next(root.glob(f"data/layer1/3B/{folder}/seed=42/*"))


def test_tiny_world_slices_decode_to_the_member_masses(tiny_world: Path) -> None:
    blob = (_files(tiny_world, "edge_alias") / "edge_alias.bin").read_bytes()
    index = json.loads((_files(tiny_world, "edge_alias") / "edge_alias_index.json").read_text())
    members = pl.read_parquet(_files(tiny_world, "s3_edge_alias_members") / "part-00000.parquet")
    edges = pl.read_parquet(_files(tiny_world, "edge_catalogue") / "part-00000.parquet")
    assert index["mass_bits"] == 24 and hashlib.sha256(blob).hexdigest() == index["blob_sha256"]
    for s in index["slices"]:
        m = int(s["merchant_id"])
        mine = members.filter(pl.col("merchant_id") == m).sort("member_index")
        off, n = s["offset"], s["n"]
        assert struct.unpack_from("<4I", blob, off) == (0x31534C41, n, 32, 24)
        pairs = np.frombuffer(blob, "<u4", 2 * n, off + 16).astype(np.int64)
        g = 1 << 24
        keep = np.where(pairs[1::2] == np.arange(n), g, pairs[0::2] >> 8)
        acc = keep.copy()
        np.add.at(acc, pairs[1::2], g - keep)
        assert (acc // n).tolist() == mine["mass"].to_list() and int(mine["mass"].sum()) == g
        own = edges.filter(pl.col("merchant_id") == m)["edge_id"].sort().to_list()
        assert mine["edge_id"].to_list() == own  # members are the merchant's edges in edge_id order


def test_edge_universe_hash_recomputes(tiny_world: Path) -> None:
    doc = json.loads((_files(tiny_world, "edge_universe") / "edge_universe.json").read_text())

    def sha(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    parts = [
        doc["parameter_hash"],
        sha(_files(tiny_world, "edge_catalogue") / "part-00000.parquet"),
        sha(_files(tiny_world, "edge_alias") / "edge_alias.bin"),
        sha(_files(tiny_world, "edge_alias") / "edge_alias_index.json"),
        sha(_files(tiny_world, "virtual_settlement") / "part-00000.parquet"),
    ]
    h = hashlib.sha256()
    for part in parts:  # lp: u32 length prefix + bytes
        data = part.encode()
        h.update(len(data).to_bytes(4, "little") + data)
    assert h.hexdigest() == doc["universe_hash"]
    routing = json.loads(
        (_files(tiny_world, "virtual_routing_policy") / "virtual_routing_policy.json").read_text()
    )
    assert (
        routing["edge_universe_hash"] == doc["universe_hash"] and routing["router"]["lanes_per_arrival"] == 1
    )
