"""5A.S5 — re-validate 5A: contracts and keys of every table (the scenario tables shard by shard), the weekly
sums and every row's S4 product recomputed, every overlay factor re-derived from the published events, a DST
audit against Python zoneinfo, the RNG replays and the realism bands 5A.R01–R11; the bundle and its flag."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from engine.core.contracts import dictionary, validate_table
from engine.core.group_sums import exact_sum, group_sums
from engine.core.ids import shard_of
from engine.core.policy_model import Validation
from engine.core.rng import SampleRule
from engine.core.state import StateContext
from engine.core.tzdb import force_tzdata
from engine.core.validation import (
    CheckBook,
    apply_checks,
    check_schemas,
    finish_segment,
    run_replays,
    state_reports,
)
from engine.segments.l2.s5a import replay
from engine.segments.l2.s5a.common import PROFILE_KEY, WEEK
from engine.segments.l2.s5a.horizon_map import EPOCH
from engine.segments.l2.s5a.policy import DemandScale, Overlays, Scenario, Shapes

PRODUCERS = ["5A.S1", "5A.S2", "5A.S3", "5A.S4"]
AUDIT_SAMPLE = 10_000
CHUNK = 1_048_576  # the writer's row group
AUDIT_WINDOW_S = 48 * 3600


def expected_day_factors(
    profile: pl.DataFrame, events: pl.DataFrame, clamp: tuple[float, float]
) -> pl.DataFrame:
    """(row, local_date) → the clamped product over event types of the largest-deviation amplitude, joined
    from the published events by scope (country × class, class, merchant): an independent path to S4's
    factor table. Days no event touches are absent (factor 1)."""
    rows = profile.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
        "merchant_id",
        pl.col("legal_country_iso").cast(pl.String).alias("country_iso"),
        pl.col("demand_class").cast(pl.String),
    )
    ev = events.select(
        pl.col("event_type").cast(pl.String),
        pl.col("country_iso").cast(pl.String),
        "merchant_id",
        pl.col("demand_class").cast(pl.String),
        pl.date_ranges("local_start", "local_end").alias("local_date"),
        pl.col("amplitude").cast(pl.Float64),
    ).explode("local_date")
    parts = [
        rows.join(
            ev.filter(pl.col("country_iso").is_not_null()).drop("merchant_id"),
            on=["country_iso", "demand_class"],
        ),
        rows.join(
            ev.filter(pl.col("event_type") == "PEAK").drop("merchant_id", "country_iso"), on="demand_class"
        ),
        rows.join(
            ev.filter(pl.col("event_type") == "PROMO").drop("country_iso", "demand_class"), on="merchant_id"
        ),
    ]
    hits = pl.concat([p.select("row", "local_date", "event_type", "amplitude") for p in parts])
    strongest = (
        hits.with_columns((pl.col("amplitude") - 1.0).abs().alias("dev"))
        .sort(
            "row",
            "local_date",
            "event_type",
            pl.col("dev"),
            descending=[False, False, False, True],
            maintain_order=True,
        )
        .group_by("row", "local_date", "event_type", maintain_order=True)
        .first()
    )
    return (
        strongest.group_by("row", "local_date")
        .agg(pl.col("amplitude").product().clip(clamp[0], clamp[1]).alias("factor"))
        .sort("row", "local_date")
    )


def local_dates(bucket: np.ndarray, offset: np.ndarray, start_s: int) -> np.ndarray:
    """Local date (days since 1970-01-01) of each bucket midpoint under its published offset."""
    return (start_s + 3600 * bucket.astype(np.int64) + 1800 + offset.astype(np.int64)) // 86_400


def lex_increasing(cols: list[np.ndarray]) -> np.ndarray:
    """For consecutive rows, whether each row's key (tuple of the columns) is strictly above the previous."""
    res = np.zeros(cols[0].size - 1, dtype=bool)
    for c in reversed(cols):
        res = (c[1:] > c[:-1]) | ((c[1:] == c[:-1]) & res)
    return res


