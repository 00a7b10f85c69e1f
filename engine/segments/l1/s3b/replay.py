"""3B's RNG families re-derived for validation's replay law (engine.core.validation), from layer1 3B.S1–S2.

Nothing here calls a 3B state or a numba kernel: lanes come from numpy's Philox (`PhiloxBlocks`, `Lanes`), and
the Beta share, the settlement draw, the edge count, the country mix and the alias decode are written out
again in plain Python. The gamma sampler and 1B's jitter replay are the other segments' replay code.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np
import polars as pl

from engine.core.validation import Lanes, PhiloxBlocks, Replay, u01, with_counter
from engine.segments.l1.s1a.replay import gamma
from engine.segments.l1.s1b.geo import CountryShapes
from engine.segments.l1.s1b.replay import alias_pick, rederive_jitter, usage_of
from engine.segments.l1.s3b.policy import Edges, Settlement, VirtualRules

EARTH_KM = 6371.0088


def _usage(n: int, draws: list[int] | int) -> dict[str, list[int]]:
    return {"draws": [draws] * n if isinstance(draws, int) else draws, "blocks": [1] * n, "streams": [1] * n}


def inverse_cdf(u: float, weights: list[float]) -> int:
    """Smallest i with u·Σw < Σ_{j≤i} w_j, sums taken left to right."""
    cdf, acc = [], 0.0
    for w in weights:
        acc += w
        cdf.append(acc)
    return min(bisect_right(cdf, u * cdf[-1]), cdf.index(cdf[-1]))


def normal(u1: float, u2: float) -> float:
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def hybrid_share(cls: pl.DataFrame, rules: VirtualRules) -> Replay:
    """3B.S1: G₁ ~ Gamma(α), then G₂ ~ Gamma(β) on the lane stream of ⟨merchant_id, 0, 0, d⟩; share
    G₁/(G₁+G₂) clipped. Its lane use varies per merchant, so every row is replayed."""
    b = rules.hybrid_virtual_share
    rows = with_counter(cls.filter(pl.col("virtual_mode") == "HYBRID"), "merchant_id")

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        out: dict[str, list[float | int]] = {"virtual_share": [], "draws": [], "blocks": [], "streams": []}
        for mid in sample["merchant_id"].to_list():
            lanes = Lanes(gen, (mid, 0, 0, 0), 3)
            g1 = gamma(lanes, b.alpha)
            g2 = gamma(lanes, b.beta)
            out["virtual_share"].append(min(max(g1 / (g1 + g2), b.clip[0]), b.clip[1]))
            out["draws"].append(lanes.draws)
            out["blocks"].append(lanes.blocks)
            out["streams"].append(1)
        return pl.DataFrame(out)

    return Replay("3B.hybrid_share", rows, ("virtual_share",), rederive)


def settlement(
    settle: pl.DataFrame, cls: pl.DataFrame, home: pl.DataFrame, cities: pl.DataFrame, policy: Settlement
) -> Replay:
    """3B.S1: offshore iff u(w0) < offshore_prob(mode); hub by u(w1) over the hubs in iso2 order, else home;
    city by u(w2) over the country's top-K cities (population descending, city_id) weighted pop^exponent."""
    ranked: dict[str, list[tuple[int, float]]] = {}
    for iso2, city_id, pop in (
        cities.sort(["population", "city_id"], descending=[True, False])
        .select("iso2", "city_id", "population")
        .iter_rows()
    ):
        top = ranked.setdefault(iso2, [])
        if len(top) < policy.city_top_k:
            top.append((city_id, float(pop) ** policy.city_pop_exponent))
    hubs = sorted(policy.hubs)
    rows = with_counter(
        settle.join(cls.select("merchant_id", "virtual_mode"), on="merchant_id").join(home, on="merchant_id"),
        "merchant_id",
    )

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        out: dict[str, list[object]] = {"country_iso": [], "offshore": [], "city_id": []}
        for mid, mode, home_iso in sample.select(
            "merchant_id", "virtual_mode", "home_country_iso"
        ).iter_rows():
            w = gen.block(mid, 0, 0, 0)
            offshore = u01(w[0]) < policy.offshore_prob[mode]
            iso2 = hubs[inverse_cdf(u01(w[1]), [policy.hubs[h] for h in hubs])] if offshore else home_iso
            top = ranked.get(iso2)
            out["country_iso"].append(iso2)
            out["offshore"].append(offshore)
            out["city_id"].append(top[inverse_cdf(u01(w[2]), [p for _, p in top])][0] if top else None)
        frame = pl.DataFrame(
            out, schema={"country_iso": pl.String, "offshore": pl.Boolean, "city_id": pl.UInt64}
        )
        return pl.concat([frame, pl.DataFrame(_usage(sample.height, 3))], how="horizontal")

    return Replay(
        "3B.settlement",
        rows,
        ("country_iso", "offshore", "city_id"),
        rederive,
        lambda r: pl.DataFrame(_usage(r.height, 3)),
    )


