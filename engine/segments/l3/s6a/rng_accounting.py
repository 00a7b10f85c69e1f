"""6A.S7's RNG accounting for the families it does not replay: each family's draws, blocks, streams and first
counter word recomputed from the published tables alone (design §0.4: the last state recomputes the expected
totals), and compared with what the states recorded. 6A.risk and 6A.role are replayed instead (replay.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from engine.core.validation import USAGE, CheckBook
from engine.segments.l3.s6a.policy import IP_TYPES

Tables = dict[str, pl.DataFrame]
Policies = dict[str, Any]


def usage(draws: int, blocks: int, streams: int, c0: np.ndarray) -> dict[str, Any]:
    """A family's totals as the ledger writes them (counter bounds as decimal strings)."""
    out: dict[str, Any] = {"draws": int(draws), "blocks": int(blocks), "streams": int(streams)}
    if c0.size:
        out |= {"counter_lo": str(int(c0.min())), "counter_hi": str(int(c0.max()))}
    return out


def terminal(t: Tables, pols: Policies) -> dict[str, Any]:
    """6A.terminal: per CP site, the count block ⟨site_id, 0, 0, 0⟩ (one lane) and, per terminal k, the block
    ⟨site_id, k, 0, 0⟩ (two lanes: kiosk and contactless)."""
    n = t["terminals"].group_by("site_id").agg(pl.len().alias("n"))
    k = int(n["n"].sum())
    return usage(n.height + 2 * k, n.height + k, n.height, n["site_id"].to_numpy())


def party(t: Tables, pols: Policies) -> dict[str, Any]:
    """6A.party: per party the activity block (one lane), the tenure block (two lanes) and two score blocks
    counted as one stream (eight lanes); per RETAIL household its head's size block (one lane)."""
    p = t["parties"]
    n = p.height
    heads = p.filter(pl.col("party_type").cast(pl.String) == "RETAIL")["household_id"].n_unique()
    return usage(11 * n + heads, 4 * n + heads, 3 * n + heads, p["party_id"].to_numpy())


def account(t: Tables, pols: Policies) -> dict[str, Any]:
    """6A.account: per party and product its type offers, the count block (CURRENT's reads two lanes, for
    the issuer too, the others one); per account its own block (four lanes)."""
    p = t["parties"]
    offered = {ptype: len(by_type) for ptype, by_type in pols["accounts"].products.items()}
    per_type = p.group_by(pl.col("party_type").cast(pl.String)).agg(pl.len().alias("n"))
    events = sum(offered.get(ptype, 0) * n for ptype, n in per_type.iter_rows())
    a = t["accounts"].height
    return usage(events + p.height + 4 * a, events + a, events + a, p["party_id"].to_numpy())


def instrument(t: Tables, pols: Policies) -> dict[str, Any]:
    """6A.instrument: one event per (account, slot of its type's list), present or not: a card or token slot
    reads two blocks (eight lanes), a bank-account slot one block (four lanes)."""
    slots = pols["instruments"].slots
    per_type = pl.DataFrame(
        {
            "account_type": list(slots),
            "cards": [sum(s.type != "BANK_ACCOUNT" for s in v) for v in slots.values()],
            "banks": [sum(s.type == "BANK_ACCOUNT" for s in v) for v in slots.values()],
        }
    )
    a = (
        t["accounts"]
        .select("account_id", pl.col("account_type").cast(pl.String))
        .join(per_type, on="account_type")
    )
    cards, banks = int(a["cards"].sum()), int(a["banks"].sum())
    ids = a.filter(pl.col("cards") + pl.col("banks") > 0)["account_id"].to_numpy()
    return usage(8 * cards + 4 * banks, 2 * cards + banks, cards + banks, ids)


