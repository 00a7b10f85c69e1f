"""6B.S3 campaign plan: known answers for its primitives (the night-skewed time draw, Poisson inversion,
domestic/foreign cell picks, session cuts, id keys, budget sizes), a plain-Python Philox replay of the plan
draws, and invariants on a tiny build (planned rate in the band, every type's instances, stratified starts,
targets that join 6A, flows inside the horizon, breach → captured cards → campaign cards, flow ids and
shards, account events before the flows they precede)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from engine.core.ids import shard_of
from engine.core.policy import load_policy_file
from engine.core.rng import family_key
from engine.core.validation import PhiloxBlocks, u01
from engine.segments.l3.s6b.account_events import poisson_inverse
from engine.segments.l3.s6b.plan_draws import (
    DAY_US,
    HOUR_US,
    INSTANCE,
    TARGET,
    US,
    Draws,
    hour_cdf,
    weighted_time,
)
from engine.segments.l3.s6b.plan_world import Cells, cumulative, pair_key
from engine.segments.l3.s6b.s3_campaign_plan import largest_remainder, session_cut
from tests.conftest import tiny_plan

SEED = 42
H0 = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()) * US
TINY_DAYS = 14


# --- primitives ------------------------------------------------------------------------------------------
def test_weighted_time_stays_in_its_span_and_skews_night_hours() -> None:
    rng = np.random.default_rng(7)
    n = 40_000
    u = rng.random((n, 4))
    lo = np.full(n, H0 + 3 * HOUR_US)
    hi = lo + 10 * DAY_US
    cdf = hour_cdf(np.full(24, 1 / 24), (0, 5), 2.5)
    t = weighted_time(lo, hi, np.zeros(n, dtype=np.int64), u, cdf)
    assert (t >= lo).all() and (t < hi).all()
    night = ((t // US) % 86_400 // 3_600 <= 5).mean()
    assert night == pytest.approx(6 * 2.5 / (6 * 2.5 + 18), abs=0.01)  # 0.4545: the profile × 2.5 at night
    # a UTC+2 clock moves the night two hours earlier in UTC
    t2 = weighted_time(lo, hi, np.full(n, 7_200), u, cdf)
    local = ((t2 // US + 7_200) % 86_400) // 3_600
    assert (local <= 5).mean() == pytest.approx(night, abs=0.01)
    # spans under a day are uniform (lane 3)
    short = weighted_time(lo, lo + HOUR_US, np.zeros(n, dtype=np.int64), u, cdf)
    assert np.array_equal(short, lo + np.floor(u[:, 3] * HOUR_US).astype(np.int64))


def test_poisson_inverse_is_the_cdf_inversion() -> None:
    lam = 0.7
    cdf = np.cumsum([math.exp(-lam) * lam**k / math.factorial(k) for k in range(8)])
    u = np.array([cdf[0] - 1e-9, cdf[0] + 1e-9, cdf[2] - 1e-9, cdf[2] + 1e-9, 0.999999])
    assert poisson_inverse(u, lam, 6).tolist() == [0, 1, 2, 3, 6]


def cells() -> Cells:
    # channel 1 (ECOM) in countries 0, 1, 2 and channel 0 (POS) only in country 0
    ch = np.array([0, 1, 1, 1, 1])
    cc = np.array([0, 0, 1, 1, 2])
    w = np.array([1.0, 2.0, 1.0, 3.0, 4.0])
    return Cells(
        channel=ch,
        country=cc,
        merchant_id=np.arange(10, 15, dtype=np.uint64),
        weekly=w,
        cum=cumulative(w),
        cash_cum=cumulative(w),
        flat_cum=cumulative(np.ones(5)),
        key=(ch << 16) | cc,
    )


def test_cell_picks_stay_home_or_go_abroad_by_weight() -> None:
    c = cells()
    u = (np.arange(1000) + 0.5) / 1000
    n = u.shape[0]
    home = c.pick(np.ones(n, dtype=np.int64), np.ones(n, dtype=np.int64), np.zeros(n, dtype=bool), u)
    assert set(c.country[home]) == {1}
    assert (c.merchant_id[home] == 13).mean() == pytest.approx(0.75, abs=0.002)  # weights 1 : 3
    away = c.pick(np.ones(n, dtype=np.int64), np.ones(n, dtype=np.int64), np.ones(n, dtype=bool), u)
    assert 1 not in set(c.country[away])
    assert (c.country[away] == 2).mean() == pytest.approx(4 / 6, abs=0.002)  # weights 2 (country 0) : 4
    # no POS abroad: the foreign draw falls back home; no ECOM cell in country 5: abroad
    pos = c.pick(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool), u)
    assert set(pos) == {0}
    lost = c.pick(np.ones(n, dtype=np.int64), np.full(n, 5), np.zeros(n, dtype=bool), u)
    assert set(c.channel[lost]) == {1}
    assert (c.pick(np.full(3, 3), np.zeros(3, dtype=np.int64), np.zeros(3, dtype=bool), u[:3]) == -1).all()


def test_pair_keys_do_not_overflow_for_ids_near_2_63() -> None:
    ids = np.array([2**62 + 5, 2**63 - 1], dtype=np.uint64)
    keys = pair_key(ids, np.array([2**63 - 1, 2**62 + 5, 7], dtype=np.uint64), np.array([3, 1, 0]))
    assert keys.tolist() == [(1 << 16) | 3, 1, -1]


def test_sessions_cut_at_a_new_group_the_gap_and_the_cap() -> None:
    group = np.array([1, 1, 1, 1, 2, 2])
    ts = np.array([0, 100, 2_000, 2_050, 2_060, 2_070]) * US
    first = session_cut(group, ts, 1_800 * US, 2_000 * US)
    assert first.tolist() == [0, 0, 2, 2, 4, 4]
    capped = session_cut(
        np.ones(4, dtype=np.int64), np.array([0, 1_000, 2_000, 3_000]) * US, 1_800 * US, 2_500 * US
    )
    assert capped.tolist() == [0, 0, 0, 3]


def test_largest_remainder_sums_exactly() -> None:
    sizes = largest_remainder(100, np.array([1.0, 1.0, 1.0]))
    assert sizes.sum() == 100 and sorted(sizes.tolist()) == [33, 33, 34]


def test_plan_draws_replay_in_plain_python() -> None:
    key = (0x1234, 0xABCD)
    seen: list[tuple[np.ndarray, ...]] = []
    u = Draws(key, lambda counter, value: seen.append(counter)).u(
        3, np.array([0, 5]), INSTANCE, np.array([1, 2])
    )
    gen = PhiloxBlocks(key)
    for row, (inst, j) in enumerate([(0, 1), (5, 2)]):
        lanes = gen.block(3, inst, INSTANCE, j)
        assert u[row].tolist() == [u01(w) for w in lanes]
    assert [c.tolist() for c in seen[0]] == [[3, 3], [0, 5], [INSTANCE, INSTANCE], [1, 2]]


# --- a tiny build ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tiny_world: Path) -> Path:
    """The session's tiny world (`all` builds 6B); read only."""
    return tiny_world


