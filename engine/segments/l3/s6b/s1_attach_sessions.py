"""6B.S1 — who pays for each arrival of this (scenario, shard), with what, from where, and in which session
(design §4.4, amendment 8). Streamed by 5B's arrival parts in batches of whole merchants: the attachment
kernel (engine/kernels/attach.py) picks the party, attach mode (DOMESTIC, FOREIGN, REGULAR, CONTINUATION, or
TRAVEL: a card-present arrival from abroad given to a party on a trip there, pools.py) and session; the
entity kernel (engine/kernels/attach_entities.py) the account, instrument, terminal, device, IP and payee.
Every draw is keyed by arrival_id (`6B.attach`), merchant (`6B.regular`) or party (`6B.travel`), never by
position, so the rows are the same for any shard count and batch size. One output row per arrival, in
arrival order.

RNG: `6B.attach` block 0 ⟨arrival_id, 0, 0, 0⟩ (4 lanes) for every arrival; block 1 ⟨arrival_id, 1, 0, 0⟩ for
every arrival that is not a continuation and its continuation ⟨arrival_id, 1, 0, 1⟩ on ECOM/TRANSFER;
`6B.regular` ⟨merchant_id, slot, channel code, iso_num⟩ (1 lane) per regular slot of this shard's merchants;
`6B.travel` ⟨party_id, period, 0, 0⟩ (4 lanes) per party and 28-day period of the horizon (every shard draws
the same trips). All are drawn again in every scenario (common random numbers).

Validation in-state: one row per arrival (E_6B_FLOW_COVERAGE); a party, account and instrument for every
arrival (E_6B_ATTACH_NO_CANDIDATE); the instrument belongs to the account and the account to the party
(E_6B_ATTACH_INCONSISTENT)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.attach import (
    N_CHANNELS,
    NO_PARTY,
    Arrivals,
    Attached,
    Probabilities,
    Travellers,
    attach,
)
from engine.kernels.attach_entities import CNP_CHANNELS, Entities, Knobs, Rows, draw_entities
from engine.kernels.blocks import block_raw
from engine.segments.l2.s5b.batches import part_rows, unit_batches
from engine.segments.l3.s6b.holdings import World, load_world
from engine.segments.l3.s6b.policy import CHANNELS, Attachment, Channels, Sessions
from engine.segments.l3.s6b.pools import (
    Parties,
    Slots,
    build_parties,
    build_slots,
    build_trips,
    cell_key,
    channel_codes,
    eligibility,
    slot_cells,
)

AFFINITY_SCORES = ["digital_affinity", "cash_affinity", "income_score", "cross_border_propensity"]
READ = ["arrival_id", "merchant_id", "ts_utc", "legal_country_iso", "channel_group", "site_id"]
BATCH_ROWS = 1 << 21  # arrivals per batch (whole merchants): bounds the batch arrays to ≈ 0.5 GiB
US = 1_000_000
ATTACH_MODES = ("DOMESTIC", "FOREIGN", "REGULAR", "CONTINUATION", "TRAVEL", "CAMPAIGN", "RETRY")
CHANNEL_ENUM = pl.Series(CHANNELS, dtype=pl.Enum(CHANNELS))
MODE_ENUM = pl.Series(ATTACH_MODES, dtype=pl.Enum(ATTACH_MODES))


def fail(ctx: StateContext, code: str, what: str, where: str, fix: str = "") -> EngineError:
    return EngineError(code, what, where=where, fix=fix, state=ctx.state)


@dataclass(frozen=True)
class Setup:
    """Everything a batch needs besides its rows."""

    parties: Parties
    world: World
    slots: Slots
    travellers: Travellers
    merchant_ids: np.ndarray  # u64 sorted
    merchant_mcc: np.ndarray  # i64 per merchant_ids row
    channels: Channels
    prob: Probabilities
    knobs: Knobs
    key: tuple[int, int]


def setup(ctx: StateContext) -> Setup:
    pol: Attachment = ctx.policy("6B/attachment.yaml")
    channels: Channels = ctx.policy("6B/channels.yaml")
    sessions: Sessions = ctx.policy("6B/sessions.yaml")
    alpha_6a = ctx.policy("6A/population.yaml").activity.pareto_alpha
    parties = ctx.sealed_table(
        "parties",
        ["party_id", "country_iso", "region", "activity_weight", *AFFINITY_SCORES],
    ).sort("party_id")
    n = parties.height
    if n == 0 or parties["party_id"][-1] != n:
        raise fail(ctx, "E_6B_ATTACH_NO_CANDIDATE", "6A parties are not numbered 1..N", "6A parties")
    world = load_world(ctx, pol, n)
    eligible = eligibility(n, world.party_of_acc_row, world.inst_acc_row, world.inst_w)
    profile = ctx.sealed_table(
        "merchant_zone_profile",
        ["merchant_id", "legal_country_iso", "channel_group", "mcc", "weekly_expected"],
    )
    ref = ctx.sealed_table("ref_countries")
    countries = profile["legal_country_iso"].cast(pl.String).unique().to_list()
    cand = build_parties(parties, eligible, countries, ref, pol, alpha_6a)
    catalogue = ctx.sealed_table("merchant_catalogue", ["merchant_id", "mcc"]).sort("merchant_id")
    merchant_ids = catalogue["merchant_id"].to_numpy().astype(np.uint64)
    mine = profile.filter(pl.Series(ctx.shard_of(profile["merchant_id"].to_numpy()) == ctx.shard))
    slots = build_slots(slot_cells(mine, cand, channels), cand, merchant_ids, pol, ctx.family_key("regular"))
    ctx.record_draws(
        "regular",
        (slots.merchant_id, slots.slot, slots.channel, slots.iso_num),
        draws=1,
        blocks=1,
        value=slots.slots.party.astype(np.float64),
    )
    ctx.facts["regular_slots"] = int(slots.slots.party.size)
    horizon = ctx.policy("CFG/horizon.yaml")
    trips = build_trips(
        cand, pol, ctx.family_key("travel"), int(horizon.start().timestamp()) * US, horizon.days
    )
    ctx.record_draws(
        "travel",
        (trips.party_id, trips.period, 0, 0),
        draws=4,
        blocks=1,
        value=trips.taken.astype(np.float64),
    )
    ctx.facts["trips"] = int(trips.taken.sum())
    return Setup(
        parties=cand,
        world=world,
        slots=slots,
        travellers=trips.travellers,
        merchant_ids=merchant_ids,
        merchant_mcc=catalogue["mcc"].to_numpy().astype(np.int64),
        channels=channels,
        prob=Probabilities(
            p_continue=np.array([pol.p_continue[c] for c in CHANNELS]),
            p_regular=np.array([pol.p_regular[c] for c in CHANNELS]),
            p_domestic=np.array([pol.p_domestic[c] for c in CHANNELS]),
            slot_skew=pol.regular_slots.skew,
            travel=np.array([c in pol.travel.channels for c in CHANNELS]),
            gap_us=sessions.gap_seconds * US,
            max_session_us=sessions.max_session_hours * 3600 * US,
        ),
        knobs=Knobs(pol.primary_account_weight, pol.p_guest_device, pol.p_legit_vpn),
        key=ctx.family_key("attach"),
    )


def enum_index(series: pl.Series, values: np.ndarray) -> np.ndarray:
    """Position of each cell in the sorted `values` (−1 where not among them), through the Enum's codes."""
    if not isinstance(series.dtype, pl.Enum):
        series = series.cast(pl.String).cast(pl.Enum(sorted(series.cast(pl.String).unique().drop_nulls())))
    cats = np.asarray(series.dtype.categories.to_list())
    lut = np.searchsorted(values, cats) if values.size else np.zeros(cats.size, dtype=np.int64)
    lut = np.where((lut < values.size) & (values[np.minimum(lut, max(values.size - 1, 0))] == cats), lut, -1)
    return lut[series.to_physical().to_numpy().astype(np.int64)]


