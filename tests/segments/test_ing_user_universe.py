"""Ingress from a user file: column checks with exact codes; one end-to-end run on the tiny universe."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from engine.core.config import load_run_config
from engine.core.contracts import dataset_file
from engine.core.errors import EngineError
from engine.core.plan import build_plan
from engine.segments.l1.ingress.merchant_universe import COLUMNS, read_user_file
from engine.segments.l1.s1a.policy import Sectors
from tests.conftest import run_snakemake, shipped_policy, tiny_plan

SECTORS: Sectors = shipped_policy("1A", "sectors")  # type: ignore[assignment]
HEADER = "merchant_id,mcc,channel,home_country_iso\n"


@pytest.fixture(scope="module")
def refs(tiny_world: Path) -> dict[str, pl.DataFrame]:
    return {r.name: pl.read_parquet(tiny_world / r.relpath) for r in tiny_plan(tiny_world)["1A"].references}


def _read(tmp_path: Path, text: str, refs: dict[str, pl.DataFrame], name: str = "u.csv") -> pl.DataFrame:
    path = tmp_path / name
    path.write_text(text)
    return read_user_file(path, SECTORS, refs["ref_countries"], refs["ref_mcc"])


def _code(tmp_path: Path, text: str, refs: dict[str, pl.DataFrame]) -> str:
    with pytest.raises(EngineError) as err:
        _read(tmp_path, text, refs)
    return err.value.code


def test_valid_file_gives_contract_columns_sorted_with_sectors(
    tmp_path: Path, refs: dict[str, pl.DataFrame]
) -> None:
    assert 3001 in refs["ref_mcc"]["mcc"].to_list() and 742 in refs["ref_mcc"]["mcc"].to_list()
    df = _read(
        tmp_path,
        HEADER + "30,742,card_present,DE\n10,5411,card_present,US\n20,3001,card_not_present,FR\n",
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


def test_parquet_file_is_read_too(tmp_path: Path, refs: dict[str, pl.DataFrame]) -> None:
    path = tmp_path / "u.parquet"
    pl.DataFrame(
        {"merchant_id": [7], "mcc": [5812], "channel": ["card_present"], "home_country_iso": ["IT"]}
    ).write_parquet(path)
    df = read_user_file(path, SECTORS, refs["ref_countries"], refs["ref_mcc"])
    assert df.rows() == [(7, 5812, "restaurants", "card_present", "IT")]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("merchant_id,mcc,home_country_iso\n1,5411,US\n", "E_ING_SCHEMA"),  # no channel column
        (HEADER, "E_ING_EMPTY"),
        (HEADER + "1,5411,card_present,US\n1,5812,card_present,DE\n", "E_ING_DUPLICATE_ID"),
        (HEADER + "1,5411,card_present,US\n2,5411,card_present,AQ\n", "E_ING_UNKNOWN_COUNTRY"),
        (HEADER + "1,5411,card_present,US\n2,54x1,card_present,DE\n", "E_ING_SCHEMA"),  # mcc not an integer
        (HEADER + "1,3500,card_present,US\n", "E_ING_SCHEMA"),  # not an MCC of ref_mcc
        (HEADER + "-1,5411,card_present,US\n", "E_ING_SCHEMA"),  # id not a u64
    ],
)
def test_error_codes(tmp_path: Path, refs: dict[str, pl.DataFrame], text: str, code: str) -> None:
    assert _code(tmp_path, text, refs) == code


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
