"""5A.S4 — expected arrivals per UTC hour of the horizon, per scenario and shard, streamed merchant batch by
merchant batch: λ_scenario = λ_base[week bucket] × overlay factor of the bucket's local date.

Shard 0's job also writes the scenario's `scenario_events` (every merchant's promotions, and the calendar
events) and records the 5A.promo draws that define them; the other shards re-derive their own merchants'
promotions from the same counters (common random numbers) and record nothing, so each draw is accounted once.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels import njit
from engine.segments.l2.s5a import horizon_map, overlays
from engine.segments.l2.s5a.common import PROFILE_KEY, WEEK, vocabulary
from engine.segments.l2.s5a.overlays import Days
from engine.segments.l2.s5a.policy import Overlays, Scenario, Shapes

PROMO_SCHEMA = {
    "merchant_id": pl.UInt64,
    "k": pl.UInt64,
    "start_day": pl.Int64,
    "duration": pl.Int64,
    "amplitude": pl.Float64,
}
BATCH_ROWS = 4_000_000  # output rows per streamed batch (profile rows × H)


def row_factors(
    profile: pl.DataFrame,
    cc: dict[object, np.ndarray],
    peak: dict[object, np.ndarray],
    promo: dict[object, np.ndarray],
    days: Days,
    clamp: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """(R × days) clamped factors and the mask of clamped cells: country×class × class × merchant factors."""
    ones = np.ones(days.n)
    country = profile["legal_country_iso"].cast(pl.String).to_list()
    cls = profile["demand_class"].cast(pl.String).to_list()
    ids = profile["merchant_id"].to_list()
    table = np.array(
        [
            cc.get((c, k), ones) * peak.get(k, ones) * promo.get(m, ones)
            for c, k, m in zip(country, cls, ids, strict=True)
        ]
    ).reshape(len(ids), days.n)
    clamped = np.clip(table, clamp[0], clamp[1])
    return clamped, clamped != table


@njit(cache=True, nogil=True)
def _assemble(k, z, wb_map, off_map, day_map, base, factors, clamped, row_of, bucket_of, wb, off, ov, lam):  # type: ignore[no-untyped-def]
    """Fill one batch's columns in the dataset's order (merchant, bucket, the merchant's rows): the row and
    bucket of each output row, its week bucket and offset from the zone's horizon map, its overlay factor
    (rounded to f32) for its local day and λ = f32(λ_base[week bucket] × overlay). Returns the clamped
    row-buckets. Loops: Σk·H iterations, each O(1)."""
    buckets = wb_map.shape[1]
    pos = 0
    r0 = 0
    n_clamped = 0
    for m in range(k.size):
        for b in range(buckets):
            for j in range(k[m]):
                r = r0 + j
                zz = z[r]
                w = wb_map[zz, b]
                d = day_map[zz, b]
                f = np.float32(factors[r, d])
                row_of[pos] = r
                bucket_of[pos] = b
                wb[pos] = w
                off[pos] = off_map[zz, b]
                ov[pos] = f
                lam[pos] = np.float32(base[r, w] * np.float64(f))
                n_clamped += clamped[r, d]
                pos += 1
        r0 += k[m]
    return n_clamped


def scenario_batch(
    profile: pl.DataFrame,
    base: np.ndarray,
    factors: np.ndarray,
    clamped: np.ndarray,
    days: Days,
    hmap: horizon_map.HorizonMap,
) -> tuple[pl.DataFrame, int]:
    """The output rows of a batch of whole merchants (profile rows in PK order with tz_index; base R×168,
    factors and clamped R × days.n) and the batch's clamped row-buckets."""
    buckets = hmap.offset_s.shape[1]
    k = profile.group_by("merchant_id", maintain_order=True).len()["len"].to_numpy().astype(np.int64)
    n = profile.height * buckets
    row_of, bucket_of = np.empty(n, np.int64), np.empty(n, np.uint32)
    wb, off = np.empty(n, np.uint8), np.empty(n, np.int32)
    ov, lam = np.empty(n, np.float32), np.empty(n, np.float32)
    n_clamped = _assemble(
        k,
        hmap.position(profile["tz_index"].to_numpy()),
        hmap.week_bucket,
        hmap.offset_s,
        hmap.local_day - days.first,
        np.ascontiguousarray(base),
        factors,
        clamped.astype(np.int64),
        row_of,
        bucket_of,
        wb,
        off,
        ov,
        lam,
    )
    keys = profile.select(*PROFILE_KEY[1:], "zone_code", "zone_rank")[row_of]
    merchants = profile["merchant_id"].unique(maintain_order=True).to_numpy()
    out = pl.DataFrame(
        {
            "merchant_id": np.repeat(merchants, k * buckets),
            **{c: keys[c] for c in keys.columns},
            "bucket_index": bucket_of,
            "week_bucket": wb,
            "utc_offset_s": off,
            "overlay_factor": ov,
            "lambda_scenario": lam,
        }
    )
    return out, int(n_clamped)


def merchant_batches(merchant_id: pl.Series, per_batch: int) -> list[tuple[int, int]]:
    """[lo, hi) row ranges of whole merchants (rows grouped by merchant), about per_batch rows each."""
    n = merchant_id.len()
    starts = np.flatnonzero(np.diff(merchant_id.to_numpy(), prepend=np.uint64(0)) != 0)  # ids are ≥ 1
    batch = starts // per_batch
    cuts = starts[np.flatnonzero(np.diff(batch, prepend=-1))]
    return list(zip(cuts.tolist(), [*cuts[1:].tolist(), n], strict=True))


def calendar_events(
    ctx: StateContext,
    profile: pl.DataFrame,
    days: Days,
    start: dt.date,
    ov: Overlays,
    scen: Scenario,
    shapes: Shapes,
) -> tuple[list, list]:
    """The HOLIDAY/HOLIDAY_EVE/PAYDAY events of every (country, class) with demand, and the PEAK events."""
    holidays = ctx.sealed_table("ref_holidays")
    convention = shapes.convention_of()
    pairs = profile.select(
        pl.col("legal_country_iso").cast(pl.String), pl.col("demand_class").cast(pl.String)
    ).unique()
    cc = []
    for (country,), grp in pairs.sort("legal_country_iso", "demand_class").group_by(
        ["legal_country_iso"], maintain_order=True
    ):
        dates = set(holidays.filter(pl.col("country_iso") == country)["local_date"].to_list())
        weekend = overlays.BUSINESS_WEEKEND[convention.get(country, "SAT_SUN")]
        cc += overlays.country_class_events(
            country, grp["demand_class"].to_list(), days, dates, weekend, ov, scen
        )
    return cc, overlays.peak_events(scen, start, days)


def promotions(
    ctx: StateContext, scen: Scenario, ov: Overlays, merchants: np.ndarray, days: int
) -> pl.DataFrame:
    """The scenario's promotions: every merchant's on shard 0's job, which records the 5A.promo draws once
    for the scenario's events; another shard re-derives only its own merchants' (the same counters, so the
    same values) and records nothing."""
    if not scen.promos:
        return pl.DataFrame(schema=PROMO_SCHEMA)
    drawn = merchants if ctx.shard == 0 else merchants[ctx.shard_of(merchants) == ctx.shard]
    rows, u = overlays.promos(ctx.family_key("promo"), drawn, ov.promo, days)
    if ctx.shard == 0:
        ctx.record_draws("promo", (drawn, 0, 0, 0), draws=1, blocks=1, value=u)
        ctx.record_draws(
            "promo",
            (rows["merchant_id"].to_numpy(), rows["k"].to_numpy(), 0, 0),
            draws=3,
            blocks=1,
            value=rows["amplitude"].to_numpy(),
        )
        last = rows["start_day"] + rows["duration"] - 1
        ctx.count("promo_days_clipped", int((last - (days - 1)).clip(lower_bound=0).sum()))
    return rows


def shard_baseline(ctx: StateContext, shard_rows: pl.DataFrame) -> np.ndarray:
    """λ_base (R × 168) of the shard's profile rows, in their order, read without the other shards' rows."""
    base = (
        pl.scan_parquet(ctx.part_files("merchant_zone_baseline"))
        .filter(pl.col("merchant_id").is_in(shard_rows["merchant_id"].unique().implode()))
        .select("lambda_base")
        .collect()["lambda_base"]
        .to_numpy()
    )
    if base.size != shard_rows.height * WEEK:
        raise EngineError(
            "E_5A_DOMAIN_MISMATCH",
            f"{base.size // WEEK} baseline rows for {shard_rows.height} profile rows",
            where="merchant_zone_baseline",
            state=ctx.state,
        )
    return base.reshape(-1, WEEK)


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None and ctx.shard is not None
    scen: Scenario = ctx.policy(f"5A/scenarios/{ctx.scenario}.yaml")
    ov: Overlays = ctx.policy("5A/overlays.yaml")
    shapes: Shapes = ctx.policy("5A/shapes.yaml")
    horizon = ctx.policy("CFG/horizon.yaml")
    start_s = int(horizon.start().timestamp())
    buckets = 24 * horizon.days
    start = horizon.start().date()

    profile = ctx.read("merchant_zone_profile")
    countries = vocabulary(profile["legal_country_iso"])
    iso_tz = profile.with_columns((pl.col("zone_code") & 0xFFFF).cast(pl.UInt16).alias("tz_index"))
    transitions = ctx.sealed_table("tz_transitions")
    hmap = horizon_map.build(transitions, np.unique(iso_tz["tz_index"].to_numpy()), start_s, buckets)
    days = Days(int(hmap.local_day.min()), int(hmap.local_day.max()))

    cc_events, peak_events = calendar_events(ctx, profile, days, start, ov, scen, shapes)
    merchants = profile["merchant_id"].unique().sort().to_numpy()
    promo_rows = promotions(ctx, scen, ov, merchants, horizon.days)
    if ctx.shard == 0:
        events, probes = overlays.events_table(cc_events, peak_events, promo_rows, start, countries)
        ctx.count("event_id_probes", probes)
        ctx.facts["events"] = {
            t: int(n) for t, n in events.group_by("event_type").len().sort("event_type").iter_rows()
        }
        ctx.publish("scenario_events", events)

    cc = overlays.day_factors([(t, (c, k), d, f) for t, c, k, d, f in cc_events], days)
    peak = overlays.day_factors([(t, k, d, f) for t, k, d, f in peak_events], days)
    promo = overlays.day_factors(
        [
            ("PROMO", m, start + dt.timedelta(days=s + i), a)
            for m, s, dur, a in promo_rows.select(
                "merchant_id", "start_day", "duration", "amplitude"
            ).iter_rows()
            for i in range(dur)
        ],
        days,
    )

    shard_rows = iso_tz.filter(pl.Series(ctx.shard_of(iso_tz["merchant_id"].to_numpy()) == ctx.shard))
    base_all = shard_baseline(ctx, shard_rows)
    total = shard_rows.height * buckets
    meter = ctx.progress_meter(total, "rows")
    clamped_cells = 0
    sum_lambda = 0.0
    per_batch = max(1, BATCH_ROWS // buckets)
    with ctx.stream("merchant_zone_scenario") as out:
        for lo, hi in merchant_batches(shard_rows["merchant_id"], per_batch):
            rows = shard_rows.slice(lo, hi - lo)
            factors, was_clamped = row_factors(rows, cc, peak, promo, days, ov.clamp)
            batch, n_clamped = scenario_batch(rows, base_all[lo:hi], factors, was_clamped, days, hmap)
            clamped_cells += n_clamped
            lam = batch["lambda_scenario"].to_numpy()
            if not np.isfinite(lam).all() or (lam < 0).any():
                raise EngineError(
                    "E_5A_NUMERIC",
                    "lambda_scenario is not finite and ≥ 0",
                    where="merchant_zone_scenario",
                    state=ctx.state,
                )
            sum_lambda += float(lam.sum(dtype=np.float64))
            out.write(batch)
            meter.advance(batch.height)
    meter.close()
    ctx.count("clamped_row_buckets", clamped_cells)
    ctx.facts["rows"] = total
    ctx.facts["sum_lambda"] = sum_lambda
