"""Ingress: the merchant universe that 1A.S0 seals — generated from policy or read from a user file."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.core.canonical import canonical_json_bytes, sha256_file
from engine.core.contracts import DTYPES, PART_FILE, dataset_dir, dictionary, table_schema, validate_table
from engine.core.errors import EngineError
from engine.core.gates import read_input_table
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
    by_mcc = np.full(10_000, np.nan)  # every MCC the policy may name (0..9999); NaN: the sector's p_cnp
    for code, p in policy.mcc_p_cnp().items():
        by_mcc[code] = p
    sector_p = np.array([policy.p_cnp[s] for s in sector_names])[sector_idx]
    p_cnp = np.where(np.isnan(by_mcc[mcc]), sector_p, by_mcc[mcc])
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


USER_REQUIRED = ("merchant_id", "mcc", "channel", "home_country_iso")
USER_COLUMNS = (*USER_REQUIRED, "sector")
"""The columns a user file may hold; `sector` is optional and, when given, must be its MCC's sector."""
_WHOLE = r"^[0-9]{1,19}$"  # every id and MCC the contract allows has at most 19 decimal digits


@dataclass(frozen=True)
class UserTable:
    """A user file as read (CSV: cells as text, empty → null; Parquet: its columns) and each row's place."""

    path: Path
    frame: pl.DataFrame
    unit: str  # "line": the CSV line a record starts on; "row": the 1-based Parquet row
    places: list[int]

    def cell(self, i: int, column: str) -> str:
        return f"{self.path}:{self.unit} {self.places[i]} column {column}"


def _first(mask: pl.Series) -> int | None:
    """Index of the first true entry; a null entry comes from an empty cell, which is refused too."""
    hits = mask.fill_null(True).arg_true()
    return int(hits[0]) if len(hits) else None


def _check_header(names: list[str], where: str) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    unknown = [n for n in names if n not in USER_COLUMNS]
    missing = [c for c in USER_REQUIRED if c not in names]
    allowed = f"the columns are {', '.join(USER_REQUIRED)} and, optionally, sector"
    for problem, found in (("repeats", repeated), ("has unknown", unknown), ("lacks", missing)):
        if found:
            raise _err("E_ING_SCHEMA", f"merchant file {problem} columns {found}", where, allowed)


