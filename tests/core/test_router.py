"""The 2B router (layer1 §2B.S6): draws follow the masses, statuses, every row equals a by-hand decode of the
blob bytes, load-time checks."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
from scipy import stats

from engine.core.errors import EngineError
from engine.kernels.alias import decode_draw
from engine.kernels.alias_blob import AliasLayout, write_day_blocks, write_slices
from engine.kernels.router import load_router, route_batch, route_in_group, route_physical

LAYOUT = AliasLayout()
DAYS = 5


def _world(seed: int = 3, merchants: int = 6) -> dict:
    """Merchants with 1–3 tz groups of 1–40 sites; merchant 1000's tz 99 group has no site slice."""
    rng = np.random.default_rng(seed)
    site_items, group_items, site_ids, next_site = [], [], [], 1
    for m in range(merchants):
        mid = 1000 + m
        tzs = sorted(rng.choice(400, size=int(rng.integers(1, 4)), replace=False).tolist())
        for tz in tzs:
            n = int(rng.integers(1, 41))
            site_items.append(({"merchant_id": mid, "tz_index": tz}, rng.lognormal(0, 1, n)))
            site_ids += list(range(next_site, next_site + n))
            next_site += n
        group_tzs = [*tzs, 999] if m == 0 else tzs
        group_items.append(({"merchant_id": mid}, group_tzs, rng.random((DAYS, len(group_tzs))) + 0.05))
    sblob, sindex, smass = write_slices(site_items, LAYOUT)
    gblob, gindex, gmass = write_day_blocks(group_items, LAYOUT)
    t = load_router(sindex, sblob, site_ids, gindex, gblob, LAYOUT)
    return {
        "t": t,
        "sindex": sindex,
        "smass": smass,
        "gindex": gindex,
        "gmass": gmass,
        "site_ids": site_ids,
        "sblob": sblob,
        "gblob": gblob,
    }


@pytest.fixture(scope="module")
def world() -> dict:
    return _world()


@pytest.mark.parametrize(("m", "day"), [(1, 0), (3, 4), (5, 2)])
def test_route_frequencies_reproduce_masses(world: dict, m: int, day: int) -> None:
    t, n = world["t"], 1_000_000
    lanes = np.random.Philox(key=2026 + m).random_raw(2 * n)  # raw lanes from numpy's generator
    mid = np.full(n, 1000 + m, dtype=np.uint64)
    status, tz, site = route_batch(t, mid, np.full(n, day), lanes[0::2], lanes[1::2])
    assert (status == 0).all()
    gm = world["gindex"]["merchants"][m]
    expected, observed = [], []
    for g, z in enumerate(gm["tz_indexes"]):
        k = next(
            i
            for i, s in enumerate(world["sindex"]["slices"])
            if s["merchant_id"] == str(1000 + m) and s["tz_index"] == z
        )
        first = sum(s["n"] for s in world["sindex"]["slices"][:k])
        members = np.array(
            world["site_ids"][first : first + world["sindex"]["slices"][k]["n"]], dtype=np.uint64
        )
        p_group = world["gmass"][m][day, g] / 2**24
        expected += list(n * p_group * world["smass"][k] / 2**24)
        observed += [int(((tz == z) & (site == s)).sum()) for s in members]
    assert sum(observed) == n
    assert stats.chisquare(observed, expected).pvalue > 1e-4


def test_statuses(world: dict) -> None:
    t = world["t"]
    w = np.uint64(0x0123456789ABCDEF)
    assert route_physical(t, np.uint64(999), 0, w, w)[0] == 1  # unknown merchant
    assert route_physical(t, np.uint64(1001), DAYS, w, w)[0] == 2  # day outside horizon
    assert route_physical(t, np.uint64(1001), -1, w, w)[0] == 2
    high = np.uint64(0xFFFFFFFF00000000)  # column n−1, coin 0 keeps it: tz 999 of merchant 1000, no sites
    assert all(route_physical(t, np.uint64(1000), d, high, w)[0:2] == (3, 999) for d in range(DAYS))
    assert route_in_group(t, np.uint64(1000), 999, w) == (3, 0)
    assert route_in_group(t, np.uint64(1000), 12345, w) == (3, 0)
    assert route_in_group(t, np.uint64(7), 0, w) == (1, 0)


def test_route_in_group_is_the_shared_decoder(world: dict) -> None:
    t, s0 = world["t"], world["sindex"]["slices"][0]
    from engine.kernels.alias import encode, integer_masses

    mass = world["smass"][0]
    prob_q, alias = encode(integer_masses(mass.astype(np.float64), 24), 24)
    for w in np.random.Philox(key=5).random_raw(2000):
        st, site = route_in_group(t, np.uint64(int(s0["merchant_id"])), s0["tz_index"], w)
        assert st == 0 and site == world["site_ids"][decode_draw(w, prob_q, alias)]


def _decode_by_hand(blob: bytes, offset: int, w: int) -> int:
    """§2B.S2's decoder on the slice's bytes: header (magic, n, qbits, mbits), then (prob_q, alias)
    pairs; column j = ((w >> 32)·n) >> 32, kept if the low word < prob_q[j], else its alias."""
    n = struct.unpack_from("<I", blob, offset + 4)[0]
    j = ((w >> 32) * n) >> 32
    prob_q, alias = struct.unpack_from("<II", blob, offset + 16 + 8 * j)
    return j if (w & 0xFFFFFFFF) < prob_q else alias


