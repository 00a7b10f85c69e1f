"""6B.S2 on a tiny build: one plan per arrival in arrival order; the legal tender of the arrival's country;
offsets positive and amounts in range; amounts of a sample replayed in plain Python from the world's
`6B.flow` key; decline, $0, refund, reversal and clearing figures in the design's bands (R14, R17, amendment
4); the draw accounting of 7 blocks per flow."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from engine.core.rng import family_key
from engine.segments.l3.s6b.flow_tables import nice_step
from tests.conftest import tiny_plan
from tests.segments.test_6b_s2_plan import CHANNELS, expected_amount

SEED = 42


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> Path:
    """The session's tiny world (`all` builds 6B); read only."""
    return tiny_world


def parts(root: Path, layer: str, seg: str, name: str) -> pl.DataFrame:
    """Every part of a sharded dataset in (scenario, shard, part) order with its row number inside the
    partition, so two aligned datasets join on (scenario_id, shard, row)."""
    frames = []
    for folder in sorted({p.parent for p in (root / f"data/{layer}/{seg}/{name}").rglob("*.parquet")}):
        files = sorted(folder.glob("part-*.parquet"))
        frames.append(
            pl.concat([pl.read_parquet(f, hive_partitioning=False) for f in files]).with_row_index("row")
        )
    return pl.concat(frames, how="diagonal_relaxed")


@pytest.fixture(scope="module")
def flows(world: Path) -> pl.DataFrame:
    """s2_flow_plan beside its arrival and attachment, with the merchant's sector and the party's segment."""
    keys = ["scenario_id", "shard", "row"]
    plan = parts(world, "layer3", "6B", "s2_flow_plan")
    s1 = parts(world, "layer3", "6B", "s1_attachments").select(
        *keys, pl.col("flow_id").alias("s1_flow_id"), "channel", "party_id"
    )
    arrivals = parts(world, "layer2", "5B", "arrival_events").select(
        *keys, "arrival_id", "merchant_id", pl.col("legal_country_iso").cast(pl.String)
    )
    assert plan.height == s1.height == arrivals.height
    merchants = pl.read_parquet(world / "data/layer1/1A/merchant_catalogue/**/*.parquet").select(
        "merchant_id", pl.col("sector").cast(pl.String)
    )
    parties = pl.read_parquet(world / "data/layer3/6A/parties/**/*.parquet").select(
        "party_id", pl.col("segment").cast(pl.String)
    )
    return (
        plan.join(s1, on=keys)
        .join(arrivals, on=keys)
        .join(merchants, on="merchant_id", how="left")
        .join(parties, on="party_id", how="left")
        .with_columns(pl.col("channel").cast(pl.String))
    )


def sealed(root: Path) -> dict[str, Any]:
    mf = tiny_plan(root)["6B"].manifest_fingerprint
    doc: dict[str, Any] = json.loads(
        (root / f"data/layer3/6B/gate/manifest_fingerprint={mf}/sealed_inputs.json").read_text()
    )
    return doc


def test_one_plan_per_arrival_in_order(flows: pl.DataFrame) -> None:
    assert (flows["flow_id"] == flows["arrival_id"]).all()
    assert (flows["flow_id"] == flows["s1_flow_id"]).all()
    assert flows.select(pl.struct("scenario_id", "flow_id").is_unique().all()).item()


def test_currency_is_the_legal_tender(world: Path, flows: pl.DataFrame) -> None:
    ref = pl.read_parquet(next((world / "resources/ref_currencies").rglob("ref_currencies.parquet")))
    want = flows.join(
        ref.select(pl.col("iso2").alias("legal_country_iso"), "currency", "minor_units"),
        on="legal_country_iso",
        how="left",
        suffix="_ref",
    )
    assert (want["currency"] == want["currency_ref"]).all()
    assert (want["currency_exponent"].cast(pl.Int64) == want["minor_units"].cast(pl.Int64)).all()