class ScenarioPass:
    """One streamed pass over a scenario's shards (one shard in memory at a time): keys and order, H rows per
    profile row, every product λ = f32(λ_base[week bucket] × overlay), every overlay factor against the one
    re-derived from the published events, and the sums the realism checks and the DST audit need."""

    def __init__(
        self,
        profile: pl.DataFrame,
        base: np.ndarray,
        factors: np.ndarray,
        first_day: int,
        start_s: int,
        buckets: int,
    ) -> None:
        self.base, self.factors, self.first_day = base, factors, first_day
        self.start_s, self.buckets = start_s, buckets
        self.key = profile.select(*PROFILE_KEY).with_columns(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("row")
        )
        self.per_row = np.zeros(profile.height, dtype=np.int64)
        self.bad = {"keys": 0, "order": 0, "shard": 0, "products": 0, "factors": 0}
        self.rows = 0
        self.sum_lambda = 0.0
        self.sum_overlay = 0.0
        self.pairs: list[pl.DataFrame] = []
        self.last: list[np.ndarray] | None = None

    def add(self, part: pl.DataFrame, shard: int, shards: int) -> None:
        """One chunk of a shard, in file order (the key order check carries the shard's previous chunk's last
        row); every row's merchant must belong to the shard."""
        self.bad["shard"] += int((shard_of(part["merchant_id"].to_numpy(), shards) != shard).sum())
        # the profile's vocabularies: a reader may give the categorical columns back without their Enum, and
        # the key order is the vocabulary order (a value outside it becomes null and is counted below)
        part = part.with_columns(pl.col(c).cast(self.key.schema[c], strict=False) for c in PROFILE_KEY[1:])
        df = part.join(self.key, on=PROFILE_KEY, how="left", maintain_order="left")
        self.bad["keys"] += df["row"].null_count()
        df = df.filter(pl.col("row").is_not_null())
        row = df["row"].to_numpy()
        b = df["bucket_index"].to_numpy().astype(np.int64)
        cols = [df["merchant_id"].to_numpy(), b, *(df[c].to_physical().to_numpy() for c in PROFILE_KEY[1:])]
        cols = [c.astype(np.int64) if c.dtype != np.uint64 else c for c in cols]
        if self.last is not None:
            cols = [np.concatenate([prev, c]) for prev, c in zip(self.last, cols, strict=True)]
        if cols[0].size > 1:
            self.bad["order"] += int((~lex_increasing(cols)).sum())
        self.last = [c[-1:] for c in cols] if cols[0].size else self.last
        self.bad["keys"] += int((b >= self.buckets).sum())
        self.per_row += np.bincount(row, minlength=self.per_row.size)
        overlay = df["overlay_factor"].to_numpy()
        lam = df["lambda_scenario"].to_numpy()
        again = (
            self.base[row, df["week_bucket"].to_numpy().astype(np.int64)] * overlay.astype(np.float64)
        ).astype(np.float32)
        self.bad["products"] += int((again != lam).sum())
        day = local_dates(b, df["utc_offset_s"].to_numpy(), self.start_s) - self.first_day
        want = self.factors[row, day]
        self.bad["factors"] += int((np.abs(want - overlay) > 1e-6 * np.maximum(want, 1.0)).sum())
        self.rows += df.height
        self.sum_lambda += float(lam.sum(dtype=np.float64))
        self.sum_overlay += float(overlay.sum(dtype=np.float64))
        self.pairs.append(
            df.select(pl.col("tzid").cast(pl.String), "bucket_index", "utc_offset_s", "week_bucket").unique()
        )


def chunks(path: Path) -> Iterator[pl.DataFrame]:
    """A part file CHUNK rows at a time (whole row groups), so one chunk of a 10^8-row table is in memory."""
    rows = pq.ParquetFile(path).metadata.num_rows
    scan = pl.scan_parquet(path)
    for offset in range(0, rows, CHUNK):
        yield scan.slice(offset, CHUNK).collect()


def factor_table(
    profile: pl.DataFrame, events: pl.DataFrame, clamp: tuple[float, float], first_day: int, n_days: int
) -> np.ndarray:
    """The dense (profile row × local day) factor table from expected_day_factors (1 where no event)."""
    table = np.ones((profile.height, n_days))
    f = expected_day_factors(profile, events, clamp)
    day = f["local_date"].cast(pl.Int64).to_numpy() - first_day  # days since 1970-01-01
    keep = (day >= 0) & (day < n_days)
    table[f["row"].to_numpy()[keep], day[keep]] = f["factor"].to_numpy()[keep]
    return table


