"""6B.S0 and 6B.S1 on a tiny build: the gate seals what the later states read; one attachment per arrival in
arrival order; every id joins 6A (instrument → account → party, terminal → the arrival's site, payee in the
payer's country); the channel re-derived from channel_group and MCC; the instrument and device rules per
channel; is_cross_border re-derived; sessions re-cut in plain polars; attach branches replayed from numpy's
Philox; cross-border shares in the design's bands where tiny has the support."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from engine.core.policy import load_policy_file
from engine.core.rng import family_key
from engine.core.validation import PhiloxBlocks, u01
from engine.segments.l3.s6b.policy import CHANNELS

SEED = 42
US = 1_000_000


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> Path:
    """The session's tiny world (`all` builds 6B); read only."""
    return tiny_world


def gate_mf(root: Path) -> str:
    """The fingerprint the world's 6B gate was built under (read from disk: a policy edited since would
    change a freshly computed plan)."""
    (path,) = (root / "data/layer3/6B/gate").glob("manifest_fingerprint=*")
    return path.name.removeprefix("manifest_fingerprint=")


def sealed(root: Path) -> dict[str, Any]:
    path = root / f"data/layer3/6B/gate/manifest_fingerprint={gate_mf(root)}/sealed_inputs.json"
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def resolved(root: Path, name: str) -> Any:
    """The 6B pack this world's gate sealed (a preset may override the shipped one)."""
    path = {i["id"]: i["path"] for i in sealed(root)["inputs"]}[f"6B/{name}.yaml"]
    return load_policy_file("6B", name, root / path, state="test")


def table(root: Path, layer: str, seg: str, name: str) -> pl.DataFrame:
    return pl.read_parquet(root / f"data/{layer}/{seg}/{name}/**/*.parquet", hive_partitioning=True)


@pytest.fixture(scope="module")
def joined(world: Path) -> pl.DataFrame:
    """s1_attachments beside its arrival (same partition, same row), with the merchant's MCC."""
    s1 = pl.concat(
        [
            pl.read_parquet(p, hive_partitioning=False).with_row_index("row")
            for p in sorted((world / "data/layer3/6B/s1_attachments").rglob("*.parquet"))
        ]
    )
    arrivals = pl.concat(
        [
            pl.read_parquet(p).with_row_index("row")
            for p in sorted((world / "data/layer2/5B/arrival_events").rglob("*.parquet"))
        ]
    )
    mcc = table(world, "layer1", "1A", "merchant_catalogue").select("merchant_id", "mcc")
    return s1.join(
        arrivals.select(
            "scenario_id",
            "shard",
            "row",
            "arrival_id",
            "merchant_id",
            "ts_utc",
            pl.col("legal_country_iso").cast(pl.String),
            pl.col("channel_group").cast(pl.String),
            "site_id",
        ),
        on=["scenario_id", "shard", "row"],
        how="full",
    ).join(mcc, on="merchant_id", how="left")


def test_gate_seals_every_table_the_later_states_read(world: Path) -> None:
    mf = gate_mf(world)
    gate = world / "data/layer3/6B/gate"
    kinds = {i["id"]: i["kind"] for i in sealed(world)["inputs"]}
    assert kinds["6A/population.yaml"] == "upstream_policy" and kinds["6B/attachment.yaml"] == "policy"
    upstream = json.loads((gate / f"seed={SEED}/manifest_fingerprint={mf}/sealed_upstream.json").read_text())
    ids = {i["id"].split("/")[0] for i in upstream["inputs"]}
    for name in (
        "arrival_events",
        "parties",
        "accounts",
        "instruments",
        "devices",
        "device_links",
        "ip_links",
    ):
        assert name in ids
    assert {
        "terminals",
        "merchant_roles",
        "merchant_catalogue",
        "merchant_zone_profile",
        "tz_transitions",
    } <= ids
    receipt = json.loads((gate / f"manifest_fingerprint={mf}/s0_gate_receipt.json").read_text())
    assert {"channels", "currencies", "cache_lag"} <= set(receipt["checks_passed"])


def test_one_attachment_per_arrival_in_arrival_order(joined: pl.DataFrame) -> None:
    assert joined["flow_id"].null_count() == 0 and joined["arrival_id"].null_count() == 0
    assert (joined["flow_id"] == joined["arrival_id"]).all()
    per = joined.group_by("scenario_id").agg(pl.len(), pl.col("flow_id").n_unique().alias("ids"))
    assert (per["len"] == per["ids"]).all()  # PK (scenario_id, flow_id)


