"""Ingress from a user file: every refusal names its code, file, row and column; one end-to-end run."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from engine.core.config import load_run_config
from engine.core.contracts import dataset_file
from engine.core.errors import EngineError
from engine.core.plan import build_plan
from engine.refdata import registry
from engine.segments.l1.ingress.merchant_universe import COLUMNS, read_user_file
from engine.segments.l1.s1a.policy import Sectors
from tests.conftest import run_snakemake, shipped_policy, tiny_plan

SECTORS: Sectors = shipped_policy("1A", "sectors")  # type: ignore[assignment]
HEADER = "merchant_id,mcc,channel,home_country_iso\n"


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    """ref_countries and ref_mcc built on their own: seconds, where the tiny world takes minutes."""
    out = {}
    for name in ("ref_countries", "ref_mcc"):
        folder = tmp_path_factory.mktemp(name)
        registry.build(name, folder)
        out[name] = pl.read_parquet(folder / f"{name}.parquet")
    return out


def _read(path: Path, refs: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return read_user_file(path, SECTORS, refs["ref_countries"], refs["ref_mcc"])


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "u.csv"
    path.write_text(text)
    return path


def _parquet(tmp_path: Path, columns: dict[str, pl.Series]) -> Path:
    path = tmp_path / "u.parquet"
    pl.DataFrame(columns).write_parquet(path)
    return path


def _refusal(path: Path, refs: dict[str, pl.DataFrame]) -> EngineError:
    with pytest.raises(EngineError) as err:
        _read(path, refs)
    assert err.value.state == "ING"
    return err.value


def test_valid_file_gives_contract_columns_sorted_with_sectors(
    tmp_path: Path, refs: dict[str, pl.DataFrame]
) -> None:
    df = _read(
        _csv(
            tmp_path,
            HEADER + "30,742,card_present,DE\n10,5411,card_present,US\n20,3001,card_not_present,FR\n",
        ),
        refs,
    )
    assert df.columns == COLUMNS
    assert df.schema == pl.Schema(
        {
            "merchant_id": pl.UInt64,
            "mcc": pl.UInt16,
            "sector": pl.String,
            "channel": pl.String,
            "home_country_iso": pl.String,
        }
    )
    assert df.rows() == [
        (10, 5411, "grocery", "card_present", "US"),
        (20, 3001, "travel", "card_not_present", "FR"),  # 3001 is only in travel's 3000–3999 range
        (30, 742, "other", "card_present", "DE"),  # listed in no sector
    ]


def test_id_bounds_and_leading_zeros_are_accepted(tmp_path: Path, refs: dict[str, pl.DataFrame]) -> None:
    text = HEADER + f"{2**63 - 1},5411,card_present,US\n0001,05411,card_present,US\n"
    assert _read(_csv(tmp_path, text), refs)["merchant_id"].to_list() == [1, 2**63 - 1]


def test_agreeing_sector_column_is_accepted(tmp_path: Path, refs: dict[str, pl.DataFrame]) -> None:
    text = "sector,merchant_id,mcc,channel,home_country_iso\ngrocery,1,5411,card_present,US\n"
    assert _read(_csv(tmp_path, text), refs).rows() == [(1, 5411, "grocery", "card_present", "US")]


def test_parquet_file_is_read_too(tmp_path: Path, refs: dict[str, pl.DataFrame]) -> None:
    path = _parquet(
        tmp_path,
        {
            "merchant_id": pl.Series([7], dtype=pl.Int64),
            "mcc": pl.Series([5812], dtype=pl.Int32),
            "channel": pl.Series(["card_present"], dtype=pl.Categorical),
            "home_country_iso": pl.Series(["IT"]),
        },
    )
    assert _read(path, refs).rows() == [(7, 5812, "restaurants", "card_present", "IT")]


ID_RANGE = "a whole number from 1 to 9223372036854775807"
MCC_RANGE = "a whole number from 0 to 9999"
CHANNELS = "one of card_present, card_not_present"
GOOD = "1,5411,card_present,US\n"

# (body after the header, code, what, line, column): every refusal names the file, the line and the column
CSV_CELLS = {
    "float_id": (
        GOOD + "1001.7,5411,card_present,US\n",
        "E_ING_SCHEMA",
        f"merchant_id '1001.7' is not {ID_RANGE}",
        3,
        "merchant_id",
    ),
    "exponent_id": (
        GOOD + "1.0e3,5411,card_present,US\n",
        "E_ING_SCHEMA",
        f"merchant_id '1.0e3' is not {ID_RANGE}",
        3,
        "merchant_id",
    ),
    "whole_float_id": (
        "1.0,5411,card_present,US\n",
        "E_ING_SCHEMA",
        f"merchant_id '1.0' is not {ID_RANGE}",
        2,
        "merchant_id",
    ),
    "negative_id": (
        "-1,5411,card_present,US\n",
        "E_ING_SCHEMA",
        f"merchant_id '-1' is not {ID_RANGE}",
        2,
        "merchant_id",
    ),
    "zero_id": (
        GOOD + "0,5411,card_present,US\n",
        "E_ING_SCHEMA",
        f"merchant_id '0' is not {ID_RANGE}",
        3,
        "merchant_id",
    ),
    "id_2_63": (
        f"{2**63},5411,card_present,US\n",
        "E_ING_SCHEMA",
        f"merchant_id '{2**63}' is not {ID_RANGE}",
        2,
        "merchant_id",
    ),
    "id_past_u64": (
        f"{2**64},5411,card_present,US\n",
        "E_ING_SCHEMA",
        f"merchant_id '{2**64}' is not {ID_RANGE}",
        2,
        "merchant_id",
    ),
    "padded_id": (
        " 1,5411,card_present,US\n",
        "E_ING_SCHEMA",
        f"merchant_id ' 1' is not {ID_RANGE}",
        2,
        "merchant_id",
    ),
    "empty_id": (GOOD + ",5411,card_present,US\n", "E_ING_SCHEMA", "merchant_id is empty", 3, "merchant_id"),
    "float_mcc": (
        GOOD + "2,5411.9,card_present,US\n",
        "E_ING_SCHEMA",
        f"mcc '5411.9' is not {MCC_RANGE}",
        3,
        "mcc",
    ),
    "text_mcc": (
        GOOD + "2,54x1,card_present,DE\n",
        "E_ING_SCHEMA",
        f"mcc '54x1' is not {MCC_RANGE}",
        3,
        "mcc",
    ),
    "mcc_too_big": ("1,10000,card_present,US\n", "E_ING_SCHEMA", f"mcc '10000' is not {MCC_RANGE}", 2, "mcc"),
    "mcc_not_in_ref": (
        GOOD + "2,3500,card_present,US\n",
        "E_ING_SCHEMA",
        "MCC 3500 is not in ref_mcc",
        3,
        "mcc",
    ),
    "bad_channel": (
        GOOD + "2,5411,online,US\n",
        "E_ING_SCHEMA",
        f"channel 'online' is not {CHANNELS}",
        3,
        "channel",
    ),
    "empty_channel": (GOOD + "2,5411,,US\n", "E_ING_SCHEMA", "channel is empty", 3, "channel"),
    "lower_case_country": (
        GOOD + "2,5411,card_present,us\n",
        "E_ING_SCHEMA",
        "home_country_iso 'us' is not text matching ^[A-Z]{2}$",
        3,
        "home_country_iso",
    ),
    "ineligible_country": (
        GOOD + "2,5411,card_present,AQ\n",
        "E_ING_UNKNOWN_COUNTRY",
        "home country 'AQ' is not eligible",
        3,
        "home_country_iso",
    ),
    "duplicate_id": (
        GOOD + "2,5411,card_present,US\n1,5812,card_present,DE\n",
        "E_ING_DUPLICATE_ID",
        "merchant_id 1 repeats line 2",
        4,
        "merchant_id",
    ),
}


@pytest.mark.parametrize("case", sorted(CSV_CELLS))
def test_csv_cell_refusals_name_file_line_and_column(
    tmp_path: Path, refs: dict[str, pl.DataFrame], case: str
) -> None:
    body, code, what, line, column = CSV_CELLS[case]
    err = _refusal(_csv(tmp_path, HEADER + body), refs)
    assert (err.code, err.what, err.where) == (
        code,
        what,
        f"{tmp_path / 'u.csv'}:line {line} column {column}",
    )


def test_whole_error_line(tmp_path: Path, refs: dict[str, pl.DataFrame]) -> None:
    path = _csv(tmp_path, HEADER + GOOD + "1001.7,5411,card_present,US\n")
    assert _refusal(path, refs).line() == (
        f"ERROR E_ING_SCHEMA ING: merchant_id '1001.7' is not {ID_RANGE} ({path}:line 3 column merchant_id)"
        f" — use {ID_RANGE}"
    )


def test_lines_count_blank_lines_and_quoted_newlines(tmp_path: Path, refs: dict[str, pl.DataFrame]) -> None:
    """The line named is the one the record starts on in the file, not its data-row index."""
    text = HEADER + GOOD + "\n" + '"2",5411,"card_\npresent",US\n'
    err = _refusal(_csv(tmp_path, text), refs)
    assert err.what == f"channel 'card_\\npresent' is not {CHANNELS}"
    assert err.where.endswith("u.csv:line 4 column channel")
    text = HEADER + GOOD + "\n" + '"2",5411,"card_present",US\n' + "3,5411,card_present,XX\n"
    assert _refusal(_csv(tmp_path, text), refs).where.endswith("u.csv:line 5 column home_country_iso")


def test_sector_that_disagrees_with_the_mcc_is_refused(tmp_path: Path, refs: dict[str, pl.DataFrame]) -> None:
    header = "merchant_id,mcc,sector,channel,home_country_iso\n"
    text = header + "1,5411,grocery,card_present,US\n2,5411,travel,card_present,US\n"
    err = _refusal(_csv(tmp_path, text), refs)
    assert err.code == "E_ING_SECTOR_MISMATCH"
    assert err.what == "sector 'travel' is not 'grocery', the sector of MCC 5411 in sectors.yaml"
    assert err.where.endswith("u.csv:line 3 column sector")


@pytest.mark.parametrize(
    ("text", "code", "what", "where"),
    [
        (
            "merchant_id,mcc,home_country_iso\n1,5411,US\n",
            "E_ING_SCHEMA",
            "merchant file lacks columns ['channel']",
            "line 1",
        ),
        (
            HEADER.replace("\n", ",note\n") + "1,5411,card_present,US,x\n",
            "E_ING_SCHEMA",
            "merchant file has unknown columns ['note']",
            "line 1",
        ),
        (
            "merchant_id,mcc,mcc,channel,home_country_iso\n",
            "E_ING_SCHEMA",
            "merchant file repeats columns ['mcc']",
            "line 1",
        ),
        (
            HEADER + GOOD + "2,5411,card_present\n",
            "E_ING_SCHEMA",
            "3 fields where the header has 4",
            "line 3",
        ),
        (
            HEADER + GOOD + '2,5411,"card_present,US\n',
            "E_ING_SCHEMA",
            "malformed CSV: unexpected end of data",
            "line 3",
        ),
        (HEADER, "E_ING_EMPTY", "merchant file has no rows", ""),
        (HEADER + "\n\n", "E_ING_EMPTY", "merchant file has no rows", ""),
        ("", "E_ING_EMPTY", "merchant file is empty", ""),
    ],
)
def test_csv_file_refusals(
    tmp_path: Path, refs: dict[str, pl.DataFrame], text: str, code: str, what: str, where: str
) -> None:
    err = _refusal(_csv(tmp_path, text), refs)
    assert (err.code, err.what) == (code, what)
    assert err.where == f"{tmp_path / 'u.csv'}" + (f":{where}" if where else "")


def test_unknown_column_refusal_lists_the_allowed_ones(tmp_path: Path, refs: dict[str, pl.DataFrame]) -> None:
    err = _refusal(_csv(tmp_path, HEADER.replace("\n", ",note\n") + "1,5411,card_present,US,x\n"), refs)
    assert err.fix == "the columns are merchant_id, mcc, channel, home_country_iso and, optionally, sector"


def test_non_utf8_and_corrupt_files_are_refused_cleanly(
    tmp_path: Path, refs: dict[str, pl.DataFrame]
) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes((HEADER + GOOD).encode() + b"2,5411,card_present,\xff\xfe\n")
    err = _refusal(path, refs)
    assert (err.code, err.what, err.where) == (
        "E_ING_SCHEMA",
        "merchant file is not UTF-8 text",
        f"{path}:line 3",
    )
    corrupt = tmp_path / "u.parquet"
    corrupt.write_bytes(b"PAR1 this is not a parquet file PAR1")
    err = _refusal(corrupt, refs)
    assert (err.code, err.where) == ("E_ING_SCHEMA", str(corrupt))
    assert err.what.startswith("cannot read Parquet: ")


def _good_parquet(**override: pl.Series) -> dict[str, pl.Series]:
    return {
        "merchant_id": pl.Series([1, 2], dtype=pl.UInt64),
        "mcc": pl.Series([5411, 5812], dtype=pl.UInt16),
        "channel": pl.Series(["card_present", "card_present"]),
        "home_country_iso": pl.Series(["US", "DE"]),
        **override,
    }


PARQUET_CELLS = {
    "null_id": (
        _good_parquet(merchant_id=pl.Series([1, None], dtype=pl.Int64)),
        "merchant_id is empty",
        2,
        "merchant_id",
    ),
    "zero_id": (
        _good_parquet(merchant_id=pl.Series([1, 0], dtype=pl.Int64)),
        f"merchant_id 0 is not {ID_RANGE}",
        2,
        "merchant_id",
    ),
    "negative_id": (
        _good_parquet(merchant_id=pl.Series([-5, 1], dtype=pl.Int64)),
        f"merchant_id -5 is not {ID_RANGE}",
        1,
        "merchant_id",
    ),
    "id_2_63": (
        _good_parquet(merchant_id=pl.Series([2**63, 1], dtype=pl.UInt64)),
        f"merchant_id {2**63} is not {ID_RANGE}",
        1,
        "merchant_id",
    ),
    "mcc_too_big": (
        _good_parquet(mcc=pl.Series([5411, 10000], dtype=pl.Int32)),
        f"mcc 10000 is not {MCC_RANGE}",
        2,
        "mcc",
    ),
    "bad_channel": (
        _good_parquet(channel=pl.Series(["card_present", "CP"])),
        f"channel 'CP' is not {CHANNELS}",
        2,
        "channel",
    ),
    "null_country": (
        _good_parquet(home_country_iso=pl.Series(["US", None], dtype=pl.String)),
        "home_country_iso is empty",
        2,
        "home_country_iso",
    ),
}


@pytest.mark.parametrize("case", sorted(PARQUET_CELLS))
def test_parquet_cell_refusals_name_file_row_and_column(
    tmp_path: Path, refs: dict[str, pl.DataFrame], case: str
) -> None:
    columns, what, row, column = PARQUET_CELLS[case]
    err = _refusal(_parquet(tmp_path, columns), refs)
    assert (err.code, err.what, err.where) == (
        "E_ING_SCHEMA",
        what,
        f"{tmp_path / 'u.parquet'}:row {row} column {column}",
    )


@pytest.mark.parametrize(
    ("column", "series", "what"),
    [
        ("merchant_id", pl.Series([1.0, 2.0]), "merchant_id is stored as Float64, not as integers"),
        ("merchant_id", pl.Series(["1", "2"]), "merchant_id is stored as String, not as integers"),
        ("mcc", pl.Series([5411.9, 5812.0], dtype=pl.Float32), "mcc is stored as Float32, not as integers"),
        ("channel", pl.Series([1, 0]), "channel is stored as Int64, not as strings"),
    ],
)
def test_parquet_dtypes_are_checked(
    tmp_path: Path, refs: dict[str, pl.DataFrame], column: str, series: pl.Series, what: str
) -> None:
    err = _refusal(_parquet(tmp_path, _good_parquet(**{column: series})), refs)
    assert (err.code, err.what, err.where) == (
        "E_ING_SCHEMA",
        what,
        f"{tmp_path / 'u.parquet'} column {column}",
    )


@pytest.mark.parametrize(("kind", "what"), [("directory", "is a directory"), ("missing", "does not exist")])
def test_plan_refuses_a_path_that_is_no_file(tmp_path: Path, kind: str, what: str) -> None:
    path = tmp_path / "merchants"
    if kind == "directory":
        path.mkdir()
    cfg = load_run_config(
        {
            "preset": "tiny",
            "output_root": str(tmp_path / "w"),
            "merchant_universe": {"source": "file", "path": str(path)},
        }
    )
    with pytest.raises(EngineError) as err:
        build_plan(cfg)
    assert (err.value.code, err.value.state) == ("E_CONFIG_INVALID", "config")
    assert err.value.what == f"merchant universe path {what}"
    assert err.value.where == f"config field merchant_universe.path ({path})"


@pytest.mark.e2e
def test_user_file_of_the_generated_universe_gives_the_same_catalogue(
    tiny_world: Path, tmp_path: Path
) -> None:
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root, symlinks=True)
    gen = tiny_plan(root)
    universe = pl.read_parquet(dataset_file(root, "merchant_universe", mf=gen["ING"].manifest_fingerprint))
    csv = tmp_path / "universe.csv"
    universe.select("merchant_id", "mcc", "channel", "home_country_iso").write_csv(csv)

    res = run_snakemake(root, f"merchant_universe={{source: file, path: {csv}}}", target="seg1A")
    assert res.returncode == 0, res.stderr[-4000:]

    user = build_plan(
        load_run_config(
            {
                "preset": "tiny",
                "output_root": str(root),
                "merchant_universe": {"source": "file", "path": str(csv)},
            }
        )
    )
    assert user["ING"].manifest_fingerprint != gen["ING"].manifest_fingerprint
    assert user["1A"].manifest_fingerprint != gen["1A"].manifest_fingerprint
    assert user["1A"].parameter_hash == gen["1A"].parameter_hash
    read_back = pl.read_parquet(dataset_file(root, "merchant_universe", mf=user["ING"].manifest_fingerprint))
    assert read_back.drop("manifest_fingerprint").equals(universe.drop("manifest_fingerprint"))
    for name in ("outlet_catalogue", "merchant_catalogue"):
        old = pl.read_parquet(dataset_file(root, name, mf=gen["1A"].manifest_fingerprint, seed=42))
        new = pl.read_parquet(dataset_file(root, name, mf=user["1A"].manifest_fingerprint, seed=42))
        assert (new["manifest_fingerprint"] == user["1A"].manifest_fingerprint).all()
        assert new.drop("manifest_fingerprint").equals(old.drop("manifest_fingerprint")), name