def weekly_checks(
    book: CheckBook, profile: pl.DataFrame, baseline: pl.DataFrame, shapes: np.ndarray, min_ratio: float
) -> bool:
    """S3 re-checked: 168 rows per profile row, every λ_base = weekly × shape[shape_id] and the weekly sums;
    the shapes' unit mass, sign and range. Returns whether 5A.R01 holds."""
    base = baseline["lambda_base"].to_numpy().reshape(-1, WEEK)
    covered = base.shape[0] == profile.height
    book.structural(
        "coverage.merchant_zone_baseline",
        covered,
        f"{base.shape[0]} × 168 rows for {profile.height} profile rows",
        "E_5A_DOMAIN_MISMATCH",
    )
    sums = shapes.sum(axis=1)
    shapes_ok = bool(
        (np.abs(sums - 1.0) <= 1e-12).all()
        and (shapes >= 0).all()
        and (shapes.max(axis=1) / shapes.min(axis=1) >= min_ratio).all()
    )
    book.structural("shapes.shape_library", shapes_ok, code="E_5A_SHAPE_INVALID")
    if not covered:
        return False
    weekly = profile["weekly_expected"].to_numpy()
    shape_of = baseline["shape_id"].to_numpy().reshape(-1, WEEK)[:, 0].astype(np.int64)
    products_ok = bool((weekly[:, None] * shapes[shape_of] == base).all())
    sums_ok = bool((np.abs(base.sum(axis=1) - weekly) <= 1e-9 * np.maximum(weekly, 1.0)).all())
    book.structural("products.merchant_zone_baseline", products_ok, code="E_5A_WEEKLY_SUM")
    book.structural("weekly_sums.merchant_zone_baseline", sums_ok, code="E_5A_WEEKLY_SUM")
    return sums_ok and shapes_ok and products_ok


def top_share(values: np.ndarray, share: float) -> float:
    """The share of the total held by the top ⌈share·n⌉ values."""
    if values.size == 0 or values.sum() <= 0:
        return float("nan")
    k = max(1, int(np.ceil(share * values.size)))
    return float(np.sort(values)[::-1][:k].sum() / values.sum())


def scale_rows(ctx: StateContext, profile: pl.DataFrame) -> pl.DataFrame:
    """The profile with what 5A.scale's re-derivation needs: n_outlets_total and the channel share."""
    outlets = ctx.sealed_table("merchant_catalogue").select("merchant_id", "n_outlets_total")
    virtual = ctx.sealed_table("virtual_classification").select("merchant_id", "virtual_share")
    cnp = pl.col("channel_group").cast(pl.String) == "CNP"
    hybrid = pl.col("virtual_mode").cast(pl.String) == "HYBRID"
    return (
        profile.join(outlets, on="merchant_id", how="left")
        .join(virtual, on="merchant_id", how="left")
        .with_columns(
            pl.when(hybrid)
            .then(pl.when(cnp).then(pl.col("virtual_share")).otherwise(1.0 - pl.col("virtual_share")))
            .otherwise(1.0)
            .alias("share")
        )
    )


def promo_sets(profile: pl.DataFrame, events: pl.DataFrame, start: dt.date) -> pl.DataFrame:
    """Per merchant: its published PROMO events as replay.promo_key text, and their count n."""
    p = events.filter(pl.col("event_type") == "PROMO").select(
        "merchant_id",
        (pl.col("local_start") - pl.lit(start)).dt.total_days().alias("s"),
        ((pl.col("local_end") - pl.col("local_start")).dt.total_days() + 1).alias("d"),
        pl.col("amplitude").cast(pl.Float64).alias("a"),
    )
    found: dict[int, list[tuple[int, int, float]]] = {}
    for m, st, d, a in p.iter_rows():
        found.setdefault(m, []).append((st, d, a))
    ids = profile["merchant_id"].unique().sort().to_list()
    return pl.DataFrame(
        {
            "merchant_id": pl.Series(ids, dtype=pl.UInt64),
            "promos": [replay.promo_key(found.get(m, [])) for m in ids],
            "n": pl.Series([len(found.get(m, [])) for m in ids], dtype=pl.Int64),
        }
    )


def class_volume(profile: pl.DataFrame) -> pl.DataFrame:
    """Σ weekly_expected per demand class (exactly, sorted by class): R04 and the report's class shares."""
    return group_sums(profile, [pl.col("demand_class").cast(pl.String)], ["weekly_expected"])


