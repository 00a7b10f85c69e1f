"""6B.S5 end to end on a hand-built world (no Snakemake): every output conforms to contracts/6B.yaml, events
match the transactions row for row, triggers and labels agree, and the same flows give the same rows whatever
the batch they arrive in (design §4.8, §5.1, §5.2)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from engine.core import yaml12
from engine.core.contracts import DTYPES, table_schema, validate_columns
from engine.segments.l3.s6b import policy as p6b
from engine.segments.l3.s6b.bank_world import BankWorld, Dim, EventTimes, in_countries, probe_issuers
from engine.segments.l3.s6b.blocks import REISSUE_BIT, Blocks
from engine.segments.l3.s6b.events import HeldEvents, LocalClock
from engine.segments.l3.s6b.s5_bank_events import make_setup, process

REPO = Path(__file__).resolve().parents[2]
KEY = (11, 22)
NO_BLOCKS = Blocks(*(np.zeros(0, dtype=t) for t in (np.uint64, np.int64, np.uint64, np.int64)))
T0 = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
US = 1_000_000


def pack(name: str) -> Any:
    return p6b.POLICIES[name].model_validate(
        yaml12.load((REPO / "config/policies/6B" / f"{name}.yaml").read_text())
    )


def world() -> BankWorld:
    merchants = pl.DataFrame(
        {
            "merchant_id": [1, 2, 3, 4],
            "mcc": pl.Series([5411, 5691, 6011, 4829], dtype=pl.UInt16),
            "sector": ["grocery", "apparel", "other", "other"],
            "home": ["US", "FR", "GB", "GB"],
            "merchant_class": pl.Series(
                ["grocery_daily", "online_24h", "cash_access", "online_24h"],
                dtype=pl.Enum(
                    table_schema("5A.yaml#/tables/merchant_zone_profile").columns["demand_class"]["enum"]
                ),
            ),
        }
    )
    enum6a = table_schema("6A.yaml#/tables/parties").columns["segment"]["enum"]
    parties = pl.DataFrame(
        {
            "party_id": [1, 2, 3],
            "party_country_iso": ["US", "FR", "GB"],
            "party_segment": pl.Series(
                ["RETAIL_FAMILY", "RETAIL_AFFLUENT", "RETAIL_RETIRED"], dtype=pl.Enum(enum6a)
            ),
            "onboarding_date": [dt.date(2020, 1, 1), dt.date(2026, 3, 1), dt.date(2010, 5, 5)],
            "kyc_risk_tier": pl.Series(
                ["LOW", "HIGH", "STANDARD"], dtype=pl.Enum(["LOW", "STANDARD", "ELEVATED", "HIGH"])
            ),
        }
    )
    accounts = pl.DataFrame(
        {
            "account_id": [1, 2, 3],
            "issuer_id": pl.Series([10, 20, 30], dtype=pl.UInt64),
            "issuer_country_iso": ["US", "FR", "GB"],
            "is_credit": [True, False, False],
        }
    )
    itypes = table_schema("6B.yaml#/tables/transactions").columns
    instruments = pl.DataFrame(
        {
            "instrument_id": [1, 2, 3, 4],
            "instrument_type": pl.Series(
                ["CREDIT_PHYSICAL", "DEBIT_VIRTUAL", "DEBIT_PHYSICAL", "BANK_ACCOUNT"],
                dtype=pl.Enum(itypes["instrument_type"]["enum"]),
            ),
            "card_scheme": pl.Series(
                ["VISA", "MASTERCARD", "VISA", None], dtype=pl.Enum(itypes["card_scheme"]["enum"])
            ),
            "card_bin": pl.Series([41111111, 51111111, 42222222, None], dtype=pl.UInt32),
            "is_tokenised": [False, False, False, False],
        }
    )
    devices = pl.DataFrame(
        {
            "device_id": [1],
            "device_type": pl.Series(["DESKTOP"], dtype=pl.Enum(itypes["device_type"]["enum"])),
            "device_os": pl.Series(["WINDOWS"], dtype=pl.Enum(itypes["device_os"]["enum"])),
            "device_n_parties": pl.Series([3], dtype=pl.UInt8),
        }
    )
    ips = pl.DataFrame(
        {
            "ip_id": [1],
            "ip_type": pl.Series(["VPN_PROXY"], dtype=pl.Enum(itypes["ip_type"]["enum"])),
            "ip_asn_class": pl.Series(["VPN_PROVIDER"], dtype=pl.Enum(itypes["ip_asn_class"]["enum"])),
            "ip_country_iso": ["NL"],
        }
    )
    sites = pl.DataFrame({"site_id": [100, 300], "site_country": ["US", "GB"]})
    start = int(T0.timestamp()) * US - 30 * 86400 * US
    transitions = pl.DataFrame(
        {
            "tzid": ["America/New_York", "Europe/London", "Europe/Paris"],
            "valid_from": [start] * 3,
            "utc_offset_s": [-18000, 0, 3600],
        }
    )
    ts = pl.Datetime("us", "UTC")
    none = pl.DataFrame(schema={"party_id": pl.UInt64, "ts_utc": ts})
    history = {k: EventTimes.of(none) for k in p6b.ACCOUNT_EVENT_TYPES}
    history["NEW_DEVICE_LOGIN"] = EventTimes.of(
        pl.DataFrame(
            {
                "party_id": pl.Series([2], dtype=pl.UInt64),
                "ts_utc": pl.Series([T0 - dt.timedelta(hours=3)]).cast(ts),
            }
        )
    )
    anchors = pl.DataFrame(
        {
            "account_id": pl.Series([3], dtype=pl.UInt64),
            "anchor_ts": pl.Series([T0 + dt.timedelta(hours=1)]).cast(ts),
            "collateral_type": ["ACCOUNT_TAKEOVER"],
        }
    )
    countries = pl.Enum(["FR", "GB", "NL", "US"])
    merchants, sites, parties, accounts, ips = (
        in_countries(t, countries) for t in (merchants, sites, parties, accounts, ips)
    )
    # FR's largest issuer is 20; US has 10; GB and NL have none, so their probes go to the first rank-1 (10)
    issuers = pl.DataFrame(
        {
            "issuer_id": pl.Series([10, 20, 21], dtype=pl.UInt64),
            "country": ["US", "FR", "FR"],
            "issuer_rank": pl.Series([1, 1, 2], dtype=pl.UInt8),
        }
    )
    probe_issuer, probe_country = probe_issuers(in_countries(issuers, countries), countries)
    return BankWorld(
        merchants=Dim.of(merchants, "merchant_id"),
        sites=Dim.of(sites, "site_id"),
        parties=Dim.of(parties, "party_id"),
        accounts=Dim.of(accounts, "account_id"),
        instruments=Dim.of(instruments, "instrument_id"),
        devices=Dim.of(devices, "device_id"),
        ips=Dim.of(ips, "ip_id"),
        probe_issuer=probe_issuer,
        probe_issuer_country=probe_country,
        countries=countries,
        history=history,
        anchors=anchors,
        clock=LocalClock(transitions),
    )


DEFAULT: dict[str, Any] = {
    "arrival_id": None,
    "device_id": None,
    "terminal_id": None,
    "ip_id": None,
    "payee_account_id": None,
    "is_cross_border": False,
    "attach_mode": "DOMESTIC",
    "device_known": None,
    "session_seq": 1,
    "amount_minor": 4500,
    "currency": "USD",
    "currency_exponent": 2,
    "nonfraud_decline": None,
    "auth_latency_us": 250_000,
    "stand_in": False,
    "stepup_challenge_us": 800_000,
    "stepup_user_us": 25 * US,
    "clearing_delay_us": 10 * 3600 * US,
    "clearing_adjust_minor": 0,
    "clearing_suppressed": False,
    "reversal": False,
    "reversal_delay_us": 600 * US,
    "refund": False,
    "refund_fraction_bp": 10000,
    "refund_delay_us": 12 * 86400 * US,
    "retry": False,
    "retry_delay_us": 30 * US,
    "pos_entry_mode": "CHIP",
    "cvm": "PIN",
    "wallet": "NONE",
    "is_recurring": False,
    "cvv_result": None,
    "avs_result": None,
    "tzid_local": "America/New_York",
    "utc_offset_s": -18000,
    "site_id": None,
    "edge_id": None,
    "origin": "BASELINE",
    "retry_of_flow_id": None,
    "campaign_id": None,
    "campaign_type": None,
    "campaign_phase": None,
    "tactic_mask": 0,
    "decline_bias": 0.0,
    "truth_label": "LEGIT",
    "truth_subtype": "NONE",
    "truth_source": "NONE",
    "truth_rule": 4,
}
ROWS: list[dict[str, Any]] = [
    # a grocery chip payment in the US
    {
        "flow_id": 1 << 40 | 1,
        "merchant_id": 1,
        "channel": "POS",
        "party_id": 1,
        "account_id": 1,
        "instrument_id": 1,
        "site_id": 100,
        "terminal_id": 7,
        "dt": 0,
    },
    # a stolen-card ECOM purchase through a VPN on a shared device, refunded later
    {
        "flow_id": 2 << 40 | 1,
        "merchant_id": 2,
        "channel": "ECOM",
        "party_id": 2,
        "account_id": 2,
        "instrument_id": 2,
        "device_id": 1,
        "ip_id": 1,
        "device_known": False,
        "currency": "EUR",
        "tzid_local": "Europe/Paris",
        "utc_offset_s": 3600,
        "pos_entry_mode": "ECOM",
        "cvm": None,
        "cvv_result": "MATCH",
        "avs_result": "NOT_SUPPORTED",
        "truth_label": "FRAUD",
        "truth_subtype": "CNP_STOLEN",
        "truth_source": "CAMPAIGN",
        "truth_rule": 1,
        "campaign_id": 2 << 56 | 1,
        "campaign_type": "CNP_STOLEN",
        "campaign_phase": "SPEND",
        "origin": "INSERTED",
        "refund": True,
        "amount_minor": 25000,
        "dt": 5,
    },
    # a probe on a non-existent card number
    {
        "flow_id": 2 << 40 | 1 << 39 | 1,
        "merchant_id": 2,
        "channel": "ECOM",
        "currency": "EUR",
        "tzid_local": "Europe/Paris",
        "utc_offset_s": 3600,
        "pos_entry_mode": "ECOM",
        "cvm": None,
        "amount_minor": 0,
        "truth_label": "FRAUD",
        "truth_subtype": "CARD_TESTING",
        "truth_source": "CAMPAIGN",
        "truth_rule": 1,
        "campaign_id": 1 << 56 | 1,
        "campaign_type": "CARD_TESTING",
        "campaign_phase": "PROBE",
        "origin": "INSERTED",
        "decline_bias": 0.85,
        "clearing_suppressed": True,
        "dt": 6,
    },
    # an ATM withdrawal in GB near a takeover on the same account, reversed
    {
        "flow_id": 3 << 40 | 1,
        "merchant_id": 3,
        "channel": "ATM",
        "party_id": 3,
        "account_id": 3,
        "instrument_id": 3,
        "site_id": 300,
        "terminal_id": 9,
        "currency": "GBP",
        "tzid_local": "Europe/London",
        "utc_offset_s": 0,
        "reversal": True,
        "amount_minor": 10000,
        "dt": 7,
    },
    # a declined transfer (insufficient funds)
    {
        "flow_id": 4 << 40 | 1,
        "merchant_id": 4,
        "channel": "TRANSFER",
        "party_id": 3,
        "account_id": 3,
        "instrument_id": 4,
        "payee_account_id": 1,
        "currency": "GBP",
        "tzid_local": "Europe/London",
        "utc_offset_s": 0,
        "pos_entry_mode": "ECOM",
        "cvm": None,
        "nonfraud_decline": "INSUFFICIENT_FUNDS",
        "dt": 9,
    },
]


def s4_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    spec = table_schema("6B.yaml#/tables/s4_flows").columns
    names = list(spec)[4:]
    out = {}
    for name in names:
        values = []
        for r in rows:
            if name == "ts_utc":
                values.append(T0 + dt.timedelta(minutes=r["dt"]))
            elif name == "ts_local":
                values.append(
                    (T0 + dt.timedelta(minutes=r["dt"], seconds=r.get("utc_offset_s", -18000))).replace(
                        tzinfo=None
                    )
                )
            elif name == "session_id":
                values.append(r["flow_id"])
            else:
                values.append(r.get(name, DEFAULT.get(name)))
        col = spec[name]
        dtype = DTYPES[col["dtype"]]
        if col["dtype"] == "cat":
            dtype = pl.Enum(col.get("enum", ["America/New_York", "Europe/London", "Europe/Paris"]))
        out[name] = pl.Series(name, values, dtype=dtype)
    return pl.DataFrame(out)


@pytest.fixture(scope="module")
def outputs() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    s = make_setup(pack("bank_view"), pack("amounts"), pack("channels"), world(), KEY)
    tx, ev, trig, _ = process(s4_frame(ROWS), s, NO_BLOCKS, "6B.S5")
    return tx, ev, trig


@pytest.mark.parametrize("index, table", [(0, "transactions"), (1, "events"), (2, "s5_case_triggers")])
def test_outputs_match_the_contract(outputs: Any, index: int, table: str) -> None:
    frame = outputs[index]
    names = list(table_schema(f"6B.yaml#/tables/{table}").columns)[4:]
    validate_columns(frame, f"6B.yaml#/tables/{table}", names, where=table, state="6B.S5")


def test_transactions_carry_the_bank_view(outputs: Any) -> None:
    tx = outputs[0]
    assert tx["flow_id"].to_list() == [r["flow_id"] for r in ROWS]
    probe = tx.row(2, named=True)
    assert probe["auth_decision"] == "DECLINE" and probe["decline_reason"] == "INVALID_CARD_DATA"
    assert probe["issuer_id"] == 20 and probe["issuer_country_iso"] == "FR" and probe["party_id"] is None
    atm = tx.row(3, named=True)
    if atm["auth_decision"] in ("APPROVE", "CHALLENGE_PASS"):
        assert atm["reversal_ts_utc"] is not None and not atm["is_cleared"] and atm["clearing_ts_utc"] is None
    transfer = tx.row(4, named=True)
    assert transfer["auth_decision"] == "DECLINE" and transfer["decline_reason"] == "INSUFFICIENT_FUNDS"
    assert transfer["eci"] is None and transfer["three_ds_result"] is None
    first = tx.row(0, named=True)
    assert (
        first["merchant_country_iso"] == "US"
        and first["party_tenure_days"] == (T0.date() - dt.date(2020, 1, 1)).days
    )
    assert first["kyc_risk_tier"] == "LOW" and first["is_card_present"] and not first["is_virtual"]
    # the stolen-card flow has a VPN, an unknown shared device, a new-device login and a HIGH tier: it scores
    # far above the plain grocery payment
    assert tx["bank_score"][1] > 5 * tx["bank_score"][0]
    # responses follow requests by the plan's latency (plus any step-up)
    lat = (tx["auth_response_ts_utc"] - tx["ts_utc"]).dt.total_microseconds().to_numpy()
    assert (lat >= 250_000).all()


def test_events_follow_each_transaction(outputs: Any) -> None:
    tx, ev, _ = outputs
    by_flow = (
        ev.sort("flow_id", "event_seq")
        .group_by("flow_id", maintain_order=True)
        .agg(pl.col("event_type").cast(pl.String), pl.col("ts_utc"), pl.col("amount_minor"))
    )
    rows = {r["flow_id"]: r for r in by_flow.iter_rows(named=True)}
    for t in tx.iter_rows(named=True):
        e = rows[t["flow_id"]]
        kinds = e["event_type"]
        assert kinds[0] == "AUTH_REQUEST" and "AUTH_RESPONSE" in kinds
        assert ("CLEARING" in kinds) == t["is_cleared"]
        assert ("REVERSAL" in kinds) == (t["reversal_ts_utc"] is not None)
        assert ("REFUND" in kinds) == (t["refund_ts_utc"] is not None)
        assert ("CHARGEBACK" in kinds) == (t["chargeback_ts_utc"] is not None)
        assert ("STEP_UP_CHALLENGE" in kinds) == t["auth_decision"].startswith("CHALLENGE")
        assert all(b > a for a, b in zip(e["ts_utc"], e["ts_utc"][1:], strict=False))
        assert (
            e["ts_utc"][0] == t["ts_utc"]
            and e["ts_utc"][kinds.index("AUTH_RESPONSE")] == t["auth_response_ts_utc"]
        )
        if t["is_cleared"]:
            assert e["amount_minor"][kinds.index("CLEARING")] == t["cleared_amount_minor"]
    # the AUTH_REQUEST's local time is the flow's
    req = ev.filter(pl.col("event_type") == "AUTH_REQUEST").sort("flow_id")
    assert req["ts_local"].to_list() == tx.sort("flow_id")["ts_local"].to_list()
    assert ev.select(pl.col("merchant_id"), pl.col("ts_utc"), pl.col("flow_id"), pl.col("event_seq")).equals(
        ev.select("merchant_id", "ts_utc", "flow_id", "event_seq").sort(
            "merchant_id", "ts_utc", "flow_id", "event_seq"
        )
    )


def test_triggers_agree_with_the_labels(outputs: Any) -> None:
    tx, _, trig = outputs
    with_trigger = set(trig["flow_id"].to_list())
    for t in tx.iter_rows(named=True):
        assert (t["bank_label"] != "NO_CASE") == (t["flow_id"] in with_trigger)
        assert t["is_fraud_bank"] == (t["bank_label"] in ("CHARGEBACK_FRAUD", "CONFIRMED_FRAUD"))
        if t["bank_label"] == "NO_CASE":
            assert t["bank_label_ts_utc"] is None and t["case_opened_ts_utc"] is None
    assert (trig["resolution_ts"] >= trig["trigger_ts"]).all()


def test_rows_do_not_depend_on_the_batch() -> None:
    s = make_setup(pack("bank_view"), pack("amounts"), pack("channels"), world(), KEY)
    whole = process(s4_frame(ROWS), s, NO_BLOCKS, "6B.S5")[0]
    parts = pl.concat(
        [
            process(s4_frame(ROWS[:2]), s, NO_BLOCKS, "6B.S5")[0],
            process(s4_frame(ROWS[2:]), s, NO_BLOCKS, "6B.S5")[0],
        ]
    )
    assert whole.equals(parts)


@pytest.mark.parametrize("cut", range(1, len(ROWS)))
def test_events_held_across_a_batch_cut_equal_the_whole_batch(cut: int) -> None:
    """Cut 2 splits merchant 2's two flows: its first flow's clearing, days after the second's request, waits
    in HeldEvents and the stream comes out as from one batch."""
    s = make_setup(pack("bank_view"), pack("amounts"), pack("channels"), world(), KEY)
    whole = process(s4_frame(ROWS), s, NO_BLOCKS, "6B.S5")[1]
    held, out = HeldEvents(), []
    for rows in (ROWS[:cut], ROWS[cut:]):
        batch = s4_frame(rows)
        out.append(held.release_before(*batch.select("merchant_id", pl.col("ts_utc").dt.epoch("us")).row(0)))
        held.add(process(batch, s, NO_BLOCKS, "6B.S5")[1])
    out.append(held.release_all())
    assert pl.concat([o for o in out if o is not None]).equals(whole)


def test_probe_issuers() -> None:
    countries = pl.Enum(["FR", "GB", "US"])
    issuers = pl.DataFrame(
        {
            "issuer_id": pl.Series([30, 10, 20, 21], dtype=pl.UInt64),
            "country": pl.Series(["US", "US", "FR", "FR"], dtype=countries),
            "issuer_rank": pl.Series([2, 1, 2, 1], dtype=pl.UInt8),
        }
    )
    issuer, country = probe_issuers(issuers, countries)
    # FR → its rank-1 issuer 21; GB has none → the first rank-1 by id (10, in US); unknown → 10
    assert issuer.tolist() == [21, 10, 10, 10] and country.tolist() == [0, 2, 2, 2]


def test_a_blocked_card_declines_its_later_fraud_and_is_stamped() -> None:
    """Card 2 (the stolen-card ECOM purchase at +5 min) blocked at +1 min: the purchase is declined
    LOST_STOLEN_CARD, never clears, and carries the block time; card 1's payment at +0 is untouched."""
    s = make_setup(pack("bank_view"), pack("amounts"), pack("channels"), world(), KEY)
    blocked = int(T0.timestamp()) * US + 60 * US
    blocks = Blocks(
        np.array([2], dtype=np.uint64),
        np.array([blocked]),
        np.array([REISSUE_BIT | 2], dtype=np.uint64),
        np.array([blocked + 3 * 86400 * US]),
    )
    tx, ev, _, _ = process(s4_frame(ROWS[:2]), s, blocks, "6B.S5")
    stolen = tx.row(1, named=True)
    assert (stolen["auth_decision"], stolen["decline_reason"]) == ("DECLINE", "LOST_STOLEN_CARD")
    assert not stolen["is_cleared"] and stolen["refund_ts_utc"] is None
    assert stolen["card_blocked_ts_utc"] == T0 + dt.timedelta(minutes=1)
    assert tx.row(0, named=True)["card_blocked_ts_utc"] is None
    response = ev.filter(
        (pl.col("flow_id") == ROWS[1]["flow_id"]) & (pl.col("event_type") == "AUTH_RESPONSE")
    )
    assert response["response_code"].cast(pl.String).to_list() == ["LOST_STOLEN_CARD"]
    assert set(ev.filter(pl.col("flow_id") == ROWS[1]["flow_id"])["event_type"].cast(pl.String)) == {
        "AUTH_REQUEST",
        "AUTH_RESPONSE",
    }
