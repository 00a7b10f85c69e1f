"""5B.S4 — one row per arrival of this shard: UTC time inside its hour, a site (2B's router in the cell's tz
group) or a CDN edge (3B's router), the local clock from 2A's transitions and, for virtual arrivals, the
settlement date under 3B's cut-off. The numba kernel (engine/kernels/arrivals.py) expands whole (merchant,
hour) segments in parallel; a writer thread appends the previous batch's row groups while the next computes
(the kernel and the Parquet encoder both release the GIL)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.horizon import Horizon
from engine.core.state import StateContext
from engine.kernels.arrivals import (
    OUTSIDE_CACHE,
    Arrivals,
    Cells,
    Clock,
    Targets,
    expand_arrivals,
    kernel_threads,
    segments,
)
from engine.kernels.router import EdgeTables, RouterTables
from engine.segments.l2.s5b.batches import part_rows, unit_batches
from engine.segments.l2.s5b.common import CHANNEL, US, enum_codes, tz_of_zone
from engine.segments.l2.s5b.policy import Arrivals as ArrivalsPolicy
from engine.segments.l2.s5b.upstream import cutoff_seconds, flat_clock, routers, tz_table, zone_vocabulary

READ = ["merchant_id", "bucket_index", "legal_country_iso", "channel_group", "zone_code", "routing", "count"]


@dataclass(frozen=True)
class World:
    """Everything a batch needs besides its cells: routers, clock, per-member side tables, vocabularies."""

    start_us: int
    router: RouterTables
    edges: EdgeTables
    clock: Clock
    targets: Targets
    cutoff_s: int
    merchant_ids: np.ndarray  # u64, merchant_catalogue order (sorted): merchant_idx = position + 1
    settle_ids: np.ndarray  # u64 sorted, virtual merchants
    settle_tz: np.ndarray  # i64, their settlement tz_index
    tzid: pl.Enum  # the world's tzids, sorted
    tz_pos: np.ndarray  # i64, tz_index → position in `tzid`
    country: pl.Enum  # every country a row can name, sorted

    def cells(self, batch: pl.DataFrame, carry: tuple[int, int]) -> tuple[Cells, tuple[int, int]]:
        """The kernel's view of a batch of bucket_counts rows (segment order) and the next carry."""
        m = batch["merchant_id"].to_numpy().astype(np.uint64)
        b = batch["bucket_index"].to_numpy().astype(np.int64)
        count = batch["count"].to_numpy().astype(np.int64)
        seg_first, seg_out, seg_base, carry = segments(m, b, count, carry)
        zone = batch["zone_code"].to_numpy().astype(np.uint64)
        channel = (batch["channel_group"] == "CNP").to_numpy().astype(np.uint64)
        at = np.minimum(np.searchsorted(self.settle_ids, m), max(self.settle_ids.size - 1, 0))
        settles = (self.settle_ids[at] == m) if self.settle_ids.size else np.zeros(m.size, dtype=bool)
        cells = Cells(
            m,
            (np.searchsorted(self.merchant_ids, m) + 1).astype(np.uint64),
            zone,
            (b.astype(np.uint64) << np.uint64(8)) | channel,
            self.start_us + b * 3600 * US,
            tz_of_zone(zone),
            enum_codes(batch["legal_country_iso"], self.country),
            (batch["routing"] == "VIRTUAL").to_numpy(),
            np.where(settles, self.settle_tz[at] if self.settle_tz.size else -1, -1).astype(np.int64),
            count,
            seg_first,
            seg_out,
            seg_base,
        )
        return cells, carry

    def frame(self, batch: pl.DataFrame, cells: Cells, out: Arrivals) -> pl.DataFrame:
        """The arrival_events columns (contract order, identity columns excluded) of one expanded batch."""
        c = out.cell
        tz_names = pl.Series(self.tzid.categories, dtype=self.tzid)
        countries = pl.Series(self.country.categories, dtype=self.country)
        channels = pl.Series(CHANNEL.categories, dtype=CHANNEL)
        virtual = pl.Series(cells.virtual[c])
        return pl.DataFrame(
            {
                "arrival_id": out.arrival_id,
                "merchant_id": cells.merchant_id[c],
                "bucket_index": (cells.c2[c] >> np.uint64(8)).astype(np.uint32),
                "ts_utc": pl.Series(out.ts_utc).cast(pl.Datetime("us", "UTC")),
                "ts_local": pl.Series(out.ts_utc + out.offset_s.astype(np.int64) * US).cast(
                    pl.Datetime("us")
                ),
                "utc_offset_s": out.offset_s,
                "tzid_local": tz_names.gather(self.tz_pos[out.tz_local]),
                "legal_country_iso": countries.gather(out.country),
                "channel_group": channels.gather((cells.c2[c] & np.uint64(1)).astype(np.uint32)),
                "is_virtual": virtual,
                "site_id": pl.Series(out.site_id).replace(0, None),
                "edge_id": pl.Series(out.edge_id).replace(0, None),
                "edge_country_iso": countries.gather(np.maximum(out.edge_country, 0)),
                "tzid_settlement": tz_names.gather(self.tz_pos[np.maximum(cells.settle_tz[c], 0)]),
                "settlement_date": pl.Series(out.settle_day).cast(pl.Date),
            }
        ).with_columns(
            pl.when(pl.col("is_virtual")).then(pl.col(name)).otherwise(None).alias(name)
            for name in ("edge_country_iso", "tzid_settlement", "settlement_date")
        )