def realism(
    profile: pl.DataFrame,
    base: np.ndarray,
    scale: DemandScale,
    days: int,
    passes: dict[str, ScenarioPass],
    scenarios: dict[str, Scenario],
    clamped: dict[str, int],
    audit: dict[str, Any],
    coverage_ok: bool,
    r01: bool,
    holidays: pl.DataFrame,
    office_factor: tuple[float, int],
) -> dict[str, tuple[float, int]]:
    """5A.R01–R11 as (value, support)."""
    n = profile.height
    weekly = profile["weekly_expected"].to_numpy()
    cls = profile["demand_class"].cast(pl.String)
    rows_share = cls.value_counts(normalize=True, name="p")
    volume_by_class = class_volume(profile)["weekly_expected"].to_numpy()
    per_site = weekly / profile["zone_site_count"].to_numpy()
    per_site = per_site[per_site > 0]
    merchant_totals = group_sums(profile, ["merchant_id"], ["weekly_expected"])["weekly_expected"].to_numpy()
    roles = {s: scen.role for s, scen in scenarios.items()}
    base_ids = [s for s in passes if roles[s] == "BASELINE"]
    stress_ids = [s for s in passes if roles[s] == "STRESS"]
    b = passes[base_ids[0]] if base_ids else None
    night = (np.arange(WEEK) % 24) < 6
    chan = profile["channel_group"].cast(pl.String).to_numpy()

    def night_share(mask: np.ndarray) -> float:
        total = base[mask].sum()
        return float(base[mask][:, night].sum() / total) if total > 0 else float("nan")

    countries = set(profile["legal_country_iso"].cast(pl.String).unique().to_list())
    lacking = countries - set(holidays["country_iso"].unique().to_list())
    total = float(weekly.sum())
    return {
        "shape_and_weekly_sums": (1.0 if r01 else 0.0, n),
        "horizon_and_dst_audit": (
            1.0 if coverage_ok and audit["mismatches"] == 0 else 0.0,
            audit["pairs_audited"],
        ),
        "classes_with_two_percent": (float((rows_share["p"] >= 0.02).sum()), n),
        "max_class_volume_share": (float(volume_by_class.max() / total) if total > 0 else float("nan"), n),
        "per_site_p99_over_p50": (
            float(np.quantile(per_site, 0.99) / np.quantile(per_site, 0.5))
            if per_site.size
            else float("nan"),
            int(per_site.size),
        ),
        "top1pct_merchant_share": (top_share(merchant_totals, 0.01), int(merchant_totals.size)),
        "soft_capped_share": (float(profile["soft_capped"].mean()), n),
        "hard_cap_hits": (
            float((weekly > scale.hard_cap_to_mean * profile["cap_reference"].to_numpy()).sum()),
            n,
        ),
        "target_ratio": (total * days / 7.0 / scale.target_arrivals, n),
        "baseline_mean_overlay": (
            b.sum_overlay / b.rows if b and b.rows else float("nan"),
            b.rows if b else 0,
        ),
        "clamped_share": (
            max(clamped[s] / max(passes[s].rows, 1) for s in passes),
            sum(sp.rows for sp in passes.values()),
        ),
        "stress_over_baseline": (
            passes[stress_ids[0]].sum_lambda / b.sum_lambda
            if b and stress_ids and b.sum_lambda > 0
            else float("nan"),
            1 if b and stress_ids else 0,
        ),
        "cnp_minus_cp_night_share": (
            night_share(chan == "CNP") - night_share(chan == "CP"),
            int(min((chan == "CNP").sum(), (chan == "CP").sum())),
        ),
        "office_holiday_factor": office_factor,
        "countries_without_holidays": (
            len(lacking) / len(countries) if countries else float("nan"),
            len(countries),
        ),
    }


def office_holiday_factor(
    profile: pl.DataFrame, table: np.ndarray, holidays: pl.DataFrame, first_day: int
) -> tuple[float, int]:
    """Mean overlay factor of office_hours rows on their country's public holidays inside the table."""
    office = profile.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
        pl.col("legal_country_iso").cast(pl.String).alias("country_iso"),
        "demand_class",
    ).filter(pl.col("demand_class").cast(pl.String) == "office_hours")
    hits = office.join(holidays.select("country_iso", "local_date"), on="country_iso").with_columns(
        ((pl.col("local_date") - pl.lit(EPOCH)).dt.total_days() - first_day).alias("day")
    )
    hits = hits.filter((pl.col("day") >= 1) & (pl.col("day") < table.shape[1] - 1))
    if hits.height == 0:
        return float("nan"), 0
    return float(table[hits["row"].to_numpy(), hits["day"].to_numpy()].mean()), hits.height


