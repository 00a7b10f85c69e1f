"""Hashed u64 ids in [1, 2^63): exact values and collision probing."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.core.ids as ids_mod
from engine.core.ids import MASK63, assign_ids, hid


def _lp(b: bytes) -> bytes:
    return struct.pack("<I", len(b)) + b


def test_hid_exact_value() -> None:
    digest = hashlib.sha256(
        _lp(b"merchant") + _lp(b"GB") + _lp(struct.pack("<Q", 5411)) + _lp(struct.pack("<Q", 7))
    ).digest()
    want = struct.unpack("<Q", digest[:8])[0] & ((1 << 63) - 1)
    assert hid("merchant", "GB", 5411, 7) == want
    assert want == 3131739096951583871


def test_hid_tag_and_parts_all_matter() -> None:
    base = hid("merchant", "GB", 5411)
    assert hid("site", "GB", 5411) != base
    assert hid("merchant", "GB", 5412) != base
    assert hid("merchant", "GBR", 5411) != base
    assert hid("merchant", 5411, "GB") != base


@settings(max_examples=200, deadline=None)
@given(tag=st.text(max_size=8), parts=st.lists(st.text(max_size=8) | st.integers(0, 2**64 - 1), max_size=4))
def test_hid_is_below_2_63(tag: str, parts: list) -> None:
    value = hid(tag, *parts)
    assert 0 <= value < 2**63
    assert value == hid(tag, *parts)
    assert MASK63 == 2**63 - 1


def test_assign_ids_without_collision_equals_hid() -> None:
    keys = [("GB", i) for i in range(500)]
    out, probes = assign_ids("merchant", keys)
    assert out.dtype == np.uint64
    assert probes == 0
    assert out.tolist() == [hid("merchant", *k) for k in keys]
    assert len(set(out.tolist())) == 500


def test_assign_ids_probes_zero_and_collisions(monkeypatch) -> None:
    table = {
        ("a",): 0,  # zero is reserved: probe
        ("a", 1): 7,
        ("b",): 7,  # collides with a's probed id
        ("b", 1): 7,  # and again
        ("b", 2): 9,
        ("c",): 11,  # clean
        ("d",): 11,  # collides with c
        ("d", 1): 0,  # probe lands on zero: probe again
        ("d", 2): 12,
    }
    calls: list[tuple] = []

    def fake_hid(tag: str, *parts):
        assert tag == "t"
        calls.append(parts)
        return table[parts]

    monkeypatch.setattr(ids_mod, "hid", fake_hid)
    out, probes = assign_ids("t", [("a",), ("b",), ("c",), ("d",)])
    assert out.tolist() == [7, 9, 11, 12]
    assert out.dtype == np.uint64
    assert probes == 1 + 2 + 0 + 2
    assert calls == [("a",), ("a", 1), ("b",), ("b", 1), ("b", 2), ("c",), ("d",), ("d", 1), ("d", 2)]


def test_assign_ids_empty() -> None:
    out, probes = assign_ids("t", [])
    assert out.dtype == np.uint64
    assert out.shape == (0,)
    assert probes == 0


def test_splitmix64_known_answers() -> None:
    """splitmix64 seeded with 0 outputs the finaliser of k·0x9E3779B97F4A7C15: its first three (Vigna)."""
    from engine.core.ids import splitmix64

    gamma = 0x9E3779B97F4A7C15
    states = np.array([(k * gamma) % 2**64 for k in (1, 2, 3)], dtype=np.uint64)
    assert [hex(int(v)) for v in splitmix64(states)] == [
        "0xe220a8397b1dcdaf",
        "0x6e789e6aa1b965f4",
        "0x6c45d188009454f",
    ]


def test_shards_partition_merchants_evenly_and_nest_nothing() -> None:
    from engine.core.ids import shard_of

    ids = np.arange(1, 100_001, dtype=np.uint64)
    counts = np.bincount(shard_of(ids, 8), minlength=8)
    assert counts.sum() == 100_000 and counts.min() > 12_000 and counts.max() < 13_000
    assert (shard_of(ids, 1) == 0).all()