def _route_by_hand(world: dict, merchant_id: int, day: int, wg: int, ws: int) -> tuple[int, int, int]:
    """(status, tz_index, site_id) from the indexes and blob bytes alone, without the router's tables."""
    merchants = {int(m["merchant_id"]): m for m in world["gindex"]["merchants"]}
    if merchant_id not in merchants:
        return 1, -1, 0
    m = merchants[merchant_id]
    if not 0 <= day < int(m["days"]):
        return 2, -1, 0
    tz = int(
        m["tz_indexes"][_decode_by_hand(world["gblob"], int(m["offset"]) + day * int(m["slice_length"]), wg)]
    )
    first = 0
    for s in world["sindex"]["slices"]:
        if int(s["merchant_id"]) == merchant_id and int(s["tz_index"]) == tz:
            return 0, tz, world["site_ids"][first + _decode_by_hand(world["sblob"], int(s["offset"]), ws)]
        first += int(s["n"])
    return 3, tz, 0


def test_every_row_equals_a_decode_by_hand(world: dict) -> None:
    t, n = world["t"], 3000
    rng = np.random.default_rng(9)
    mid = rng.integers(998, 1007, n).astype(np.uint64)  # includes unknown merchants 998, 999, 1006
    day = rng.integers(-1, DAYS + 1, n)
    wg, ws = np.random.Philox(key=11).random_raw(n), np.random.Philox(key=12).random_raw(n)
    status, tz, site = route_batch(t, mid, day, wg, ws)
    want = [_route_by_hand(world, int(mid[i]), int(day[i]), int(wg[i]), int(ws[i])) for i in range(n)]
    assert list(zip(status.tolist(), tz.tolist(), site.tolist(), strict=True)) == want
    assert set(status.tolist()) == {0, 1, 2, 3}
    one = [route_physical(t, mid[i], day[i], wg[i], ws[i]) for i in range(0, n, 97)]
    assert one == want[::97]


def test_load_checks_digests_and_headers(world: dict, tmp_path) -> None:
    sblob, sindex, _ = write_slices([({"merchant_id": 1, "tz_index": 0}, np.ones(3))], LAYOUT)
    gblob, gindex, _ = write_day_blocks([({"merchant_id": 1}, [0], np.ones((2, 1)))], LAYOUT)
    (tmp_path / "site.bin").write_bytes(sblob)
    t = load_router(sindex, tmp_path / "site.bin", [11, 12, 13], gindex, gblob, LAYOUT)  # memory-mapped
    assert route_physical(t, np.uint64(1), 1, np.uint64(0), np.uint64(0)) == (0, 0, 11)
    bad = bytearray(gblob)
    bad[3] ^= 1
    with pytest.raises(EngineError) as e:
        load_router(sindex, sblob, [11, 12, 13], gindex, bytes(bad), LAYOUT)
    assert e.value.code == "E_2B_ALIAS_DIGEST"
    with pytest.raises(EngineError) as e:
        load_router(sindex, sblob, [11, 12, 13], gindex, gblob, AliasLayout(mass_bits=16))
    assert e.value.code == "E_2B_ALIAS_HEADER"
    forged = bytearray(sblob)
    forged[4] = 2  # header n 3 → 2 under a re-forged blob digest
    sindex = {**sindex, "blob_sha256": hashlib.sha256(forged).hexdigest()}
    with pytest.raises(EngineError) as e:
        load_router(sindex, bytes(forged), [11, 12, 13], gindex, gblob, LAYOUT)
    assert e.value.code == "E_2B_ALIAS_HEADER"


def test_runs_of_one_merchant_across_chunks_and_keyed_lanes(world: dict) -> None:
    """Arrivals in merchant runs (as 5B emits them) that straddle the parallel chunks, with id 0 and unknown
    merchants among them: route_batch and route_keyed (lanes w0, w1 of ⟨c0..c3⟩ drawn inside the loop)
    both equal the by-hand decode, whose lanes come from numpy's Philox."""
    from engine.core.validation import PhiloxBlocks
    from engine.kernels.router import CHUNK, route_keyed

    rng = np.random.default_rng(21)
    runs = rng.integers(1, CHUNK, 8)
    mid = np.repeat(rng.choice([0, 999, *range(1000, 1006)], runs.size), runs).astype(np.uint64)
    n = mid.size
    assert n > 2 * CHUNK
    day = rng.integers(0, DAYS, n)
    k = np.arange(n, dtype=np.uint64)
    zero = np.zeros(n, dtype=np.uint64)
    key = (0x1234, 0x5678)
    status, tz, site = route_keyed(
        world["t"], np.uint64(key[0]), np.uint64(key[1]), mid, k, zero, zero, mid, day
    )
    gen = PhiloxBlocks(key)
    lanes = np.array([gen.block(int(mid[i]), i, 0, 0)[:2] for i in range(n)], dtype=np.uint64)
    want = [
        _route_by_hand(world, int(mid[i]), int(day[i]), int(lanes[i, 0]), int(lanes[i, 1])) for i in range(n)
    ]
    assert list(zip(status.tolist(), tz.tolist(), site.tolist(), strict=True)) == want
    again = route_batch(world["t"], mid, day, lanes[:, 0].copy(), lanes[:, 1].copy())
    assert all(np.array_equal(a, b) for a, b in zip(again, (status, tz, site), strict=True))
    assert {0, 1}.issubset(set(status.tolist()))
