"""6B.S4 on a tiny build: flows = arrivals + inserted + retries, truth integrity (every campaign flow
non-LEGIT, every non-LEGIT flow explained by its rule), order, retries' ids and times, inserted flows carried
over, amount tilts on the legit support, local times against zoneinfo, and the friendly coins replayed from
Philox."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from engine.core.policy import load_policy_file
from engine.core.rng import family_key
from engine.core.validation import PhiloxBlocks, u01
from engine.segments.l3.s6b.policy import TACTIC_BITS
from engine.segments.l3.s6b.retries import TAG

SEED = 42


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> Path:
    """The session's tiny world (`all` builds 6B); read only."""
    return tiny_world


def table(root: Path, layer: str, seg: str, name: str) -> pl.DataFrame:
    return pl.read_parquet(root / f"data/{layer}/{seg}/{name}/**/*.parquet", hive_partitioning=True)


@pytest.fixture(scope="module")
def flows(world: Path) -> pl.DataFrame:
    return table(world, "layer3", "6B", "s4_flows")


def test_flows_are_arrivals_plus_inserted_plus_retries(world: Path, flows: pl.DataFrame) -> None:
    arrivals = table(world, "layer2", "5B", "arrival_events")
    inserted = table(world, "layer3", "6B", "inserted_flows")
    for (scenario,), group in flows.group_by(["scenario_id"]):
        n_arr = arrivals.filter(pl.col("scenario_id") == scenario).height
        n_ins = inserted.filter(pl.col("scenario_id") == scenario).height
        n_ret = group.filter(pl.col("origin") == "RETRY").height
        assert group.height == n_arr + n_ins + n_ret
        assert group.filter(pl.col("origin").is_in(["BASELINE", "BASELINE_MUTATED"])).height == n_arr
        assert group.filter(pl.col("origin") == "INSERTED").height == n_ins
        assert group["flow_id"].n_unique() == group.height
    # each shard's rows in (merchant_id, ts_utc, flow_id) order
    for _, part in flows.group_by(["scenario_id", "shard"]):
        key = part.select("merchant_id", "ts_utc", "flow_id")
        assert key.equals(key.sort("merchant_id", "ts_utc", "flow_id"))


def test_truth_integrity(world: Path, flows: pl.DataFrame) -> None:
    campaign = flows.filter(pl.col("campaign_id").is_not_null())
    assert campaign.height > 0
    assert (campaign["truth_label"] != "LEGIT").all() and (campaign["truth_source"] == "CAMPAIGN").all()
    assert campaign["campaign_type"].null_count() == 0
    non_legit = flows.filter(pl.col("truth_label") != "LEGIT")
    assert (non_legit["truth_source"] != "NONE").all()
    roles = table(world, "layer3", "6A", "party_roles").select("party_id", pl.col("role").cast(pl.String))
    posture = flows.filter(pl.col("truth_source") == "POSTURE").join(roles, on="party_id", how="left")
    assert (posture["role"] == "MULE").all()
    assert posture["channel"].cast(pl.String).is_in(["TRANSFER", "ATM"]).all()
    assert (posture["truth_subtype"] == "MULE_ACTIVITY").all()
    friendly = flows.filter(pl.col("truth_source") == "FRIENDLY")
    assert friendly["channel"].cast(pl.String).is_in(["POS", "ECOM"]).all()
    assert friendly["nonfraud_decline"].null_count() == friendly.height
    legit = flows.filter(pl.col("truth_label") == "LEGIT")
    assert (legit["truth_rule"] == 4).all() and legit["campaign_id"].null_count() == legit.height


def sealed_policy(world: Path, name: str) -> tuple[Any, str]:
    """The 6B policy `name` the world sealed (not the checkout's, which may have moved on since the build)
    and the gate's parameter_hash."""
    (path,) = (world / "data/layer3/6B/gate").glob("manifest_fingerprint=*/sealed_inputs.json")
    doc = json.loads(path.read_text())
    (entry,) = [i for i in doc["inputs"] if i["id"] == f"6B/{name}.yaml"]
    model = load_policy_file("6B", name, world / entry["path"], state="test")
    return model, doc["parameter_hash"]


def test_friendly_coins_replay(world: Path, flows: pl.DataFrame) -> None:
    pol, parameter_hash = sealed_policy(world, "truth")
    key = family_key(SEED, parameter_hash, "6B.truth")
    gen = PhiloxBlocks(key)
    roles = table(world, "layer3", "6A", "party_roles").select("party_id", pl.col("role").cast(pl.String))
    eligible = (
        flows.filter(
            pl.col("channel").cast(pl.String).is_in(["POS", "ECOM"])
            & pl.col("nonfraud_decline").is_null()
            & ~pl.col("reversal")
            & ~pl.col("clearing_suppressed")
            & pl.col("campaign_id").is_null()
            & pl.col("party_id").is_not_null()
            & (pl.col("amount_minor") > 0)
            & (pl.col("truth_source") != "POSTURE")
        )
        .join(roles, on="party_id", how="left")
        .sort("flow_id")
    )
    sample = pl.concat([eligible.filter(pl.col("truth_source") == "FRIENDLY").head(50), eligible.head(200)])
    for fid, channel, role, source in sample.select(
        "flow_id", pl.col("channel").cast(pl.String), "role", pl.col("truth_source").cast(pl.String)
    ).iter_rows():
        p = pol.friendly.p * pol.friendly.channel_factor[channel]
        p *= pol.friendly.role_factor["FRIENDLY_FRAUD_PRONE"] if role == "FRIENDLY_FRAUD_PRONE" else 1.0
        assert (u01(gen.block(fid, 0, 0, 0)[0]) < p) == (source == "FRIENDLY"), fid


