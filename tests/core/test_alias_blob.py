"""Alias blobs (layer1 §2B.S2/S5/S7): exact bytes, alignment, and the auditor catching each kind of damage."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from engine.core.errors import EngineError
from engine.kernels.alias_blob import (
    AliasLayout,
    audit_day_blocks,
    audit_slices,
    write_day_blocks,
    write_slices,
)

TINY = AliasLayout(mass_bits=2)


def _rehash(blob: bytearray, index: dict, slice_no: int) -> dict:
    """The index after a deliberate edit: digests recomputed, so only the edited content can fail."""
    s = index["slices"][slice_no]
    s["sha256"] = hashlib.sha256(blob[s["offset"] : s["offset"] + s["length"]]).hexdigest()
    index["blob_sha256"] = hashlib.sha256(blob).hexdigest()
    return index


def test_known_answer_bytes_for_weights_1_1_2() -> None:
    # G = 4, masses [1, 1, 2]; s = mass·n = [3, 3, 6]; Walker–Vose pairs 0→2 (keeps 3), 1→2 (keeps 3), 2 full.
    # prob_q = prob·2^30: 3·2^30 = 0xC0000000; the full column 4·2^30 = 2^32 clamps to 0xFFFFFFFF.
    blob, index, masses = write_slices([({"merchant_id": 7, "tz_index": 3}, np.array([1.0, 1.0, 2.0]))], TINY)
    expected = bytes.fromhex(
        "414c5331" "03000000" "20000000" "02000000"  # "ALS1", n=3, prob_qbits=32, mass_bits=2
        "000000c0" "02000000"  # column 0: prob_q, alias
        "000000c0" "02000000"  # column 1
        "ffffffff" "02000000"  # column 2 (alias = self)
    )  # fmt: skip
    assert blob == expected
    assert masses[0].tolist() == [1, 1, 2]
    assert index == {
        "layout_version": 1,
        "magic": "ALS1",
        "endianness": "little",
        "alignment_bytes": 8,
        "mass_bits": 2,
        "prob_qbits": 32,
        "blob_bytes": 40,
        "blob_sha256": hashlib.sha256(expected).hexdigest(),
        "slices": [
            {
                "merchant_id": "7",
                "tz_index": 3,
                "offset": 0,
                "length": 40,
                "n": 3,
                "sha256": hashlib.sha256(expected).hexdigest(),
            }
        ],
    }
    assert [m.tolist() for m in audit_slices(blob, index, TINY, masses)] == [[1, 1, 2]]


@pytest.mark.parametrize(("align", "offsets"), [(8, [0, 24, 56]), (32, [0, 32, 64])])
def test_offsets_aligned_and_gaps_zero(align: int, offsets: list[int]) -> None:
    layout = AliasLayout(alignment_bytes=align)
    items = [({"merchant_id": i + 1, "tz_index": 0}, np.ones(i + 1)) for i in range(3)]  # lengths 24, 32, 40
    blob, index, masses = write_slices(items, layout)
    assert [s["offset"] for s in index["slices"]] == offsets
    assert [s["length"] for s in index["slices"]] == [24, 32, 40]
    assert index["blob_bytes"] == len(blob) == offsets[-1] + 40
    for s, nxt in zip(index["slices"], offsets[1:], strict=False):
        assert blob[s["offset"] + s["length"] : nxt] == b"\x00" * (nxt - s["offset"] - s["length"])
    audit_slices(blob, index, layout, masses)


def _three_slices() -> tuple[bytearray, dict, list[np.ndarray]]:
    items = [({"merchant_id": 1, "tz_index": t}, np.array([0.5, 0.3, 0.2][: t + 1])) for t in range(3)]
    blob, index, masses = write_slices(items, AliasLayout())
    return bytearray(blob), index, masses


def test_flipped_byte_fails_blob_digest() -> None:
    blob, index, masses = _three_slices()
    blob[index["slices"][2]["offset"] + 20] ^= 0x01
    with pytest.raises(EngineError) as e:
        audit_slices(bytes(blob), index, AliasLayout(), masses)
    assert e.value.code == "E_2B_ALIAS_DIGEST"


def test_flipped_byte_with_forged_blob_digest_fails_slice_digest() -> None:
    blob, index, masses = _three_slices()
    blob[index["slices"][1]["offset"] + 17] ^= 0x80
    index["blob_sha256"] = hashlib.sha256(blob).hexdigest()
    with pytest.raises(EngineError) as e:
        audit_slices(bytes(blob), index, AliasLayout(), masses)
    assert e.value.code == "E_2B_ALIAS_DIGEST" and "slice 1" in e.value.where


def test_header_prob_qbits_differing_from_policy() -> None:
    blob, index, masses = _three_slices()
    blob[index["slices"][1]["offset"] + 8] = 31  # header word 2: prob_qbits 32 → 31, digests re-forged
    with pytest.raises(EngineError) as e:
        audit_slices(bytes(blob), _rehash(blob, index, 1), AliasLayout(), masses)
    assert e.value.code == "E_2B_ALIAS_HEADER" and "prob_qbits=31" in e.value.what


def test_index_written_under_another_policy() -> None:
    blob, index, masses = _three_slices()
    with pytest.raises(EngineError) as e:
        audit_slices(bytes(blob), index, AliasLayout(mass_bits=20), masses)
    assert e.value.code == "E_2B_ALIAS_HEADER"


def test_consistent_but_wrong_tables_fail_decode() -> None:
    blob, index, masses = _three_slices()
    wrong = [m.copy() for m in masses]
    wrong[2][0] -= 1
    wrong[2][1] += 1
    with pytest.raises(EngineError) as e:  # intact bytes, masses that are not the ones encoded
        audit_slices(bytes(blob), index, AliasLayout(), wrong)
    assert e.value.code == "E_ALIAS_DECODE"
    off = index["slices"][2]["offset"] + 16
    pairs = np.frombuffer(bytes(blob[off : off + 24]), "<u4").copy()
    col = int(np.flatnonzero(pairs[1::2] != np.arange(3))[0])
    pairs[2 * col] -= (
        1 << 8
    )  # a split column keeps one unit of 1/G less: digests forged, masses no longer whole
    blob[off : off + 24] = pairs.tobytes()
    with pytest.raises(EngineError) as e:
        audit_slices(bytes(blob), _rehash(blob, index, 2), AliasLayout(), masses)
    assert e.value.code == "E_ALIAS_DECODE"


def test_alias_out_of_range_fails_decode() -> None:
    blob, index, masses = _three_slices()
    blob[index["slices"][1]["offset"] + 16 + 4] = 9  # alias[0] of a 2-member slice → 9
    with pytest.raises(EngineError) as e:
        audit_slices(bytes(blob), _rehash(blob, index, 1), AliasLayout(), masses)
    assert e.value.code == "E_ALIAS_DECODE"


def test_day_blocks_round_trip_and_stride() -> None:
    layout = AliasLayout(alignment_bytes=16)
    rng = np.random.default_rng(1)
    items = [({"merchant_id": 5}, [0, 4, 9], rng.random((4, 3))), ({"merchant_id": 6}, [2], np.ones((4, 1)))]
    blob, index, masses = write_day_blocks(items, layout)
    m0, m1 = index["merchants"]
    assert (m0["slice_length"], m1["slice_length"]) == (48, 32)  # 16 + 24 → 48; 16 + 8 → 32
    assert (m0["offset"], m1["offset"]) == (0, 4 * 48) and m0["merchant_id"] == "5"
    assert m1["tz_indexes"] == [2] and m0["days"] == 4
    decoded = audit_day_blocks(blob, index, layout, masses)
    assert all(np.array_equal(a, b) for a, b in zip(decoded, masses, strict=True))
    assert all(int(m.sum()) == 4 * 2**24 for m in masses)
    bad = bytearray(blob)
    bad[48 * 2 + 16] ^= 1
    index["blob_sha256"] = hashlib.sha256(bad).hexdigest()
    with pytest.raises(EngineError) as e:
        audit_day_blocks(bytes(bad), index, layout, masses)
    assert e.value.code == "E_2B_ALIAS_DIGEST" and "merchant 5" in e.value.where
