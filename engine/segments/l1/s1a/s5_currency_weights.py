"""1A.S5 — currency → country weights: the currency area by market size plus an explicit foreign spill."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.segments.l1.s1a.common import market_table
from engine.segments.l1.s1a.policy import Crossborder, CurrencyWeights


def neumaier_sum(values: np.ndarray) -> float:
    """Compensated sum in the given (iso2) order, so weights normalise to 1 within 1e-12."""
    total = 0.0
    comp = 0.0
    for v in values.tolist():
        t = total + v
        comp += (total - t) + v if abs(total) >= abs(v) else (v - t) + total
        total = t
    return total + comp


def currency_weights(
    market: pl.DataFrame, currencies: pl.DataFrame, policy: CurrencyWeights, hubs: list[str]
) -> pl.DataFrame:
    table = market.join(currencies.select("iso2", "currency"), on="iso2", how="inner").sort("iso2")
    iso = table["iso2"].to_numpy()
    m = table["gdp_usd"].to_numpy()
    region = table["region"].to_numpy()
    subregion = table["subregion"].to_numpy()
    hub = np.isin(iso, hubs)
    frames = []
    for ccy in sorted(set(table["currency"].to_list())):
        area = table["currency"].to_numpy() == ccy
        s = policy.spill_overrides.get(ccy, policy.spill_default)
        a = policy.affinity
        affinity = np.where(
            np.isin(subregion, subregion[area]),
            a.same_subregion,
            np.where(np.isin(region, region[area]), a.same_region, a.other),
        )
        v = np.where(area, 0.0, m**policy.spill_exponent * affinity * np.where(hub, policy.hub_boost, 1.0))
        w = np.where(area, (1.0 - s) * m / neumaier_sum(m[area]), 0.0)
        if (~area).any():
            w = np.where(area, w, s * v / neumaier_sum(v))
        else:
            w = np.where(area, m / neumaier_sum(m[area]), 0.0)
        frames.append(
            pl.DataFrame(
                {
                    "currency": ccy,
                    "country_iso": iso,
                    "weight": w,
                    "component": np.where(area, "AREA", "SPILL"),
                }
            )
        )
    return pl.concat(frames).sort(["currency", "country_iso"])


def run(ctx: StateContext) -> None:
    policy: CurrencyWeights = ctx.policy("1A/currency_weights.yaml")
    crossborder: Crossborder = ctx.policy("1A/crossborder.yaml")
    market = market_table(ctx.sealed_table("ref_countries"), ctx.sealed_table("ref_country_macro"))
    out = currency_weights(market, ctx.sealed_table("ref_currencies"), policy, crossborder.hubs)
    sums = out.group_by("currency").agg(pl.col("weight").sum())
    bad = sums.filter((pl.col("weight") - 1.0).abs() > 1e-12)
    if bad.height or not (out["weight"] > 0).all() or not out["weight"].is_finite().all():
        raise EngineError(
            "E_1A_WEIGHT_INVALID",
            f"currency weights do not sum to 1 or are not positive ({bad.height} currencies)",
            where="ccy_country_weights",
            state=ctx.state,
        )
    ctx.publish("ccy_country_weights", out, seed_free=True)
    ctx.facts["currencies"] = int(sums.height)