def test_retries(flows: pl.DataFrame) -> None:
    retries = flows.filter(pl.col("origin") == "RETRY")
    assert retries.height > 0
    parents = flows.filter(pl.col("retry")).select(
        pl.col("flow_id").alias("retry_of_flow_id"),
        pl.col("ts_utc").alias("p_ts"),
        pl.col("retry_delay_us").alias("p_delay"),
        pl.col("nonfraud_decline").alias("p_decline"),
        pl.col("party_id").alias("p_party"),
        pl.col("instrument_id").alias("p_instrument"),
        pl.col("amount_minor").alias("p_amount"),
        pl.col("origin").alias("p_origin"),
        "scenario_id",
    )
    joined = retries.join(parents, on=["scenario_id", "retry_of_flow_id"], how="inner")
    assert joined.height == retries.height == parents.height  # one retry per retrying flow, and back
    assert (joined["flow_id"] == (joined["retry_of_flow_id"] | TAG)).all()
    delayed = pl.col("p_ts") + pl.duration(microseconds=pl.col("p_delay"))
    assert joined.select((pl.col("ts_utc") == delayed).all()).item()
    assert joined["p_decline"].null_count() == 0 and (joined["p_origin"] == "BASELINE").all()
    assert (joined["party_id"] == joined["p_party"]).all() and (
        joined["amount_minor"] == joined["p_amount"]
    ).all()
    assert (joined["instrument_id"] == joined["p_instrument"]).all()
    assert joined["nonfraud_decline"].null_count() == joined.height and not joined["retry"].any()
    assert joined["arrival_id"].null_count() == joined.height and (joined["attach_mode"] == "RETRY").all()


def test_inserted_flows_carried_over(world: Path, flows: pl.DataFrame) -> None:
    inserted = table(world, "layer3", "6B", "inserted_flows").select(
        "scenario_id",
        "flow_id",
        "merchant_id",
        "ts_utc",
        "campaign_id",
        "forced_amount_minor",
        "decline_bias",
    )
    got = flows.filter(pl.col("origin") == "INSERTED").join(
        inserted, on=["scenario_id", "flow_id"], how="inner", suffix="_plan"
    )
    assert got.height == inserted.height
    for col in ("merchant_id", "ts_utc", "campaign_id", "decline_bias"):
        assert (got[col] == got[f"{col}_plan"]).all(), col
    forced = got.filter(pl.col("forced_amount_minor").is_not_null())
    assert (forced["amount_minor"] == forced["forced_amount_minor"]).all()


def test_amount_tilt_stays_on_the_legit_support(world: Path, flows: pl.DataFrame) -> None:
    """A tilted selected flow's amount lies within its (channel, currency) legit range, and an up tilt never
    lowers (a down tilt never raises) the amount S2 planned for it."""
    plan = table(world, "layer3", "6B", "s2_flow_plan").select(
        "scenario_id", "flow_id", pl.col("amount_minor").alias("planned")
    )
    tilted = flows.filter(
        (pl.col("origin") == "BASELINE_MUTATED")
        & ((pl.col("tactic_mask") & TACTIC_BITS["AMOUNT_SHIFT"]) != 0)
    ).join(plan, on=["scenario_id", "flow_id"])
    if tilted.height == 0:
        pytest.skip("no tilted selected flow in this tiny world")
    campaigns, _ = sealed_policy(world, "campaigns")
    up = {
        t: getattr(campaigns.types, t).amount_tilt == "UP"
        for t in ("BUST_OUT", "MERCHANT_COLLUSION", "REFUND_ABUSE")
    }
    for row in tilted.iter_rows(named=True):
        if up[row["campaign_type"]]:
            assert row["amount_minor"] >= row["planned"], row["flow_id"]
        elif row["planned"] > 0:
            assert row["amount_minor"] <= row["planned"], row["flow_id"]
    legit = (
        flows.filter(pl.col("origin") == "BASELINE")
        .group_by("channel", "currency")
        .agg(pl.col("amount_minor").min().alias("lo"), pl.col("amount_minor").max().alias("hi"))
    )
    inside = (
        tilted.join(legit, on=["channel", "currency"])
        .select(((pl.col("amount_minor") >= pl.col("lo")) & (pl.col("amount_minor") <= pl.col("hi"))).mean())
        .item()
    )
    assert inside >= 0.95


def test_local_times_against_zoneinfo(flows: pl.DataFrame) -> None:
    made = flows.filter(pl.col("origin").is_in(["INSERTED", "RETRY"]) | ((pl.col("tactic_mask") & 8) != 0))
    assert (
        made["ts_local"].dt.epoch("us") - made["ts_utc"].dt.epoch("us")
        == made["utc_offset_s"].cast(pl.Int64) * 10**6
    ).all()
    for ts, tzid, offset in (
        made.select("ts_utc", pl.col("tzid_local").cast(pl.String), "utc_offset_s").head(500).iter_rows()
    ):
        want = ts.astimezone(zoneinfo.ZoneInfo(tzid)).utcoffset()
        assert want == dt.timedelta(seconds=offset), (ts, tzid)
