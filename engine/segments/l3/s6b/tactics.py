"""6B.S4's overlay: which baseline flows a campaign claims, and what its tactics change (design §4.7,
steps 2–3).

RNG family `6B.overlay`, counter ⟨flow_id, campaign_id, k, 0⟩ (design §4.1), one block per k:
- k = 0, lane 0: the selection coin of each claim (a baseline flow inside an active target's window);
- k = 1, lanes 0–3 and k = 2, lanes 0–3: the winner's tactic coins in TACTICS order (AMOUNT_SHIFT,
  IP_SWAP_ANON, DEVICE_SWAP_SHARED, SITE_SHIFT; BURST_TIMING, CLEARING_SUPPRESSION, NEW_FLOW,
  REFUND_INJECTION);
- k = 3, lanes 0–3: the tactics' values: burst compression, refund delay, site pick, terminal pick (every
  selected and every inserted flow).
A selected flow can take AMOUNT_SHIFT, SITE_SHIFT, BURST_TIMING, CLEARING_SUPPRESSION and REFUND_INJECTION;
the swaps and NEW_FLOW belong to inserted flows, whose entities, site and tactic_mask 6B.S3 already drew (none
of the selecting types — BUST_OUT, MERCHANT_COLLUSION, REFUND_ABUSE — lists a swap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.kernels.blocks import block_uniforms
from engine.segments.l3.s6b.policy import CAMPAIGN_TYPES, TACTIC_BITS, TACTICS, Campaigns

US = 1_000_000
DAY_US = 86_400 * US
# the entity column a target of each kind matches (contracts/6B.yaml campaign_targets.target_kind)
KIND_COLUMN = {
    "PARTY": "party_id",
    "ACCOUNT": "account_id",
    "INSTRUMENT": "instrument_id",
    "MERCHANT": "merchant_id",
    "DEVICE": "device_id",
}
# tactics a selected baseline flow may take (see the module docstring)
SELECTED_TACTICS = sum(
    TACTIC_BITS[t]
    for t in ("AMOUNT_SHIFT", "SITE_SHIFT", "BURST_TIMING", "CLEARING_SUPPRESSION", "REFUND_INJECTION")
)
REFUND_DELAY_D = (1.0, 5.0)  # design §4.7: REFUND_INJECTION sets a full refund after 1–5 d
TIMING_COLUMNS = (
    "auth_latency_us",
    "stepup_challenge_us",
    "stepup_user_us",
    "clearing_delay_us",
    "reversal_delay_us",
    "refund_delay_us",
)


@dataclass(frozen=True)
class Overlay:
    """The parts of the scenario's plan S4 applies: the selecting targets, each campaign's type and tilt, and
    the tactic probabilities by type (rows in type_code order, columns in TACTICS order)."""

    targets: (
        pl.DataFrame
    )  # target_kind, target_id, campaign_id, type_code, window_start, window_end, p_select
    campaigns: pl.DataFrame  # campaign_id, campaign_type, truth_label, type_code, gamma, tilt_up
    tactic_p: np.ndarray  # f64 [len(CAMPAIGN_TYPES) + 1, len(TACTICS)]
    compression: tuple[float, float]

    @classmethod
    def of(cls, campaigns: pl.DataFrame, targets: pl.DataFrame, policy: Campaigns) -> Overlay:
        codes = policy.type_codes
        tactic_p = np.zeros((len(CAMPAIGN_TYPES) + 1, len(TACTICS)))
        up = {}
        for name in CAMPAIGN_TYPES:
            spec = getattr(policy.types, name)
            up[name] = spec.amount_tilt == "UP"
            for tactic, p in spec.tactics.items():
                tactic_p[codes[name], TACTICS.index(tactic)] = p
        kinds = campaigns.select(
            "campaign_id",
            pl.col("campaign_type").cast(pl.String),
            pl.col("truth_label").cast(pl.String),
            pl.col("gamma").cast(pl.Float64),
        ).with_columns(
            pl.col("campaign_type").replace_strict(codes, return_dtype=pl.Int64).alias("type_code"),
            pl.col("campaign_type").replace_strict(up, return_dtype=pl.Boolean).alias("tilt_up"),
        )
        selecting = (
            targets.filter(pl.col("p_select") > 0)
            .select(
                pl.col("target_kind").cast(pl.String),
                "target_id",
                "campaign_id",
                pl.col("window_start").dt.epoch("us"),
                pl.col("window_end").dt.epoch("us"),
                pl.col("p_select").cast(pl.Float64),
            )
            .join(kinds.select("campaign_id", "type_code", "campaign_type"), on="campaign_id", how="inner")
        )
        return cls(selecting, kinds, tactic_p, tuple(policy.time_compression))


# which claims a type may make (design §4.2): refund abuse selects cleared ECOM flows only
ELIGIBLE = (pl.col("campaign_type") != "REFUND_ABUSE") | (
    (pl.col("channel") == "ECOM") & pl.col("nonfraud_decline").is_null() & ~pl.col("reversal")
)


def claims(flows: pl.DataFrame, overlay: Overlay) -> pl.DataFrame:
    """Every (row, campaign) claim: a baseline flow whose entity is an active target and whose ts_utc lies in
    the target's window; columns row, flow_id, campaign_id, type_code, p_select."""
    base = flows.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
        "flow_id",
        pl.col("ts_utc").dt.epoch("us").alias("ts"),
        pl.col("channel").cast(pl.String),
        "nonfraud_decline",
        "reversal",
        *KIND_COLUMN.values(),
    )
    found = []
    for kind, column in KIND_COLUMN.items():
        targets = overlay.targets.filter(pl.col("target_kind") == kind)
        if targets.height == 0:
            continue
        hit = base.join(targets, left_on=column, right_on="target_id", how="inner").filter(
            (pl.col("ts") >= pl.col("window_start")) & (pl.col("ts") < pl.col("window_end"))
        )
        found.append(hit.filter(ELIGIBLE).select("row", "flow_id", "campaign_id", "type_code", "p_select"))
    if not found:
        return pl.DataFrame(
            schema={
                "row": pl.Int64,
                "flow_id": pl.UInt64,
                "campaign_id": pl.UInt64,
                "type_code": pl.Int64,
                "p_select": pl.Float64,
            }
        )
    # a flow matched twice by one campaign (its party and its card are both targets) is one claim
    return pl.concat(found).unique(["row", "campaign_id"], keep="first").sort("row", "campaign_id")


