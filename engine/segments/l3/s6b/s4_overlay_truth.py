"""6B.S4 — overlay and truth (design §4.7 with amendments 6 and 8): every flow of the shard with its final
values and exactly one truth label, in (merchant_id, ts_utc, flow_id) order.

Per batch of whole merchants of the shard's arrivals (arrival_events, s1_attachments and s2_flow_plan zipped
by position): campaigns claim baseline flows inside their targets' windows and apply their tactics
(tactics.py); the shard's inserted flows (6B.S3's one partition per scenario, filtered to this shard) get an
S2 plan from flow_plan.plan_flows with their own `6B.flow` keys, their tactics and local time (placement.py)
and merge into their merchant's stream; declined baseline flows that retry gain their retry row (retries.py);
then the ranked truth rules label every row (truth.py).

RNG: `6B.overlay` (tactics.py); `6B.truth` ⟨flow_id, 0, 0, 0⟩, lane 0 the friendly coin of each cleared
POS/ECOM flow without a campaign; `6B.flow` for the plans of inserted and retry flows (flow_plan.py). Every
draw is keyed by flow and campaign ids, so the rows do not depend on the shard count or the batch."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from engine.core.contracts import DTYPES, dictionary, table_schema
from engine.core.errors import EngineError
from engine.core.horizon import Horizon
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.segments.l3.s6b.flow_plan import FlowInputs, flow_amounts, plan_flows, record_plan_draws
from engine.segments.l3.s6b.placement import Placement
from engine.segments.l3.s6b.policy import CAMPAIGN_TYPES, CHANNELS, TACTIC_BITS, Campaigns, Truth
from engine.segments.l3.s6b.retries import retry_rows
from engine.segments.l3.s6b.tactics import (
    Overlay,
    apply_timing,
    claims,
    select,
    selected_tactics,
    value_uniforms,
)
from engine.segments.l3.s6b.truth import (
    LABEL,
    SUBTYPE,
    assign_truth,
    campaign_truth,
    standalone_windows,
)

STATE = "6B.S4"
IDENTITY = ("seed", "manifest_fingerprint", "scenario_id", "shard")
BATCH_ROWS = 1 << 20
ARRIVAL_COLUMNS = [
    "arrival_id",
    "merchant_id",
    "ts_utc",
    "ts_local",
    "tzid_local",
    "utc_offset_s",
    "legal_country_iso",
    "site_id",
    "edge_id",
]
# a selected flow's campaign_phase by its type (contracts/6B.yaml phase): collusion inflates the merchant's
# own sales, the others take the party's flows over
SELECTED_PHASE = {"MERCHANT_COLLUSION": "INFLATED"}
POSTURE_CHANNELS = ("TRANSFER", "ATM")
TYPE = pl.Enum(CAMPAIGN_TYPES)
# the overlay columns of a flow no campaign touched
NO_CAMPAIGN = (
    pl.lit(None, pl.UInt64).alias("campaign_id"),
    pl.lit(None, pl.String).alias("campaign_phase"),
    pl.lit(0, pl.UInt16).alias("tactic_mask"),
    pl.lit(0.0, pl.Float32).alias("decline_bias"),
    pl.lit(False).alias("clearing_suppressed"),
)
LABELS = ("campaign_type", "truth_label", "truth_subtype", "truth_source", "truth_rule")  # added by label()


def contract_columns() -> dict[str, dict]:
    """s4_flows' data columns (identity columns excluded) and their specs, in contract order."""
    columns = table_schema(dictionary()["s4_flows"]["schema"]).columns
    return {
        c: spec
        for c, spec in columns.items()
        if c not in ("seed", "manifest_fingerprint", "scenario_id", "shard")
    }


