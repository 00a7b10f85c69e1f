"""6A.S5 devices and IPs (design layer2_3.md §3.7): water-filling and pool sizing by known answers and
properties, a few device draws re-derived in plain Python from numpy's Philox (not the engine's kernel), and
the caps and coverage invariants on a hand-made population of households."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import yaml12
from engine.core.errors import EngineError
from engine.core.rng import RngLedger, counter_words
from engine.core.validation import PhiloxBlocks, u01
from engine.segments.l3.s6a import rng_accounting
from engine.segments.l3.s6a import s5_devices_ips as s5
from engine.segments.l3.s6a.ip_pools import n_ips, pool_sizes, water_fill
from engine.segments.l3.s6a.policy import POLICIES, Devices, Ips, Population

REPO = Path(__file__).resolve().parents[2]
DEVICE_KEY, IP_KEY = (0xA5A5_0001, 0x5A5A_0002), (0xC3C3_0003, 0x3C3C_0004)
START = dt.date(2026, 3, 2)


def policy(name: str) -> Any:
    return POLICIES[name].model_validate(yaml12.load((REPO / f"config/policies/6A/{name}.yaml").read_text()))


class Ctx:
    """The two StateContext methods S5's functions call, with fixed keys and a real ledger."""

    state = "6A.S5"

    def __init__(self) -> None:
        self.ledger = RngLedger()

    def family_key(self, label: str) -> tuple[int, int]:
        return {"device": DEVICE_KEY, "ip": IP_KEY}[label]

    def record_draws(self, label: str, counter: Any, *, draws: Any, blocks: Any, value: np.ndarray) -> None:
        n = np.asarray(value).shape[0]
        if n:
            c0 = counter_words(n, counter)[0]
            d, b = (int(np.broadcast_to(np.asarray(x), (n,)).sum()) for x in (draws, blocks))
            self.ledger.record(f"6A.{label}", d, b, int(c0.min()), int(c0.max()), streams=n)


# --- pool sizing --------------------------------------------------------------------------------------------
def test_water_fill_known_answers() -> None:
    assert water_fill(np.array([5, 1, 0]), np.array([3, 3, 3])).tolist() == [3, 3, 0]
    assert water_fill(np.array([9, 0, 0, 1]), np.array([4, 4, 4, 4])).tolist() == [4, 4, 1, 1]
    assert water_fill(np.array([2, 7]), np.array([6, 3])).tolist() == [6, 3]  # overflow 4 → the first
    with pytest.raises(ValueError):
        water_fill(np.array([5, 5]), np.array([4, 4]))


def test_pool_counts_and_sizes_known_answers() -> None:
    assert n_ips(0, 60.0, 600) == 0
    assert n_ips(1000, 60.0, 600) == 17  # ⌈1000/60⌉
    assert n_ips(1000, 900.0, 600) == 2  # the cap binds: ⌈1000/600⌉
    assert pool_sizes(10, np.array([1.0, 1.0, 1.0]), 4).tolist() == [4, 3, 3]  # 1 each + 7 by remainder
    assert pool_sizes(9, np.array([100.0, 1.0]), 5).tolist() == [5, 4]  # 1 + 7 → capped at 5, overflow moves


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 5000),
    st.floats(1.0, 800.0),
    st.integers(1, 700),
    st.lists(st.floats(0.01, 50.0), min_size=1, max_size=400),
)
def test_pool_sizes_properties(links: int, mean: float, cap: int, raw: list[float]) -> None:
    """Sizes sum to L, each is in [1, cap], for any weights (the loop always terminates: n·cap ≥ L)."""
    n = n_ips(links, mean, cap)
    weights = np.resize(np.array(raw), n)
    sizes = pool_sizes(links, weights, cap)
    assert sizes.shape[0] == n and int(sizes.sum()) == links
    assert sizes.min() >= 1 and sizes.max() <= cap