def device(t: Tables, pols: Policies) -> dict[str, Any]:
    """6A.device: per party its count block (one lane); per household of at least min_size members its
    sharing block (two lanes); per customer device its stream of 3 + K_customer lanes, per operator device
    3 + K_operator + 1 (the country), each ⌈lanes/4⌉ blocks."""
    ips = pols["ips"]
    n = t["parties"].height
    members = t["parties"].group_by("household_id").agg(pl.len().alias("m"))
    eligible = members.filter(pl.col("m") >= pols["devices"].household.min_size)["household_id"].to_numpy()
    kinds = t["devices"]["owner_kind"].cast(pl.String)
    n_op = int((kinds == "OPERATOR").sum())
    n_cust = t["devices"].height - n_op
    lanes_c, lanes_o = 3 + len(ips.customer_kinds), 4 + len(ips.operator_kinds)
    draws = n + 2 * eligible.size + lanes_c * n_cust + lanes_o * n_op
    blocks = n + eligible.size + -(-lanes_c // 4) * n_cust + -(-lanes_o // 4) * n_op
    c0 = np.concatenate(
        [t["parties"]["party_id"].to_numpy(), eligible, np.arange(1, n_op + 1, dtype=np.uint64)]
    )
    return usage(draws, blocks, n + eligible.size + n_cust + n_op, c0)


def ip(t: Tables, pols: Policies) -> dict[str, Any]:
    """6A.ip, counter word c0 = iso_num << 8 | IP type index: per site IP one lane; per household IP two
    (counted under RESIDENTIAL, proxies too); per other IP three; per residential-proxy link and per pooled
    link one (the pool's ordering lane)."""
    sites = t["terminals"]["site_ip_id"].unique()
    ips = t["ips"].with_columns(pl.col("ip_type").cast(pl.String), pl.col("country_iso").cast(pl.String))
    ips = ips.with_columns(
        pl.when(pl.col("ip_id").is_in(sites.implode()))
        .then(pl.lit("SITE"))
        .when(pl.col("ip_type").is_in(["RESIDENTIAL", "RESIDENTIAL_PROXY"]))
        .then(pl.lit("HOUSEHOLD"))
        .otherwise(pl.lit("POOL"))
        .alias("group")
    )
    links = t["ip_links"].select("ip_id", pl.col("link_kind").cast(pl.String)).join(ips, on="ip_id")
    n = dict(ips.group_by("group").len().iter_rows())
    proxy_links = links.filter(pl.col("link_kind") == "ANON_PROXY")
    pool_links = links.filter(pl.col("group") == "POOL").height
    r, pool, site = n.get("HOUSEHOLD", 0), n.get("POOL", 0), n.get("SITE", 0)
    events = site + r + pool + proxy_links.height + pool_links
    types = {name: i for i, name in enumerate(IP_TYPES)}
    code = {
        "SITE": pols["ips"].site_ip_type,
        "HOUSEHOLD": "RESIDENTIAL",
    }
    iso = pols["iso_num"]
    c0 = [
        (iso[c] << 8) | types[code.get(g, tp)]
        for c, g, tp in ips.select("country_iso", "group", "ip_type").unique().iter_rows()
    ] + [(iso[c] << 8) | types["RESIDENTIAL_PROXY"] for c in proxy_links["country_iso"].unique().to_list()]
    draws = site + 2 * r + 3 * pool + proxy_links.height + pool_links
    return usage(draws, events, events, np.asarray(c0, dtype=np.uint64))


RULES: dict[str, Callable[[Tables, Policies], dict[str, Any]]] = {
    "6A.device": device,
    "6A.instrument": instrument,
    "6A.ip": ip,
    "6A.account": account,
    "6A.party": party,
    "6A.terminal": terminal,
}


def check(
    book: CheckBook, recorded: dict[str, Any], replayed: set[str], t: Tables, pols: Policies
) -> dict[str, Any]:
    """Compare every recorded family that is not replayed with its recomputed totals (`rng.<family>.<q>`);
    a family with no rule here fails `rng.accounted`. Returns the recomputed totals."""
    expected: dict[str, Any] = {}
    missing = sorted(set(recorded) - replayed - set(RULES))
    book.structural(
        "rng.accounted",
        not missing,
        f"recorded but neither replayed nor accounted: {', '.join(missing)}" if missing else "",
        "E_RNG_ACCOUNTING",
    )
    for family, rule in RULES.items():
        want = rule(t, pols)
        have = recorded.get(family, {})
        for q in (*USAGE, "counter_lo", "counter_hi"):
            book.structural(
                f"rng.{family}.{q}",
                have.get(q, 0) == want.get(q, 0),
                f"{family}: recorded {q} {have.get(q, 0)}, recomputed {want.get(q, 0)}",
                "E_RNG_ACCOUNTING",
            )
        expected[family] = want
    return expected
