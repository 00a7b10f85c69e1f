"""3B.S1 — each merchant's virtual mode by the first matching rule, a HYBRID merchant's virtual share, and
one settlement node (country, city, point, tzid) per virtual or hybrid merchant."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.ids import assign_ids
from engine.core.state import StateContext
from engine.segments.l1.s1b.geo import CountryShapes
from engine.segments.l1.s3b.draws import beta_shares, blocks
from engine.segments.l1.s3b.places import representative_points, tz_resolver
from engine.segments.l1.s3b.policy import Settlement, VirtualRules
from engine.segments.l1.s3b.rules import classify


def pick(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Inverse CDF: per u the smallest i with u·Σw < cdf[i] (never a zero-weight category)."""
    cdf = np.cumsum(weights)
    idx = np.searchsorted(cdf, u * cdf[-1], side="right")
    return np.minimum(idx, int(np.argmax(cdf >= cdf[-1])))


def city_candidates(cities: pl.DataFrame, top_k: int, exponent: float) -> dict[str, pl.DataFrame]:
    """Per country its top-K cities by population (ties: city_id), in that order, with weight pop^exponent."""
    ranked = cities.sort(["iso2", "population", "city_id"], descending=[False, True, False])
    top = ranked.group_by("iso2", maintain_order=True).head(top_k)
    top = top.with_columns((pl.col("population").cast(pl.Float64) ** exponent).alias("w"))
    return {iso2: grp for (iso2,), grp in top.group_by(["iso2"], maintain_order=True)}


def settle(
    u: np.ndarray, modes: np.ndarray, home: np.ndarray, policy: Settlement, cities: dict[str, pl.DataFrame]
) -> dict[str, np.ndarray]:
    """Lanes u(w0) offshore coin, u(w1) hub, u(w2) city, per merchant; a country without cities gets no
    city (city index −1)."""
    p_off = np.array([policy.offshore_prob[m] for m in modes.tolist()], dtype=np.float64)
    offshore = u[:, 0] < p_off
    hubs = sorted(policy.hubs)
    hub = np.asarray(hubs)[pick(u[:, 1], np.array([policy.hubs[h] for h in hubs], dtype=np.float64))]
    country = np.where(offshore, hub, home)
    city = np.full(u.shape[0], -1, dtype=np.int64)
    for iso2 in np.unique(country).tolist():
        mine = country == iso2
        if iso2 in cities:
            city[mine] = pick(u[mine, 2], cities[iso2]["w"].to_numpy())
    return {"country": country, "offshore": offshore, "city": city}


def settlement_points(
    ctx: StateContext, s: dict[str, np.ndarray], cities: dict[str, pl.DataFrame]
) -> tuple[list[int | None], np.ndarray, np.ndarray]:
    """(city_id, lat, lon) per settlement: the drawn city's, or for a country without cities no city and the
    polygon's representative point (counted)."""
    n = s["city"].size
    city_id: list[int | None] = [None] * n
    lat, lon = np.zeros(n), np.zeros(n)
    for iso2 in np.unique(s["country"]).tolist():
        mine = np.flatnonzero((s["country"] == iso2) & (s["city"] >= 0))
        if mine.size:
            rows = cities[iso2][s["city"][mine].tolist()]
            for i, c in zip(mine.tolist(), rows["city_id"].to_list(), strict=True):
                city_id[i] = c
            lat[mine], lon[mine] = rows["lat"].to_numpy(), rows["lon"].to_numpy()
    none = np.flatnonzero(s["city"] < 0)
    if none.size:
        shapes = CountryShapes(ctx.sealed_table("ref_country_polygons"))
        points = representative_points(shapes, sorted(set(s["country"][none].tolist())))
        for i in none.tolist():
            lat[i], lon[i] = points[s["country"][i]]
        ctx.count("settlement_without_city", int(none.size))
    return city_id, lat, lon


def run(ctx: StateContext) -> None:
    rules: VirtualRules = ctx.policy("3B/virtual_rules.yaml")
    policy: Settlement = ctx.policy("3B/settlement.yaml")
    merchants = ctx.sealed_table("merchant_catalogue").sort("merchant_id")
    cls = pl.concat([merchants.select("merchant_id"), classify(rules, merchants)], how="horizontal")
    mid = cls["merchant_id"].to_numpy()
    hybrid = (cls["virtual_mode"] == "HYBRID").to_numpy()
    beta = rules.hybrid_virtual_share
    share, draws, nblocks = beta_shares(
        ctx.family_key("hybrid_share"), mid[hybrid], beta.alpha, beta.beta, beta.clip
    )
    ctx.record_draws("hybrid_share", (mid[hybrid], 0, 0, 0), draws=draws, blocks=nblocks, value=share)
    virtual_share = np.where(cls["virtual_mode"] == "VIRTUAL_ONLY", 1.0, 0.0)
    virtual_share[hybrid] = share
    ctx.publish("virtual_classification", cls.with_columns(pl.Series("virtual_share", virtual_share)))

    virt = cls.join(merchants.select("merchant_id", "home_country_iso"), on="merchant_id").filter(
        pl.col("virtual_mode") != "PHYSICAL"
    )
    vid = virt["merchant_id"].to_numpy()
    _, u, _ = blocks(ctx.family_key("settlement"), vid)
    cities = city_candidates(ctx.sealed_table("ref_cities"), policy.city_top_k, policy.city_pop_exponent)
    s = settle(u, virt["virtual_mode"].to_numpy(), virt["home_country_iso"].to_numpy(), policy, cities)
    ctx.record_draws("settlement", (vid,), draws=3, blocks=1, value=u[:, 0])
    city_id, lat, lon = settlement_points(ctx, s, cities)
    tz = tz_resolver(ctx)(lon, lat, s["country"])
    ids, probes = assign_ids("settlement", [(int(m),) for m in vid.tolist()])
    ctx.count("settlement_id_probes", probes)
    out = pl.DataFrame(
        {
            "merchant_id": pl.Series(vid, dtype=pl.UInt64),
            "settlement_id": pl.Series(ids, dtype=pl.UInt64),
            "country_iso": s["country"],
            "city_id": pl.Series(city_id, dtype=pl.UInt64),
            "lat_deg": lat,
            "lon_deg": lon,
            "tzid": pl.Series(tz["tzid"], dtype=pl.String),
            "tz_index": pl.Series(tz["tz_index"], dtype=pl.UInt16),
            "offshore": s["offshore"],
        }
    )
    if (
        out.height != int((cls["virtual_mode"] != "PHYSICAL").sum())
        or out["merchant_id"].n_unique() != out.height
    ):
        raise EngineError(
            "E_3B_SETTLEMENT_COVERAGE",
            "not exactly one settlement per virtual or hybrid merchant",
            where="virtual_settlement",
            state=ctx.state,
        )
    ctx.count("offshore", int(s["offshore"].sum()))
    ctx.publish("virtual_settlement", out)
