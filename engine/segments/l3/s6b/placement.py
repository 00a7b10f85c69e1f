"""Where and when a flow 6B.S4 makes or moves happens on the merchant's clock: the local time of inserted
flows, retries and site-shifted flows from 2A's transitions (as 5B.S4 computes it), and SITE_SHIFT's pick of a
site from the lowest-weight half of the merchant's sites in the same country (design §4.2), with one of its
terminals for a card-present flow."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.arrivals import Clock, local_offsets
from engine.segments.l2.s5b.upstream import flat_clock, tz_table, zone_vocabulary

US = 1_000_000
OUTSIDE = -(1 << 31)  # local_offsets' answer outside the cache


@dataclass(frozen=True)
class Placement:
    clock: Clock
    tzid: pl.Enum  # the world's tzids, sorted (as 5B writes tzid_local)
    tz_pos: np.ndarray  # i64, tz_index → position in `tzid`
    tz_of_name: pl.DataFrame  # tzid (str), tz_index
    sites: pl.DataFrame  # site_id, merchant_id, legal_country_iso (str), tz_index
    edges: pl.DataFrame  # edge_id, tz_index
    low_sites: pl.DataFrame  # merchant_id, legal_country_iso, pick, n_low, new_site_id, new_tz_index
    terminals: pl.DataFrame  # site_id, pick, n_terminals, new_terminal_id

    @classmethod
    def of(cls, ctx: StateContext) -> Placement:
        transitions = tz_table(ctx)
        tzid, tz_pos = zone_vocabulary(transitions)
        sites = (
            ctx.sealed_table("site_timezones")
            .select("site_id", "merchant_id", pl.col("legal_country_iso").cast(pl.String))
            .join(
                ctx.sealed_table("s1_site_weights").select(
                    "site_id", pl.col("tz_index").cast(pl.Int64), "p_weight"
                ),
                on="site_id",
                how="inner",
            )
        )
        edges = ctx.sealed_table("edge_catalogue").select("edge_id", pl.col("tz_index").cast(pl.Int64))
        terminals = ctx.sealed_table("terminals").select("terminal_id", "site_id")
        return cls(
            Clock(*flat_clock(transitions)),
            tzid,
            tz_pos,
            transitions.select(pl.col("tzid").cast(pl.String), pl.col("tz_index").cast(pl.Int64))
            .unique()
            .sort("tz_index"),
            sites.drop("p_weight"),
            edges,
            low_half(sites),
            terminal_picks(terminals),
        )

    def local(self, frame: pl.DataFrame, tz_index: np.ndarray, state: str) -> pl.DataFrame:
        """ts_local, tzid_local and utc_offset_s of each row's ts_utc in zone tz_index (2A's cache)."""
        ts = frame["ts_utc"].dt.epoch("us").to_numpy()
        tz = tz_index.astype(np.int64)
        offset = local_offsets(self.clock, tz, ts) if ts.size else np.empty(0, dtype=np.int64)
        if (offset == OUTSIDE).any():
            raise EngineError(
                "E_HORIZON_NOT_COVERED",
                f"{int((offset == OUTSIDE).sum())} flows fall outside 2A's tz cache",
                where="2A tz_transitions",
                fix="rebuild 2A with a cache window that covers the horizon and its margins",
                state=state,
            )
        names = pl.Series(self.tzid.categories.to_list(), dtype=self.tzid)
        return frame.with_columns(
            pl.Series("ts_local", ts + offset * US).cast(pl.Datetime("us")),
            names.gather(self.tz_pos[tz]).alias("tzid_local"),
            pl.Series("utc_offset_s", offset.astype(np.int32)),
        )

    def zone_of(self, frame: pl.DataFrame, state: str) -> np.ndarray:
        """tz_index of each row's site (its 2B zone) or, without a site, its edge (3B)."""
        by_site = frame.select("site_id").join(self.sites, on="site_id", how="left", maintain_order="left")
        by_edge = frame.select("edge_id").join(self.edges, on="edge_id", how="left", maintain_order="left")
        tz = by_site["tz_index"].fill_null(by_edge["tz_index"])
        if tz.null_count():
            raise EngineError(
                "E_6B_FLOW_COVERAGE",
                f"{tz.null_count()} flows name neither a known site nor a known edge",
                where="inserted_flows site_id / edge_id",
                fix="rebuild 6B.S3 against the sealed 2A/3B tables",
                state=state,
            )
        return tz.to_numpy()

    def zone_of_name(self, tzid: pl.Series) -> np.ndarray:
        """tz_index of each tzid name (a retry keeps its parent's zone)."""
        frame = pl.DataFrame({"tzid": tzid.cast(pl.String)})
        return frame.join(self.tz_of_name, on="tzid", how="left", maintain_order="left")[
            "tz_index"
        ].to_numpy()

    def shift(self, rows: pl.DataFrame, site_u: np.ndarray, terminal_u: np.ndarray) -> pl.DataFrame:
        """SITE_SHIFT of `rows` (site_id, terminal_id): the new site_id, terminal_id, tz_index and `shifted`
        (false where the merchant has no other low-weight site in that country or the flow has no site)."""
        picks = rows.select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
            "site_id",
            "terminal_id",
            pl.Series("_su", site_u),
            pl.Series("_tu", terminal_u),
        ).join(self.sites, on="site_id", how="left", maintain_order="left")
        counts = self.low_sites.select("merchant_id", "legal_country_iso", "n_low").unique()
        picks = picks.join(counts, on=["merchant_id", "legal_country_iso"], how="left", maintain_order="left")
        picks = picks.with_columns((pl.col("_su") * pl.col("n_low")).floor().cast(pl.Int64).alias("pick"))
        picks = picks.join(
            self.low_sites.drop("n_low"),
            on=["merchant_id", "legal_country_iso", "pick"],
            how="left",
            maintain_order="left",
        )
        counts = self.terminals.select(pl.col("site_id").alias("new_site_id"), "n_terminals").unique()
        picks = picks.join(counts, on="new_site_id", how="left", maintain_order="left")
        picks = picks.with_columns(
            (pl.col("_tu") * pl.col("n_terminals")).floor().cast(pl.Int64).alias("tpick")
        )
        picks = picks.join(
            self.terminals.select(
                pl.col("site_id").alias("new_site_id"), pl.col("pick").alias("tpick"), "new_terminal_id"
            ),
            on=["new_site_id", "tpick"],
            how="left",
            maintain_order="left",
        )
        shifted = pl.col("new_site_id").is_not_null() & (
            pl.col("terminal_id").is_null() | pl.col("new_terminal_id").is_not_null()
        )
        return picks.sort("_row").select(
            shifted.alias("shifted"),
            pl.when(shifted).then(pl.col("new_site_id")).otherwise(pl.col("site_id")).alias("site_id"),
            pl.when(shifted & pl.col("terminal_id").is_not_null())
            .then(pl.col("new_terminal_id"))
            .otherwise(pl.col("terminal_id"))
            .alias("terminal_id"),
            pl.when(shifted).then(pl.col("new_tz_index")).otherwise(pl.col("tz_index")).alias("tz_index"),
        )


