"""1A.S3 — who may go abroad (one keyed draw) and each open merchant's ranked foreign candidate list."""

from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.segments.l1.s1a.common import market_table, tier_value
from engine.segments.l1.s1a.policy import Crossborder, HurdleNb, LadderTier
from engine.segments.l1.s1a.s1_hurdle import merchant_features

SOURCE_ORDER = {"HOME": 0, "REGIONAL": 1, "HUB": 2, "GLOBAL": 3}


class Ladder:
    """Candidate lists depend only on (home, tier), so they are built once per pair."""

    def __init__(self, market: pl.DataFrame, policy: Crossborder) -> None:
        self.policy = policy
        self.market = market
        self.weight = dict(zip(market["iso2"], market["market_weight"], strict=True))
        self.region = dict(zip(market["iso2"], market["region"], strict=True))
        self.subregion = dict(zip(market["iso2"], market["subregion"], strict=True))
        self.by_size = market.sort(["market_weight", "iso2"], descending=[True, False])["iso2"].to_list()
        self.list_for = cache(self._build)

    def tier(self, n: int) -> int:
        return int(np.searchsorted([t.n_min for t in self.policy.ladder], n, side="right") - 1)

    def _build(self, home: str, tier_idx: int) -> tuple[tuple[str, str, float], ...]:
        """Sources in order REGIONAL → HUB → GLOBAL; each "top k" counts only countries not yet picked,
        so "+ 3 hubs" always adds three hub countries (home and deny_dest excluded throughout)."""
        tier: LadderTier = self.policy.ladder[tier_idx]
        sub = [c for c in self.by_size if self.subregion[c] == self.subregion.get(home)]
        reg = [c for c in self.by_size if self.region[c] == self.region.get(home)]
        hubs = [c for c in self.policy.hubs if c in self.weight]
        picked: dict[str, str] = {}
        blocked = {home, *self.policy.deny_dest}
        for pool, k, source in (
            (sub, tier.subregion_top, "REGIONAL"),
            (reg, tier.region_top, "REGIONAL"),
            (hubs, tier.hubs, "HUB"),
            (self.by_size, tier.global_top, "GLOBAL"),
        ):
            for country in [c for c in pool if c not in blocked and c not in picked][:k]:
                picked[country] = source
        ranked = sorted(picked.items(), key=lambda cs: (SOURCE_ORDER[cs[1]], -self.weight[cs[0]], cs[0]))
        ranked = ranked[: self.policy.max_candidates]
        return ((home, "HOME", self.weight[home]), *((c, s, self.weight[c]) for c, s in ranked))


def openness(features: pl.DataFrame, policy: Crossborder) -> np.ndarray:
    o = policy.openness
    sector_delta = (
        features["sector"].replace_strict(o.sector, default=0.0, return_dtype=pl.Float64).to_numpy()
    )
    raw = (
        np.asarray(o.by_gdp_bucket)[features["gdp_bucket"].to_numpy()]
        + o.cnp * features["cnp"].to_numpy()
        + sector_delta
    )
    return np.clip(raw, 0.0, 1.0)


def run(ctx: StateContext) -> None:
    policy: Crossborder = ctx.policy("1A/crossborder.yaml")
    hurdle: HurdleNb = ctx.policy("1A/hurdle_nb.yaml")
    universe = ctx.sealed_table("merchant_universe")
    features = merchant_features(universe, ctx.sealed_table("ref_country_macro"), hurdle).join(
        universe.select("merchant_id", "mcc", "home_country_iso"), on="merchant_id", maintain_order="left"
    )
    counts = ctx.read("s2_outlet_count").select("merchant_id", "n_outlets")
    multi = ctx.read("s1_hurdle").filter(pl.col("is_multi")).select("merchant_id")
    m = features.join(multi, on="merchant_id", how="semi").join(
        counts, on="merchant_id", maintain_order="left"
    )
    n = m["n_outlets"].to_numpy().astype(np.int64)
    deny = np.where(
        m["home_country_iso"].is_in(policy.deny_home).to_numpy(),
        "deny_home",
        np.where((m["cnp"] & m["mcc"].is_in(policy.deny_cnp_mcc)).to_numpy(), "deny_cnp_mcc", None),
    )
    p_open = tier_value(n, [t.n_min for t in policy.open_prob], [t.p for t in policy.open_prob])
    p_open = np.clip(p_open * np.where(m["cnp"].to_numpy(), policy.cnp_open_multiplier, 1.0), 0.0, 1.0)
    drawn = deny == None  # noqa: E711 — elementwise test on an object array
    ids = m["merchant_id"].to_numpy()
    is_open = np.zeros(ids.size, dtype=bool)
    if drawn.any():
        u = block_uniforms(ctx.family_key("xb_open"), ids[drawn])[:, 0]
        is_open[drawn] = u < p_open[drawn]
        ctx.record_draws("xb_open", (ids[drawn],), draws=1, blocks=1, value=u)
    s3_open = pl.DataFrame(
        {
            "merchant_id": pl.Series(ids, dtype=pl.UInt64),
            "openness": openness(m, policy),
            "open_prob": p_open,
            "is_open": is_open,
            "deny_reason": pl.Series(deny.tolist(), dtype=pl.String),
        }
    )
    ladder = Ladder(
        market_table(ctx.sealed_table("ref_countries"), ctx.sealed_table("ref_country_macro")), policy
    )
    rows: list[tuple[int, str, int, str, float]] = []
    for mid, home, n_i in zip(
        ids[is_open], m["home_country_iso"].to_numpy()[is_open], n[is_open], strict=True
    ):
        for rank, (country, source, weight) in enumerate(ladder.list_for(home, ladder.tier(int(n_i)))):
            rows.append((int(mid), country, rank, source, weight))
    candidates = pl.DataFrame(
        rows,
        schema={
            "merchant_id": pl.UInt64,
            "country_iso": pl.String,
            "candidate_rank": pl.UInt16,
            "source": pl.String,
            "market_weight": pl.Float64,
        },
        orient="row",
    ).sort(["merchant_id", "candidate_rank"])
    homes = candidates.filter(pl.col("candidate_rank") == 0).height
    if homes != int(is_open.sum()):
        raise EngineError(
            "E_1A_RANK_GAP", "open merchant without its home row", where="s3_candidates", state=ctx.state
        )
    ctx.publish("s3_open", s3_open)
    ctx.publish("s3_candidates", candidates)
    ctx.facts["open_merchants"] = int(is_open.sum())