class World:
    """What every batch needs: the policies, the overlay plan, the roles, the mule windows, the placement
    tables and the flow-plan inputs."""

    def __init__(self, ctx: StateContext) -> None:
        self.truth: Truth = ctx.policy("6B/truth.yaml")
        self.campaigns_policy: Campaigns = ctx.policy("6B/campaigns.yaml")
        targets = ctx.read("campaign_targets", scenario=ctx.scenario)
        self.overlay = Overlay.of(
            ctx.read("campaigns", scenario=ctx.scenario), targets, self.campaigns_policy
        )
        self.place = Placement.of(ctx)
        self.inputs = FlowInputs.from_ctx(ctx)
        roles = ctx.sealed_table("party_roles").select("party_id", pl.col("role").cast(pl.String))
        self.mules = roles.filter(pl.col("role") == "MULE").select("party_id")
        self.prone = roles.filter(pl.col("role") == "FRIENDLY_FRAUD_PRONE")["party_id"]
        horizon: Horizon = ctx.policy("CFG/horizon.yaml")
        mules = self.mules["party_id"].sort().to_numpy()
        standalone, coins = standalone_windows(
            mules,
            int(horizon.start().timestamp()) * 1_000_000,
            horizon.days,
            self.truth.mule_windows,
            ctx.family_key("truth"),
        )
        periods = coins.size // max(mules.size, 1)
        ctx.record_draws(
            "truth",
            (np.repeat(mules, periods), 1, np.tile(np.arange(periods), mules.size), 0),
            draws=3,
            blocks=1,
            value=coins,
        )
        ctx.facts["standalone_mule_windows"] = standalone.height
        self.windows = pl.concat([mule_windows(targets), standalone])
        self.overlay_key = ctx.family_key("overlay")
        self.truth_key = ctx.family_key("truth")
        self.columns = contract_columns()


def mule_windows(targets: pl.DataFrame) -> pl.DataFrame:
    """Mule activation windows (amendment 6; truth.yaml mule_windows): 6B.S3's MULE targets, by party or by
    account, as (kind, target_id, start µs, end µs)."""
    return targets.filter(pl.col("target_role").cast(pl.String) == "MULE").select(
        pl.col("target_kind").cast(pl.String),
        "target_id",
        pl.col("window_start").dt.epoch("us").alias("start"),
        pl.col("window_end").dt.epoch("us").alias("end"),
    )


# --- reading the shard's baseline flows ---------------------------------------------------------------
def _chunks(paths: list[Path], columns: list[str]) -> Iterator[pl.DataFrame]:
    """Each part's rows BATCH_ROWS at a time (polars' reader: a slice of whole row groups)."""
    for path in paths:
        rows = pq.ParquetFile(path).metadata.num_rows
        scan = pl.scan_parquet(path, hive_partitioning=False).select(columns)
        for offset in range(0, rows, BATCH_ROWS):
            yield scan.slice(offset, BATCH_ROWS).collect()


def _rows(paths: list[Path], columns: list[str]) -> Iterator[pl.DataFrame]:
    """Consecutive row slices of a multi-part table, BATCH_ROWS at a time whatever its part boundaries."""
    buf: pl.DataFrame | None = None
    for frame in _chunks(paths, columns):
        buf = frame if buf is None else pl.concat([buf, frame], how="vertical_relaxed")
        while buf.height >= BATCH_ROWS:
            yield buf.slice(0, BATCH_ROWS)
            buf = buf.slice(BATCH_ROWS)
    if buf is not None and buf.height:
        yield buf


def baseline_batches(ctx: StateContext, conform: Conform) -> Iterator[pl.DataFrame]:
    """Frames of whole merchants: arrival columns, S1 and S2 columns side by side, conformed; the three tables
    must hold the same flow ids in the same order (E_6B_FLOW_COVERAGE)."""
    arrivals = ctx.sealed_parts("arrival_events", scenario=ctx.scenario, shard=ctx.shard)
    s1 = ctx.part_files("s1_attachments", scenario=ctx.scenario, shard=ctx.shard)
    s2 = ctx.part_files("s2_flow_plan", scenario=ctx.scenario, shard=ctx.shard)
    rows = [sum(pq.ParquetFile(p).metadata.num_rows for p in paths) for paths in (arrivals, s1, s2)]
    if len(set(rows)) != 1:
        raise coverage(f"arrival_events, s1_attachments, s2_flow_plan hold {rows} rows")
    s1_cols = [c for c in pq.ParquetFile(s1[0]).schema_arrow.names if c not in IDENTITY]
    s2_cols = [c for c in pq.ParquetFile(s2[0]).schema_arrow.names if c not in IDENTITY]
    carry: pl.DataFrame | None = None
    for a, b, c in zip(_rows(arrivals, ARRIVAL_COLUMNS), _rows(s1, s1_cols), _rows(s2, s2_cols), strict=True):
        if not ((a["arrival_id"] == b["flow_id"]).all() and (b["flow_id"] == c["flow_id"]).all()):
            raise coverage("s1_attachments / s2_flow_plan are not aligned row for row with arrival_events")
        frame = conform(pl.concat([a, b, c.drop("flow_id")], how="horizontal"))
        buf = frame if carry is None else pl.concat([carry, frame])
        m = buf["merchant_id"]
        cut = int((m != m[-1]).sum())  # rows before the batch's last merchant (rows are sorted by merchant)
        if cut:
            yield buf.slice(0, cut)
        carry = buf.slice(cut)
    if carry is not None and carry.height:
        yield carry