def low_half(sites: pl.DataFrame) -> pl.DataFrame:
    """Per (merchant, country) with ≥ 2 sites, the ⌈n/2⌉ lowest-weight sites (ties by site_id), numbered by
    `pick` from 0."""
    ranked = sites.sort("merchant_id", "legal_country_iso", "p_weight", "site_id").with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).over("merchant_id", "legal_country_iso").alias("pick"),
        pl.len().over("merchant_id", "legal_country_iso").cast(pl.Int64).alias("_n"),
    )
    return ranked.filter((pl.col("_n") >= 2) & (pl.col("pick") < (pl.col("_n") + 1) // 2)).select(
        "merchant_id",
        "legal_country_iso",
        "pick",
        ((pl.col("_n") + 1) // 2).alias("n_low"),
        pl.col("site_id").alias("new_site_id"),
        pl.col("tz_index").alias("new_tz_index"),
    )


def terminal_picks(terminals: pl.DataFrame) -> pl.DataFrame:
    """Each site's terminals numbered by `pick` in terminal_id order, with their count."""
    return terminals.sort("site_id", "terminal_id").select(
        "site_id",
        pl.int_range(pl.len(), dtype=pl.Int64).over("site_id").alias("pick"),
        pl.len().over("site_id").cast(pl.Int64).alias("n_terminals"),
        pl.col("terminal_id").alias("new_terminal_id"),
    )
