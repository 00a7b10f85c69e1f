"""Amendment 5, block and reissue, across 6B's merchant shards: a card's flows live in every shard its holder
shopped in, so a block found in one shard must reach all of them.

6B.S5a finds, shard by shard, the detections that block a card (`candidates`): a flow of a compromise subtype
declined as fraud at auth or caught by monitoring, or a fraud-coded dispute (the holder says the card is
compromised). 6B.S5b takes each card's first such detection and, by `6B.block` ⟨instrument_id, 0, 0, 0⟩ (u(w0)
the block coin, u(w1) the block delay, u(w2) the reissue delay: one block per detected card), blocks it and
issues its replacement (`card_blocks`). 6B.S5 then applies the blocks to every flow after its card's block
(`apply_blocks`): fraud attempts, and genuine ones before the replacement arrives, are declined
LOST_STOLEN_CARD; genuine flows from the replacement's arrival on move to the new card.

The block time depends only on detections that precede it, and a block only changes flows after it, so the
detections S5a finds without blocks are exactly those the blocked world has before each block."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from engine.kernels.blocks import block_uniforms
from engine.segments.l3.s6a.policy import INSTRUMENT_TYPES
from engine.segments.l3.s6b.bank_columns import TS, codes_of
from engine.segments.l3.s6b.decisions import DECLINE, DECLINE_FRAUD, Auth
from engine.segments.l3.s6b.disputes import AT_AUTH, CUSTOMER_REPORT, MONITORING, Learned
from engine.segments.l3.s6b.policy import DECLINE_REASONS, TRUTH_SUBTYPES, BlockReissue

# the replacement of card c is REISSUE_BIT | c (6A's ids are sequential, far below 2^40)
REISSUE_BIT = 1 << 40
BLOCK_LANES = 3  # 6B.block lanes per detected card: the block coin, the block delay, the reissue delay
LOST_STOLEN_CARD = DECLINE_REASONS.index("LOST_STOLEN_CARD")
CARD_TYPES = tuple(t for t in INSTRUMENT_TYPES if t != "BANK_ACCOUNT")  # cards and their tokens
BLOCKING_CHANNELS = ("AT_AUTH", "MONITORING", "CUSTOMER_REPORT")
US, DAY_US = 1_000_000, 86_400_000_000


def candidates(view: pl.DataFrame, auth: Auth, got: Learned, policy: BlockReissue) -> pl.DataFrame:
    """The batch's flows whose detection blocks their card: flow_id, instrument_id, party_id, account_id,
    detection_channel, detection_ts_utc. At auth only a fraud decline counts: a failed 3-D Secure challenge
    already stopped its attempt, and a holder who mistyped a code keeps the card."""
    compromised = np.isin(
        codes_of(view["truth_subtype"], TRUTH_SUBTYPES),
        [TRUTH_SUBTYPES.index(t) for t in policy.compromise_subtypes],
    )
    caught = ((got.detection == AT_AUTH) & (auth.decision == DECLINE_FRAUD)) | (got.detection == MONITORING)
    card = view["instrument_type"].cast(pl.String).is_in(CARD_TYPES).fill_null(False).to_numpy()
    rows = np.flatnonzero(card & ((caught & compromised) | (got.detection == CUSTOMER_REPORT)))
    channel = np.select([got.detection[rows] == c for c in (AT_AUTH, MONITORING)], [0, 1], 2)
    return view.select("flow_id", "instrument_id", "party_id", "account_id")[rows].with_columns(
        detection_channel=pl.Series(channel)
        .cast(pl.Int64)
        .replace_strict(dict(enumerate(BLOCKING_CHANNELS)), return_dtype=pl.Enum(BLOCKING_CHANNELS)),
        detection_ts_utc=pl.Series(got.detection_ts[rows]).cast(TS),
    )


def card_blocks(
    found: pl.DataFrame, key: tuple[int, int], policy: BlockReissue
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Each detected card's first detection (ties by flow_id), and for those the coin blocks, the block and
    the replacement (card_reissues rows without identity columns, by instrument_id). Also every detected
    card's id and uniforms (n, BLOCK_LANES), for the draw record."""
    first = (
        found.sort("detection_ts_utc", "flow_id")
        .unique("instrument_id", keep="first", maintain_order=True)
        .sort("instrument_id")
    )
    ids = first["instrument_id"].to_numpy()
    u = block_uniforms(key, ids, 0, 0, 0, lanes=BLOCK_LANES)
    d, r = policy.block_delay_s, policy.reissue_d
    block_us = np.floor((d.lo + u[:, 1] * (d.hi - d.lo)) * US).astype(np.int64)
    reissue_us = np.floor((r.lo + u[:, 2] * (r.hi - r.lo)) * DAY_US).astype(np.int64)
    detected = first["detection_ts_utc"].dt.epoch("us").to_numpy()
    blocked = u[:, 0] < policy.p_block
    out = first.select(
        "instrument_id",
        "party_id",
        "account_id",
        pl.col("flow_id").alias("detection_flow_id"),
        "detection_channel",
        "detection_ts_utc",
        card_blocked_ts_utc=pl.Series(detected + block_us).cast(TS),
        new_instrument_id=pl.Series(ids.astype(np.uint64) | np.uint64(REISSUE_BIT)),
        reissue_ts_utc=pl.Series(detected + block_us + reissue_us).cast(TS),
    ).filter(pl.Series(blocked))
    return out, ids, u


