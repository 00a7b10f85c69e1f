"""5B's numba kernels against plain-Python re-derivations from numpy's Philox (layer2_3 §2.4–§2.6): the latent
AR(1), NB2/Poisson bucket counts and the arrival expansion (times, routing, civil time, ids)."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo

import numpy as np
import polars as pl
import pytest

from engine.core.validation import PhiloxBlocks, u01
from engine.kernels.alias_blob import AliasLayout, write_day_blocks, write_slices
from engine.kernels.arrivals import Cells, Clock, Targets, _stable_order, expand_arrivals, segments
from engine.kernels.bucket_counts import LAW_NB2, LAW_POISSON, bucket_counts
from engine.kernels.latent import latent_field
from engine.kernels.router import load_edge_router, load_router
from engine.segments.l2.s5b import replay
from engine.segments.l2.s5b.civil_time import audit

KEY = (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321)
LAYOUT = AliasLayout()
US = 1_000_000
H0 = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()) * US
FOLD_AT = H0 + 100 * 3600 * US + 1800 * US  # hand-made zone 1: +01:00 → +00:00 in the middle of bucket 100
DAYS = 14


# ------------------------------------------------------------------------------------------- latent AR(1)


def _normals_py(gen: PhiloxBlocks, group_id: int, n: int) -> list[float]:
    out: list[float] = []
    for k in range((n + 3) // 4):
        w = gen.block(group_id, k, 0, 0)
        for p in range(2):
            r = math.sqrt(-2.0 * math.log(u01(w[2 * p])))
            a = 2.0 * math.pi * u01(w[2 * p + 1])
            out += [r * math.cos(a), r * math.sin(a)]
    return out[:n]


def test_latent_matches_python_ar1() -> None:
    gen = PhiloxBlocks(KEY)
    ids = np.array([0, 7, 123456], dtype=np.uint64)
    sigma, phi, h = np.array([0.22, 0.35, 0.9]), np.array([0.95, 0.5, 0.0]), 30
    z, factor, clipped = latent_field(KEY, ids, sigma, phi, h, (0.2, 5.0))
    for g, gid in enumerate(ids.tolist()):
        nrm = _normals_py(gen, gid, h)
        zt = 0.0
        for t in range(h):
            innov = sigma[g] * math.sqrt(1 - phi[g] ** 2)
            zt = sigma[g] * nrm[t] if t == 0 else phi[g] * zt + innov * nrm[t]
            f = math.exp(zt - sigma[g] ** 2 / 2)
            assert z[g, t] == pytest.approx(zt, rel=1e-12, abs=1e-14)
            assert factor[g, t] == pytest.approx(min(max(f, 0.2), 5.0), rel=1e-12)
            assert clipped[g, t] == (f < 0.2 or f > 5.0)
    assert clipped[2].any()  # σ 0.9 with φ 0 must clip somewhere in 30 hours


def test_latent_scenarios_share_normals_and_field_is_stationary() -> None:
    ids = np.arange(400, dtype=np.uint64)
    h = 2000
    phi = np.full(400, math.exp(-1 / 24))
    z1, f1, _ = latent_field(KEY, ids, np.full(400, 0.22), phi, h, (1e-9, 1e9))
    z2, _, _ = latent_field(KEY, ids, np.full(400, 0.35), phi, h, (1e-9, 1e9))
    np.testing.assert_allclose(z2, z1 * 0.35 / 0.22, rtol=1e-9, atol=1e-14)  # σ changes, the normals do not
    assert abs(f1.mean() - 1.0) < 0.01
    assert abs(z1.std() - 0.22) < 0.01
    lag1 = np.mean([np.corrcoef(z1[g, :-1], z1[g, 1:])[0, 1] for g in range(400)])
    assert abs(lag1 - phi[0]) < 0.01


# ------------------------------------------------------------------------------------------ bucket counts


def _cells(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "merchant_id": rng.integers(1, 2**63, n, dtype=np.uint64),
        "zone_code": (rng.integers(1, 900, n).astype(np.uint64) << np.uint64(16)) | np.uint64(5),
        "bucket_index": rng.integers(0, 2160, n).astype(np.uint32),
        "channel_code": rng.integers(0, 2, n).astype(np.uint8),
    }


@pytest.mark.parametrize("law", [LAW_NB2, LAW_POISSON])
def test_counts_match_python_replay(law: int) -> None:
    rng = np.random.default_rng(5)
    n = 300
    cells = _cells(n, rng)
    lam = np.concatenate([[0.0, 1e-10, 1e-9], rng.lognormal(1.5, 1.5, n - 3)])
    kappa = rng.uniform(2, 40, n)
    count, blocks, draws = bucket_counts(KEY, *cells.values(), lam, kappa, law=law, lambda_eps=1e-9)
    gen = PhiloxBlocks(KEY)
    for i in range(n):
        if lam[i] <= 1e-9:
            assert count[i] == 0 and blocks[i] == 0 and draws[i] == 0
            continue
        c2 = int(cells["bucket_index"][i]) << 8 | int(cells["channel_code"][i])
        m, z = int(cells["merchant_id"][i]), int(cells["zone_code"][i])
        want = replay.cell_count(gen, m, z, c2, float(lam[i]), float(kappa[i]), law == LAW_NB2, 1e-9)
        assert (count[i], blocks[i], draws[i]) == want, i
    assert (lam >= 10).sum() > 30 and ((lam > 1e-9) & (lam < 10)).sum() > 30  # both Poisson branches ran


def test_nb2_moments_and_common_random_numbers() -> None:
    rng = np.random.default_rng(9)
    n = 200_000
    cells = _cells(n, rng)
    lam, kappa = np.full(n, 20.0), np.full(n, 5.0)
    count, _, _ = bucket_counts(KEY, *cells.values(), lam, kappa, law=LAW_NB2, lambda_eps=1e-9)
    assert count.mean() == pytest.approx(20.0, rel=0.01)
    assert count.var() == pytest.approx(20.0 + 400.0 / 5.0, rel=0.03)
    # a stress scenario with the same counters: equal λ gives equal counts, a higher λ never fewer (monotone
    # Poisson inversion on the same uniform below 10)
    lam2 = np.where(np.arange(n) % 2 == 0, 20.0, 30.0)
    count2, _, _ = bucket_counts(KEY, *cells.values(), lam2, kappa, law=LAW_NB2, lambda_eps=1e-9)
    np.testing.assert_array_equal(count2[::2], count[::2])
    assert (count2[1::2] != count[1::2]).any()
    small = np.full(n, 3.0)
    a, _, _ = bucket_counts(KEY, *cells.values(), small, kappa, law=LAW_POISSON, lambda_eps=1e-9)
    b, _, _ = bucket_counts(KEY, *cells.values(), small * 1.5, kappa, law=LAW_POISSON, lambda_eps=1e-9)
    assert (b >= a).all()


# --------------------------------------------------------------------------------------- arrival expansion

NY = zoneinfo.ZoneInfo("America/New_York")
TZ_NY, TZ_FOLD, TZ_UTC = 0, 1, 2
CUTOFF_S = 18 * 3600
BIG = (1 << 62) + 12_345  # ids above 2^53: a float on the way would round them
EDGES = [BIG + 201, 7, BIG + 203, BIG + 204]


def _clock() -> Clock:
    """tz 0 from zoneinfo (America/New_York, the 2026-03-08 gap at 07:00 UTC), tz 1 hand-made with a fold at
    FOLD_AT (+01:00 → +00:00), tz 2 UTC."""
    start = H0 - 7 * 86400 * US
    ny = [(start, -5 * 3600), (int(dt.datetime(2026, 3, 8, 7, tzinfo=dt.UTC).timestamp()) * US, -4 * 3600)]
    rows = [ny, [(start, 3600), (FOLD_AT, 0)], [(start, 0)]]
    first = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    vf = np.array([v for r in rows for v, _ in r], dtype=np.int64)
    off = np.array([o for r in rows for _, o in r], dtype=np.int64)
    return Clock(first, vf, off)


def _routing_world() -> dict:
    """Merchant 11: physical in tz 0 (5 sites, US) and tz 1 (3 sites, GB and IE); merchant 12: virtual with
    4 edges (2 in tz 0, 2 in tz 2), settling in tz 1; merchant 13: physical, one site in tz 2."""
    rng = np.random.default_rng(1)
    sites = {
        (11, TZ_NY): [BIG + i for i in range(1, 6)],
        (11, TZ_FOLD): [11, 12, 13],
        (13, TZ_UTC): [BIG + 31],
    }
    site_items = [
        ({"merchant_id": m, "tz_index": tz}, rng.random(len(ids)) + 0.1) for (m, tz), ids in sites.items()
    ]
    sblob, sindex, _ = write_slices(site_items, LAYOUT)
    groups = [
        ({"merchant_id": m}, tzs, np.full((DAYS, len(tzs)), 1.0)) for m, tzs in ((11, [0, 1]), (13, [2]))
    ]
    gblob, gindex, _ = write_day_blocks(groups, LAYOUT)
    member_sites = [s for ids in sites.values() for s in ids]
    router = load_router(sindex, sblob, member_sites, gindex, gblob, LAYOUT)
    eblob, eindex, _ = write_slices([({"merchant_id": 12}, np.array([0.4, 0.3, 0.2, 0.1]))], LAYOUT)
    edges = load_edge_router(eindex, eblob, EDGES, LAYOUT)
    country = {"US": 0, "GB": 1, "IE": 2, "DE": 3}
    site_country = {s: "US" for s in sites[(11, TZ_NY)]} | {11: "GB", 12: "IE", 13: "GB", BIG + 31: "DE"}
    targets = Targets(
        np.array([country[site_country[s]] for s in member_sites], dtype=np.int32),
        np.array([0, 0, 3, 3], dtype=np.int32),
        np.array([TZ_NY, TZ_NY, TZ_UTC, TZ_UTC], dtype=np.int64),
    )
    words = {"site": np.frombuffer(sblob, "<u4"), "edge": np.frombuffer(eblob, "<u4")}
    slices = {
        (int(s["merchant_id"]), int(s["tz_index"])): (int(s["offset"]) // 4, int(s["n"]))
        for s in sindex["slices"]
    }
    return {
        "router": router,
        "edges": edges,
        "targets": targets,
        "sites": sites,
        "site_country": site_country,
        "words": words,
        "slices": slices,
        "edge_slice": (int(eindex["slices"][0]["offset"]) // 4, 4),
    }


def _decode(words: np.ndarray, at: int, n: int, w: int) -> int:
    """Plain-Python alias decode of one raw lane on a slice whose header is at word `at`."""
    j = ((w >> 32) * n) >> 32
    prob, alias = int(words[at + 4 + 2 * j]), int(words[at + 5 + 2 * j])
    return j if (w & 0xFFFFFFFF) < prob else alias


# cells: (merchant, merchant_idx, tz, country, virtual, bucket, channel, zone_rank, count)
CELLS = [
    (11, 1, TZ_NY, 0, False, 142, 0, 0, 40),  # 2026-03-07 22:00 UTC: before the US gap (EST)
    (11, 1, TZ_FOLD, 1, False, 142, 0, 1, 3),
    (11, 1, TZ_NY, 0, False, 150, 0, 0, 25),  # 2026-03-08 06:00 UTC, the hour before 07:00 (EST)
    (11, 1, TZ_NY, 0, False, 151, 0, 0, 25),  # 07:00 UTC: EDT
    (11, 1, TZ_FOLD, 1, False, 100, 0, 1, 60),  # the fold inside the hour
    (12, 2, TZ_UTC, 3, True, 150, 1, 0, 30),
    (12, 2, TZ_UTC, 3, True, 151, 1, 0, 1),
    (13, 3, TZ_UTC, 3, False, 3, 0, 0, 7),
]


def _batch(rows: list[tuple], carry: tuple[int, int] = (0, 0)) -> tuple[Cells, tuple[int, int]]:
    rows = sorted(rows, key=lambda r: (r[0], r[5], r[7], r[6]))
    col = list(zip(*rows, strict=True))
    m = np.array(col[0], np.uint64)
    bucket = np.array(col[5], np.int64)
    count = np.array(col[8], np.int64)
    seg_first, seg_out, seg_base, carry2 = segments(m, bucket, count, carry)
    zone_code = np.array([826 << 16 | t for t in col[2]], np.uint64)
    cells = Cells(
        m,
        np.array(col[1], np.uint64),
        zone_code,
        (bucket.astype(np.uint64) << np.uint64(8)) | np.array(col[6], np.uint64),
        H0 + bucket * 3600 * US,
        np.array(col[2], np.int64),
        np.array(col[3], np.int32),
        np.array(col[4], bool),
        np.where(np.array(col[4]), TZ_FOLD, -1).astype(np.int64),
        count,
        seg_first,
        seg_out,
        seg_base,
    )
    return cells, carry2


@pytest.fixture(scope="module")
def world() -> dict:
    return _routing_world()


def test_arrivals_replay_route_and_civil_time(world: dict) -> None:
    cells, _ = _batch(CELLS)
    clock = _clock()
    out = expand_arrivals(KEY, cells, world["router"], world["edges"], clock, world["targets"], CUTOFF_S)
    assert (out.status == 0).all()
    np.testing.assert_array_equal(np.bincount(out.cell, minlength=len(CELLS)), cells.count)  # counts conserve
    gen = PhiloxBlocks(KEY)
    for c in range(cells.count.size):
        rows = np.flatnonzero(out.cell == c)
        start = int(cells.bucket_start_us[c])
        expect = []
        for j in range(int(cells.count[c])):
            w = gen.block(int(cells.merchant_id[c]), int(cells.zone_code[c]), int(cells.c2[c]), j)
            expect.append((start + math.floor(u01(w[0]) * 3.6e9), w[1]))
        got_ts = out.ts_utc[rows]
        assert ((got_ts >= start) & (got_ts < start + 3600 * US)).all()
        assert sorted(got_ts.tolist()) == sorted(t for t, _ in expect)
        m, tz = int(cells.merchant_id[c]), int(cells.tz_index[c])
        for r, (ts, w1) in zip(rows, sorted(expect), strict=True):  # times are distinct in this small world
            assert out.ts_utc[r] == ts
            if cells.virtual[c]:
                at, n = world["edge_slice"]
                assert out.edge_id[r] == EDGES[_decode(world["words"]["edge"], at, n, w1)]
                assert out.site_id[r] == 0
                assert out.tz_local[r] == (TZ_NY if out.edge_id[r] in EDGES[:2] else TZ_UTC)
                local = ts + 3600 * US if ts < FOLD_AT else ts
                assert out.settle_day[r] == local // (86400 * US) + (local % (86400 * US) >= CUTOFF_S * US)
            else:
                at, n = world["slices"][(m, tz)]
                site = world["sites"][(m, tz)][_decode(world["words"]["site"], at, n, w1)]
                assert out.site_id[r] == site and out.edge_id[r] == 0
                assert out.tz_local[r] == tz
                assert out.country[r] == {"US": 0, "GB": 1, "IE": 2, "DE": 3}[world["site_country"][site]]
            want = {
                TZ_NY: lambda t: dt.datetime.fromtimestamp(t // US, NY).utcoffset(),
                TZ_FOLD: lambda t: dt.timedelta(hours=1 if t < FOLD_AT else 0),
                TZ_UTC: lambda t: dt.timedelta(0),
            }[int(out.tz_local[r])](ts)
            assert out.offset_s[r] == want.total_seconds()
    # both sides of the US gap and of the fold occur
    ny = out.tz_local == TZ_NY
    assert {-5 * 3600, -4 * 3600} <= set(out.offset_s[ny].tolist())
    fold = out.cell == int(np.flatnonzero(cells.bucket_start_us == H0 + 100 * 3600 * US)[0])
    assert {0, 3600} == set(out.offset_s[fold].tolist())


def test_arrival_ids_order_and_batch_invariance(world: dict) -> None:
    clock = _clock()
    args = (world["router"], world["edges"], clock, world["targets"], CUTOFF_S)
    whole, _ = _batch(CELLS)
    a = expand_arrivals(KEY, whole, *args)
    # the same cells split in two batches mid-merchant (segments never split), carrying the running count
    rows = sorted(CELLS, key=lambda r: (r[0], r[5], r[7], r[6]))
    first, carry = _batch(rows[:3])
    second, _ = _batch(rows[3:], carry)
    b1, b2 = expand_arrivals(KEY, first, *args), expand_arrivals(KEY, second, *args)
    np.testing.assert_array_equal(np.concatenate([b1.arrival_id, b2.arrival_id]), a.arrival_id)
    np.testing.assert_array_equal(np.concatenate([b1.ts_utc, b2.ts_utc]), a.ts_utc)
    merchant = whole.merchant_id[a.cell]
    idx = whole.merchant_idx[a.cell]
    assert (a.arrival_id >> np.uint64(40) == idx).all()
    for m in np.unique(merchant):
        ids = a.arrival_id[merchant == m] & np.uint64((1 << 40) - 1)
        np.testing.assert_array_equal(ids, np.arange(ids.size))  # ordinals 0.. in time order
        assert (np.diff(a.ts_utc[merchant == m]) >= 0).all()


@pytest.mark.parametrize("n", [1, 5, 32, 33, 500])
def test_segment_order_is_stable_on_ties(n: int) -> None:
    """Arrivals are generated in (zone_rank, channel, j) order, so a stable sort on ts_utc alone gives the
    spec's (ts_utc, zone_rank, channel_code, j) order; both the insertion sort (≤ 32) and the merge sort."""
    rng = np.random.default_rng(n)
    ts = np.concatenate([np.zeros(3, np.int64), rng.integers(0, max(n // 4, 1), n)]).astype(np.int64)
    order = np.zeros(ts.size + 2, dtype=np.int64)
    _stable_order(np.concatenate([[99], ts, [-1]]).astype(np.int64), 1, 1 + ts.size, order)
    assert order[1 : 1 + ts.size].tolist() == sorted(range(ts.size), key=lambda i: ts[i])


def test_civil_time_audit_counts_wrong_offsets_and_settlement_dates() -> None:
    gap = int(dt.datetime(2026, 3, 8, 7, tzinfo=dt.UTC).timestamp()) * US
    ts = np.array([gap - US, gap, gap + 3600 * US], dtype=np.int64)
    off = np.array([-5 * 3600, -4 * 3600, -5 * 3600], dtype=np.int64)  # the last one is wrong
    sample = pl.DataFrame(
        {
            "arrival_id": np.arange(1, 4, dtype=np.uint64),
            "ts_utc": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
            "ts_local": pl.Series(ts + off * US).cast(pl.Datetime("us")),
            "utc_offset_s": off.astype(np.int32),
            "tzid_local": ["America/New_York"] * 3,
            "is_virtual": [False, True, False],
            "tzid_settlement": [None, "Europe/London", None],
            # 07:00 UTC = 07:00 in London (GMT): before an 18:00 cut-off, so the same day
            "settlement_date": [None, dt.date(2026, 3, 8), None],
        }
    )
    found = audit(sample, 18 * 3600)
    assert (found["rows"], found["mismatches"]) == (3, 1)
    late = sample.with_columns(pl.lit(dt.date(2026, 3, 9)).alias("settlement_date"))
    assert audit(late, 6 * 3600)["mismatches"] == 1  # 07:00 ≥ 06:00: the next day is right; row 3 stays wrong