def table(root: Path, layer: str, seg: str, name: str) -> pl.DataFrame:
    return pl.read_parquet(root / f"data/{layer}/{seg}/{name}/**/*.parquet", hive_partitioning=True)


def resolved(root: Path, name: str) -> Any:
    """The policy 6B.S0 sealed in this world (the tiny preset may override the shipped one)."""
    (path,) = (root / "policies/6B" / name).glob("sha256=*.yaml")
    return load_policy_file("6B", name, path, state="test")


def reports(root: Path) -> list[dict]:
    return [
        json.loads(p.read_text())
        for p in sorted((root / "reports/6B/s3_campaign_plan").rglob("run_report.json"))
    ]


def test_planned_rate_lies_in_the_band_and_every_type_has_its_instances(world: Path) -> None:
    pol = resolved(world, "campaigns")
    band = pol.fraud_rate_band
    camp = table(world, "layer3", "6B", "campaigns")
    for rep in reports(world):
        facts = rep["facts"]
        assert band[0] <= facts["planned_rate"] <= band[1]
        assert facts["enrichment_factor"] > 1
        sc = camp.filter(pl.col("scenario_id") == rep["scenario_id"])
        by = sc.group_by(pl.col("campaign_type").cast(pl.String)).agg(pl.len(), pl.col("planned_flows").min())
        assert set(by["campaign_type"]) == set(pol.types.enabled())
        assert (by["planned_flows"] >= 1).all()
        assert int(sc["planned_flows"].sum()) == facts["planned_flows"]