@dataclass(frozen=True)
class Blocks:
    """card_reissues as sorted arrays: the blocked card, its block time, its replacement and its arrival
    (µs)."""

    card: np.ndarray
    blocked_us: np.ndarray
    new_card: np.ndarray
    reissue_us: np.ndarray

    @classmethod
    def of(cls, reissues: pl.DataFrame) -> Blocks:
        t = reissues.sort("instrument_id")
        return cls(
            t["instrument_id"].to_numpy().astype(np.uint64),
            t["card_blocked_ts_utc"].dt.epoch("us").to_numpy(),
            t["new_instrument_id"].to_numpy().astype(np.uint64),
            t["reissue_ts_utc"].dt.epoch("us").to_numpy(),
        )


@dataclass(frozen=True)
class Applied:
    """A batch under the blocks: every flow's card (moved flows on the replacement), the card's block time
    (−1: not blocked; a moved flow's new card is not), and the decisions with the blocked attempts
    declined."""

    instrument_id: np.ndarray
    card_blocked_us: np.ndarray
    auth: Auth
    declined: np.ndarray
    moved: np.ndarray


def apply_blocks(
    instrument_id: pl.Series, request_us: np.ndarray, legit: np.ndarray, auth: Auth, blocks: Blocks
) -> Applied:
    """Flows at or after their card's block: genuine ones from the replacement's arrival on move to it; the
    rest (fraud, and genuine attempts in between) are declined LOST_STOLEN_CARD without a challenge."""
    ids = instrument_id.fill_null(0).to_numpy().astype(np.uint64)
    n = ids.shape[0]
    if blocks.card.shape[0] == 0:
        none = np.zeros(n, dtype=bool)
        return Applied(ids, np.full(n, -1, dtype=np.int64), auth, none, none)
    pos = np.minimum(np.searchsorted(blocks.card, ids), blocks.card.shape[0] - 1)
    on_blocked = (blocks.card[pos] == ids) & instrument_id.is_not_null().to_numpy()
    after = on_blocked & (request_us >= blocks.blocked_us[pos])
    moved = after & legit & (request_us >= blocks.reissue_us[pos])
    declined = after & ~moved
    decision, reason = auth.decision.copy(), auth.reason.copy()
    decision[declined], reason[declined] = DECLINE, LOST_STOLEN_CARD
    challenged = auth.challenged & ~declined
    step_up = np.where(declined, -1, auth.step_up).astype(auth.step_up.dtype)
    new_auth = replace(auth, decision=decision, reason=reason, challenged=challenged, step_up=step_up)
    card = np.where(moved, blocks.new_card[pos], ids)
    blocked_us = np.where(on_blocked & ~moved, blocks.blocked_us[pos], -1)
    return Applied(card, blocked_us, new_auth, declined, moved)
