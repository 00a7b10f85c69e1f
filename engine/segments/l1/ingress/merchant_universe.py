"""Ingress: the merchant universe that 1A.S0 seals — generated from policy or read from a user file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.core.canonical import canonical_json_bytes, sha256_file
from engine.core.contracts import PART_FILE, dataset_dir, dictionary, validate_table
from engine.core.errors import EngineError
from engine.core.ids import assign_ids
from engine.core.layout import ingress_report_path
from engine.core.parquet_io import write_parquet
from engine.core.policy import load_policy_file
from engine.core.publish import publish_partition, replace_bytes
from engine.core.rng import family_key
from engine.core.sealing import check_policies, check_references
from engine.kernels.blocks import block_uniforms
from engine.segments.l1.ingress.policy import MerchantUniverse
from engine.segments.l1.s1a.common import gdp_bucket, sector_of
from engine.segments.l1.s1a.policy import SECTORS, HurdleNb, Sectors

STATE = "ING"
DATASET = "merchant_universe"
COLUMNS = ["merchant_id", "mcc", "sector", "channel", "home_country_iso"]


def _err(code: str, what: str, where: str, fix: str) -> EngineError:
    return EngineError(code, what, where=where, fix=fix, state=STATE)


def water_fill(weights: np.ndarray, cap: float) -> np.ndarray:
    """Normalise, clip shares above `cap`, hand the excess to unclipped entries in proportion; repeat."""
    share = weights / weights.sum()
    clipped = np.zeros(share.shape, dtype=bool)
    while (share > cap + 1e-15).any():
        clipped |= share > cap
        excess = 1.0 - cap * clipped.sum()
        free = share[~clipped].sum()
        share = np.where(clipped, cap, share / free * excess)
    return share


def largest_remainder(total: int, shares: np.ndarray, floors: np.ndarray) -> np.ndarray:
    """floors + the rest split by largest remainder of (total − Σfloors)·share (ties: earlier row)."""
    rest = total - int(floors.sum())
    quota = rest * shares
    base = np.floor(quota).astype(np.int64)
    remainder = quota - base
    left = rest - int(base.sum())
    order = np.lexsort((np.arange(len(shares)), -remainder))
    base[order[:left]] += 1
    return floors.astype(np.int64) + base


def home_countries(policy: MerchantUniverse, countries: pl.DataFrame, macro: pl.DataFrame) -> pl.DataFrame:
    """Eligible homes, top max_countries by gdp_total^exponent, capped shares, merchant counts."""
    c = policy.countries
    table = (
        countries.filter(pl.col("eligible"))
        .join(macro, on="iso2", how="inner")
        .filter(pl.col("population") >= c.min_population)
        .with_columns((pl.col("gdp_usd") ** c.exponent).alias("w"))
        .sort(["w", "iso2"], descending=[True, False])
        .head(c.max_countries)
        .sort("iso2")
    )
    if table.is_empty():
        raise _err("E_ING_EMPTY", "no eligible home country", "ref_countries", "lower min_population")
    shares = water_fill(table["w"].to_numpy(), c.max_share)
    floors = np.full(table.height, c.min_merchants, dtype=np.int64)
    counts = largest_remainder(policy.n_merchants, shares, floors)
    return table.with_columns(pl.Series("share", shares), pl.Series("n", counts, dtype=pl.Int64))


def _inverse_cdf(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights)
    return np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), len(weights) - 1)


def generate(
    policy: MerchantUniverse,
    sectors: Sectors,
    hurdle: HurdleNb,
    countries: pl.DataFrame,
    macro: pl.DataFrame,
    key: tuple[int, int],
) -> tuple[pl.DataFrame, int]:
    """The universe sorted by merchant_id, and the number of id probes it needed."""
    homes = home_countries(policy, countries, macro)
    rows = homes.select(
        pl.col("iso2"),
        pl.col("iso_num"),
        pl.col("gdp_pc_usd"),
        pl.int_ranges(0, pl.col("n")).alias("k"),
    ).explode("k")
    rows = rows.filter(pl.col("k").is_not_null())
    u = block_uniforms(key, rows["iso_num"].to_numpy(), rows["k"].to_numpy(), 0, 0, lanes=3)
    sector_names = list(SECTORS)
    sector_w = np.array([policy.sector_weights[s] for s in sector_names])
    sector_idx = _inverse_cdf(u[:, 0], sector_w)
    mcc = np.empty(rows.height, dtype=np.uint16)
    for s_i, name in enumerate(sector_names):
        pick = sector_idx == s_i
        mccs = sectors.sectors[name].mccs
        zipf = np.arange(1, len(mccs) + 1, dtype=np.float64) ** -policy.mcc_zipf_s
        mcc[pick] = np.asarray(mccs, dtype=np.uint16)[_inverse_cdf(u[pick, 1], zipf)]
    bucket = gdp_bucket(rows["gdp_pc_usd"], hurdle.gdp_bucket_breaks_usd)
    p_cnp = np.array([policy.p_cnp[s] for s in sector_names])[sector_idx]
    tilt = np.asarray(policy.cnp_gdp_tilt)[bucket]
    cnp = u[:, 2] < np.minimum(1.0, p_cnp * tilt)
    ids, probes = assign_ids(
        "merchant", ((policy.universe_seed, iso, int(k)) for iso, k in rows.select("iso2", "k").iter_rows())
    )
    out = pl.DataFrame(
        {
            "merchant_id": pl.Series(ids, dtype=pl.UInt64),
            "mcc": pl.Series(mcc, dtype=pl.UInt16),
            "sector": pl.Series([sector_names[i] for i in sector_idx], dtype=pl.String),
            "channel": pl.Series(np.where(cnp, "card_not_present", "card_present"), dtype=pl.String),
            "home_country_iso": rows["iso2"],
        }
    )
    return out.sort("merchant_id"), probes


def read_user_file(
    path: Path, sectors: Sectors, countries: pl.DataFrame, mcc_ref: pl.DataFrame
) -> pl.DataFrame:
    """A user-supplied universe, checked column-wise; sector derived from sectors.yaml."""
    where = str(path)
    try:
        raw = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    except Exception as exc:  # polars raises many types for unreadable files
        raise _err(
            "E_ING_SCHEMA", f"cannot read merchant file: {exc}", where, "supply CSV or Parquet"
        ) from None
    missing = [c for c in ("merchant_id", "mcc", "channel", "home_country_iso") if c not in raw.columns]
    if missing:
        raise _err("E_ING_SCHEMA", f"missing columns {missing}", where, "add the columns named")
    if raw.is_empty():
        raise _err("E_ING_EMPTY", "merchant file has no rows", where, "supply at least one merchant")
    try:
        df = raw.select(
            pl.col("merchant_id").cast(pl.UInt64, strict=True),
            pl.col("mcc").cast(pl.UInt16, strict=True),
            pl.col("channel").cast(pl.String),
            pl.col("home_country_iso").cast(pl.String),
        )
    except pl.exceptions.PolarsError as exc:
        raise _err(
            "E_ING_SCHEMA", f"column types: {exc}".splitlines()[0], where, "ids and MCCs are integers"
        ) from None
    if df["merchant_id"].is_duplicated().any():
        raise _err("E_ING_DUPLICATE_ID", "merchant_id values repeat", where, "make merchant_id unique")
    eligible = countries.filter(pl.col("eligible"))["iso2"]
    unknown = df.filter(~pl.col("home_country_iso").is_in(eligible.implode()))["home_country_iso"]
    if len(unknown):
        raise _err(
            "E_ING_UNKNOWN_COUNTRY",
            f"home country {unknown[0]!r} is not eligible",
            where,
            "use eligible ISO2 codes",
        )
    bad_mcc = df.filter(~pl.col("mcc").is_in(mcc_ref["mcc"].implode()))["mcc"]
    if len(bad_mcc):
        raise _err("E_ING_SCHEMA", f"MCC {bad_mcc[0]} is not in ref_mcc", where, "use ISO 18245 MCCs")
    return df.with_columns(sector_of(df["mcc"], sectors)).select(COLUMNS).sort("merchant_id")


def _sealed_user_file(spec: dict[str, Any]) -> Path:
    path = Path(spec["universe_path"])
    if not path.is_file() or sha256_file(path) != spec["extra"]["universe_sha256"]:
        raise _err(
            "E_SEALED_INPUT_DIGEST_MISMATCH",
            "merchant file changed since the workflow was planned",
            str(path),
            "rerun snakemake so the new file is fingerprinted",
        )
    return path


def run(root: Path, spec: dict[str, Any]) -> None:
    sealed = {
        i["id"]: root / i["path"]
        for i in check_policies(root, spec, STATE) + check_references(root, spec, STATE)
    }
    policy = load_policy_file("ING", "merchant_universe", sealed["ING/merchant_universe.yaml"], state=STATE)
    sectors = load_policy_file("1A", "sectors", sealed["1A/sectors.yaml"], state=STATE)
    hurdle = load_policy_file("1A", "hurdle_nb", sealed["1A/hurdle_nb.yaml"], state=STATE)
    countries = pl.read_parquet(sealed["ref_countries"])
    macro = pl.read_parquet(sealed["ref_country_macro"])
    mf = spec["manifest_fingerprint"]
    if spec["extra"]["universe_source"] == "generate":
        key = family_key(policy.universe_seed, spec["parameter_hash"], "ING.merchant")
        df, probes = generate(policy, sectors, hurdle, countries, macro, key)
    else:
        probes = 0
        df = read_user_file(_sealed_user_file(spec), sectors, countries, pl.read_parquet(sealed["ref_mcc"]))
    df = df.select(pl.lit(mf).alias("manifest_fingerprint"), *COLUMNS)
    target = dataset_dir(root, DATASET, mf=mf)
    validate_table(df, dictionary()[DATASET]["schema"], where=str(target), state=STATE, code="E_ING_SCHEMA")
    publish_partition(target, lambda tmp: write_parquet(df, tmp / PART_FILE), state=STATE)
    report = {
        "manifest_fingerprint": mf,
        "rows": df.height,
        "sha256": sha256_file(target / PART_FILE),
        "source": spec["extra"]["universe_source"],
        "id_probes": probes,
        "home_countries": df["home_country_iso"].n_unique(),
        "channel_counts": dict(df.group_by("channel").len().sort("channel").iter_rows()),
    }
    replace_bytes(ingress_report_path(root, mf), canonical_json_bytes(report))
    print(
        f"[ING] merchant_universe: {df.height} merchants, {report['home_countries']} home countries",
        file=sys.stderr,
    )