def test_offsets_positive_and_amounts_in_range(flows: pl.DataFrame) -> None:
    for column in [c for c in flows.columns if c.endswith("_us")]:
        assert flows[column].min() >= 1, column  # type: ignore[operator]
    assert flows["amount_minor"].min() >= 0 and flows["amount_minor"].max() <= 10**13  # type: ignore[operator]
    assert (flows["amount_minor"] > 0).filter(flows["channel"] != "ECOM").all()  # $0 only as ECOM checks
    # a retry only after a non-fraud decline, a refund and a reversal only on an approved flow, never both
    assert flows.filter("retry")["nonfraud_decline"].is_not_null().all()
    assert flows.filter(pl.col("refund") | pl.col("reversal"))["nonfraud_decline"].is_null().all()
    assert not (flows["refund"] & flows["reversal"]).any()


def test_amounts_replay_from_the_world_key(world: Path, flows: pl.DataFrame) -> None:
    key = family_key(SEED, sealed(world)["parameter_hash"], "6B.flow")
    sample = flows.filter(
        pl.col("scenario_id") == "baseline", pl.col("channel").is_in(["POS", "ECOM", "ATM"])
    ).sample(400, seed=3)
    for row in sample.iter_rows(named=True):
        cur, exp = row["currency"], row["currency_exponent"]
        step = CHANNELS.rounding_step_minor.get(cur, 1)
        if row["channel"] == "ATM":
            note = CHANNELS.atm_note_step_major.get(cur) or nice_step(
                10 * CHANNELS.currency_price_scale.get(cur, 1.0)
            )
            step = max(round(note * 10**exp), step)
        want = expected_amount(
            row["flow_id"], row["sector"], row["channel"], cur, exp, row["segment"], step, key=key
        )
        assert row["amount_minor"] == want, row


def test_rates_in_the_design_bands(flows: pl.DataFrame) -> None:
    by = flows.group_by("channel").agg(
        n=pl.len(),
        declined=pl.col("nonfraud_decline").is_not_null().mean(),
        zero=(pl.col("amount_minor") == 0).mean(),
        refund=pl.col("refund").mean(),
        reversal=pl.col("reversal").mean(),
        clearing_h=pl.col("clearing_delay_us").median() / 3.6e9,
    )
    rows = {r["channel"]: r for r in by.iter_rows(named=True)}
    bands = {"POS": (0.01, 0.08), "ECOM": (0.07, 0.20), "ATM": (0.02, 0.12), "TRANSFER": (0.005, 0.08)}  # R14
    for channel, (lo, hi) in bands.items():
        r = rows.get(channel)
        if r is None or r["n"] < 1000:
            continue  # below support on tiny
        assert lo <= r["declined"] <= hi, r
    ecom = rows["ECOM"]
    sd = math.sqrt(0.02 * 0.98 / ecom["n"])
    assert abs(ecom["zero"] - 0.02) <= 5 * sd  # amendment 4
    assert 0.005 <= ecom["refund"] <= 0.06  # R17
    assert 2 <= rows["POS"]["clearing_h"] <= 30  # R17: POS clearing median [2 h, 30 h]
    assert 0.001 <= flows["reversal"].mean() <= 0.01  # R17


def test_rng_accounting(world: Path, flows: pl.DataFrame) -> None:
    reports = sorted((world / "reports/6B/s2_flows").rglob("run_report.json"))
    assert reports
    blocks = draws = rows = 0
    for path in reports:
        doc = json.loads(path.read_text())
        family = doc["rng_accounting"]["6B.flow"]
        blocks, draws = blocks + family["blocks"], draws + family["draws"]
        rows += doc["facts"]["flows"]
    assert rows == flows.height
    assert (blocks, draws) == (7 * rows, 28 * rows)
    assert np.isclose(
        sum(json.loads(p.read_text())["facts"]["declined_pos"] for p in reports),
        flows.filter(pl.col("channel") == "POS")["nonfraud_decline"].is_not_null().sum(),
    )