# --- S0 checks ----------------------------------------------------------------------------------------------
def test_cap_checks() -> None:
    dev: Devices = policy("devices")
    ips: Ips = policy("ips")
    pop: Population = policy("population")
    s5.check_devices(dev, pop)
    s5.check_ips(ips, dev, pop)
    for bad in (
        lambda: s5.check_devices(
            dev.model_copy(update={"max_parties_per_device": pop.households.max_size - 1}), pop
        ),
        lambda: s5.check_devices(dev.model_copy(update={"personal_cap": dev.max_devices_per_party}), pop),
        lambda: s5.check_ips(ips.model_copy(update={"max_ips_per_device": 2}), dev, pop),
        lambda: s5.check_ips(ips.model_copy(update={"max_devices_per_ip": 50}), dev, pop),
    ):
        with pytest.raises(EngineError) as err:
            bad()
        assert err.value.code == "E_6A_CAP_INCONSISTENT"


# --- a hand-made population ---------------------------------------------------------------------------------
def population(n: int = 3000) -> pl.DataFrame:
    """RETAIL households of 1–5 members in DE and US, plus BUSINESS parties of one, in party order."""
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 6, n)
    household = np.repeat(np.arange(1, n + 1), sizes)[:n]
    business = np.arange(n) >= n - n // 10
    household = np.where(business, n + np.arange(n), household)
    segment = np.where(
        business, "BUSINESS_SME", rng.choice(["RETAIL_STUDENT", "RETAIL_FAMILY", "RETAIL_RETIRED"], n)
    )
    us = np.arange(n) % 3 > 0
    return pl.DataFrame(
        {
            "party_id": np.arange(1, n + 1, dtype=np.uint64),
            "country_iso": np.where(us, "US", "DE"),
            "region": np.where(us, "NORTH_AMERICA", "EUROPE"),
            "party_type": np.where(business, "BUSINESS", "RETAIL"),
            "segment": segment,
            "household_id": household.astype(np.uint64),
            "onboarding_date": [dt.date(2024, 6, 1)] * n,
            "cross_border_propensity": rng.random(n).astype(np.float32),
        }
    )


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    dev, ips = policy("devices"), policy("ips")
    parties = population()
    ctx = Ctx()
    devices, device_links, links = s5.make_devices(ctx, parties, dev, ips, START)
    terminals = pl.DataFrame(
        {"site_ip_id": pl.Series([1, 2, 3], dtype=pl.UInt64), "legal_country_iso": ["US", "DE", "US"]}
    )
    iso = pl.DataFrame({"country_iso": ["DE", "US"], "iso_num": [276, 840]})
    ip_table, ip_links = s5.link_ips(ctx, devices, links, terminals, iso, ips)
    return {
        "parties": parties, "devices": devices, "device_links": device_links, "ips": ip_table,
        "ip_links": ip_links, "dev": dev, "pol": ips, "ctx": ctx,
    }  # fmt: skip


def test_caps_and_coverage(world: dict[str, Any]) -> None:
    found = s5.check_caps(
        world["devices"], world["device_links"], world["ips"], world["ip_links"], world["dev"], world["pol"]
    )
    assert found["devices_per_party"] <= 12 and found["parties_per_device"] <= 6
    assert found["ips_per_device"] <= 20 and found["devices_per_ip"] <= 600
    assert found["customer_devices_without_ip"] == 0
    links = world["ip_links"]
    assert links.select("ip_id", "device_id").is_unique().all()
    assert links.select("device_id", "link_kind").is_unique().all()  # ≤ 1 link per kind
    assert world["devices"]["device_id"].to_list() == list(range(1, world["devices"].height + 1))
    assert world["ips"]["ip_id"].to_list() == list(range(1, world["ips"].height + 1))
    assert world["ips"]["n_devices"].sum() == links.height


