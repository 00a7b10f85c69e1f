"""6B.S7a: a shard's scan as five tables and back (known answers), the contract of each table, S7's
replay of a failed contract check, and the tiny world's tables re-derived from its transactions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.core.contracts import dictionary, validate_table
from engine.core.errors import EngineError
from engine.core.ids import splitmix64
from engine.core.validation import CheckBook
from engine.segments.l3.s6b.s7_scan import SAMPLE_MOD, ShardScan
from engine.segments.l3.s6b.s7_validation import scan_scenario
from engine.segments.l3.s6b.scan_tables import SCAN_TABLES, ShardFindings, empty, from_tables, to_tables

CUBE_ROW = {
    "channel": "POS",
    "truth_label": "LEGIT",
    "truth_subtype": "NONE",
    "truth_source": "NONE",
    "campaign_type": None,
    "is_cross_border": False,
    "auth_decision": "APPROVE",
    "night": False,
    "origin": "BASELINE",
}
COUNTS = ("detected", "bank_fraud", "disputed", "chargebacks", "refunds", "reversals", "cleared")


def _cube(n: int, usd: int, channel: str = "POS") -> pl.DataFrame:
    row = {**CUBE_ROW, "channel": channel, "n": n, "usd": usd, **dict.fromkeys(COUNTS, 1)}
    schema = {k: pl.String for k in CUBE_ROW} | {"is_cross_border": pl.Boolean, "night": pl.Boolean}
    return pl.DataFrame(
        [row], schema={**schema, "n": pl.UInt32, "usd": pl.Int64, **dict.fromkeys(COUNTS, pl.UInt32)}
    )


def _findings() -> ShardFindings:
    """A shard of five flows in two batches: counts split across batches must come back summed."""
    scan = ShardScan(rows=5, tactic_bits=0b101, pair_rows=4, repeat_pair_rows=2, sessions=3)
    scan.violations = {"latency_not_positive": 0, "duplicate_flow_id": 2}
    scan.origin_counts = {"BASELINE": 4, "RETRY": 1}
    scan.cube = [
        _cube(2, 150),
        _cube(1, 50, "TRANSFER"),
        _cube(1, 50),
        _cube(2, 900, "ECOM"),
        _cube(1, 7, "ATM"),
    ]
    scan.party_counts = [
        pl.DataFrame({"party_id": [9, 4]}, schema={"party_id": pl.UInt64}).with_columns(
            n=pl.lit(2, pl.UInt32)
        )
    ]
    scan.campaign_flows = [
        pl.DataFrame({"campaign_id": [77], "n": [1]}, schema={"campaign_id": pl.UInt64, "n": pl.UInt32})
    ]
    scan.amounts = [
        pl.DataFrame(
            {
                "channel": ["POS", "POS"],
                "amount_minor": [500, 500],
                "legit": [True, True],
                "amount_usd": [5.0, 5.0],
                "n": [1, 2],
            },
            schema_overrides={"n": pl.UInt32},
        )
    ]
    scan.sample = [pl.DataFrame({"flow_id": [3]}), pl.DataFrame({"flow_id": [1]})]
    scan.flow_ids_nonarrival = [np.array([7, 9], np.uint64), np.array([7], np.uint64)]
    err = EngineError("E_SCHEMA", "column sector: values outside enum, e.g. 'X'", where="part-00000.parquet")
    return ShardFindings(scan, {"arrivals": 4, "flows": 5, "short": 0}, {"transactions": err, "events": None})


def test_tables_hold_the_scan_with_partial_counts_summed() -> None:
    t = to_tables(_findings())
    assert list(t) == list(SCAN_TABLES)  # what S7 reads is what S7a writes, and what its rule declares
    assert set(SCAN_TABLES) == {name for name, e in dictionary().items() if e["owner"] == "6B.S7a"}
    cube = t["s7_scan_cube"]
    assert cube.select("channel", "n", "usd", "cleared").rows() == [
        ("ATM", 1, 7, 1),
        ("ECOM", 2, 900, 1),
        ("POS", 3, 200, 2),
        ("TRANSFER", 1, 50, 1),
    ]
    assert cube["n"].dtype == pl.Int64
    assert t["s7_scan_keys"].select(pl.col("kind").cast(pl.String), "key_id", "n").rows() == [
        ("PARTY", 4, 2),
        ("PARTY", 9, 2),
        ("CAMPAIGN", 77, 1),
        ("NONARRIVAL_FLOW", 7, 2),  # a flow id seen twice in the shard: S7 counts it as a duplicate
        ("NONARRIVAL_FLOW", 9, 1),
    ]
    assert t["s7_scan_amounts"].rows() == [("POS", 500, True, 5.0, 3)]
    assert t["s7_scan_sample"]["flow_id"].to_list() == [3, 1]  # stream order, not sorted
    measures = {m: (v, c, d) for m, v, c, d in t["s7_scan_measures"].iter_rows()}
    assert measures["total:rows"] == (5, None, None)
    assert measures["total:tactic_bits"] == (5, None, None)
    assert measures["violation:duplicate_flow_id"] == (2, None, None)
    assert measures["origin:RETRY"] == (1, None, None)
    assert measures["coverage:arrivals"] == (4, None, None)
    assert measures["schema:transactions"] == (1, "E_SCHEMA", "column sector: values outside enum, e.g. 'X'")
    assert measures["schema:events"] == (0, None, None)


def test_findings_come_back_from_the_tables() -> None:
    back = from_tables(to_tables(_findings()))
    scan = back.scan
    assert (scan.rows, scan.tactic_bits, scan.pair_rows, scan.repeat_pair_rows, scan.sessions) == (
        5,
        5,
        4,
        2,
        3,
    )
    assert scan.violations == {"duplicate_flow_id": 2, "latency_not_positive": 0}
    assert scan.origin_counts == {"BASELINE": 4, "RETRY": 1}
    assert back.coverage == {"arrivals": 4, "flows": 5, "short": 0}
    err = back.verdicts["transactions"]
    assert err is not None and (err.code, err.what) == (
        "E_SCHEMA",
        "column sector: values outside enum, e.g. 'X'",
    )
    assert back.verdicts["events"] is None
    assert sorted(np.concatenate(scan.flow_ids_nonarrival).tolist()) == [7, 7, 9]
    assert scan.party_counts[0].rows() == [(4, 2), (9, 2)]
    assert scan.campaign_flows[0].rows() == [(77, 1)]
    assert scan.sample[0]["flow_id"].to_list() == [3, 1]


IDENTITY = {"seed": 42, "manifest_fingerprint": "a" * 64, "scenario_id": "baseline", "shard": 0}


@pytest.mark.parametrize("dataset", ["s7_scan_cube", "s7_scan_keys", "s7_scan_amounts", "s7_scan_measures"])
def test_tables_meet_their_contract(dataset: str) -> None:
    df = to_tables(_findings())[dataset]
    ident = pl.DataFrame(IDENTITY, schema_overrides={"seed": pl.UInt64, "shard": pl.UInt16})
    ref = dictionary()[dataset]["schema"]
    validate_table(ident.join(df, how="cross"), ref, where=dataset, state="6B.S7a")
    with pytest.raises(EngineError) as info:  # the same rows twice break the key
        validate_table(ident.join(pl.concat([df, df]), how="cross"), ref, where=dataset, state="6B.S7a")
    assert info.value.code == "E_SCHEMA"


def test_an_empty_shard_writes_empty_tables_in_the_contract_types() -> None:
    t = to_tables(ShardFindings(ShardScan()))
    for name in ("s7_scan_sample", "s7_scan_cube", "s7_scan_amounts"):
        assert t[name].height == 0 and t[name].schema == empty(name).schema
    assert t["s7_scan_keys"].height == 0
    back = from_tables(t)
    assert back.scan.rows == 0 and back.scan.sample == []


class _Shards:
    """What S7 reads of a scenario: each shard's S7a tables."""

    shards = 2

    def __init__(self, tables: dict[int, dict[str, pl.DataFrame]]) -> None:
        self.tables = tables

    def read(self, dataset: str, *, scenario: str, shard: int) -> pl.DataFrame:
        return self.tables[shard][dataset]


