"""6A.S5's IPs (design §3.7 steps 3–4): site IPs, one RESIDENTIAL IP per household (a few of them residential
proxies), and the water-filled pools per (country, ip_type); every device–IP link gets its IP.

RNG `6A.ip` ⟨pool_code, j, c2, 0⟩, pool_code = iso_num << 8 | the IP type's index in IP_TYPES:
c2 = 0 orders a pool's links (j = the link's 1-based ordinal in device order; w0); c2 = 1 draws an IP (pools:
j = its 1-based ordinal in the pool, w0 w1 the Box–Muller normal of its size weight, w2 its ASN; RESIDENTIAL:
j = household_id, w0 ranks the country's proxies, w1 the ASN); c2 = 2 a site IP's ASN (j = site_ip_id, w0).
Links arrive as numpy arrays in device order; pools are few (countries × types), so the loop over pools is
Python and the work inside each is numpy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.kernels.blocks import block_uniforms
from engine.kernels.samplers import normals_from_u
from engine.segments.l3.s6a.common import largest_remainder
from engine.segments.l3.s6a.ip_pools import n_ips, pool_sizes, runs, water_fill
from engine.segments.l3.s6a.policy import ASN_CLASSES, IP_TYPES, Ips

IP_TYPE = pl.Enum(list(IP_TYPES))
ASN_CLASS = pl.Enum(list(ASN_CLASSES))
# ASNs of these classes are global providers (country code 0), the others national
GLOBAL_ASN_CLASSES = ("HOSTING", "VPN_PROVIDER")
ASN_BASE = 4_200_000_000  # RFC 6996 private 32-bit range: synthetic, never a real network
RES, PROXY = IP_TYPES.index("RESIDENTIAL"), IP_TYPES.index("RESIDENTIAL_PROXY")


def pool_code(iso_num: np.ndarray | int, ip_code: np.ndarray | int) -> np.ndarray:
    """iso_num << 8 | ip type index: one counter space per (country, ip_type) pool."""
    return (np.asarray(iso_num, dtype=np.uint64) << np.uint64(8)) | np.asarray(ip_code, dtype=np.uint64)


def asns(u: np.ndarray, asn_class: str, iso_num: np.ndarray, pol: Ips) -> np.ndarray:
    """A synthetic ASN per IP: ASN_BASE + country·10000 + class·100 + k, k Zipf on 1..count by inversion of
    u (global classes use country 0)."""
    count = pol.asns.count[asn_class]
    w = np.arange(1, count + 1, dtype=np.float64) ** -pol.asns.zipf_exponent
    k = 1 + np.minimum(np.searchsorted(np.cumsum(w), u * w.sum(), side="right"), count - 1)
    iso = np.zeros_like(iso_num) if asn_class in GLOBAL_ASN_CLASSES else np.asarray(iso_num, dtype=np.int64)
    return (ASN_BASE + iso * 10_000 + ASN_CLASSES.index(asn_class) * 100 + k).astype(np.uint32)


def fill_pool(ctx: Any, key: tuple[int, int], code: int, sizes: np.ndarray) -> np.ndarray:
    """IP ordinal (0-based) of each of a pool's Σsizes links, given in device order: the links, ordered by
    lane 0 of ⟨pool_code, ordinal, 0, 0⟩, are cut into consecutive runs of `sizes`."""
    n_links = int(sizes.sum())
    ordinal = np.arange(1, n_links + 1, dtype=np.uint64)
    u = block_uniforms(key, np.full(n_links, code, dtype=np.uint64), ordinal)[:, 0]
    ctx.record_draws("ip", (code, ordinal, 0, 0), draws=1, blocks=1, value=u)
    out = np.empty(n_links, dtype=np.int64)
    out[np.argsort(u, kind="stable")] = runs(sizes)
    return out


def residential(
    ctx: Any, key: tuple[int, int], hh: np.ndarray, iso: np.ndarray, proxy_iso: np.ndarray, pol: Ips
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """One RESIDENTIAL IP per household with a HOME link (household order). In each country the
    max(⌈share·n⌉, as many as its proxy links need) lowest-ranked are RESIDENTIAL_PROXY; the operator proxy
    links spread evenly under their headroom. Returns (IPs: household_id, iso_num, ip_code, asn, n_home; the
    IP row of each HOME link; the IP row of each proxy link)."""
    homes, first, home_row, n_home = np.unique(hh, return_index=True, return_inverse=True, return_counts=True)
    h_iso = iso[first]
    code = pool_code(h_iso, RES)
    u = block_uniforms(key, code, homes.astype(np.uint64), 1, lanes=2)
    ctx.record_draws("ip", (code, homes, 1, 0), draws=2, blocks=1, value=u[:, 0])
    ip_code = np.full(homes.shape[0], RES)
    proxy_row = np.empty(proxy_iso.shape[0], dtype=np.int64)
    room = pol.max_devices_per_ip - n_home
    for country in np.unique(h_iso):
        rows = np.flatnonzero(h_iso == country)
        rows = rows[np.argsort(u[rows, 0], kind="stable")]
        links = np.flatnonzero(proxy_iso == country)
        held = np.cumsum(room[rows])
        if held[-1] < links.shape[0]:
            raise EngineError("E_6A_CAP_VIOLATION", "home IPs cannot hold the proxy links", where="ips")
        need = int(np.searchsorted(held, links.shape[0])) + 1 if links.shape[0] else 0
        k = max(need, math.ceil(rows.shape[0] * pol.residential_proxy_share))
        chosen = np.sort(rows[:k])
        ip_code[chosen] = PROXY
        if links.shape[0]:
            sizes = water_fill(largest_remainder(links.shape[0], np.ones(k)), room[chosen])
            proxy_row[links] = chosen[fill_pool(ctx, key, int(pool_code(country, PROXY)), sizes)]
    ips = pl.DataFrame(
        {
            "household_id": homes,
            "iso_num": h_iso,
            "ip_code": ip_code,
            "asn": asns(u[:, 1], pol.asn_class["RESIDENTIAL"], h_iso, pol),
        }
    )
    return ips, home_row, proxy_row


def pooled(
    ctx: Any, key: tuple[int, int], iso: np.ndarray, ip_code: np.ndarray, pol: Ips
) -> tuple[pl.DataFrame, np.ndarray]:
    """Pools per (country, ip_type) in that order: n_ips(L, mean, cap) IPs with lognormal(size_sigma) weights,
    sized, water-filled and cut into runs of the keyed link order. Returns (IPs: iso_num, ip_code, asn in pool
    order; the IP row of each link)."""
    pool = iso.astype(np.int64) << 8 | ip_code
    order = np.argsort(pool, kind="stable")  # device order within a pool
    keys, starts, counts = np.unique(pool[order], return_index=True, return_counts=True)
    ip_row = np.empty(pool.shape[0], dtype=np.int64)
    frames, base = [], 0
    for p, a, n_links in zip(keys.tolist(), starts.tolist(), counts.tolist(), strict=True):
        country, t = p >> 8, p & 0xFF
        ip_type = IP_TYPES[t]
        n = n_ips(n_links, pol.mean_devices_per_ip[ip_type], pol.max_devices_per_ip)
        code = int(pool_code(country, t))
        ordinal = np.arange(1, n + 1, dtype=np.uint64)
        u = block_uniforms(key, np.full(n, code, dtype=np.uint64), ordinal, 1, lanes=3)
        ctx.record_draws("ip", (code, ordinal, 1, 0), draws=3, blocks=1, value=u[:, 0])
        sizes = pool_sizes(n_links, np.exp(pol.size_sigma * normals_from_u(u[:, :2])), pol.max_devices_per_ip)
        ip_row[order[a : a + n_links]] = base + fill_pool(ctx, key, code, sizes)
        frames.append(
            pl.DataFrame(
                {
                    "iso_num": np.full(n, country),
                    "ip_code": np.full(n, t),
                    "asn": asns(u[:, 2], pol.asn_class[ip_type], np.full(n, country), pol),
                }
            )
        )
        base += n
    empty = pl.DataFrame(schema={"iso_num": pl.Int64, "ip_code": pl.Int64, "asn": pl.UInt32})
    return (pl.concat(frames) if frames else empty), ip_row


def site_ips(
    ctx: Any, key: tuple[int, int], terminals: pl.DataFrame, iso: pl.DataFrame, pol: Ips
) -> pl.DataFrame:
    """One IP per terminal site, ids 1..n_sites = site_ip_id, of the policy's site type."""
    sites = (
        terminals.group_by("site_ip_id")
        .agg(pl.col("legal_country_iso").first().cast(pl.String).alias("country_iso"))
        .sort("site_ip_id")
        .join(iso, on="country_iso", how="left", maintain_order="left")
    )
    t = IP_TYPES.index(pol.site_ip_type)
    code = pool_code(sites["iso_num"].to_numpy(), t)
    ids = sites["site_ip_id"].to_numpy()
    u = block_uniforms(key, code, ids, 2)[:, 0]
    ctx.record_draws("ip", (code, ids, 2, 0), draws=1, blocks=1, value=u)
    asn = asns(u, pol.asn_class[pol.site_ip_type], sites["iso_num"].to_numpy(), pol)
    return sites.select(
        pl.col("site_ip_id").alias("ip_id"),
        "iso_num",
        pl.lit(t, pl.Int64).alias("ip_code"),
        pl.Series("asn", asn),
    )