def edge_count(
    settle: pl.DataFrame, cls: pl.DataFrame, sizes: pl.DataFrame, edges: pl.DataFrame, policy: Edges
) -> Replay:
    """3B.S2: E = clamp(round(base·(1 + slope·ln n)·exp(σZ − σ²/2))), Z by Box–Muller on u(w0), u(w1) of
    ⟨merchant_id, 0, 0, 0⟩; compared with the merchant's published edge count."""
    ec = policy.edge_count
    counts = edges.group_by("merchant_id").agg(pl.len().cast(pl.Int64).alias("n_edges"))
    rows = with_counter(
        settle.select("merchant_id")
        .join(cls.select("merchant_id", "virtual_mode"), on="merchant_id")
        .join(sizes, on="merchant_id")
        .join(counts, on="merchant_id", how="left"),
        "merchant_id",
    )

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        out = []
        for mid, mode, n in sample.select("merchant_id", "virtual_mode", "n_outlets_total").iter_rows():
            w = gen.block(mid, 0, 0, 0)
            z = normal(u01(w[0]), u01(w[1]))
            mean = ec.base[mode] * (1.0 + ec.size_slope * math.log(n))
            out.append(
                min(max(round(mean * math.exp(ec.sigma * z - ec.sigma**2 / 2.0)), ec.range[0]), ec.range[1])
            )
        frame = pl.DataFrame({"n_edges": pl.Series(out, dtype=pl.Int64)})
        return pl.concat([frame, pl.DataFrame(_usage(sample.height, 2))], how="horizontal")

    return Replay("3B.edge_count", rows, ("n_edges",), rederive, lambda r: pl.DataFrame(_usage(r.height, 2)))


def country_mix(
    universe: list[tuple[str, float, float, float]], lat: float, lon: float, settle_iso: str, policy: Edges
) -> list[float]:
    """One merchant's edge-country probabilities over `universe` rows (iso2, c, anchor lat, anchor lon), c
    normalised: (1 − κ)·c + κ·loc, loc ∝ c·exp(−haversine/L), the settlement share clamped, the rest
    rescaled."""
    loc = []
    for _, c, alat, alon in universe:
        p1, p2 = math.radians(lat), math.radians(alat)
        h = (
            math.sin((p2 - p1) / 2) ** 2
            + math.cos(p1) * math.cos(p2) * math.sin(math.radians(alon - lon) / 2) ** 2
        )
        loc.append(
            c * math.exp(-2.0 * EARTH_KM * math.asin(math.sqrt(min(max(h, 0.0), 1.0))) / policy.locality_km)
        )
    total = sum(loc)
    p = [
        (1.0 - policy.kappa) * c + policy.kappa * lc / total
        for (_, c, _, _), lc in zip(universe, loc, strict=True)
    ]
    s = [u[0] for u in universe].index(settle_iso)
    lo, hi = policy.settlement_share_range
    target = min(max(p[s], lo), hi)
    scale = (1.0 - target) / (1.0 - p[s]) if p[s] < 1.0 else 0.0
    return [target if i == s else x * scale for i, x in enumerate(p)]