def arrivals_of(s: Setup, batch: pl.DataFrame) -> tuple[Arrivals, np.ndarray]:
    """The kernel's view of a batch, and each arrival's site row in the terminal table."""
    fid = batch["arrival_id"].to_numpy().astype(np.uint64)
    m = batch["merchant_id"].to_numpy().astype(np.uint64)
    mpos = np.searchsorted(s.merchant_ids, m).astype(np.int64)
    country = enum_index(batch["legal_country_iso"], s.parties.countries)
    cp = enum_index(batch["channel_group"], np.array(["CNP", "CP"])) == 1
    channel = channel_codes(cp, s.merchant_mcc[mpos], s.channels)
    key = cell_key(mpos, country, channel, s.parties.countries.size)
    pos = np.minimum(np.searchsorted(s.slots.keys, key), max(s.slots.keys.size - 1, 0))
    slot_row = np.where(s.slots.keys[pos] == key, pos, -1) if s.slots.keys.size else np.full(key.size, -1)
    site = batch["site_id"]
    site_row = s.world.site_rows(
        site.fill_null(0).to_numpy().astype(np.uint64), site.is_not_null().to_numpy()
    )
    ts = batch["ts_utc"].dt.epoch("us").to_numpy().astype(np.int64)
    lanes = block_raw(s.key, fid, 0, 0, 0, lanes=4)
    arr = Arrivals(fid, mpos, slot_row.astype(np.int64), ts, country.astype(np.int64), channel, lanes)
    return arr, site_row


