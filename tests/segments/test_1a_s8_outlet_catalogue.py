"""1A.S8: the egress catalogues on the tiny world — conservation, site order, ids, merchant rows."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from engine.core.contracts import dataset_file
from engine.core.ids import hid
from engine.core.layout import report_file
from tests.conftest import tiny_plan

SEED = 42


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> dict[str, pl.DataFrame]:
    plan = tiny_plan(tiny_world)
    mf = plan["1A"].manifest_fingerprint
    names = ("s1_hurdle", "s2_outlet_count", "s3_candidates", "s7_country_counts", "outlet_catalogue",
             "merchant_catalogue")  # fmt: skip
    out = {n: pl.read_parquet(dataset_file(tiny_world, n, mf=mf, seed=SEED)) for n in names}
    out["universe"] = pl.read_parquet(
        dataset_file(tiny_world, "merchant_universe", mf=plan["ING"].manifest_fingerprint)
    )
    ref = next(r for r in plan["1A"].references if r.name == "ref_currencies")
    out["ref_currencies"] = pl.read_parquet(tiny_world / ref.relpath)
    return out


def test_sites_per_merchant_equal_the_outlet_count(world: dict[str, pl.DataFrame]) -> None:
    oc, s2 = world["outlet_catalogue"], world["s2_outlet_count"]
    per = oc.group_by("merchant_id").agg(
        pl.len().alias("rows"),
        pl.col("n_outlets_total").min().alias("lo"),
        pl.col("n_outlets_total").max().alias("hi"),
    )
    joined = s2.select("merchant_id", "n_outlets").join(per, on="merchant_id", how="full", coalesce=True)
    assert joined.height == world["universe"].height == s2.height
    assert joined.null_count().sum_horizontal().item() == 0  # every merchant has sites, no stray merchant
    assert (joined["rows"] == joined["n_outlets"]).all()
    assert (joined["lo"] == joined["n_outlets"]).all() and (joined["hi"] == joined["n_outlets"]).all()


def test_sites_per_country_equal_s7_and_site_order_is_1_to_n(world: dict[str, pl.DataFrame]) -> None:
    oc, s7 = world["outlet_catalogue"], world["s7_country_counts"]
    per = oc.group_by("merchant_id", "legal_country_iso").agg(
        pl.col("site_order").sort().alias("orders"), pl.col("n_outlets_country").unique().alias("nc")
    )
    joined = s7.select("merchant_id", pl.col("country_iso").alias("legal_country_iso"), "n_sites").join(
        per, on=["merchant_id", "legal_country_iso"], how="full", coalesce=True
    )
    assert joined.height == s7.height == per.height
    for n_sites, orders, nc in joined.select("n_sites", "orders", "nc").iter_rows():
        assert orders == list(range(1, n_sites + 1))
        assert nc == [n_sites]


def test_single_site_merchants_have_one_home_row(world: dict[str, pl.DataFrame]) -> None:
    oc = world["outlet_catalogue"]
    single = world["s1_hurdle"].filter(~pl.col("is_multi")).select("merchant_id")
    assert single.height > 0
    rows = oc.join(single, on="merchant_id", how="semi")
    assert rows.height == single.height
    assert not rows["is_multi"].any()
    assert (rows["legal_country_iso"] == rows["home_country_iso"]).all()
    assert rows["site_order"].to_list() == [1] * rows.height
    assert rows["n_outlets_total"].to_list() == [1] * rows.height
    assert rows["candidate_rank"].to_list() == [0] * rows.height
    multi = oc.join(single, on="merchant_id", how="anti")
    assert multi["is_multi"].all() and (multi["n_outlets_total"] >= 2).all()


def test_site_id_is_the_plain_hash(world: dict[str, pl.DataFrame], tiny_world: Path) -> None:
    oc = world["outlet_catalogue"]
    keys = oc.select("merchant_id", "legal_country_iso", "site_order").iter_rows()
    want = [hid("site", int(m), c, int(o)) for m, c, o in keys]
    assert oc["site_id"].to_list() == want
    assert oc["site_id"].to_list() == sorted(want)  # published in PK order
    mf = tiny_plan(tiny_world)["1A"].manifest_fingerprint
    report = json.loads(report_file(tiny_world, "1A", "s8_outlet_catalogue", mf, SEED).read_text())
    assert report["deviations"].get("site_id_probes", 0) == 0


def test_rows_carry_home_and_candidate_rank(world: dict[str, pl.DataFrame]) -> None:
    oc = world["outlet_catalogue"].join(
        world["universe"].select("merchant_id", pl.col("home_country_iso").alias("u_home")), on="merchant_id"
    )
    assert (oc["home_country_iso"] == oc["u_home"]).all()
    home_rows = oc.filter(pl.col("legal_country_iso") == pl.col("home_country_iso"))
    assert (home_rows["candidate_rank"] == 0).all()
    foreign = oc.filter(pl.col("legal_country_iso") != pl.col("home_country_iso")).join(
        world["s3_candidates"].select(
            "merchant_id",
            pl.col("country_iso").alias("legal_country_iso"),
            pl.col("candidate_rank").alias("r"),
        ),
        on=["merchant_id", "legal_country_iso"],
        how="left",
    )
    assert foreign.height > 0
    assert foreign["r"].null_count() == 0 and (foreign["candidate_rank"] == foreign["r"]).all()
    assert (foreign["candidate_rank"] >= 1).all()


def test_outlets_priced_in_the_legal_countrys_settlement_currency(world: dict[str, pl.DataFrame]) -> None:
    """Amendment 4: every outlet, home or foreign, carries its legal country's settlement currency."""
    oc = world["outlet_catalogue"]
    settle = dict(world["ref_currencies"].select("iso2", "settlement_currency").iter_rows())
    want = [settle[c] for c in oc["legal_country_iso"].to_list()]
    assert oc["currency"].to_list() == want
    foreign = oc.filter(pl.col("legal_country_iso") != pl.col("home_country_iso"))
    assert foreign.height > 0 and foreign["currency"].to_list() == [
        settle[c] for c in foreign["legal_country_iso"].to_list()
    ]
    assert oc.filter(pl.col("legal_country_iso") == "US")["currency"].unique().to_list() in ([], ["USD"])


def test_merchant_catalogue(world: dict[str, pl.DataFrame]) -> None:
    mc, oc, u = world["merchant_catalogue"], world["outlet_catalogue"], world["universe"]
    assert mc["merchant_id"].to_list() == u["merchant_id"].sort().to_list()
    cols = ["merchant_id", "mcc", "sector", "channel", "home_country_iso"]
    assert mc.select(cols).equals(u.select(cols).sort("merchant_id"))
    countries = oc.group_by("merchant_id").agg(pl.col("legal_country_iso").n_unique().alias("k"))
    j = mc.join(countries, on="merchant_id")
    assert j.height == mc.height and (j["n_countries"] == j["k"]).all()
    assert (mc["n_countries"] > 1).any()
    ccy = world["ref_currencies"].select(
        pl.col("iso2").alias("home_country_iso"), pl.col("currency").alias("c")
    )
    jc = mc.join(ccy, on="home_country_iso", how="left")
    assert jc["c"].null_count() == 0 and (jc["currency"] == jc["c"]).all()
    s = mc.join(
        world["s1_hurdle"].select("merchant_id", pl.col("is_multi").alias("m")), on="merchant_id"
    ).join(world["s2_outlet_count"].select("merchant_id", "n_outlets"), on="merchant_id")
    assert (s["is_multi"] == s["m"]).all() and (s["n_outlets_total"] == s["n_outlets"]).all()
