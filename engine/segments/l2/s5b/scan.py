"""One streaming pass over a scenario-shard's arrival_events for 5B.S5: everything the checks need is folded
batch by batch into small aggregates (per-segment counts, distinct routing pairs, histograms, the civil-time
sample), so the table itself is never held whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from engine.core.ids import splitmix64
from engine.segments.l2.s5b.common import BUCKET_US, US

READ_ROWS = 1 << 20
SAMPLE_MOD = 1024  # civil-time sample: splitmix64(arrival_id) mod 1024 = 0 …
SAMPLE_CAP = 200_000  # … capped per seed
DST_MERCHANT_MOD = 16  # and every arrival of these merchants within 48 h of an in-horizon transition
DST_WINDOW_US = 48 * 3600 * US
COLUMNS = [
    "arrival_id",
    "merchant_id",
    "bucket_index",
    "ts_utc",
    "ts_local",
    "utc_offset_s",
    "tzid_local",
    "legal_country_iso",
    "channel_group",
    "is_virtual",
    "site_id",
    "edge_id",
    "tzid_settlement",
    "settlement_date",
]


@dataclass
class ArrivalScan:
    start_us: int
    transitions: pl.DataFrame  # in-horizon (tzid str, transition_utc µs)
    rows: int = 0
    outside_bucket: int = 0
    local_mismatch: int = 0  # ts_local − ts_utc ≠ utc_offset_s
    id_disorder: int = 0
    ts_disorder: int = 0
    virtual: int = 0
    weekend: int = 0
    night: dict[str, int] = field(default_factory=lambda: {"CP": 0, "CNP": 0})
    by_channel: dict[str, int] = field(default_factory=lambda: {"CP": 0, "CNP": 0})
    hours: dict[str, np.ndarray] = field(
        default_factory=lambda: {"CP": np.zeros(24, np.int64), "CNP": np.zeros(24, np.int64)}
    )
    segments: list[pl.DataFrame] = field(default_factory=list)
    site_pairs: list[pl.DataFrame] = field(default_factory=list)
    edge_pairs: list[pl.DataFrame] = field(default_factory=list)
    sample: list[pl.DataFrame] = field(default_factory=list)
    sampled: int = 0
    _last: tuple[int, int, int] = (0, 0, -(1 << 62))  # (arrival_id, merchant_id, ts_utc)

    def add_parts(self, paths: list[Path]) -> None:
        """Scan one partition's parts in file order (id order restarts per partition)."""
        self._last = (0, 0, -(1 << 62))
        for path in paths:
            for rb in pq.ParquetFile(path).iter_batches(batch_size=READ_ROWS, columns=COLUMNS):
                self.add(pl.from_arrow(rb))  # type: ignore[arg-type]

    def add(self, df: pl.DataFrame) -> None:
        n = df.height
        if n == 0:
            return
        self.rows += n
        ids = df["arrival_id"].to_numpy()
        m = df["merchant_id"].to_numpy()
        ts = df["ts_utc"].dt.epoch("us").to_numpy()
        local = df["ts_local"].dt.epoch("us").to_numpy()
        start = self.start_us + df["bucket_index"].to_numpy().astype(np.int64) * BUCKET_US
        self.outside_bucket += int(((ts < start) | (ts >= start + BUCKET_US)).sum())
        self.local_mismatch += int((local - ts != df["utc_offset_s"].to_numpy().astype(np.int64) * US).sum())
        # the carried values take each column's dtype: a Python int beside a uint64 array would promote both
        # to float64, and ids above 2^53 (merchant_idx ≥ 8192) would compare equal to their neighbours
        prev_id = np.concatenate([np.array([self._last[0]], dtype=ids.dtype), ids[:-1]])
        prev_m = np.concatenate([np.array([self._last[1]], dtype=m.dtype), m[:-1]])
        prev_ts = np.concatenate([np.array([self._last[2]], dtype=ts.dtype), ts[:-1]])
        self.id_disorder += int((ids <= prev_id).sum())
        self.ts_disorder += int(((m == prev_m) & (ts < prev_ts)).sum())
        self._last = (int(ids[-1]), int(m[-1]), int(ts[-1]))
        virtual = df["is_virtual"].to_numpy()
        self.virtual += int(virtual.sum())
        hour = (local // (3600 * US)) % 24
        weekday = ((local // (86400 * US)) + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
        self.weekend += int((weekday >= 5).sum())
        channel = df["channel_group"].cast(pl.String).to_numpy()
        for ch in ("CP", "CNP"):
            sel = channel == ch
            self.by_channel[ch] += int(sel.sum())
            self.night[ch] += int((sel & (hour < 6)).sum())
            self.hours[ch] += np.bincount(hour[sel], minlength=24)
        self.segments.append(df.group_by("merchant_id", "bucket_index").len("arrivals"))
        self.site_pairs.append(
            df.filter(~pl.col("is_virtual"))
            .group_by("merchant_id", "site_id", pl.col("tzid_local").cast(pl.String))
            .len("arrivals")
        )
        self.edge_pairs.append(df.filter(pl.col("is_virtual")).select("merchant_id", "edge_id").unique())
        self._sample(df, ids, m, ts)

    def _sample(self, df: pl.DataFrame, ids: np.ndarray, m: np.ndarray, ts: np.ndarray) -> None:
        keyed = (splitmix64(ids) % np.uint64(SAMPLE_MOD)) == 0
        near = np.zeros(df.height, dtype=bool)
        dst_m = (splitmix64(m) % np.uint64(DST_MERCHANT_MOD)) == 0
        if dst_m.any() and self.transitions.height:
            cand = (
                df.with_row_index("_row")
                .filter(pl.Series(dst_m))
                .select(
                    "_row",
                    pl.col("tzid_local").cast(pl.String).alias("tzid"),
                    pl.col("ts_utc").dt.epoch("us"),
                )
            )
            hits = cand.join(self.transitions, on="tzid").filter(
                (pl.col("ts_utc") - pl.col("transition_utc")).abs() <= DST_WINDOW_US
            )
            near[hits["_row"].unique().to_numpy()] = True
        room = max(SAMPLE_CAP - self.sampled, 0)
        keyed &= np.cumsum(keyed) <= room
        pick = keyed | near
        if pick.any():
            self.sample.append(df.filter(pl.Series(pick)))
            self.sampled += int(keyed.sum())

    def segment_counts(self, since: int = 0) -> pl.DataFrame:
        """Arrivals per (merchant, bucket) over the batches from `since` on (one shard's, say)."""
        frames = self.segments[since:]
        if not frames:
            return pl.DataFrame(
                schema={"merchant_id": pl.UInt64, "bucket_index": pl.UInt32, "arrivals": pl.UInt32}
            )
        return pl.concat(frames).group_by("merchant_id", "bucket_index").agg(pl.col("arrivals").sum())

    def sites(self) -> pl.DataFrame:
        return (
            pl.concat(self.site_pairs)
            .group_by("merchant_id", "site_id", "tzid_local")
            .agg(pl.col("arrivals").sum())
        )

    def edges(self) -> pl.DataFrame:
        return pl.concat(self.edge_pairs).unique()

    def civil_sample(self) -> pl.DataFrame:
        return pl.concat(self.sample) if self.sample else pl.DataFrame()