def select(claimed: pl.DataFrame, key: tuple[int, int]) -> tuple[pl.DataFrame, np.ndarray, int]:
    """The winning claim per flow among those whose coin fell under p_select: the first type in catalogue
    order, then the lowest campaign_id (§4.7 step 2). Returns the winners (row, flow_id, campaign_id,
    type_code), the coins (one per claim, for the ledger) and how many successful claims lost."""
    n = claimed.height
    if n == 0:
        return claimed.select("row", "flow_id", "campaign_id", "type_code"), np.empty(0), 0
    u = block_uniforms(key, claimed["flow_id"].to_numpy(), claimed["campaign_id"].to_numpy(), 0, 0)[:, 0]
    won = claimed.filter(pl.Series(u < claimed["p_select"].to_numpy()))
    winners = won.sort("row", "type_code", "campaign_id").unique("row", keep="first", maintain_order=True)
    return winners.select("row", "flow_id", "campaign_id", "type_code"), u, won.height - winners.height


def selected_tactics(
    key: tuple[int, int],
    flow_id: np.ndarray,
    campaign_id: np.ndarray,
    type_code: np.ndarray,
    tactic_p: np.ndarray,
) -> np.ndarray:
    """tactic_mask of each selected flow: tactic t applies when its coin (k = 1, 2) < the type's p_t, among
    SELECTED_TACTICS."""
    coins = np.hstack(
        [block_uniforms(key, flow_id, campaign_id, k, 0, lanes=4) for k in (1, 2)]
    )  # (n, 8) in TACTICS order
    applied = coins < tactic_p[type_code]
    bits = np.array([TACTIC_BITS[t] for t in TACTICS], dtype=np.uint16)
    return (applied.astype(np.uint16) * bits).sum(axis=1).astype(np.uint16) & np.uint16(SELECTED_TACTICS)


def value_uniforms(key: tuple[int, int], flow_id: np.ndarray, campaign_id: np.ndarray) -> np.ndarray:
    """The k = 3 lanes (burst compression, refund delay, site pick, terminal pick), shape (n, 4)."""
    return block_uniforms(key, flow_id, campaign_id, 3, 0, lanes=4)


def apply_timing(frame: pl.DataFrame, values: np.ndarray, compression: tuple[float, float]) -> pl.DataFrame:
    """BURST_TIMING, CLEARING_SUPPRESSION and REFUND_INJECTION on rows whose tactic_mask carries them;
    `values` are the rows' k = 3 lanes. Burst scales every latency and delay by c ∈ compression (each stays
    ≥ 1 µs); refund injection sets a full refund 1–5 d after clearing and drops a planned reversal."""
    lo, hi = compression
    mask = pl.col("tactic_mask")
    burst = (mask & TACTIC_BITS["BURST_TIMING"]) != 0
    refund = (mask & TACTIC_BITS["REFUND_INJECTION"]) != 0
    suppress = (mask & TACTIC_BITS["CLEARING_SUPPRESSION"]) != 0
    factor = pl.Series("_c", lo + values[:, 0] * (hi - lo))
    delay = pl.Series(
        "_r", ((REFUND_DELAY_D[0] + values[:, 1] * (REFUND_DELAY_D[1] - REFUND_DELAY_D[0])) * DAY_US)
    )
    return (
        frame.with_columns(factor, delay.round().cast(pl.Int64))
        .with_columns(
            *(
                pl.when(burst)
                .then((pl.col(c).cast(pl.Float64) * pl.col("_c")).round().cast(pl.Int64).clip(1, None))
                .otherwise(pl.col(c))
                .alias(c)
                for c in TIMING_COLUMNS
            ),
            (pl.col("clearing_suppressed") | suppress).alias("clearing_suppressed"),
        )
        .with_columns(
            (pl.col("refund") | refund).alias("refund"),
            pl.when(refund)
            .then(pl.lit(10_000, pl.UInt16))
            .otherwise(pl.col("refund_fraction_bp"))
            .alias("refund_fraction_bp"),
            pl.when(refund).then(pl.col("_r")).otherwise(pl.col("refund_delay_us")).alias("refund_delay_us"),
            (pl.col("reversal") & ~refund).alias("reversal"),
        )
        .drop("_c", "_r")
    )