def run(ctx: StateContext) -> None:
    val: Validation = ctx.policy("5A/validation.yaml")
    scale: DemandScale = ctx.policy("5A/demand_scale.yaml")
    ov: Overlays = ctx.policy("5A/overlays.yaml")
    shapes_pol: Shapes = ctx.policy("5A/shapes.yaml")
    horizon = ctx.policy("CFG/horizon.yaml")
    scenarios: dict[str, Scenario] = {s: ctx.policy(f"5A/scenarios/{s}.yaml") for s in ctx.scenarios}
    start_s, buckets, days = int(horizon.start().timestamp()), 24 * horizon.days, horizon.days
    book = CheckBook()
    tables = {
        "merchant_zone_profile": ctx.read("merchant_zone_profile"),
        "shape_library": ctx.read("shape_library", seed_free=True),
        "merchant_zone_baseline": ctx.read("merchant_zone_baseline"),
    }
    check_schemas(ctx, book, tables)
    # scenario_events has no shard token: shard 0's S4 job wrote it, and its run report vouches for it
    events = {s: ctx.read("scenario_events", scenario=s, shard=0) for s in ctx.scenarios}
    schema = dictionary()["scenario_events"]["schema"]
    for s, e in events.items():
        book.guarded(
            f"schema.scenario_events/{s}",
            lambda e=e, s=s: validate_table(e, schema, where=s, state=ctx.state),
        )
    profile = tables["merchant_zone_profile"].drop("seed", "manifest_fingerprint")
    library = tables["shape_library"].sort("shape_id", "week_bucket")
    baseline = tables["merchant_zone_baseline"]
    base = baseline["lambda_base"].to_numpy().reshape(-1, WEEK)
    shape_values = library["value"].to_numpy().reshape(-1, WEEK)
    r01 = weekly_checks(book, profile, baseline, shape_values, shapes_pol.min_peak_to_trough)

    first_day = (horizon.start().date() - EPOCH).days - 1
    n_days = days + 3
    passes: dict[str, ScenarioPass] = {}
    scenario_schema = dictionary()["merchant_zone_scenario"]["schema"]
    tables_by: dict[str, np.ndarray] = {}
    for s in ctx.scenarios:
        table = factor_table(profile, events[s], ov.clamp, first_day, n_days)
        tables_by[s] = table
        sp = ScenarioPass(profile, base, table, first_day, start_s, buckets)
        for shard in range(ctx.shards):
            sp.last = None  # each shard is sorted on its own
            for path in ctx.part_files("merchant_zone_scenario", scenario=s, shard=shard):
                for chunk in chunks(path):
                    book.guarded(
                        f"schema.merchant_zone_scenario/{s}/{shard}/{path.name}",
                        lambda chunk=chunk, path=path: validate_table(
                            chunk, scenario_schema, where=str(path), state=ctx.state, keys=False
                        ),
                    )
                    sp.add(
                        chunk.drop("seed", "manifest_fingerprint", "scenario_id", "shard"), shard, ctx.shards
                    )
        passes[s] = sp
        for what, n in sp.bad.items():
            book.structural(
                f"{what}.merchant_zone_scenario/{s}",
                n == 0,
                f"{n} rows",
                "E_5A_KEYS" if what in ("keys", "order", "shard") else "E_5A_PRODUCT",
            )
        book.structural(
            f"coverage.merchant_zone_scenario/{s}",
            bool((sp.per_row == buckets).all()),
            f"{int((sp.per_row != buckets).sum())} profile rows without {buckets} buckets",
            "E_5A_DOMAIN_MISMATCH",
        )

    windows = ctx.sealed_table("tz_dst_windows")
    first = next(iter(passes.values()))
    audit = dst_audit(pl.concat(first.pairs), windows, start_s, buckets)
    coverage_ok = all(bool((sp.per_row == buckets).all()) for sp in passes.values())

    reports, recorded = state_reports(ctx, PRODUCERS)
    clamped = {
        s: sum(
            doc["deviations"].get("clamped_row_buckets", 0)
            for k, doc in reports.items()
            if k.startswith(f"5A.S4/scenario_id={s}/")
        )
        for s in ctx.scenarios
    }
    holidays = ctx.sealed_table("ref_holidays")
    base_scen = [s for s in passes if scenarios[s].role == "BASELINE"]
    office = (
        office_holiday_factor(profile, tables_by[base_scen[0]], holidays, first_day)
        if base_scen
        else (float("nan"), 0)
    )
    metrics = realism(
        profile, base, scale, days, passes, scenarios, clamped, audit, coverage_ok, r01, holidays, office
    )
    apply_checks(book, val, metrics)

    variant = (
        baseline.select("merchant_id", (pl.col("shape_id") % 3).cast(pl.Int64).alias("variant"))
        .unique("merchant_id")
        .sort("merchant_id")
    )
    replays = [replay.scale(scale_rows(ctx, profile), scale), replay.shape_variant(variant)]
    promo_rows = [
        promo_sets(profile, events[s], horizon.start().date()) for s, scen in scenarios.items() if scen.promos
    ]
    if promo_rows:
        replays.append(replay.promo(pl.concat(promo_rows), ov.promo, days))
    expected = run_replays(
        ctx, book, replays, recorded, code="E_5A_REPLAY", rule=SampleRule.of(val.replay_sample)
    )
    summary = {
        s: {
            "rows": sp.rows,
            "sum_lambda": round(sp.sum_lambda, 6),
            "mean_overlay": round(sp.sum_overlay / max(sp.rows, 1), 9),
            "clamped_row_buckets": clamped[s],
        }
        for s, sp in passes.items()
    }
    volume = class_volume(profile)
    total = exact_sum(volume["weekly_expected"]) or 1.0
    s1 = reports["5A.S1"]
    finish_segment(
        ctx,
        book,
        {
            "rng_accounting": {"recorded": recorded, "expected": expected},
            "state_reports": reports,
            "extra": {
                "dst_audit": audit,
                "summary": {
                    "scenarios": summary,
                    "class_volume_share": {c: round(v / total, 9) for c, v in volume.iter_rows()},
                    "soft_cap": {
                        "rows": s1["deviations"].get("soft_capped_rows", 0),
                        **s1["facts"].get("soft_cap", {}),
                    },
                },
            },
        },
    )