def check(ctx: StateContext, s: Setup, arr: Arrivals, att: Attached, ent: Entities) -> None:
    none = np.flatnonzero((att.party == NO_PARTY) | (ent.account == 0) | (ent.instrument == 0))
    if none.size:
        i = int(none[0])
        raise fail(
            ctx,
            "E_6B_ATTACH_NO_CANDIDATE",
            f"{none.size} arrivals found no party, account or instrument, e.g. arrival {int(arr.flow_id[i])} "
            f"({CHANNELS[int(arr.channel[i])]} in {s.parties.countries[arr.country[i]]})",
            "6A parties/accounts/instruments",
            "6A must give every demand country parties holding instruments for each channel with demand",
        )
    w = s.world
    bad = (w.inst_account[ent.instrument.astype(np.int64)] != ent.account) | (
        w.acc_party[ent.account.astype(np.int64)] != att.party
    )
    if bad.any():
        raise fail(
            ctx,
            "E_6B_ATTACH_INCONSISTENT",
            f"{int(bad.sum())} arrivals pay with an instrument outside the account or an account outside "
            "the party",
            "6B.S1 entity draw",
        )


def frame(s: Setup, arr: Arrivals, att: Attached, ent: Entities) -> pl.DataFrame:
    def opt(ids: np.ndarray) -> pl.Series:
        return pl.Series(ids, dtype=pl.UInt64).replace(0, None)

    known = pl.Series(ent.known == 1)
    return pl.DataFrame(
        {
            "flow_id": arr.flow_id,
            "channel": CHANNEL_ENUM.gather(arr.channel),
            "party_id": att.party,
            "account_id": ent.account,
            "instrument_id": ent.instrument,
            "device_id": opt(ent.device),
            "terminal_id": opt(ent.terminal),
            "ip_id": opt(ent.ip),
            "payee_account_id": opt(ent.payee),
            "is_cross_border": s.parties.party_country[att.party.astype(np.int64)] != arr.country,
            "attach_mode": MODE_ENUM.gather(att.mode.astype(np.int64)),
            "device_known": known,
            "session_id": att.session_id,
            "session_seq": att.session_seq,
        }
    ).with_columns(pl.when(pl.Series(ent.known >= 0)).then(pl.col("device_known")).otherwise(None))


class Tally:
    """Counts for the state report: rows by channel × mode, cross-border by channel, device and IP kinds."""

    def __init__(self) -> None:
        self.by = np.zeros((N_CHANNELS, len(ATTACH_MODES)), dtype=np.int64)
        self.cross = np.zeros(N_CHANNELS, dtype=np.int64)
        self.guest = 0
        self.no_terminal = 0
        self.cnp_no_ip = 0

    def add(self, arr: Arrivals, att: Attached, ent: Entities, cross: np.ndarray) -> None:
        np.add.at(self.by, (arr.channel, att.mode.astype(np.int64)), 1)
        np.add.at(self.cross, arr.channel[cross], 1)
        self.guest += int((ent.known == 0).sum())
        cp = (arr.channel == 0) | (arr.channel == 2)
        self.no_terminal += int((cp & (ent.terminal == 0)).sum())
        self.cnp_no_ip += int((~cp & (ent.ip == 0)).sum())

    def facts(self) -> dict[str, object]:
        return {
            "arrivals_by_channel": {c: int(self.by[i].sum()) for i, c in enumerate(CHANNELS)},
            "attach_mode_by_channel": {
                c: {m: int(self.by[i, j]) for j, m in enumerate(ATTACH_MODES) if self.by[i, j]}
                for i, c in enumerate(CHANNELS)
            },
            "cross_border_by_channel": {c: int(self.cross[i]) for i, c in enumerate(CHANNELS)},
            "guest_device_flows": self.guest,
            "card_present_without_terminal": self.no_terminal,
            "cnp_without_ip": self.cnp_no_ip,
        }


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None and ctx.shard is not None
    s = setup(ctx)
    parts = ctx.sealed_parts("arrival_events", scenario=ctx.scenario, shard=ctx.shard)
    total = part_rows(parts)
    meter = ctx.progress_meter(total, "arrivals")
    tally = Tally()
    written = 0
    cnp = np.array(CNP_CHANNELS)
    with ctx.stream("s1_attachments") as sink:
        for batch in unit_batches(parts, READ, ["merchant_id"], BATCH_ROWS):
            arr, site_row = arrivals_of(s, batch)
            att = attach(arr, s.parties.pools, s.parties.foreign, s.slots.slots, s.prob, s.travellers)
            party_country = s.parties.party_country[att.party.astype(np.int64)]
            rows = Rows(arr.flow_id, arr.channel, att.party, party_country, site_row, att.copy_of)
            ent = draw_entities(s.key, rows, s.world.holdings, s.parties.pools, s.knobs)
            check(ctx, s, arr, att, ent)
            out = frame(s, arr, att, ent)
            tally.add(arr, att, ent, out["is_cross_border"].to_numpy())
            fresh = att.copy_of < 0
            blocks = 1 + fresh + (fresh & np.isin(arr.channel, cnp))
            ctx.record_draws(
                "attach", (arr.flow_id, 0, 0, 0), draws=4 * blocks, blocks=blocks, value=att.party
            )
            sink.write(out)
            written += out.height
            meter.advance(out.height)
    meter.close()
    if written != total:
        raise fail(
            ctx, "E_6B_FLOW_COVERAGE", f"wrote {written} attachments for {total} arrivals", "s1_attachments"
        )
    ctx.facts["arrivals"] = total
    ctx.facts.update(tally.facts())
