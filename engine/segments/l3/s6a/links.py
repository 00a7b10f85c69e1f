"""6A.R06a: device–IP link-kind shares against the ips.yaml expectation, per region (design §3.9).

A customer device draws one Bernoulli per kind with P_k = min(1, p[type, k]·factor[segment, k]·
exp(tilt_k·(cbp − 0.5))), and a device that drew none gets its fallback kind, so its expected links of kind k
are P_k + [k = fallback]·Π_j (1 − P_j). The owner's segment and cross-border propensity decide; a household
device takes its household's first member's (the household row S5 draws it from)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from engine.segments.l3.s6a.policy import CUSTOMER_LINK_KINDS, Ips


def device_owners(t: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Customer devices with device_type and the deciding party's segment, cbp, region and household."""
    members = t["parties"].select(
        "party_id",
        "household_id",
        pl.col("segment").cast(pl.String),
        pl.col("cross_border_propensity").cast(pl.Float64).alias("cbp"),
        pl.col("region").cast(pl.String),
    )
    first = members.sort("party_id").unique("household_id", keep="first").drop("party_id")
    dev = t["devices"].select(
        "device_id", pl.col("owner_kind").cast(pl.String), "owner_party_id", "household_id",
        pl.col("device_type").cast(pl.String),
    )  # fmt: skip
    personal = (
        dev.filter(pl.col("owner_kind") == "PARTY")
        .drop("household_id")
        .join(members.rename({"party_id": "owner_party_id"}), on="owner_party_id")
    )
    shared = dev.filter(pl.col("owner_kind") == "HOUSEHOLD").join(first, on="household_id")
    cols = ["device_id", "device_type", "segment", "cbp", "region", "household_id"]
    # by device_id: a join's row order may follow its threads, and kind_gap sums floats in this order
    return pl.concat([personal.select(cols), shared.select(cols)]).sort("device_id")


def expected_links(owners: pl.DataFrame, pol: Ips) -> np.ndarray:
    """Expected links of each customer kind per device, shape (devices, kinds), vectorised over devices."""
    kinds = [pol.customer_kinds[k] for k in CUSTOMER_LINK_KINDS]
    p = np.column_stack(
        [
            owners["device_type"].replace_strict(k.p, default=0.0, return_dtype=pl.Float64).to_numpy()
            * owners["segment"]
            .replace_strict(k.segment_factor, default=k.default_factor, return_dtype=pl.Float64)
            .to_numpy()
            * np.exp(k.cross_border_tilt * (owners["cbp"].to_numpy() - 0.5))
            for k in kinds
        ]
    )
    p = np.minimum(p, 1.0)
    none = np.prod(1.0 - p, axis=1)
    fallback = [CUSTOMER_LINK_KINDS.index(k) for k in pol.fallback_kinds]
    home = owners["household_id"].is_not_null().to_numpy()  # the household kind needs a household
    p[home, fallback[0]] += none[home]
    p[~home, fallback[1]] += none[~home]
    return p


def kind_gap(t: dict[str, pl.DataFrame], pol: Ips, min_links: int) -> tuple[float, int]:
    """The largest |published − expected| link-kind share over regions with at least `min_links` customer
    links; support = the links in those regions."""
    owners = device_owners(t)
    want = expected_links(owners, pol)
    links = (
        t["ip_links"]
        .join(owners.select("device_id", "region"), on="device_id")
        .select("region", pl.col("link_kind").cast(pl.String))
    )
    worst, support = float("nan"), 0
    regions = owners["region"].to_numpy()
    for (region,), g in links.group_by(["region"], maintain_order=True):
        if g.height < min_links:
            continue
        have = dict(g["link_kind"].value_counts().iter_rows())
        exp = want[regions == region].sum(axis=0)
        gap = max(
            abs(have.get(k, 0) / g.height - exp[j] / exp.sum()) for j, k in enumerate(CUSTOMER_LINK_KINDS)
        )
        worst = gap if math.isnan(worst) else max(worst, gap)
        support += g.height
    return worst, support