def test_s7_fails_the_shard_whose_contract_check_failed_and_merges_the_counts() -> None:
    bad = to_tables(_findings())
    good = to_tables(ShardFindings(_findings().scan, {"arrivals": 1, "flows": 5, "short": 0}, {}))
    book = CheckBook()
    total, coverage = scan_scenario(_Shards({0: good, 1: bad}), book, "baseline")  # type: ignore[arg-type]
    checks = {c["id"]: c for c in book.checks}
    assert checks["schema.transactions.baseline.0"]["status"] == "PASS"
    failed = checks["schema.transactions.baseline.1"]
    assert (failed["status"], failed["code"]) == ("FAIL", "E_SCHEMA")
    assert failed["detail"] == "column sector: values outside enum, e.g. 'X'"
    assert checks["schema.events.baseline.1"]["status"] == "PASS"
    assert total.rows == 10 and coverage["arrivals"] == 5 and coverage["flows"] == 10
    # flow ids 7, 9, 7 in each shard: 6 ids, 2 distinct
    assert total.violations["duplicate_inserted_flow_id"] == 4
    assert total.violations["duplicate_flow_id"] == 4


@pytest.mark.e2e
def test_tiny_scan_tables_match_the_transactions(tiny_world: Path) -> None:
    """Each table re-derived from the published transactions alone (tiny: one shard per scenario)."""
    for scenario in ("baseline", "holiday_peak"):
        part = f"seed=42/*/scenario_id={scenario}/shard=0"
        tx = pl.read_parquet(next(tiny_world.glob(f"data/layer3/6B/transactions/{part}")))
        t = {n: pl.read_parquet(next(tiny_world.glob(f"data/layer3/6B/{n}/{part}"))) for n in SCAN_TABLES}
        measures = dict(t["s7_scan_measures"].select("measure", "value").iter_rows())
        assert measures["total:rows"] == measures["coverage:flows"] == tx.height > 0
        assert measures["schema:transactions"] == measures["schema:events"] == 0
        assert int(t["s7_scan_cube"]["n"].sum()) == tx.height
        assert int(t["s7_scan_cube"]["cleared"].sum()) == int(tx["is_cleared"].sum())
        keys = t["s7_scan_keys"].with_columns(pl.col("kind").cast(pl.String))
        parties = tx.filter(pl.col("party_id").is_not_null()).group_by("party_id").len().sort("party_id")
        got = keys.filter(pl.col("kind") == "PARTY").select("key_id", "n")
        assert got.rows() == [(p, n) for p, n in parties.iter_rows()]
        nonarrival = tx.filter(pl.col("arrival_id").is_null())["flow_id"].sort().to_list()
        got = keys.filter(pl.col("kind") == "NONARRIVAL_FLOW")
        assert got["key_id"].to_list() == nonarrival and set(got["n"].to_list()) <= {1}
        amounts = (
            tx.group_by(pl.col("channel").cast(pl.String), "amount_minor")
            .len()
            .sort("channel", "amount_minor")
        )
        got = (
            t["s7_scan_amounts"]
            .group_by("channel", "amount_minor")
            .agg(pl.col("n").sum())
            .sort("channel", "amount_minor")
        )
        assert got.rows() == amounts.rows()
        ids = tx["flow_id"].to_numpy()
        keep = (splitmix64(ids) % np.uint64(SAMPLE_MOD) == 0) | (
            tx["truth_label"].cast(pl.String) != "LEGIT"
        ).to_numpy()
        assert t["s7_scan_sample"]["flow_id"].to_list() == ids[keep].tolist()