def test_channel_follows_channel_group_and_mcc(world: Path, joined: pl.DataFrame) -> None:
    ch = resolved(world, "channels")
    cp = pl.col("channel_group") == "CP"
    want = (
        pl.when(cp & pl.col("mcc").is_in(ch.atm_mccs))
        .then(pl.lit("ATM"))
        .when(cp)
        .then(pl.lit("POS"))
        .when(pl.col("mcc").is_in(ch.transfer_mccs))
        .then(pl.lit("TRANSFER"))
        .otherwise(pl.lit("ECOM"))
    )
    assert (joined["channel"].cast(pl.String) == joined.select(want)["literal"]).all()
    assert set(joined["channel"].cast(pl.String)) == set(CHANNELS)  # tiny has ATM and TRANSFER merchants


def test_every_id_joins_6a_and_instruments_fit_the_channel(world: Path, joined: pl.DataFrame) -> None:
    inst = table(world, "layer3", "6A", "instruments").select(
        "instrument_id", pl.col("account_id").alias("i_acc"), "instrument_type", "cnp_enabled"
    )
    acc = table(world, "layer3", "6A", "accounts").select("account_id", pl.col("party_id").alias("a_party"))
    parties = table(world, "layer3", "6A", "parties").select(
        "party_id", pl.col("country_iso").cast(pl.String)
    )
    terms = table(world, "layer3", "6A", "terminals").select("terminal_id", pl.col("site_id").alias("t_site"))
    devices = table(world, "layer3", "6A", "devices").select(
        "device_id", pl.col("device_type").cast(pl.String)
    )
    links = table(world, "layer3", "6A", "device_links").select("device_id", "party_id")
    ips = table(world, "layer3", "6A", "ips").select("ip_id")
    d = (
        joined.join(inst, on="instrument_id", how="left")
        .join(acc, on="account_id", how="left")
        .join(parties, on="party_id", how="left")
        .join(terms, on="terminal_id", how="left")
    )
    assert (d["i_acc"] == d["account_id"]).all() and (d["a_party"] == d["party_id"]).all()
    allowed = {
        "POS": {"DEBIT_PHYSICAL", "CREDIT_PHYSICAL", "DEVICE_TOKEN"},
        "ECOM": {"DEBIT_PHYSICAL", "DEBIT_VIRTUAL", "CREDIT_PHYSICAL", "CREDIT_VIRTUAL", "NETWORK_TOKEN"},
        "ATM": {"DEBIT_PHYSICAL", "CREDIT_PHYSICAL"},
        "TRANSFER": {"BANK_ACCOUNT"},
    }
    for ch, kinds in allowed.items():
        sub = d.filter(pl.col("channel") == ch)
        assert set(sub["instrument_type"].cast(pl.String)) <= kinds, ch
    assert d.filter(pl.col("channel") == "ECOM")["cnp_enabled"].all()
    cp = d.filter(pl.col("channel").is_in(["POS", "ATM"]))
    assert cp["ip_id"].null_count() == cp.height and cp["payee_account_id"].null_count() == cp.height
    assert (
        cp.filter(pl.col("terminal_id").is_not_null())["t_site"]
        == cp.filter(pl.col("terminal_id").is_not_null())["site_id"]
    ).all()
    assert cp["terminal_id"].null_count() == 0  # every card-present site has terminals (6A.S4)
    token = cp["instrument_type"].cast(pl.String) == "DEVICE_TOKEN"
    assert (cp["device_id"].is_not_null() == token).all()  # POS devices only for wallet tokens
    cnp = d.filter(pl.col("channel").is_in(["ECOM", "TRANSFER"]))
    assert cnp["device_id"].null_count() == 0 and cnp["ip_id"].null_count() == 0
    assert cnp.join(devices, on="device_id", how="anti").height == 0
    assert cnp.join(ips, on="ip_id", how="anti").height == 0
    # device_known ⇔ the device is linked to the party
    linked = cnp.join(
        links.with_columns(pl.lit(True).alias("linked")), on=["device_id", "party_id"], how="left"
    )
    assert (linked["linked"].fill_null(False) == linked["device_known"]).all()
    guest = (~linked["device_known"]).mean()
    assert 0.03 < guest < 0.15  # p_guest_device .08
    tr = d.filter(pl.col("channel") == "TRANSFER")
    payee = tr.join(
        acc.rename({"account_id": "payee_account_id", "a_party": "payee_party"}), on="payee_account_id"
    )
    payee = payee.join(
        parties.rename({"party_id": "payee_party", "country_iso": "payee_country"}), on="payee_party"
    )
    assert payee.height == tr["payee_account_id"].drop_nulls().len()
    assert (payee["payee_party"] != payee["party_id"]).all()
    assert (payee["payee_country"] == payee["country_iso"]).all()