def coverage(what: str) -> EngineError:
    return EngineError(
        "E_6B_FLOW_COVERAGE",
        what,
        where="6B.S1/S2 outputs of this shard",
        fix="rerun 6B.S1 and 6B.S2",
        state=STATE,
    )


class Conform:
    """Casts a frame's columns to s4_flows' dtypes (cat columns to fixed Enums, so batches of any origin
    concatenate and stream with the same vocabulary: the contract's, or the world's `world_enums` — 5B's tzids
    and countries); columns outside the contract pass unchanged, their categoricals as strings."""

    def __init__(self, columns: dict[str, dict], world_enums: dict[str, pl.Enum]) -> None:
        self.dtypes: dict[str, pl.DataType] = {}
        for name, spec in columns.items():
            if spec["dtype"] == "cat":
                self.dtypes[name] = world_enums[name] if name in world_enums else pl.Enum(spec["enum"])
            else:
                self.dtypes[name] = DTYPES[spec["dtype"]]

    def __call__(self, frame: pl.DataFrame) -> pl.DataFrame:
        casts = []
        for name, dtype in frame.schema.items():
            want = self.dtypes.get(name)
            if want is None:
                if isinstance(dtype, pl.Categorical | pl.Enum):
                    casts.append(pl.col(name).cast(pl.String))
            elif dtype != want:
                source = (
                    pl.col(name).cast(pl.String)
                    if isinstance(want, pl.Enum) and dtype != pl.String
                    else pl.col(name)
                )
                casts.append(source.cast(want))
        return frame.with_columns(casts) if casts else frame