def test_household_devices_link_every_member(world: dict[str, Any]) -> None:
    dev, dl, parties = world["devices"], world["device_links"], world["parties"]
    shared = dev.filter(pl.col("owner_kind") == "HOUSEHOLD")
    assert shared.height > 0
    members = parties.group_by("household_id").len("members")
    got = dl.filter(pl.col("link_role") == "HOUSEHOLD_MEMBER").group_by("device_id").len("linked")
    joined = shared.join(got, on="device_id").join(members, on="household_id")
    assert joined.height == shared.height and (joined["linked"] == joined["members"]).all()
    assert (joined["members"] >= 2).all() and (joined["n_parties"] == joined["members"]).all()
    owners = dl.filter(pl.col("link_role") == "OWNER").join(dev, on="device_id")
    assert (owners["party_id"] == owners["owner_party_id"]).all()


def test_home_ips_are_per_household_and_operators_anonymised(world: dict[str, Any]) -> None:
    links, dev, ips = world["ip_links"], world["devices"], world["ips"]
    home = links.filter(pl.col("link_kind") == "HOME").join(
        dev.select("device_id", "home_household"), on="device_id"
    )
    per_ip = home.group_by("ip_id").agg(pl.col("home_household").n_unique())
    assert (per_ip["home_household"] == 1).all()
    assert home.group_by("home_household").agg(pl.col("ip_id").n_unique())["ip_id"].max() == 1
    ops = dev.filter(pl.col("owner_kind") == "OPERATOR")["device_id"]
    op_ips = links.filter(pl.col("device_id").is_in(ops.implode())).join(ips, on="ip_id")
    assert op_ips.height >= ops.len()
    assert set(op_ips["ip_type"].cast(pl.String)) <= {"VPN_PROXY", "DATACENTRE", "RESIDENTIAL_PROXY"}
    assert set(ips.filter(pl.col("ip_id") <= 3)["ip_type"].cast(pl.String)) == {"CORPORATE"}  # site IPs first
    assert ips.filter(pl.col("ip_id") <= 3)["n_devices"].sum() == 0


def truncated_poisson(u: float, lam: float, kmax: int) -> int:
    pmf = [math.exp(-lam) * lam**k / math.factorial(k) for k in range(kmax + 1)]
    t, acc = u * sum(pmf), 0.0
    for k, p in enumerate(pmf):
        acc += p
        if t <= acc:
            return k
    return kmax


def test_device_draws_replay(world: dict[str, Any]) -> None:
    """Personal counts from w0 of ⟨party_id, 0, 0, 0⟩; a device's type from w0 and HOME Bernoulli from lane 3
    (w3 of block d = 0) of ⟨party_id, slot, 0, d⟩ — numpy's Philox against the engine's kernels."""
    dev: Devices = world["dev"]
    pol: Ips = world["pol"]
    gen = PhiloxBlocks(DEVICE_KEY)
    devices, links = world["devices"], world["ip_links"]
    personal = devices.filter(pl.col("owner_kind") == "PARTY").with_columns(
        (pl.col("device_id") - pl.col("device_id").min().over("owner_party_id") + 1).alias("slot")
    )  # a party's devices are consecutive ids in slot order
    counts = dict(personal.group_by("owner_party_id").len().iter_rows())
    for row in world["parties"].head(60).iter_rows(named=True):
        u = u01(gen.block(row["party_id"], 0, 0, 0)[0])
        assert counts[row["party_id"]] == 1 + truncated_poisson(
            u, dev.lambdas[row["segment"]], dev.personal_cap - 1
        )
    has_home = set(links.filter(pl.col("link_kind") == "HOME")["device_id"].to_list())
    seg_of = dict(world["parties"].select("party_id", "segment").iter_rows())
    for row in personal.head(60).iter_rows(named=True):
        w = gen.block(row["owner_party_id"], row["slot"], 0, 0)
        mix = dev.type_mix["first" if row["slot"] == 1 else "other"]
        cdf = np.cumsum([mix.get(t, 0.0) for t in ("MOBILE", "TABLET", "DESKTOP", "EMULATOR")])
        assert (
            row["device_type"]
            == ("MOBILE", "TABLET", "DESKTOP", "EMULATOR")[int(np.searchsorted(cdf, u01(w[0]), side="right"))]
        )
        home = pol.customer_kinds["HOME"]
        p = home.p[row["device_type"]] * home.segment_factor.get(
            seg_of[row["owner_party_id"]], home.default_factor
        )
        if u01(w[3]) < min(p, 1.0):
            assert row["device_id"] in has_home