def dst_audit(pairs: pl.DataFrame, windows: pl.DataFrame, start_s: int, buckets: int) -> dict[str, Any]:
    """Offsets and week buckets of a deterministic sample of (tzid, bucket) pairs (the AUDIT_SAMPLE smallest
    hashes) plus every bucket within 48 h of an in-horizon DST transition, recomputed with zoneinfo, an
    implementation independent of 2A's cache and S4's binary search."""
    force_tzdata()
    pairs = (
        pairs.unique(["tzid", "bucket_index"])
        .sort("tzid", "bucket_index")
        .with_columns((start_s + 3600 * pl.col("bucket_index").cast(pl.Int64) + 1800).alias("mid"))
    )
    transitions = windows.filter(pl.col("in_horizon")).select(
        pl.col("tzid").cast(pl.String), (pl.col("transition_utc") // 1_000_000).alias("t")
    )
    near_keys = (
        pairs.join(transitions, on="tzid")
        .filter((pl.col("mid") - pl.col("t")).abs() <= AUDIT_WINDOW_S)
        .select("tzid", "bucket_index")
        .unique()
        .with_columns(pl.lit(True).alias("near"))
    )
    pairs = pairs.join(near_keys, on=["tzid", "bucket_index"], how="left").with_columns(
        pl.col("near").fill_null(False)
    )
    digest = pairs.select(pl.struct("tzid", "bucket_index").hash(seed=5).alias("h"))["h"]
    near = pairs["near"].to_numpy()
    picked = near | (digest.rank("ordinal").to_numpy() <= AUDIT_SAMPLE)
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    bad = []
    audited = pairs.filter(pl.Series(picked)).select("tzid", "bucket_index", "utc_offset_s", "week_bucket")
    for tzid, b, off, wb in audited.iter_rows():
        zone = zones.setdefault(tzid, zoneinfo.ZoneInfo(tzid))
        local = dt.datetime.fromtimestamp(start_s + 3600 * b + 1800, zone)
        offset = local.utcoffset()
        want_off = int(offset.total_seconds()) if offset is not None else None
        want_wb = local.weekday() * 24 + local.hour
        if want_off != off or want_wb != wb:
            bad.append(
                {"tzid": tzid, "bucket": b, "offset": off, "zoneinfo_offset": want_off, "week_bucket": wb}
            )
    return {
        "buckets": buckets,
        "pairs_audited": audited.height,
        "near_transition": int(near.sum()),
        "mismatches": len(bad),
        "examples": bad[:20],
    }
