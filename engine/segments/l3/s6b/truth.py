"""6B.S4's truth: every flow gets exactly one (label, subtype, source, rule) from truth.yaml's ranked rules,
first match wins (design §4.7 step 4 with amendment 6: COLLATERAL is no truth rule any more, mule flows are
ABUSE only inside activation windows).

The rules see three facts per flow, computed by the caller: its campaign's label and subtype (null without a
campaign), `posture` (a MULE party's TRANSFER/ATM flow inside one of its activation windows) and `friendly`
(a cleared POS/ECOM flow whose `6B.truth` coin fell under p × factors). Kept apart from the state so a
hand-built frame can go through the rules in a test. Mule activation windows are 6B.S3's (after an in-world
campaign transfer) plus the standalone ones drawn here."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.kernels.blocks import block_uniforms
from engine.segments.l3.s6b.policy import TRUTH_LABELS, TRUTH_SUBTYPES, MuleWindows, Rule

# truth_source per rule (contracts/6B.yaml truth_source); DEFAULT has none
SOURCE = {"CAMPAIGN": "CAMPAIGN", "POSTURE": "POSTURE", "FRIENDLY": "FRIENDLY", "DEFAULT": "NONE"}
LABEL = pl.Enum(TRUTH_LABELS)
SUBTYPE = pl.Enum(TRUTH_SUBTYPES)
SOURCES = pl.Enum(["NONE", "CAMPAIGN", "POSTURE", "FRIENDLY"])
# phases of an APP scam that are the mule's cash-out, not the victim's payment (campaigns.yaml header)
MULE_CASHOUT_PHASES = ("MULE_CASHOUT", "ONWARD_TRANSFER")
FACTS = ("campaign_label", "campaign_subtype", "posture", "friendly")
PERIOD_D = 28  # standalone mule activations are drawn per 28-day period (truth.yaml standalone_per_28d)
DAY_US = 86_400_000_000


def campaign_truth(flows: pl.DataFrame, campaigns: pl.DataFrame) -> pl.DataFrame:
    """campaign_type, campaign_label and campaign_subtype of each flow from its campaign (null without one):
    the campaign's truth_label, and the type's name as subtype except an APP scam's cash-out phases
    (MULE_CASHOUT). A campaign_id that names no campaign stops the run (E_6B_TRUTH_UNMATCHED)."""
    known = campaigns.select(
        "campaign_id",
        pl.col("truth_label").cast(pl.String).alias("campaign_label"),
        pl.col("campaign_type").cast(pl.String),
    )
    joined = flows.join(known, on="campaign_id", how="left", maintain_order="left")
    orphan = joined.filter(pl.col("campaign_id").is_not_null() & pl.col("campaign_label").is_null())
    if orphan.height:
        raise EngineError(
            "E_6B_TRUTH_UNMATCHED",
            f"{orphan.height} flows name a campaign missing from campaigns, e.g. flow "
            f"{orphan['flow_id'][0]} campaign {orphan['campaign_id'][0]}",
            where="inserted_flows / campaign_targets vs campaigns",
            fix="rebuild 6B.S3 and the states after it",
            state="6B.S4",
        )
    cashout = pl.col("campaign_phase").cast(pl.String).is_in(MULE_CASHOUT_PHASES)
    return joined.with_columns(
        pl.when(cashout)
        .then(pl.lit("MULE_CASHOUT"))
        .otherwise(pl.col("campaign_type"))
        .alias("campaign_subtype")
    )


def assign_truth(facts: pl.DataFrame, rules: list[Rule], *, state: str = "6B.S4") -> pl.DataFrame:
    """truth_label, truth_subtype, truth_source, truth_rule for each row of `facts` (columns FACTS): the
    first rule by rank that matches. A row no rule matches (a policy without DEFAULT last, refused at S0)
    raises E_6B_TRUTH_UNMATCHED; the label counts must add up to the rows (the collision guard)."""
    n = facts.height
    has_campaign = facts["campaign_label"].is_not_null().to_numpy()
    matches = {
        "CAMPAIGN": has_campaign,
        "POSTURE": facts["posture"].fill_null(False).to_numpy(),
        "FRIENDLY": facts["friendly"].fill_null(False).to_numpy(),
        "DEFAULT": np.ones(n, dtype=bool),
    }
    ranked = sorted(rules, key=lambda r: r.rank)
    chosen = np.full(n, -1, dtype=np.int64)
    for i, rule in enumerate(ranked):
        chosen[(chosen < 0) & matches[rule.rule]] = i
    if (chosen < 0).any():
        raise EngineError(
            "E_6B_TRUTH_UNMATCHED",
            f"{int((chosen < 0).sum())} flows match no truth rule",
            where="truth.yaml rules",
            fix="rank DEFAULT last",
            state=state,
        )
    label = np.zeros(n, dtype=np.uint32)
    subtype = np.zeros(n, dtype=np.uint32)
    source = np.zeros(n, dtype=np.uint32)
    rank = np.zeros(n, dtype=np.uint8)
    c_label = codes(facts["campaign_label"], LABEL)
    c_subtype = codes(facts["campaign_subtype"], SUBTYPE)
    for i, rule in enumerate(ranked):
        hit = chosen == i
        if rule.rule == "CAMPAIGN":
            label[hit], subtype[hit] = c_label[hit], c_subtype[hit]
        else:
            label[hit] = TRUTH_LABELS.index(rule.label)
            subtype[hit] = TRUTH_SUBTYPES.index(rule.subtype)
        source[hit] = SOURCES.categories.to_list().index(SOURCE[rule.rule])
        rank[hit] = rule.rank
    out = pl.DataFrame(
        {
            "truth_label": of_codes(label, LABEL),
            "truth_subtype": of_codes(subtype, SUBTYPE),
            "truth_source": of_codes(source, SOURCES),
            "truth_rule": pl.Series(rank, dtype=pl.UInt8),
        }
    )
    guard(out, has_campaign, state)
    return out


def codes(values: pl.Series, enum: pl.Enum) -> np.ndarray:
    """Positions of `values` in the vocabulary `enum` (0 where null: the caller masks those rows)."""
    if values.dtype != enum:
        values = values.cast(pl.String).cast(enum)
    return values.to_physical().fill_null(0).to_numpy().astype(np.uint32)


def of_codes(positions: np.ndarray, enum: pl.Enum) -> pl.Series:
    """The Enum series whose physical codes are `positions`."""
    return pl.Series(enum.categories.to_list(), dtype=enum).gather(positions)


def guard(truth: pl.DataFrame, has_campaign: np.ndarray, state: str) -> None:
    """The collision guard (§4.7 step 5): one label per row, every campaign flow labelled by its campaign
    and non-LEGIT, every non-LEGIT row explained by a rule that labels so."""
    counts = truth["truth_label"].value_counts()
    if int(counts["count"].sum()) != truth.height or truth["truth_label"].null_count():
        raise EngineError(
            "E_6B_TRUTH_COLLISION", "labelled rows differ from rows", where="s4_flows", state=state
        )
    by_campaign = (truth["truth_source"] == "CAMPAIGN").to_numpy()
    unexplained = (truth["truth_source"] == "NONE").to_numpy()
    legit = (truth["truth_label"] == "LEGIT").to_numpy()
    bad = (has_campaign & (~by_campaign | legit)) | (~legit & unexplained)
    if bad.any():
        raise EngineError(
            "E_6B_TRUTH_COLLISION",
            f"{int(bad.sum())} flows carry a campaign but another label, or a non-LEGIT label without a rule",
            where="s4_flows truth columns",
            fix="give each campaign type a FRAUD or ABUSE label in campaigns.yaml",
            state=state,
        )


def standalone_windows(
    mules: np.ndarray, start_us: int, days: int, policy: MuleWindows, key: tuple[int, int]
) -> tuple[pl.DataFrame, np.ndarray]:
    """Standalone mule activations (truth.yaml mule_windows: funds from outside the world): the horizon is cut
    into 28-day periods and in each a MULE party is activated when u0 < standalone_per_28d (capped at 1), from
    period start + u1·28 d for U[lo, hi] days (u2). `6B.truth` ⟨party_id, 1, period, 0⟩, lanes 0–2: keyed by
    the party, so every shard draws the same windows. Returns the windows (target_kind PARTY, target_id,
    start, end in µs) and the lane-0 draws (one block per party and period, for the ledger)."""
    periods = -(-days // PERIOD_D)
    party = np.repeat(np.asarray(mules, dtype=np.uint64), periods)
    period = np.tile(np.arange(periods, dtype=np.uint64), mules.size)
    u = block_uniforms(key, party, 1, period, 0, lanes=3)
    lo, hi = policy.standalone_days.lo, policy.standalone_days.hi
    begin = start_us + (period.astype(np.int64) * PERIOD_D + u[:, 1] * PERIOD_D) * DAY_US
    length = (lo + u[:, 2] * (hi - lo)) * DAY_US
    on = u[:, 0] < min(1.0, policy.standalone_per_28d)
    windows = pl.DataFrame(
        {
            "target_kind": pl.Series(["PARTY"] * int(on.sum()), dtype=pl.String),
            "target_id": pl.Series(party[on], dtype=pl.UInt64),
            "start": pl.Series(np.round(begin[on]).astype(np.int64)),
            "end": pl.Series(np.round(begin[on] + length[on]).astype(np.int64)),
        }
    )
    return windows, u[:, 0]
