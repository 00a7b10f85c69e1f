"""6B.S5 on the tiny world: events match their transactions, every time order holds, the decision rules hold
on every row, triggers and labels agree, and the RNG accounting is 5 blocks per flow (design §4.8, §5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

APPROVED = ["APPROVE", "CHALLENGE_PASS"]
KEY = ["manifest_fingerprint", "scenario_id", "flow_id"]  # a flow of one world


def parts(root: Path, dataset: str) -> list[Path]:
    return sorted((root / "data" / "layer3" / "6B" / dataset).rglob("part-*.parquet"))


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> Path:
    assert parts(tiny_world, "transactions"), "the tiny world's `all` target builds 6B"
    return tiny_world


@pytest.fixture(scope="module")
def tables(world: Path) -> dict[str, pl.DataFrame]:
    def read(name: str) -> pl.DataFrame:
        return pl.concat([pl.read_parquet(p) for p in parts(world, name)], how="vertical_relaxed")

    return {name: read(name) for name in ("transactions", "events", "s5_case_triggers")}


def test_events_match_transactions(tables: dict[str, pl.DataFrame]) -> None:
    tx, ev = tables["transactions"], tables["events"]
    per_flow = ev.group_by(KEY).agg(
        (pl.col("event_type") == "AUTH_REQUEST").sum().alias("req"),
        (pl.col("event_type") == "AUTH_RESPONSE").sum().alias("resp"),
        (pl.col("event_type") == "CLEARING").sum().alias("clr"),
        (pl.col("event_type") == "REVERSAL").sum().alias("rev"),
        (pl.col("event_type") == "CHARGEBACK").sum().alias("cb"),
        pl.col("event_type").cast(pl.String).str.starts_with("STEP_UP").sum().alias("step"),
        pl.col("ts_utc").filter(pl.col("event_type") == "AUTH_REQUEST").first().alias("req_ts"),
        pl.col("ts_utc").filter(pl.col("event_type") == "AUTH_RESPONSE").first().alias("resp_ts"),
    )
    j = tx.join(per_flow, on=KEY, how="left")
    assert j["req"].null_count() == 0, "a transaction without events"
    assert (j["req"] == 1).all() and (j["resp"] == 1).all()
    assert (j["clr"] == j["is_cleared"].cast(pl.UInt32)).all()
    assert (j["rev"] == j["reversal_ts_utc"].is_not_null().cast(pl.UInt32)).all()
    assert (j["cb"] == j["chargeback_ts_utc"].is_not_null().cast(pl.UInt32)).all()
    challenged = j["auth_decision"].cast(pl.String).str.starts_with("CHALLENGE")
    assert ((j["step"] == 2) == challenged).all()
    assert (j["req_ts"] == j["ts_utc"]).all() and (j["resp_ts"] == j["auth_response_ts_utc"]).all()
    assert per_flow.height == tx.height


def test_event_times_strictly_increase_and_streams_are_sorted(world: Path) -> None:
    for path in parts(world, "events"):
        ev = pl.read_parquet(path, columns=["merchant_id", "flow_id", "event_seq", "ts_utc"])
        keys = ["merchant_id", "ts_utc", "flow_id", "event_seq"]
        assert ev.select(keys).equals(ev.select(keys).sort(keys)), path
        by_flow = ev.sort("flow_id", "event_seq")
        same = by_flow["flow_id"].to_numpy()[1:] == by_flow["flow_id"].to_numpy()[:-1]
        ts = by_flow["ts_utc"].cast(pl.Int64).to_numpy()
        seq = by_flow["event_seq"].cast(pl.Int64).to_numpy()
        assert not (same & (ts[1:] <= ts[:-1])).any()
        assert not (same & (seq[1:] != seq[:-1] + 1)).any()
    for path in parts(world, "transactions"):
        tx = pl.read_parquet(path, columns=["merchant_id", "ts_utc", "flow_id"])
        assert tx.equals(tx.sort("merchant_id", "ts_utc", "flow_id")), path


def test_decision_rules_hold_on_every_row(tables: dict[str, pl.DataFrame], world: Path) -> None:
    tx = tables["transactions"]
    decision = tx["auth_decision"].cast(pl.String)
    channel = tx["channel"].cast(pl.String)
    score = tx["bank_score"].to_numpy()
    # a score above the decline threshold is declined unless the scheme stood in
    high = (score > 0.92) & ~tx["stand_in"].to_numpy()
    assert decision.filter(pl.Series(high)).is_in(["DECLINE", "DECLINE_FRAUD"]).all()
    assert (
        tx.filter(decision == "DECLINE_FRAUD")["decline_reason"].cast(pl.String) == "SUSPECTED_FRAUD"
    ).all()
    # challenges happen only online, 3DS fields only on ECOM, a liability shift only when authenticated
    assert channel.filter(decision.str.starts_with("CHALLENGE")).is_in(["ECOM", "TRANSFER"]).all()
    assert tx.filter(channel != "ECOM")["eci"].null_count() == (channel != "ECOM").sum()
    shifted = tx.filter(pl.col("liability_shift"))
    assert shifted["three_ds_result"].cast(pl.String).is_in(["FRICTIONLESS", "CHALLENGE_PASS"]).all()
    # probes on non-existent cards are declined INVALID_CARD_DATA and never reach a case
    probes = tx.filter(pl.col("party_id").is_null())
    assert (probes["decline_reason"].cast(pl.String) == "INVALID_CARD_DATA").all()
    assert (probes["bank_label"].cast(pl.String) == "NO_CASE").all()
    # only approved flows clear, dispute or charge back
    approved = decision.is_in(APPROVED)
    for col in ("clearing_ts_utc", "dispute_ts_utc", "chargeback_ts_utc"):
        assert tx.filter(~approved)[col].null_count() == int((~approved).sum()), col


def test_triggers_and_labels_agree(tables: dict[str, pl.DataFrame]) -> None:
    tx, trig = tables["transactions"], tables["s5_case_triggers"]
    first = trig.group_by(KEY).agg(pl.col("trigger_ts").min().alias("first"))
    j = tx.join(first, on=KEY, how="left")
    has = j["first"].is_not_null()
    assert ((j["bank_label"].cast(pl.String) != "NO_CASE") == has).all()
    assert (j.filter(has)["case_opened_ts_utc"] == j.filter(has)["first"]).all()
    assert (j.filter(has)["bank_label_ts_utc"] >= j.filter(has)["first"]).all()
    assert (trig["resolution_ts"] >= trig["trigger_ts"]).all()
    charged = j.filter(pl.col("chargeback_ts_utc").is_not_null())
    assert (charged["bank_label_ts_utc"] >= charged["chargeback_outcome_ts_utc"]).all()
    is_fraud = j["bank_label"].cast(pl.String).is_in(["CHARGEBACK_FRAUD", "CONFIRMED_FRAUD"])
    assert (j["is_fraud_bank"] == is_fraud).all()


def test_rng_accounting_is_five_blocks_per_flow(world: Path, tables: dict[str, pl.DataFrame]) -> None:
    flows = 0
    draws = blocks = 0
    for report in sorted((world / "reports" / "6B" / "s5_bank_events").rglob("run_report.json")):
        doc = json.loads(report.read_text())
        flows += doc["facts"]["flows"]
        bank = doc["rng_accounting"]["6B.bank"]
        draws += bank["draws"]
        blocks += bank["blocks"]
    assert flows == tables["transactions"].height
    assert (draws, blocks) == (20 * flows, 5 * flows)
    assert np.isfinite(tables["transactions"]["bank_score"].to_numpy()).all()


def test_s5a_scores_every_flow_that_can_block_a_card(world: Path) -> None:
    """6B.S5a scores only `could_block`'s rows. Scoring every flow of each shard instead, S5's bank view up to
    `candidates` finds exactly the candidates S5a published, so the narrowing loses none."""
    from engine.core.contracts import table_schema
    from engine.core.state import StateContext
    from engine.segments.l3.s6b.blocks import candidates
    from engine.segments.l3.s6b.s5_bank_events import decided, learned, setup

    published = sorted((world / "data" / "layer3" / "6B" / "s5_block_candidates").rglob("shard=*"))
    value = {p.name.split("=")[0]: p.name.split("=", 1)[1] for p in published[0].parents if "=" in p.name}
    scenarios = tuple(sorted({p.parent.name.split("=")[1] for p in published}))
    assert len(published) == len(scenarios) == 2, "tiny runs two scenarios of one shard"
    columns = list(table_schema("6B.yaml#/tables/s4_flows").columns)[4:]
    total = 0
    for folder in published:
        scenario = folder.parent.name.split("=")[1]
        mf, shard = value["manifest_fingerprint"], int(folder.name.split("=")[1])
        ctx = StateContext(
            world, "6B", "6B.S5a", "s5a_block_candidates", mf, 42, scenario, shard, 1, scenarios
        )
        s = setup(ctx)
        flows = ctx.read("s4_flows", scenario=scenario, shard=shard).select(columns)
        d = decided(flows, s)
        _, got = learned(d, d.view, d.auth, s, ctx.state)
        every = candidates(d.view, d.auth, got, s.bank.block_reissue)
        assert every.equals(pl.read_parquet(folder / "part-00000.parquet").select(every.columns))
        assert every.height < flows.height
        total += every.height
    assert total > 0, "tiny detects cards"