def test_cross_border_is_party_country_against_merchant_country(world: Path, joined: pl.DataFrame) -> None:
    parties = table(world, "layer3", "6A", "parties").select(
        "party_id", pl.col("country_iso").cast(pl.String)
    )
    d = joined.join(parties, on="party_id", how="left")
    assert (d["is_cross_border"] == (d["country_iso"] != d["legal_country_iso"])).all()
    assert (d.filter(pl.col("attach_mode") == "DOMESTIC")["is_cross_border"] == False).all()  # noqa: E712
    assert d.filter(pl.col("attach_mode").is_in(["FOREIGN", "TRAVEL"]))["is_cross_border"].all()
    shares = d.group_by(pl.col("channel").cast(pl.String)).agg(pl.len(), pl.col("is_cross_border").mean())
    band = {"POS": (0.01, 0.08), "ECOM": (0.05, 0.30)}  # design §4.11 R10
    for ch, n, share in shares.iter_rows():
        if ch in band and n >= 1000:
            assert band[ch][0] <= share <= band[ch][1], (ch, share)


def test_sessions_re_cut_per_party_and_merchant(world: Path, joined: pl.DataFrame) -> None:
    sess = resolved(world, "sessions")
    gap, cap = sess.gap_seconds * US, sess.max_session_hours * 3600 * US
    d = joined.select(
        "scenario_id",
        "merchant_id",
        "party_id",
        "flow_id",
        "session_id",
        "session_seq",
        pl.col("ts_utc").dt.epoch("us").alias("ts"),
    ).sort("scenario_id", "merchant_id", "party_id", "ts", "flow_id")
    keys = d.select("scenario_id", "merchant_id", "party_id").rows()
    ts, fid = d["ts"].to_list(), d["flow_id"].to_list()
    sid: list[int] = []
    seq: list[int] = []
    start = 0
    for i in range(d.height):
        if i and keys[i] == keys[i - 1] and ts[i] - ts[i - 1] <= gap and ts[i] - start <= cap:
            sid.append(sid[-1])
            seq.append(seq[-1] + 1)
        else:
            start = ts[i]
            sid.append(fid[i])
            seq.append(1)
    assert d["session_id"].to_list() == sid and d["session_seq"].to_list() == seq
    assert (d["session_seq"] > 1).any()


def test_attach_branches_replay_from_philox(world: Path, joined: pl.DataFrame) -> None:
    pol = resolved(world, "attachment")
    gen = PhiloxBlocks(family_key(SEED, sealed(world)["parameter_hash"], "6B.attach"))
    d = joined.filter(pl.col("scenario_id") == joined["scenario_id"].min()).sort("shard", "row")
    prev = d.select(
        pl.col(c).shift(1).alias(f"prev_{c}") for c in ("merchant_id", "channel", "ts_utc", "party_id")
    )
    d = pl.concat([d, prev], how="horizontal")
    rng = np.random.default_rng(1)
    for i in sorted(rng.choice(d.height, size=min(3000, d.height), replace=False)):
        r = d.row(int(i), named=True)
        w = gen.block(r["flow_id"], 0, 0, 0)
        ch = r["channel"]
        near = (
            r["prev_merchant_id"] == r["merchant_id"]
            and r["prev_channel"] == ch
            and (r["ts_utc"] - r["prev_ts_utc"]).total_seconds() <= 1800
        )
        if near and u01(w[0]) < pol.p_continue[ch]:
            assert r["attach_mode"] == "CONTINUATION" and r["party_id"] == r["prev_party_id"]
            continue
        u = u01(w[1])
        if u < pol.p_regular[ch]:
            assert r["attach_mode"] == "REGULAR"
        elif (u - pol.p_regular[ch]) / (1 - pol.p_regular[ch]) < pol.p_domestic[ch]:
            assert r["attach_mode"] == "DOMESTIC"
        else:  # abroad: a visitor of the day on card-present channels (amendment 8's trips), else foreign
            assert r["attach_mode"] in (("FOREIGN", "TRAVEL") if ch in ("POS", "ATM") else ("FOREIGN",))