def assign_ips(
    ctx: Any,
    links: dict[str, np.ndarray],
    terminals: pl.DataFrame,
    iso: pl.DataFrame,
    kind_ip_code: np.ndarray,
    home_kind: int,
    proxy_kind: int,
    pol: Ips,
) -> tuple[pl.DataFrame, np.ndarray]:
    """IPs (ip_id, ip_type, asn_class, asn, iso_num, n_devices) in id order: site IPs 1..n_sites, then the
    RESIDENTIAL(_PROXY) IPs in household order, then the pools in (country, ip_type) order; and the ip_id of
    each link (`links`: kind, iso_num, household_id arrays in device order)."""
    key = ctx.family_key("ip")
    kind, link_iso = links["kind"], links["iso_num"]
    sites = site_ips(ctx, key, terminals, iso, pol)
    home, proxy = kind == home_kind, kind == proxy_kind
    rest = ~(home | proxy)
    res, home_row, proxy_row = residential(
        ctx, key, links["household_id"][home], link_iso[home], link_iso[proxy], pol
    )
    pools, pool_row = pooled(ctx, key, link_iso[rest], kind_ip_code[kind[rest]], pol)
    n_sites, n_res = sites.height, res.height
    ip_id = np.empty(kind.shape[0], dtype=np.uint64)
    ip_id[home] = n_sites + 1 + home_row
    ip_id[proxy] = n_sites + 1 + proxy_row
    ip_id[rest] = n_sites + n_res + 1 + pool_row
    total = n_sites + n_res + pools.height
    parts = [sites.select("iso_num", "ip_code", "asn"), res.select("iso_num", "ip_code", "asn"), pools]
    ips = pl.concat(
        [p.with_columns(pl.col("iso_num").cast(pl.Int64), pl.col("ip_code").cast(pl.Int64)) for p in parts]
    )
    ips = ips.with_columns(
        pl.int_range(1, total + 1, dtype=pl.UInt64).alias("ip_id"),
        pl.col("ip_code").replace_strict(dict(enumerate(IP_TYPES)), return_dtype=IP_TYPE).alias("ip_type"),
        pl.col("ip_code")
        .replace_strict({i: pol.asn_class[t] for i, t in enumerate(IP_TYPES)}, return_dtype=ASN_CLASS)
        .alias("asn_class"),
        pl.Series(
            "n_devices", np.bincount(ip_id.astype(np.int64), minlength=total + 1)[1:].astype(np.uint32)
        ),
    )
    return ips, ip_id