def test_starts_lie_in_their_strata_and_flows_inside_the_horizon(world: Path) -> None:
    camp = table(world, "layer3", "6B", "campaigns")
    h0, h1 = H0, H0 + TINY_DAYS * DAY_US
    start = camp["start_ts"].dt.epoch("us").to_numpy()
    end = camp["end_ts"].dt.epoch("us").to_numpy()
    cid = camp["campaign_id"].to_numpy()
    inst = (cid & np.uint64((1 << 56) - 1)).astype(np.int64)
    n = camp.select(pl.len().over("scenario_id", "campaign_type"))["len"].to_numpy()
    room = np.maximum(h1 - h0 - (end - start), 0)
    lo = h0 + (inst * room) // n
    hi = h0 + ((inst + 1) * room) // n
    assert ((start >= lo) & (start <= np.maximum(hi, lo + 1))).all()
    assert (end <= h1).all()
    flows = table(world, "layer3", "6B", "inserted_flows")
    ts = flows["ts_utc"].dt.epoch("us")
    assert ts.min() >= h0 and ts.max() < h1


def test_targets_and_flows_join_6a(world: Path) -> None:
    t = table(world, "layer3", "6B", "campaign_targets")
    ids = {
        "PARTY": table(world, "layer3", "6A", "parties")["party_id"],
        "INSTRUMENT": table(world, "layer3", "6A", "instruments")["instrument_id"],
        "DEVICE": table(world, "layer3", "6A", "devices")["device_id"],
        "MERCHANT": table(world, "layer1", "1A", "merchant_catalogue")["merchant_id"],
        "ACCOUNT": table(world, "layer3", "6A", "accounts")["account_id"],
    }
    for kind, group in t.group_by(pl.col("target_kind").cast(pl.String)):
        assert group["target_id"].is_in(ids[kind[0]].implode()).all(), kind
    flows = table(world, "layer3", "6B", "inserted_flows")
    inst = table(world, "layer3", "6A", "instruments").select("instrument_id", "account_id", "party_id")
    joined = flows.filter(pl.col("instrument_id").is_not_null()).join(
        inst, on="instrument_id", how="left", suffix="_6a"
    )
    assert (joined["account_id"] == joined["account_id_6a"]).all()
    assert (joined["party_id"] == joined["party_id_6a"]).all()
    camp = table(world, "layer3", "6B", "campaigns")
    assert flows["campaign_id"].is_in(camp["campaign_id"].implode()).all()


def test_breaches_feed_the_card_campaigns(world: Path) -> None:
    pol = resolved(world, "campaigns")
    breaches = table(world, "layer3", "6B", "breaches")
    camp = table(world, "layer3", "6B", "campaigns")
    fed = camp.filter(
        pl.col("campaign_type").cast(pl.String).is_in(["CARD_TESTING", "CNP_STOLEN", "COUNTERFEIT"])
    )
    assert fed["breach_id"].null_count() == 0
    j = fed.join(breaches, on=["scenario_id", "breach_id"], suffix="_b")
    assert j.height == fed.height
    lag = (j["start_ts"] - j["end_ts_b"]).dt.total_seconds() / 86_400
    assert (lag >= pol.compromise.spend_delay_d.clip[0] - 1e-6).all()
    targets = table(world, "layer3", "6B", "campaign_targets")
    breached = targets.filter(pl.col("target_role").cast(pl.String) == "BREACHED_MERCHANT")
    k = breached.join(
        j.select("scenario_id", "campaign_id", "merchant_id"), on=["scenario_id", "campaign_id"]
    )
    assert k.height == fed.height and (k["target_id"] == k["merchant_id"]).all()
    cards = targets.filter(pl.col("target_role").cast(pl.String) == "COMPROMISED_CARD").join(
        fed.select("scenario_id", "campaign_id", "breach_id"), on=["scenario_id", "campaign_id"]
    )
    per_breach = cards.group_by("scenario_id", "breach_id").agg(pl.col("target_id").n_unique().alias("cards"))
    cap = per_breach.join(breaches, on=["scenario_id", "breach_id"])
    assert (cap["n_captured"] >= 1).all()


