"""6A.S4 — merchant terminals (design §3.6): POS, ATM and kiosk terminals at every card-present site.

Counts are 1 + Poisson(λ) truncated to [0, cap − 1] by inversion, so the caps hold by construction; λ comes
from the site's CP demand class, raised for the merchant's heavier sites, and ATM-only at ATM MCCs.

RNG `6A.terminal`: block ⟨site_id, 0, 0, 0⟩ lane 0 draws the count; block ⟨site_id, k, 0, 0⟩ of terminal k
(1-based) draws its kiosk lane (w0) and contactless lane (w1). One event per site: 1 + 2n draws, 1 + n blocks.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.segments.l3.s6a.common import country_regions
from engine.segments.l3.s6a.draws import truncated_poisson_rows, truncated_poisson_tail
from engine.segments.l3.s6a.policy import Population, Terminals

STATE = "6A.S4"
TERMINAL_TYPE = pl.Enum(["POS", "ATM", "KIOSK"])
COLUMNS = [
    "terminal_id",
    "merchant_id",
    "site_id",
    "legal_country_iso",
    "tzid",
    "terminal_type",
    "contactless",
    "site_ip_id",
]


def check_terminals(pol: Terminals) -> None:
    """Each count law is capped where its truncation is harmless: the untruncated Poisson at the largest λ it
    can take (λ·(1 + rank_bonus) for POS) must put at most max_truncated_mass beyond cap − 1
    (E_6A_CAP_INCONSISTENT otherwise: the cap, not the policy's λ, would shape the counts)."""
    top = max([*pol.pos.lambdas.values(), pol.pos.default_lambda]) * (1.0 + pol.pos.rank_bonus)
    for name, lam, cap in (("pos", top, pol.pos.cap), ("atm", pol.atm.lam, pol.atm.cap)):
        tail = truncated_poisson_tail(lam, cap - 1)
        if tail > pol.max_truncated_mass:
            raise EngineError(
                "E_6A_CAP_INCONSISTENT",
                f"{name}: 1 + Poisson({lam:.3g}) exceeds cap {cap} with p {tail:.3g} "
                f"> {pol.max_truncated_mass}",
                where=f"6A/terminals.yaml {name}.cap",
                fix="raise the cap or lower λ",
                state="6A.S0",
            )


def cp_sites(sites: pl.DataFrame, profile: pl.DataFrame, weights: pl.DataFrame) -> pl.DataFrame:
    """Sites whose (merchant, country, tzid) zone has a CP profile row, with its demand class and MCC and
    the site's mid-rank percentile q of p_weight within its merchant (heaviest near 1), sorted (merchant,
    site)."""
    cp = (
        profile.filter(pl.col("channel_group").cast(pl.String) == "CP")
        .select(
            "merchant_id",
            pl.col("legal_country_iso").cast(pl.String),
            pl.col("tzid").cast(pl.String),
            pl.col("demand_class").cast(pl.String),
            "mcc",
        )
        .unique(["merchant_id", "legal_country_iso", "tzid"])
    )
    rows = (
        sites.select(
            "site_id",
            "merchant_id",
            pl.col("legal_country_iso").cast(pl.String),
            pl.col("tzid").cast(pl.String),
        )
        .join(cp, on=["merchant_id", "legal_country_iso", "tzid"], how="inner")
        .join(weights.select("site_id", "p_weight"), on="site_id", how="left")
        .with_columns(pl.col("p_weight").fill_null(0.0))
        .sort(["merchant_id", "p_weight", "site_id"], descending=[False, True, False])
    )
    n = pl.len().over("merchant_id")
    rank = pl.int_range(1, pl.len() + 1).over("merchant_id")
    return rows.with_columns(((n - rank + 0.5) / n).alias("q")).sort(["merchant_id", "site_id"])


def site_lambdas(rows: pl.DataFrame, pol: Terminals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(is ATM site, λ, cap) per site."""
    atm = rows["mcc"].is_in(pol.atm.mccs).to_numpy()
    base = rows["demand_class"].replace_strict(pol.pos.lambdas, default=pol.pos.default_lambda).to_numpy()
    pos = base.astype(np.float64) * (1.0 + pol.pos.rank_bonus * rows["q"].to_numpy())
    lam = np.where(atm, pol.atm.lam, pos)
    cap = np.where(atm, pol.atm.cap, pol.pos.cap).astype(np.int64)
    return atm, lam, cap


def site_counts(key: tuple[int, int], site_id: np.ndarray, lam: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """1 + truncated Poisson per site from lane 0 of ⟨site_id, 0, 0, 0⟩ (one call per distinct cap)."""
    u = block_uniforms(key, site_id)[:, 0]
    out = np.empty(site_id.shape[0], dtype=np.int64)
    for c in np.unique(cap):
        m = cap == c
        out[m] = 1 + truncated_poisson_rows(u[m], lam[m], int(c) - 1)
    return out


def terminals(
    rows: pl.DataFrame,
    n: np.ndarray,
    atm: np.ndarray,
    region: pl.Series,
    key: tuple[int, int],
    pol: Terminals,
) -> pl.DataFrame:
    """One row per terminal in (merchant, site, k) order, with its type and contactless flag."""
    site = np.repeat(np.arange(rows.height), n)
    k = np.arange(site.shape[0]) - np.repeat(np.cumsum(n) - n, n) + 1
    u = block_uniforms(key, rows["site_id"].to_numpy()[site], k.astype(np.uint64), lanes=2)
    kiosk_p = rows["demand_class"].replace_strict(pol.pos.kiosk_share, default=0.0).to_numpy()[site]
    is_atm = atm[site]
    kind = np.where(is_atm, 1, np.where(u[:, 0] < kiosk_p, 2, 0))
    reg = region.to_numpy()[site]
    p_pos = pl.Series(reg).replace_strict(pol.contactless, return_dtype=pl.Float64).to_numpy()
    p_atm = pl.Series(reg).replace_strict(pol.atm_contactless, return_dtype=pl.Float64).to_numpy()
    out = rows[site].select("merchant_id", "site_id", "legal_country_iso", "tzid")
    return out.with_columns(
        pl.Series("terminal_id", np.arange(1, site.shape[0] + 1, dtype=np.uint64)),
        pl.Series("terminal_type", np.array(["POS", "ATM", "KIOSK"])[kind]).cast(TERMINAL_TYPE),
        pl.Series("contactless", u[:, 1] < np.where(is_atm, p_atm, p_pos)),
        pl.Series("site_ip_id", (site + 1).astype(np.uint64)),
    )


def run(ctx: StateContext) -> None:
    pol: Terminals = ctx.policy("6A/terminals.yaml")
    pop: Population = ctx.policy("6A/population.yaml")
    rows = cp_sites(
        ctx.sealed_table("site_timezones"),
        ctx.sealed_table("merchant_zone_profile"),
        ctx.sealed_table("s1_site_weights"),
    )
    regions = country_regions(
        rows["legal_country_iso"].unique().to_list(), ctx.sealed_table("ref_countries"), pop, STATE
    )
    region = rows.join(
        regions.select(pl.col("country_iso").alias("legal_country_iso"), "region"),
        on="legal_country_iso",
        how="left",
        maintain_order="left",
    )["region"]
    atm, lam, cap = site_lambdas(rows, pol)
    key = ctx.family_key("terminal")
    site_id = rows["site_id"].to_numpy()
    n = site_counts(key, site_id, lam, cap)
    if (n < 1).any() or (n > cap).any():
        raise EngineError("E_6A_CAP_VIOLATION", "a site's terminal count left [1, cap]", where="terminals")
    ctx.record_draws("terminal", (site_id, 0, 0, 0), draws=1 + 2 * n, blocks=1 + n, value=n)
    out = terminals(rows, n, atm, region, key, pol)
    out = out.with_columns(
        pl.col("legal_country_iso").cast(pl.Enum(sorted(out["legal_country_iso"].unique().to_list()))),
        pl.col("tzid").cast(pl.Enum(sorted(out["tzid"].unique().to_list()))),
    )
    ctx.facts["cp_sites"] = rows.height
    ctx.facts["terminals"] = out.height
    ctx.facts["terminals_by_type"] = {
        t: int(c) for t, c in out["terminal_type"].cast(pl.String).value_counts().sort("terminal_type").rows()
    }
    per_class = (
        pl.DataFrame({"demand_class": rows["demand_class"], "n": n})
        .group_by("demand_class")
        .agg(pl.col("n").mean())
    )
    ctx.facts["terminals_per_site_by_class"] = {
        c: round(float(m), 3) for c, m in per_class.sort("demand_class").rows()
    }
    ctx.publish("terminals", out.select(COLUMNS))