def world_of(ctx: StateContext) -> World:
    """The world S4 routes in: 2B/3B routers over the vouched blobs, 2A's clock, side tables aligned with the
    routers' member rows."""
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    router, edge_router, policy = routers(ctx)
    transitions = tz_table(ctx)
    tzid, tz_pos = zone_vocabulary(transitions)
    sites = ctx.sealed_table("site_timezones").select("site_id", pl.col("legal_country_iso").cast(pl.String))
    edges = ctx.sealed_table("edge_catalogue").select(
        "edge_id", pl.col("country_iso").cast(pl.String), pl.col("tz_index").cast(pl.Int64)
    )
    profile = ctx.sealed_table("merchant_zone_profile")["legal_country_iso"].cast(pl.String)
    country = pl.Enum(
        sorted(set(sites["legal_country_iso"]) | set(edges["country_iso"]) | set(profile.unique()))
    )
    codes = country.categories.to_numpy()
    site_rows = pl.DataFrame({"site_id": router.site_ids}).join(
        sites, on="site_id", how="left", maintain_order="left"
    )
    edge_rows = pl.DataFrame({"edge_id": edge_router.edge_ids}).join(
        edges, on="edge_id", how="left", maintain_order="left"
    )
    if site_rows["legal_country_iso"].null_count() or edge_rows["country_iso"].null_count():
        raise EngineError(
            "E_5B_ROUTE_MISSING",
            "a router member is missing from site_timezones or edge_catalogue",
            where="2B/3B alias members",
            state=ctx.state,
        )
    settle = ctx.sealed_table("virtual_settlement").select("merchant_id", "tz_index").sort("merchant_id")
    return World(
        start_us=int(horizon.start().timestamp()) * US,
        router=router,
        edges=edge_router,
        clock=Clock(*flat_clock(transitions)),
        targets=Targets(
            np.searchsorted(codes, site_rows["legal_country_iso"].to_numpy()).astype(np.int32),
            np.searchsorted(codes, edge_rows["country_iso"].to_numpy()).astype(np.int32),
            edge_rows["tz_index"].to_numpy().astype(np.int64),
        ),
        cutoff_s=cutoff_seconds(policy),
        merchant_ids=np.sort(
            ctx.sealed_table("merchant_catalogue")["merchant_id"].to_numpy().astype(np.uint64)
        ),
        settle_ids=settle["merchant_id"].to_numpy().astype(np.uint64),
        settle_tz=settle["tz_index"].to_numpy().astype(np.int64),
        tzid=tzid,
        tz_pos=tz_pos,
        country=country,
    )


def check_status(state: str, out: Arrivals, cells: Cells) -> None:
    bad = np.flatnonzero(out.status != 0)
    if bad.size:
        i = int(bad[0])
        code = "E_HORIZON_NOT_COVERED" if out.status[i] == OUTSIDE_CACHE else "E_5B_ROUTE_MISSING"
        raise EngineError(
            code,
            f"{bad.size} arrivals without a route or clock (status {int(out.status[i])}), e.g. merchant "
            f"{cells.merchant_id[out.cell[i]]} zone {cells.zone_code[out.cell[i]]}",
            where="2B/3B routing tables, 2A tz cache",
            fix="rebuild the upstream segments from one config",
            state=state,
        )


def stream_arrivals(
    world: World,
    key: tuple[int, int],
    batches: Iterable[pl.DataFrame],
    write: Callable[[pl.DataFrame], None],
    on_batch: Callable[[pl.DataFrame, Cells, Arrivals], None],
    state: str,
) -> int:
    """Expand each batch of bucket_counts rows and hand its frame to `write` on a writer thread while the
    next batch computes (at most one frame in flight). Returns the arrivals written."""
    carry = (0, 0)
    arrivals = 0
    pending: Future[Any] | None = None
    threads = kernel_threads()
    with ThreadPoolExecutor(max_workers=1) as writer:
        for batch in batches:
            cells, carry = world.cells(batch, carry)
            # while the writer encodes the previous batch it holds a core: the kernel takes the others
            kernel_threads(threads - 1 if pending is not None and not pending.done() else threads)
            out = expand_arrivals(
                key, cells, world.router, world.edges, world.clock, world.targets, world.cutoff_s
            )
            check_status(state, out, cells)
            on_batch(batch, cells, out)
            frame = world.frame(batch, cells, out)
            if pending is not None:
                pending.result()
            pending = writer.submit(write, frame)
            arrivals += frame.height
        if pending is not None:
            pending.result()
    kernel_threads(threads)
    return arrivals


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None and ctx.shard is not None
    pol: ArrivalsPolicy = ctx.policy("5B/arrivals.yaml")
    world = world_of(ctx)
    parts = ctx.part_files("bucket_counts", scenario=ctx.scenario, shard=ctx.shard)
    meter = ctx.progress_meter(part_rows(parts), "cells")

    def account(batch: pl.DataFrame, cells: Cells, out: Arrivals) -> None:
        # a site's country differs from its cell's only where one tzid spans two of the merchant's countries
        physical = ~cells.virtual[out.cell]
        ctx.count("site_country_differs", int((out.country != cells.country[out.cell])[physical].sum()))
        ctx.record_draws(
            "arrival",
            (cells.merchant_id, cells.zone_code, cells.c2, 0),
            draws=2 * cells.count,
            blocks=cells.count,
            value=cells.count,
        )
        meter.advance(batch.height)

    batches = unit_batches(parts, READ, ["merchant_id", "bucket_index"], pol.batch_max_arrivals, "count")
    with ctx.stream("arrival_events") as sink:
        arrivals = stream_arrivals(world, ctx.family_key("arrival"), batches, sink.write, account, ctx.state)
    meter.close()
    ctx.facts["arrivals"] = arrivals