def test_flow_ids_shards_and_probe_shapes(world: Path) -> None:
    flows = table(world, "layer3", "6B", "inserted_flows")
    merchants = table(world, "layer1", "1A", "merchant_catalogue")["merchant_id"].sort().to_numpy()
    fid = flows["flow_id"].to_numpy()
    m = flows["merchant_id"].to_numpy()
    assert (fid >> np.uint64(40) == np.searchsorted(merchants, m) + 1).all()
    assert ((fid >> np.uint64(39)) & np.uint64(1) == 1).all()
    ordinal = fid & np.uint64((1 << 39) - 1)
    per = (
        flows.with_columns(pl.Series("k", ordinal))
        .group_by("scenario_id", "merchant_id")
        .agg(pl.col("k").sort())
    )
    for ks in per["k"].to_list():
        assert ks == list(range(len(ks)))
    assert (flows["shard"].to_numpy() == shard_of(m, 1)).all()
    probes = flows.filter(pl.col("phase").cast(pl.String) == "PROBE")
    others = flows.filter(pl.col("phase").cast(pl.String) != "PROBE")
    assert others["forced_amount_minor"].null_count() == others.height
    assert others["party_id"].null_count() == 0
    assert probes["forced_amount_minor"].null_count() == 0
    assert (probes.filter(pl.col("party_id").is_null())["decline_bias"] == 1.0).all()
    assert (flows["session_seq"] >= 1).all()


def test_probe_amount_classes_replay_from_philox(world: Path) -> None:
    """A probe's amount class and its non-existent-number coin are lanes 3 and 2 of ⟨1, instance, TARGET,
    seq⟩ (plan_draws): a $0 verification exactly when lane 3 < ZERO, a null card exactly when the burst's
    lane 2 < invalid_card_share (amendment 4). Probes are stratified over their burst, so seq is the probe's
    rank in time within its campaign."""
    pol = resolved(world, "campaigns").types.CARD_TESTING
    key = family_key(SEED, tiny_plan(world)["6B"].parameter_hash, "6B.plan")
    gen = PhiloxBlocks(key)
    camp = table(world, "layer3", "6B", "campaigns").select(
        "scenario_id", "campaign_id", pl.col("mode").cast(pl.String)
    )
    probes = (
        table(world, "layer3", "6B", "inserted_flows")
        .filter(pl.col("phase").cast(pl.String) == "PROBE")
        .join(camp, on=["scenario_id", "campaign_id"])
        .sort("scenario_id", "campaign_id", "ts_utc", "flow_id")
        .with_columns(pl.int_range(pl.len()).over("scenario_id", "campaign_id").alias("seq"))
    )
    assert probes.height > 0
    for r in probes.head(2000).iter_rows(named=True):
        lanes = [u01(w) for w in gen.block(1, r["campaign_id"] & ((1 << 56) - 1), TARGET, r["seq"])]
        assert (lanes[3] < pol.probe_amounts["ZERO"]) == (r["forced_amount_minor"] == 0)
        invalid = r["mode"] == "BURST" and lanes[2] < pol.invalid_card_share
        assert invalid == (r["party_id"] is None)


def test_account_events_ids_and_precursors(world: Path) -> None:
    ev = table(world, "layer3", "6B", "account_events")
    assert ev.select(pl.struct("scenario_id", "account_event_id").is_unique().all()).item()
    assert ((ev["account_event_id"].to_numpy() >> np.uint64(20)) == ev["party_id"].to_numpy()).all()
    pre = ev.filter(pl.col("event_role").cast(pl.String) == "FRAUD_PRECURSOR")
    assert pre.height > 0 and pre["campaign_id"].null_count() == 0
    flows = table(world, "layer3", "6B", "inserted_flows")
    first = flows.group_by("scenario_id", "campaign_id").agg(pl.col("ts_utc").min().alias("first"))
    j = pre.join(first, on=["scenario_id", "campaign_id"])
    assert j.height == pre.height
    h0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    assert ((j["ts_utc"] < j["first"]) | (j["ts_utc"] == h0)).all()
    legit = ev.filter(pl.col("event_role").cast(pl.String) == "LEGIT_CONTEXT")
    assert legit["campaign_id"].null_count() == legit.height
