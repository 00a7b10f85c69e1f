"""2B.S2 on the tiny world: the blob's layout, masses that sum to G, and 10^6 draws per sampled slice that
reproduce the site weights (decoded here with numpy from the bytes, not by the router)."""

import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import chisquare

from tests.segments.test_2b_s1_site_weights import part

G = 1 << 24


def files(root: Path) -> tuple[bytes, dict]:
    base = next(root.glob("data/layer1/2B/site_alias/seed=42/*"))
    return (base / "site_alias.bin").read_bytes(), json.loads((base / "site_alias_index.json").read_text())


def test_layout_and_masses(tiny_world: Path) -> None:
    blob, index = files(tiny_world)
    members = part(tiny_world, "2B", "s2_site_alias_members")
    assert index["blob_sha256"] == hashlib.sha256(blob).hexdigest() and index["blob_bytes"] == len(blob)
    assert (index["magic"], index["mass_bits"], index["prob_qbits"]) == ("ALS1", 24, 32)
    end = 0
    for s in index["slices"]:
        off, n = s["offset"], s["n"]
        assert off % 8 == 0 and off >= end and s["length"] == 16 + 8 * n
        assert blob[off : off + 4] == b"ALS1"
        assert np.frombuffer(blob, "<u4", 3, off + 4).tolist() == [n, 32, 24]
        assert hashlib.sha256(blob[off : off + s["length"]]).hexdigest() == s["sha256"]
        end = off + s["length"]
    sums = members.group_by("merchant_id", "tz_index").agg(pl.col("mass").sum().cast(pl.Int64), pl.len())
    assert (sums["mass"] == G).all() and sums.height == len(index["slices"])
    # slices in (merchant_id, tz_index) order, ids as decimal strings
    keys = [(int(s["merchant_id"]), s["tz_index"]) for s in index["slices"]]
    assert keys == sorted(keys) and all(isinstance(s["merchant_id"], str) for s in index["slices"])


def numpy_draws(blob: bytes, off: int, n: int, w: np.ndarray) -> np.ndarray:
    """§2B.S2's decoder on 64-bit words: column = ⌊hi32·n / 2^32⌋, kept if lo32 < prob_q, else alias."""
    pairs = np.frombuffer(blob, "<u4", 2 * n, off + 16).astype(np.uint64)
    j = ((w >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)
    keep = (w & np.uint64(0xFFFFFFFF)) < pairs[0::2][j]
    return np.where(keep, j, pairs[1::2][j]).astype(np.int64)


def test_a_million_draws_reproduce_the_site_weights(tiny_world: Path) -> None:
    blob, index = files(tiny_world)
    w = part(tiny_world, "2B", "s1_site_weights")
    big = sorted((s for s in index["slices"] if s["n"] >= 3), key=lambda s: -s["n"])[:4]
    assert big, "the tiny world has multi-site slices"
    rng = np.random.default_rng(7)
    for s in big:
        sites = w.filter(
            (pl.col("merchant_id") == int(s["merchant_id"])) & (pl.col("tz_index") == s["tz_index"])
        ).sort("site_id")
        p = sites["p_weight"].to_numpy() / sites["p_weight"].sum()
        words = rng.integers(0, 2**64, size=1_000_000, dtype=np.uint64)
        counts = np.bincount(numpy_draws(blob, s["offset"], s["n"], words), minlength=s["n"])
        assert chisquare(counts, p * counts.sum()).pvalue > 1e-4