class Overlayer:
    """One shard's S4: the world, the draws it records and the counts it reports."""

    def __init__(self, ctx: StateContext) -> None:
        self.ctx = ctx
        self.w = World(ctx)
        countries = pl.read_parquet_schema(
            ctx.sealed_parts("arrival_events", scenario=ctx.scenario, shard=ctx.shard)[0]
        )["legal_country_iso"]
        self.conform = Conform(
            self.w.columns, {"tzid_local": self.w.place.tzid, "legal_country_iso": countries}
        )
        self.counts: dict[str, int] = {}

    def add(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(n)

    # --- inserted flows ------------------------------------------------------------------------------------
    def inserted(self) -> pl.DataFrame:
        """The shard's inserted flows, planned, with their tactics and local time, sorted by merchant."""
        w, ctx = self.w, self.ctx
        ins = ctx.read("inserted_flows", scenario=ctx.scenario)
        ins = ins.filter(pl.col("shard") == ctx.shard).drop(*IDENTITY)
        self.add("inserted", ins.height)
        if ins.height == 0:
            return self.conform(pl.DataFrame(schema=self.empty_schema()))
        ins = w.place.local(ins, w.place.zone_of(ins, STATE), STATE)
        # 6B.S3 writes amount_tilt = γ for an up tilt, 1/γ for a down tilt, 1.0 for none
        tilt = pl.col("amount_tilt").cast(pl.Float64)
        amount = ((pl.col("tactic_mask") & TACTIC_BITS["AMOUNT_SHIFT"]) != 0) & (tilt != 1.0) & (tilt > 0.0)
        ins = ins.with_columns(
            pl.when(amount).then(pl.max_horizontal(tilt, 1.0 / tilt)).alias("tilt_gamma"),
            (tilt > 1.0).alias("tilt_up"),
            pl.lit(True).alias("fraud"),
        )
        plan = plan_flows(ins, w.inputs)
        record_plan_draws(ctx, plan)
        frame = pl.concat(
            [ins.drop("tilt_gamma", "tilt_up", "fraud"), plan.drop("flow_id")],
            how="horizontal",
        )
        frame = frame.with_columns(
            pl.col("forced_amount_minor").fill_null(pl.col("amount_minor")).alias("amount_minor"),
            pl.lit(False).alias("retry"),
            pl.lit(False).alias("clearing_suppressed"),
            pl.lit("INSERTED").alias("origin"),
            pl.lit(None, pl.UInt64).alias("arrival_id"),
            pl.lit(None, pl.UInt64).alias("retry_of_flow_id"),
            pl.col("phase").alias("campaign_phase"),
        )
        frame, _ = self.timing(frame)
        return self.conform(frame).sort("merchant_id", "ts_utc", "flow_id")

    def timing(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
        """The k = 3 value lanes of each campaign flow and the timing tactics they drive."""
        values = value_uniforms(
            self.w.overlay_key, frame["flow_id"].to_numpy(), frame["campaign_id"].to_numpy()
        )
        self.ctx.record_draws(
            "overlay",
            (frame["flow_id"].to_numpy(), frame["campaign_id"].to_numpy(), 3, 0),
            draws=4,
            blocks=1,
            value=values[:, 0],
        )
        return apply_timing(frame, values, self.w.overlay.compression), values

    def empty_schema(self) -> dict[str, pl.DataType]:
        return {name: dtype for name, dtype in self.conform.dtypes.items()}

    # --- baseline flows ------------------------------------------------------------------------------------
    def overlay(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The batch's baseline flows after the campaigns' claims and tactics (§4.7 steps 2–3)."""
        w, ctx = self.w, self.ctx
        frame = self.conform(
            frame.with_columns(
                pl.lit("BASELINE").alias("origin"),
                pl.lit(None, pl.UInt64).alias("retry_of_flow_id"),
                *NO_CAMPAIGN,
            )
        )
        claimed = claims(frame, w.overlay)
        winners, coins, lost = select(claimed, w.overlay_key)
        if claimed.height:
            ctx.record_draws(
                "overlay",
                (claimed["flow_id"].to_numpy(), claimed["campaign_id"].to_numpy(), 0, 0),
                draws=1,
                blocks=1,
                value=coins,
            )
        self.add("claims", claimed.height)
        self.add("claims_lost", lost)
        self.add("selected", winners.height)
        if winners.height == 0:
            return frame
        rows = winners["row"].to_numpy()
        keep = np.ones(frame.height, dtype=bool)
        keep[rows] = False
        chosen = frame[rows]
        fid, cid = winners["flow_id"].to_numpy(), winners["campaign_id"].to_numpy()
        mask = selected_tactics(w.overlay_key, fid, cid, winners["type_code"].to_numpy(), w.overlay.tactic_p)
        ctx.record_draws("overlay", (fid, cid, 1, 0), draws=8, blocks=2, value=mask)
        kinds = winners.select("campaign_id").join(
            w.overlay.campaigns, on="campaign_id", how="left", maintain_order="left"
        )
        chosen = chosen.with_columns(
            pl.Series("campaign_id", cid),
            pl.Series("tactic_mask", mask),
            pl.lit("BASELINE_MUTATED").alias("origin"),
            kinds["campaign_type"].replace_strict(SELECTED_PHASE, default="SELECTED").alias("campaign_phase"),
            pl.lit(False).alias("retry"),
        )
        chosen = self.tilt(chosen, kinds)
        chosen, values = self.timing(chosen)
        chosen = self.shift(chosen, values)
        return pl.concat([frame.filter(pl.Series(keep)), self.conform(chosen)])

    def tilt(self, chosen: pl.DataFrame, kinds: pl.DataFrame) -> pl.DataFrame:
        """AMOUNT_SHIFT: S2's amount uniforms re-evaluated tilted by the campaign's γ (§4.7 step 3)."""
        amount = ((chosen["tactic_mask"] & TACTIC_BITS["AMOUNT_SHIFT"]) != 0).to_numpy()
        if not amount.any():
            return chosen
        tilted = chosen.with_columns(
            pl.Series("tilt_gamma", np.where(amount, kinds["gamma"].to_numpy(), np.nan)).fill_nan(None),
            kinds["tilt_up"].alias("tilt_up"),
        )
        new = flow_amounts(tilted, self.w.inputs)
        self.add("amount_tilted", int(amount.sum()))
        return chosen.with_columns(
            pl.Series("amount_minor", np.where(amount, new, chosen["amount_minor"].to_numpy()))
        )

    def shift(self, chosen: pl.DataFrame, values: np.ndarray) -> pl.DataFrame:
        """SITE_SHIFT: another site of the merchant's low-weight half with its local clock and a terminal; a
        flow without a site or another site keeps its place and loses the tactic bit."""
        wants = ((chosen["tactic_mask"] & TACTIC_BITS["SITE_SHIFT"]) != 0).to_numpy()
        if not wants.any():
            return chosen
        moved = self.w.place.shift(chosen, values[:, 2], values[:, 3])
        shifted = wants & moved["shifted"].to_numpy()
        self.add("site_shifted", int(shifted.sum()))
        local = self.w.place.local(chosen.select("ts_utc"), moved["tz_index"].fill_null(0).to_numpy(), STATE)
        pick = pl.Series(shifted)
        return chosen.with_columns(
            pl.when(pick).then(moved["site_id"]).otherwise(pl.col("site_id")).alias("site_id"),
            pl.when(pick).then(moved["terminal_id"]).otherwise(pl.col("terminal_id")).alias("terminal_id"),
            pl.when(pick).then(local["ts_local"]).otherwise(pl.col("ts_local")).alias("ts_local"),
            pl.when(pick).then(local["tzid_local"]).otherwise(pl.col("tzid_local")).alias("tzid_local"),
            pl.when(pick).then(local["utc_offset_s"]).otherwise(pl.col("utc_offset_s")).alias("utc_offset_s"),
            pl.when(pl.Series(wants & ~shifted))
            .then(pl.col("tactic_mask") & ~np.uint16(TACTIC_BITS["SITE_SHIFT"]))
            .otherwise(pl.col("tactic_mask"))
            .alias("tactic_mask"),
        )

    # --- retries -------------------------------------------------------------------------------------------
    def retries(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The batch's legit retry rows (retries.py), planned as approved flows, on their parent's clock."""
        rows = retry_rows(frame, STATE)
        self.add("retries", rows.height)
        if rows.height == 0:
            return frame.clear()
        tz = self.w.place.zone_of_name(rows["tzid_local"])
        rows = self.w.place.local(rows.drop("tzid_local"), tz, STATE)
        plan = plan_flows(rows.with_columns(pl.lit(True).alias("approve")), self.w.inputs)
        record_plan_draws(self.ctx, plan)
        out = pl.concat([rows, plan.drop("flow_id", "amount_minor")], how="horizontal").with_columns(
            pl.lit("RETRY").alias("attach_mode"),
            pl.lit("RETRY").alias("origin"),
            pl.lit(None, pl.UInt64).alias("arrival_id"),
            *NO_CAMPAIGN,
        )
        return self.conform(out)

    # --- truth ---------------------------------------------------------------------------------------------
    def label(self, frame: pl.DataFrame) -> pl.DataFrame:
        """truth_* of every row by the ranked rules (truth.py) over its campaign, posture and friendly
        facts; campaign_type from its campaign."""
        rows = np.flatnonzero(frame["campaign_id"].is_not_null().to_numpy())
        campaign = campaign_truth(
            frame.select("flow_id", "campaign_id", "campaign_phase")[rows], self.w.overlay.campaigns
        )
        facts = pl.DataFrame(
            {
                name: pl.repeat(None, frame.height, dtype=enum, eager=True).scatter(
                    rows, campaign[name].cast(enum)
                )
                for name, enum in (
                    ("campaign_type", TYPE),
                    ("campaign_label", LABEL),
                    ("campaign_subtype", SUBTYPE),
                )
            }
        )
        truth = assign_truth(
            facts.drop("campaign_type").with_columns(
                pl.Series("posture", self.posture(frame)), pl.Series("friendly", self.friendly(frame))
            ),
            self.w.truth.ranked(),
            state=STATE,
        )
        return pl.concat([frame, facts.select("campaign_type"), truth], how="horizontal")

    def posture(self, frame: pl.DataFrame) -> np.ndarray:
        """A MULE party's TRANSFER/ATM flow inside one of its activation windows (by party or by account)."""
        out = np.zeros(frame.height, dtype=bool)
        candidates = frame.select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
            "party_id",
            "account_id",
            pl.col("ts_utc").dt.epoch("us").alias("ts"),
            pl.col("channel").cast(pl.String).is_in(POSTURE_CHANNELS).alias("_c"),
        ).filter(pl.col("_c") & pl.col("party_id").is_in(self.w.mules["party_id"].implode()))
        if candidates.height == 0 or self.w.windows.height == 0:
            return out
        for kind, column in (("PARTY", "party_id"), ("ACCOUNT", "account_id")):
            windows = self.w.windows.filter(pl.col("target_kind") == kind)
            hit = candidates.join(windows, left_on=column, right_on="target_id", how="inner").filter(
                (pl.col("ts") >= pl.col("start")) & (pl.col("ts") < pl.col("end"))
            )
            out[hit["row"].to_numpy()] = True
        return out

    def friendly(self, frame: pl.DataFrame) -> np.ndarray:
        """The `6B.truth` coin of each cleared POS/ECOM flow without a campaign under p × channel × role
        factor (truth.yaml friendly)."""
        pol = self.w.truth.friendly
        # channel factor by the channel Enum's code (the contract's order, CHANNELS); 0 off POS/ECOM
        factor = np.array([pol.channel_factor.get(c, 0.0) for c in CHANNELS])[
            frame["channel"].to_physical().to_numpy()
        ]
        eligible = (factor > 0) & (
            frame.select(
                pl.col("nonfraud_decline").is_null()
                & ~pl.col("reversal")
                & ~pl.col("clearing_suppressed")
                & pl.col("campaign_id").is_null()
                & pl.col("party_id").is_not_null()
                & (pl.col("amount_minor") > 0)
            )
            .to_series()
            .to_numpy()
        )
        out = np.zeros(frame.height, dtype=bool)
        rows = np.flatnonzero(eligible)
        if rows.size == 0:
            return out
        fid = frame["flow_id"].gather(rows).to_numpy()
        u = block_uniforms(self.w.truth_key, fid)[:, 0]
        self.ctx.record_draws("truth", (fid, 0, 0, 0), draws=1, blocks=1, value=u)
        prone = frame["party_id"].gather(rows).is_in(self.w.prone.implode()).to_numpy()
        role = np.where(prone, pol.role_factor["FRIENDLY_FRAUD_PRONE"], 1.0)
        out[rows] = u < pol.p * factor[rows] * role
        return out

    # --- the shard -----------------------------------------------------------------------------------------
    def finish(self, frames: list[pl.DataFrame]) -> pl.DataFrame:
        """Merged, labelled, in contract columns and (merchant_id, ts_utc, flow_id) order."""
        unlabelled = [c for c in self.w.columns if c not in LABELS]
        merged = pl.concat(
            [f.select(unlabelled) for f in frames if f.height] or [frames[0].select(unlabelled)]
        )
        labelled = self.label(merged)
        for row in labelled.group_by("truth_label", "truth_subtype").len().iter_rows():
            self.add(f"truth:{row[0]}:{row[1]}", row[2])
        return self.conform(labelled.select(list(self.w.columns)))[flow_order(labelled)]


def flow_order(frame: pl.DataFrame) -> np.ndarray:
    """The permutation that sorts rows by (merchant_id, ts_utc, flow_id). The rows come as a sorted run (the
    batch's baseline flows) followed by a few others (selected, inserted and retry flows), so the others are
    sorted alone and merged in by binary search on one i64 key: merchant_idx (flow_id >> 40, which orders as
    merchant_id does) above the µs since the batch's first instant. np.lexsort where the key would not fit in
    63 bits or a merged row ties with a run row on the key."""
    ts = frame["ts_utc"].dt.epoch("us").to_numpy()
    flow = frame["flow_id"].to_numpy()
    n = flow.size
    if n == 0:
        return np.empty(0, dtype=np.int64)
    idx = (flow >> np.uint64(40)).astype(np.int64)
    span, merchants = int(ts.max() - ts.min()), int(idx.max() - idx.min())
    shift = max(span.bit_length(), 1)
    if shift + merchants.bit_length() > 62:
        return np.lexsort((flow, ts, idx))
    key = ((idx - idx.min()) << shift) | (ts - ts.min())
    down = (key[1:] < key[:-1]) | ((key[1:] == key[:-1]) & (flow[1:] < flow[:-1]))
    run = int(np.argmax(down)) + 1 if down.any() else n
    rest = run + np.lexsort((flow[run:], key[run:]))
    at = np.searchsorted(key[:run], key[rest])
    if np.isin(key[rest], key[:run]).any():
        return np.lexsort((flow, ts, idx))
    order = np.empty(n, dtype=np.int64)
    slots = at + np.arange(rest.size)
    order[slots] = rest
    taken = np.zeros(n, dtype=bool)
    taken[slots] = True
    order[~taken] = np.arange(run)
    return order


def flows_of(s4: Overlayer, ctx: StateContext, inserted: pl.DataFrame) -> Iterator[pl.DataFrame]:
    """The shard's output batches: each batch of whole merchants with the inserted flows of its merchants
    (and of those before it without arrivals) and its retries; the remaining inserted flows last."""
    done = 0  # inserted rows already emitted
    merchants = inserted["merchant_id"].to_numpy()
    for batch in baseline_batches(ctx, s4.conform):
        s4.add("baseline", batch.height)
        frame = s4.overlay(batch)
        upto = int(np.searchsorted(merchants, int(batch["merchant_id"][-1]), side="right"))
        yield s4.finish([frame, inserted.slice(done, upto - done), s4.retries(frame)])
        done = upto
    if done < inserted.height:
        yield s4.finish([inserted.slice(done)])


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None and ctx.shard is not None
    s4 = Overlayer(ctx)
    inserted = s4.inserted()
    arrivals = sum(
        pq.ParquetFile(p).metadata.num_rows
        for p in ctx.sealed_parts("arrival_events", scenario=ctx.scenario, shard=ctx.shard)
    )
    meter = ctx.progress_meter(arrivals + inserted.height, "flows")
    written = 0
    pending: Future[None] | None = None
    # the Parquet encoder releases the GIL: a writer thread encodes a batch while the next computes
    with ctx.stream("s4_flows") as sink, ThreadPoolExecutor(max_workers=1) as writer:
        for out in flows_of(s4, ctx, inserted):
            if pending is not None:
                pending.result()
            pending = writer.submit(sink.write, out)
            written += out.height
            meter.advance(out.filter(pl.col("origin") != "RETRY").height)
        if pending is not None:
            pending.result()
    meter.close()
    counts = s4.counts
    expected = counts.get("baseline", 0) + counts.get("inserted", 0) + counts.get("retries", 0)
    if counts.get("baseline", 0) != arrivals or written != expected:
        raise coverage(
            f"wrote {written} flows for {arrivals} arrivals + {counts.get('inserted', 0)} inserted + "
            f"{counts.get('retries', 0)} retries"
        )
    truth: dict[str, dict[str, int]] = {}
    for name, n in sorted(counts.items()):
        if name.startswith("truth:"):
            _, label, subtype = name.split(":")
            truth.setdefault(label, {})[subtype] = n
        else:
            ctx.facts[name] = n
    ctx.facts["truth"] = truth  # flows by truth label and subtype
    ctx.facts["flows"] = written