def test_link_kind_shares_near_expectation(world: dict[str, Any]) -> None:
    """Drawn link kinds match the mean of the per-device probabilities (plus the fallback) within 2 pp."""
    pol: Ips = world["pol"]
    devices = world["devices"].filter(pl.col("owner_kind") != "OPERATOR")
    heads = world["parties"].sort("party_id").unique("household_id", keep="first")
    cols = ["segment", "cross_border_propensity", "party_type"]
    owner = devices.join(
        world["parties"].select(pl.col("party_id").alias("owner_party_id"), *cols),
        on="owner_party_id",
        how="left",
    ).join(heads.select("household_id", *cols), on="household_id", how="left", suffix="_h")
    seg = owner["segment"].fill_null(owner["segment_h"]).to_list()
    cbp = owner["cross_border_propensity"].fill_null(owner["cross_border_propensity_h"]).to_numpy()
    ptype = owner["party_type"].fill_null(owner["party_type_h"]).to_list()
    dtype = owner["device_type"].cast(pl.String).to_list()
    kinds = list(pol.customer_kinds)
    expected = {k: 0.0 for k in kinds}
    for i in range(owner.height):
        ps = {}
        for k, spec in pol.customer_kinds.items():
            f = spec.segment_factor.get(seg[i], spec.default_factor)
            ps[k] = min(
                1.0, spec.p.get(dtype[i], 0.0) * f * math.exp(spec.cross_border_tilt * (cbp[i] - 0.5))
            )
            expected[k] += ps[k]
        expected[pol.fallback_kinds[0 if ptype[i] == "RETAIL" else 1]] += math.prod(
            1 - p for p in ps.values()
        )
    total = sum(expected.values())
    drawn = world["ip_links"].filter(pl.col("device_id").is_in(devices["device_id"].implode()))
    have = dict(drawn["link_kind"].cast(pl.String).value_counts().iter_rows())
    for k in kinds:
        assert abs(have.get(k, 0) / drawn.height - expected[k] / total) < 0.02, k


def test_rng_accounting_recomputes_from_tables(world: dict[str, Any]) -> None:
    """The ledger S5 wrote equals what 6A.S7 recomputes from the published tables alone."""
    t = {k: world[k] for k in ("parties", "devices", "ips", "ip_links")}
    t["terminals"] = pl.DataFrame({"site_ip_id": pl.Series([1, 2, 3], dtype=pl.UInt64)})
    pols = {"devices": world["dev"], "ips": world["pol"], "iso_num": {"DE": 276, "US": 840}}
    ledger = world["ctx"].ledger.as_dict()
    assert rng_accounting.device(t, pols) == ledger["6A.device"]
    assert rng_accounting.ip(t, pols) == ledger["6A.ip"]


def test_cap_breach_is_refused(world: dict[str, Any]) -> None:
    """A table past a cap (here an IP with 601 devices, a device with no IP) is E_6A_CAP_VIOLATION."""
    args = [world[k] for k in ("devices", "device_links", "ips", "ip_links", "dev", "pol")]
    crowded = world["ips"].with_columns(
        pl.when(pl.col("ip_id") == 1).then(601).otherwise("n_devices").alias("n_devices")
    )
    bare = world["ip_links"].filter(pl.col("device_id") != 1)
    for ips, links in ((crowded, args[3]), (args[2], bare)):
        with pytest.raises(EngineError) as err:
            s5.check_caps(args[0], args[1], ips, links, args[4], args[5])
        assert err.value.code == "E_6A_CAP_VIOLATION"
