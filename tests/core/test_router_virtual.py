"""route_virtual (3B.S4's router entry point) against a decode written out on the blob bytes, membership, the
probabilities it reproduces, and a corrupted byte refused at load."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
from scipy import stats

from engine.core.errors import EngineError
from engine.kernels import njit
from engine.kernels.alias_blob import AliasLayout, write_slices
from engine.kernels.router import OK, UNKNOWN_MERCHANT, EdgeTables, load_edge_router, route_virtual

LAYOUT = AliasLayout()
# three virtual merchants with their edges (ids chosen per merchant, so membership is visible in the id)
MERCHANTS = {
    11: [0.5, 0.3, 0.2],
    22: [0.05, 0.15, 0.25, 0.35, 0.1, 0.1],
    33: [1.0],
}
PHYSICAL = 44  # has sites in 2B, never a slice here


def _tables() -> tuple[EdgeTables, bytes, dict, np.ndarray]:
    items = [({"merchant_id": m}, np.array(w)) for m, w in MERCHANTS.items()]
    blob, index, _ = write_slices(items, LAYOUT)
    members = np.array([m * 1000 + k for m, w in MERCHANTS.items() for k in range(len(w))], dtype=np.uint64)
    return load_edge_router(index, blob, members, LAYOUT), blob, index, members


def _by_hand(blob: bytes, index: dict, members: np.ndarray, merchant: int, w: int) -> int:
    """§2B.S2's decoder on the raw bytes: header, then (prob_q, alias) pairs; j from the high word."""
    order = sorted(index["slices"], key=lambda s: int(s["merchant_id"]))
    first = 0
    for s in order:
        if int(s["merchant_id"]) == merchant:
            break
        first += int(s["n"])
    off = int(s["offset"])
    magic, n, qbits, mbits = struct.unpack_from("<4I", blob, off)
    assert (magic, n, qbits, mbits) == (0x31534C41, int(s["n"]), 32, 24)
    j = ((w >> 32) * n) >> 32
    prob_q, alias = struct.unpack_from("<2I", blob, off + 16 + 8 * j)
    k = j if (w & 0xFFFFFFFF) < prob_q else alias
    return int(members[first + k])


@njit(cache=False)
def _route_many(t: EdgeTables, merchant: np.uint64, lanes: np.ndarray) -> np.ndarray:
    out = np.empty(lanes.shape[0], dtype=np.uint64)
    for i in range(lanes.shape[0]):
        out[i] = route_virtual(t, merchant, lanes[i])[1]
    return out


def test_every_route_equals_the_decode_on_the_bytes() -> None:
    t, blob, index, members = _tables()
    rng = np.random.default_rng(7)
    for m in MERCHANTS:
        for w in rng.integers(0, 2**64, size=300, dtype=np.uint64).tolist():
            status, edge = route_virtual(t, np.uint64(m), np.uint64(w))
            assert status == OK
            assert int(edge) == _by_hand(blob, index, members, m, w)


def test_only_the_merchants_own_edges_and_never_a_physical_merchant() -> None:
    t, *_ = _tables()
    lanes = np.random.default_rng(1).integers(0, 2**64, size=20_000, dtype=np.uint64)
    for m, w in MERCHANTS.items():
        got = set(_route_many(t, np.uint64(m), lanes).tolist())
        assert got <= {m * 1000 + k for k in range(len(w))}
    status, edge = route_virtual(t, np.uint64(PHYSICAL), np.uint64(12345))
    assert (status, int(edge)) == (UNKNOWN_MERCHANT, 0)


@pytest.mark.parametrize("merchant", [11, 22])
def test_a_million_draws_reproduce_the_slice_probabilities(merchant: int) -> None:
    t, *_ = _tables()
    lanes = np.random.default_rng(merchant).integers(0, 2**64, size=1_000_000, dtype=np.uint64)
    edges = _route_many(t, np.uint64(merchant), lanes)
    weights = np.array(MERCHANTS[merchant])
    observed = np.bincount((edges - merchant * 1000).astype(np.int64), minlength=weights.size)
    expected = weights / weights.sum() * lanes.size
    assert stats.chisquare(observed, expected).pvalue > 1e-4


def test_a_corrupted_blob_byte_is_refused_at_load() -> None:
    _, blob, index, members = _tables()
    bad = bytearray(blob)
    bad[int(index["slices"][1]["offset"]) + 20] ^= 0x01  # a prob_q byte of merchant 22's slice
    with pytest.raises(EngineError) as err:
        load_edge_router(index, bytes(bad), members, LAYOUT)
    assert err.value.code == "E_2B_ALIAS_DIGEST"
    # a header byte changed with the digests updated: the header check itself refuses it
    bad = bytearray(blob)
    bad[int(index["slices"][0]["offset"]) + 4] = 9  # n
    forged = {**index, "blob_sha256": hashlib.sha256(bytes(bad)).hexdigest()}
    with pytest.raises(EngineError) as err:
        load_edge_router(forged, bytes(bad), members, LAYOUT)
    assert err.value.code == "E_2B_ALIAS_HEADER"