def _read_csv(path: Path) -> UserTable:
    """Every cell as text, so nothing is coerced: `1.0e3` stays text and is refused, never truncated."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _err(
            "E_ING_SCHEMA", f"cannot read merchant file: {exc.strerror}", str(path), "make it readable"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _err(
            "E_ING_SCHEMA",
            "merchant file is not UTF-8 text",
            f"{path}:line {line}",
            "save it as UTF-8 CSV, or give a Parquet file a .parquet name",
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise _err("E_ING_EMPTY", "merchant file is empty", str(path), "supply a header and merchants")
        _check_header(header, f"{path}:line 1")
        cells: list[list[str | None]] = [[] for _ in header]
        places: list[int] = []
        start = reader.line_num + 1
        for record in reader:
            if record:  # a blank line holds no merchant
                if len(record) != len(header):
                    raise _err(
                        "E_ING_SCHEMA",
                        f"{len(record)} fields where the header has {len(header)}",
                        f"{path}:line {start}",
                        "give every row one value per header column",
                    )
                for column, value in zip(cells, record, strict=True):
                    column.append(value or None)
                places.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _err(
            "E_ING_SCHEMA", f"malformed CSV: {exc}", f"{path}:line {reader.line_num}", "fix the quoting"
        ) from None
    frame = pl.DataFrame([pl.Series(n, c, dtype=pl.String) for n, c in zip(header, cells, strict=True)])
    return UserTable(path, frame, "line", places)


def _read_parquet(path: Path) -> UserTable:
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        what = f"cannot read Parquet: {str(exc).splitlines()[0]}"
        raise _err("E_ING_SCHEMA", what, str(path), "supply a valid Parquet file") from None
    _check_header(frame.columns, str(path))
    return UserTable(path, frame, "row", list(range(1, frame.height + 1)))


def _checked_column(table: UserTable, column: str) -> pl.Series:
    """One column against its contract spec (dtype, nulls, range, enum, pattern); names its first bad cell."""
    spec = table_schema(dictionary()[DATASET]["schema"]).columns[column]
    want = DTYPES[spec["dtype"]]
    raw = table.frame[column]
    if raw.dtype in (pl.Categorical, pl.Enum):
        raw = raw.cast(pl.String)
    stored_right = raw.dtype.is_integer() if want.is_integer() else raw.dtype == pl.String
    if want.is_integer() and raw.dtype == pl.String and table.unit == "line":  # CSV text, parsed strictly
        bad, values = ~raw.str.contains(_WHOLE), raw.cast(pl.UInt64, strict=False)
    elif stored_right:
        bad, values = raw.is_null(), raw
    else:
        kind = "integers" if want.is_integer() else "strings"
        raise _err(
            "E_ING_SCHEMA",
            f"{column} is stored as {raw.dtype}, not as {kind}",
            f"{table.path} column {column}",
            f"store {column} as {kind}",
        )
    if want.is_integer():
        lo, hi = spec["minimum"], spec["maximum"]
        bad = bad | (values < lo) | (values > hi)
        expect = f"a whole number from {lo} to {hi}"
    elif "enum" in spec:
        bad = ~values.is_in(spec["enum"])
        expect = f"one of {', '.join(spec['enum'])}"
    else:
        bad = ~values.str.contains(spec["pattern"])
        expect = f"text matching {spec['pattern']}"
    i = _first(bad)
    if i is None:
        return values.cast(want)
    if raw[i] is None:
        raise _err("E_ING_SCHEMA", f"{column} is empty", table.cell(i, column), f"give every row a {column}")
    raise _err("E_ING_SCHEMA", f"{column} {raw[i]!r} is not {expect}", table.cell(i, column), f"use {expect}")


def _refuse(
    table: UserTable, mask: pl.Series, column: str, code: str, what: Callable[[int], str], fix: str
) -> None:
    i = _first(mask)
    if i is not None:
        raise _err(code, what(i), table.cell(i, column), fix)


def read_user_file(
    path: Path, sectors: Sectors, countries: pl.DataFrame, mcc_ref: pl.DataFrame
) -> pl.DataFrame:
    """A user-supplied universe checked cell by cell; every refusal names the file, the row and the column."""
    table = _read_parquet(path) if path.suffix == ".parquet" else _read_csv(path)
    if table.frame.is_empty():
        raise _err("E_ING_EMPTY", "merchant file has no rows", str(path), "supply at least one merchant")
    df = pl.DataFrame([_checked_column(table, c) for c in COLUMNS if c in table.frame.columns])
    ids, mcc, homes = df["merchant_id"], df["mcc"], df["home_country_iso"]
    _refuse(
        table,
        ~mcc.is_in(mcc_ref["mcc"].implode()),
        "mcc",
        "E_ING_SCHEMA",
        lambda i: f"MCC {mcc[i]} is not in ref_mcc",
        "use an ISO 18245 MCC",
    )
    eligible = countries.filter(pl.col("eligible"))["iso2"]
    _refuse(
        table,
        ~homes.is_in(eligible.implode()),
        "home_country_iso",
        "E_ING_UNKNOWN_COUNTRY",
        lambda i: f"home country {homes[i]!r} is not eligible",
        "use an eligible ISO 3166 alpha-2 code (ref_countries)",
    )
    _refuse(
        table,
        ~ids.is_first_distinct(),
        "merchant_id",
        "E_ING_DUPLICATE_ID",
        lambda i: f"merchant_id {ids[i]} repeats {table.unit} {table.places[ids.index_of(ids[i])]}",
        "make merchant_id unique",
    )
    derived = sector_of(mcc, sectors)
    if "sector" in df.columns:
        given = df["sector"]
        _refuse(
            table,
            given != derived,
            "sector",
            "E_ING_SECTOR_MISMATCH",
            lambda i: (
                f"sector {given[i]!r} is not {derived[i]!r}, the sector of MCC {mcc[i]} in sectors.yaml"
            ),
            "correct the sector or drop the column (it is derived from the MCC)",
        )
    return df.with_columns(derived).select(COLUMNS).sort("merchant_id")


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
    countries = read_input_table(sealed["ref_countries"], state=STATE)
    macro = read_input_table(sealed["ref_country_macro"], state=STATE)
    mf = spec["manifest_fingerprint"]
    if spec["extra"]["universe_source"] == "generate":
        key = family_key(policy.universe_seed, spec["parameter_hash"], "ING.merchant")
        df, probes = generate(policy, sectors, hurdle, countries, macro, key)
    else:
        probes = 0
        mcc = read_input_table(sealed["ref_mcc"], state=STATE)
        df = read_user_file(_sealed_user_file(spec), sectors, countries, mcc)
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