def edge_place(
    edges: pl.DataFrame,
    settle: pl.DataFrame,
    universe: list[tuple[str, float, float, float]],
    sampler: pl.DataFrame,
    policy: Edges,
) -> Replay:
    """3B.S2: edge 0 in the settlement country, edge e ≥ 1 by u(w0) of ⟨merchant_id, e, 0, 0⟩ over the
    merchant's mix; its tile the alias decode of raw w1 on the country's tile_sampler."""
    tables = {
        iso2: (grp["prob_q"].to_list(), grp["alias"].to_list(), grp["tile_id"].to_list())
        for (iso2,), grp in sampler.sort("country_iso", "member_index").group_by(["country_iso"])
    }
    where = {
        m: (iso2, la, lo)
        for m, iso2, la, lo in settle.select("merchant_id", "country_iso", "lat_deg", "lon_deg").iter_rows()
    }
    rows = with_counter(edges, "merchant_id", "edge_seq")
    names = [u[0] for u in universe]

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        out: dict[str, list[object]] = {"country_iso": [], "tile_id": [], "draws": []}
        mixes: dict[int, list[float]] = {}
        for mid, seq in sample.select("merchant_id", "edge_seq").iter_rows():
            w = gen.block(mid, seq, 0, 0)
            home, lat, lon = where[mid]
            if seq == 0:
                iso2 = home
            else:
                if mid not in mixes:
                    mixes[mid] = country_mix(universe, lat, lon, home, policy)
                iso2 = names[inverse_cdf(u01(w[0]), mixes[mid])]
            prob_q, alias, tile_ids = tables[iso2]
            out["country_iso"].append(iso2)
            out["tile_id"].append(tile_ids[alias_pick(w[1], prob_q, alias)])
            out["draws"].append(3 if seq == 0 else 4)
        frame = pl.DataFrame(
            {
                "country_iso": out["country_iso"],
                "tile_id": pl.Series(out["tile_id"], dtype=pl.UInt64),
                **_usage(sample.height, out["draws"]),  # type: ignore[arg-type]
            }
        )
        return frame

    def usage(published: pl.DataFrame) -> pl.DataFrame:
        draws = np.where(published["edge_seq"].to_numpy() == 0, 3, 4).tolist()
        return pl.DataFrame(_usage(published.height, draws))

    return Replay("3B.edge_place", rows, ("country_iso", "tile_id"), rederive, usage)


def edge_jitter(edges: pl.DataFrame, cells: pl.DataFrame, shapes: CountryShapes, max_attempts: int) -> Replay:
    """3B.S2: 1B.S6's jitter in the edge's tile, attempt t on ⟨merchant_id, edge_seq, t, 0⟩."""
    rows = with_counter(
        edges.join(
            cells.select("country_iso", "tile_id", "lon_min", "lat_min", "lon_max", "lat_max", "interior"),
            on=["country_iso", "tile_id"],
            how="left",
        ).with_columns(pl.col("country_iso").alias("legal_country_iso")),
        "merchant_id",
        "edge_seq",
    )

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        counters = sample.select("c0", "c1").rows()
        return rederive_jitter(sample, gen, shapes, max_attempts, lambda i, t: (*counters[i], t, 0))

    def usage(published: pl.DataFrame) -> pl.DataFrame:
        return pl.DataFrame(usage_of(published["attempts"].cast(pl.Int64).to_numpy()))

    return Replay("3B.edge_jitter", rows, ("lon_deg", "lat_deg", "placement", "attempts"), rederive, usage)


def cdn_universe(
    sampler: pl.DataFrame, macro: pl.DataFrame, countries: pl.DataFrame, anchors: pl.DataFrame, policy: Edges
) -> list[tuple[str, float, float, float]]:
    """(iso2, c, anchor lat, anchor lon) per eligible country with tiles and macro data, iso2 order, with
    c = pop^a · gdp_pc^b · (boost if a hub) / Σ."""
    cw = policy.cdn_weights
    eligible = set(countries.filter(pl.col("eligible"))["iso2"].to_list())
    facts = {
        iso2: (pop, gdp) for iso2, pop, gdp in macro.select("iso2", "population", "gdp_pc_usd").iter_rows()
    }
    where = {iso2: (la, lo) for iso2, la, lo in anchors.select("country_iso", "lat", "lon").iter_rows()}
    raw = []
    for iso2 in sorted(set(sampler["country_iso"].to_list()) & eligible & set(facts)):
        pop, gdp = facts[iso2]
        if pop > 0 and gdp > 0:
            boost = cw.hub_boost if iso2 in cw.hubs else 1.0
            raw.append((iso2, float(pop) ** cw.pop_exponent * gdp**cw.gdp_pc_exponent * boost))
    total = sum(c for _, c in raw)
    return [(iso2, c / total, *where[iso2]) for iso2, c in raw]
