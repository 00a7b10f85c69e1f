"""Contracts: local cross-pack $ref registry and column-wise table checks (design README §7)."""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from referencing.exceptions import Unresolvable

from engine.core import contracts
from engine.core.contracts import (
    BASE_URI,
    PART_FILE,
    dataset_dir,
    dataset_file,
    duplicated_rows,
    registry,
    resolve,
    table_schema,
    validate_table,
)
from engine.core.errors import EngineError

HURDLE = "1A.yaml#/tables/s1_hurdle"
MF = "0123456789abcdef" * 4
HURDLE_COLUMNS = [
    "seed",
    "manifest_fingerprint",
    "merchant_id",
    "sector",
    "gdp_bucket",
    "logit",
    "pi",
    "is_multi",
]


@pytest.fixture
def offline_elsewhere(monkeypatch, tmp_path: Path):
    """No network, a foreign cwd, and cold caches: the registry must rebuild from contracts/ alone."""

    def refuse(*args, **kwargs):
        raise AssertionError("contracts tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.chdir(tmp_path)
    registry.cache_clear()
    table_schema.cache_clear()
    yield
    registry.cache_clear()
    table_schema.cache_clear()


def test_cross_pack_ref_resolves_locally(offline_elsewhere) -> None:
    spec = resolve(HURDLE)
    # 1A.yaml's columns point into common.yaml; they come back inlined
    assert spec["columns"]["merchant_id"] == {"dtype": "u64", "minimum": 1, "maximum": 2**63 - 1}
    assert spec["columns"]["seed"] == {"dtype": "u64"}
    assert spec["columns"]["pi"] == {"dtype": "f64", "minimum": 0.0, "maximum": 1.0, "finite": True}
    assert spec["columns"]["is_multi"] == {"dtype": "bool"}
    assert "$ref" not in repr(spec)
    assert resolve(f"{BASE_URI}common.yaml#/$defs/iso2") == {"dtype": "str", "pattern": "^[A-Z]{2}$"}


def test_unknown_pack_is_not_fetched(offline_elsewhere) -> None:
    with pytest.raises(Unresolvable):
        resolve("nope.yaml#/tables/x")
    with pytest.raises(Unresolvable):
        resolve("https://example.com/schema.yaml#/x")


def test_every_dictionary_schema_resolves() -> None:
    for name, entry in contracts.dictionary().items():
        schema = table_schema(entry["schema"])
        assert schema.primary_key, name
        assert set(schema.primary_key) <= set(schema.columns), name
        for col, spec in schema.columns.items():
            assert spec["dtype"] in contracts.DTYPES, (name, col)
        # a sort key orders a partition's rows by data columns that always hold a value
        identity = {"seed", "manifest_fingerprint", "scenario_id", "shard"}
        for col in schema.sort_key:
            assert col in schema.columns and col not in identity, (name, col)
            assert not schema.columns[col].get("nullable"), (name, col)


def test_hurdle_table_schema_exact() -> None:
    schema = table_schema(HURDLE)
    assert schema.name == "s1_hurdle"
    assert list(schema.columns) == HURDLE_COLUMNS
    assert schema.primary_key == ("merchant_id",)
    assert schema.unique == ()
    assert schema.polars_schema() == {
        "seed": pl.UInt64(),
        "manifest_fingerprint": pl.String(),
        "merchant_id": pl.UInt64(),
        "sector": pl.String(),
        "gdp_bucket": pl.UInt16(),
        "logit": pl.Float64(),
        "pi": pl.Float64(),
        "is_multi": pl.Boolean(),
    }


def _good() -> dict[str, list]:
    return {
        "seed": [42, 42, 42],
        "manifest_fingerprint": [MF, MF, MF],
        "merchant_id": [1, 2, 2**63 - 1],
        "sector": ["grocery", "travel", "other"],
        "gdp_bucket": [0, 2, 4],
        "logit": [-3.5, 0.0, 12.0],
        "pi": [0.0, 0.5, 1.0],
        "is_multi": [False, True, True],
    }


# s1_hurdle's dtypes as layer1.md writes them, typed by hand rather than read from the contract under test
HURDLE_DTYPES = {
    "seed": pl.UInt64(),
    "manifest_fingerprint": pl.String(),
    "merchant_id": pl.UInt64(),
    "sector": pl.String(),
    "gdp_bucket": pl.UInt16(),
    "logit": pl.Float64(),
    "pi": pl.Float64(),
    "is_multi": pl.Boolean(),
}
SECTORS = [
    "grocery",
    "restaurants",
    "fuel",
    "apparel",
    "retail_general",
    "home_electronics",
    "digital_goods",
    "travel",
    "health",
    "services",
    "entertainment",
    "transport",
    "utilities_telecom",
    "other",
]


def _frame(cols: dict[str, list], dtypes: dict | None = None) -> pl.DataFrame:
    schema = {**HURDLE_DTYPES, **(dtypes or {})}
    return pl.DataFrame(cols, schema={c: schema[c] for c in cols})


def test_validate_table_accepts_every_edge_of_the_contract() -> None:
    """Inclusive bounds, every enum value, both ends of u64, subnormals and ±max finite floats all pass:
    a bound checked with < for ≤, a missing enum value or a dtype drift in the contract fails here."""
    n = len(SECTORS)

    def cycle(values: list) -> list:
        return [values[i % len(values)] for i in range(n)]

    edges = {
        "seed": cycle([0, 2**64 - 1]),
        "manifest_fingerprint": cycle([MF, "0" * 64, "f" * 64]),
        "merchant_id": [1, 2**63 - 1, *range(2, n)],
        "sector": SECTORS,
        "gdp_bucket": cycle([0, 4, 1, 2, 3]),
        "logit": cycle([-1.7976931348623157e308, 1.7976931348623157e308, -0.0, 5e-324]),
        "pi": cycle([0.0, 1.0, 5e-324, 1.0 - 2.0**-53]),
        "is_multi": cycle([False, True]),
    }
    validate_table(_frame(edges), HURDLE, where="w", state="1A.S1")


def test_validate_table_checks_columns_and_dtypes_of_an_empty_frame() -> None:
    """No rows to check, yet the shape is the contract's: an empty output of the wrong type is refused."""
    empty = {c: [] for c in HURDLE_COLUMNS}
    validate_table(_frame(empty), HURDLE, where="w", state="1A.S1")
    with pytest.raises(EngineError) as info:
        validate_table(_frame(empty, {"gdp_bucket": pl.Int64()}), HURDLE, where="w", state="1A.S1")
    assert info.value.what == "column gdp_bucket: dtype Int64 != UInt16"
    with pytest.raises(EngineError, match="columns"):
        validate_table(_frame(empty).drop("pi"), HURDLE, where="w", state="1A.S1")


def _mutate(col: str, index: int, value: object) -> dict[str, list]:
    cols = _good()
    cols[col] = list(cols[col])
    cols[col][index] = value
    return cols


VIOLATIONS = {
    "wrong_dtype": (lambda: _frame(_good(), {"gdp_bucket": pl.Int64()}), "gdp_bucket", "dtype"),
    "null": (lambda: _frame(_mutate("sector", 1, None)), "sector", "nulls in a non-nullable column"),
    "below_minimum": (lambda: _frame(_mutate("merchant_id", 0, 0)), "merchant_id", "below minimum 1"),
    "above_maximum": (lambda: _frame(_mutate("gdp_bucket", 0, 5)), "gdp_bucket", "above maximum 4"),
    "above_max_u64": (lambda: _frame(_mutate("merchant_id", 0, 2**63)), "merchant_id", "above maximum"),
    "prob_above_one": (lambda: _frame(_mutate("pi", 2, 1.0000001)), "pi", "above maximum 1.0"),
    "enum": (lambda: _frame(_mutate("sector", 0, "groceries")), "sector", "outside enum"),
    "pattern": (
        lambda: _frame(_mutate("manifest_fingerprint", 2, MF.upper())),
        "manifest_fingerprint",
        "not matching",
    ),
    "pattern_length": (
        lambda: _frame(_mutate("manifest_fingerprint", 0, MF + "0")),
        "manifest_fingerprint",
        "not matching",
    ),
    "inf": (lambda: _frame(_mutate("logit", 1, float("inf"))), "logit", "non-finite"),
    "nan": (lambda: _frame(_mutate("pi", 1, float("nan"))), "pi", "non-finite"),
}


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_validate_table_names_the_column(case: str) -> None:
    make, column, fragment = VIOLATIONS[case]
    with pytest.raises(EngineError) as info:
        validate_table(make(), HURDLE, where="data/x", state="1A.S1")
    err = info.value
    assert err.code == "E_SCHEMA"
    assert err.what.startswith(f"column {column}: ")
    assert fragment in err.what
    assert err.where == "data/x"
    assert err.state == "1A.S1"


def test_validate_table_uses_the_given_code() -> None:
    with pytest.raises(EngineError) as info:
        validate_table(
            _frame(_mutate("sector", 0, "nope")), HURDLE, where="w", state="ING", code="E_ING_SCHEMA"
        )
    assert info.value.code == "E_ING_SCHEMA"
    assert info.value.line().startswith("ERROR E_ING_SCHEMA ING: column sector: ")


def test_validate_table_rejects_duplicate_primary_key() -> None:
    with pytest.raises(EngineError) as info:
        validate_table(_frame(_mutate("merchant_id", 2, 2)), HURDLE, where="w", state="1A.S1")
    assert info.value.code == "E_SCHEMA"
    assert info.value.what == "2 rows duplicate key ['merchant_id']"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4)), max_size=60),
    st.sampled_from([pl.Int64, pl.UInt64, pl.Int32]),
    st.booleans(),
)
def test_duplicated_rows_counts_every_row_of_a_shared_key(pairs, dtype, ascending) -> None:
    """Known answer by counting in plain Python, for one- and two-column keys, on rows in key order (the
    neighbour path) and in any order."""
    pairs = sorted(pairs) if ascending else pairs
    df = pl.DataFrame(
        {
            "a": pl.Series([a for a, _ in pairs], dtype=dtype),
            "b": pl.Series([b for _, b in pairs], dtype=dtype),
            "row": list(range(len(pairs))),
        }
    )
    for key, values in ((("a",), [a for a, _ in pairs]), (("a", "b"), pairs)):
        seen = Counter(values)
        assert duplicated_rows(df, key) == sum(1 for v in values if seen[v] > 1)
    assert duplicated_rows(df, ("a", "row")) == 0


def test_duplicated_rows_of_descending_unsigned_ids_is_not_fooled_by_wraparound() -> None:
    df = pl.DataFrame({"k": pl.Series([5, 3, 3, 1], dtype=pl.UInt64)})
    assert duplicated_rows(df, ("k",)) == 2


def test_validate_table_rejects_duplicate_unique_key() -> None:
    ref = "1A.yaml#/tables/outlet_catalogue"
    schema = table_schema(ref)
    assert schema.primary_key == ("site_id",)
    assert schema.unique == (("merchant_id", "legal_country_iso", "site_order"),)
    cols = {
        "seed": [1, 1],
        "manifest_fingerprint": [MF, MF],
        "site_id": [10, 11],
        "merchant_id": [5, 5],
        "home_country_iso": ["GB", "GB"],
        "legal_country_iso": ["FR", "FR"],
        "site_order": [1, 2],
        "candidate_rank": [1, 1],
        "is_multi": [True, True],
        "n_outlets_total": [2, 2],
        "n_outlets_country": [2, 2],
        "currency": ["EUR", "EUR"],
    }
    df = pl.DataFrame(cols, schema=schema.polars_schema())
    validate_table(df, ref, where="w", state="1A.S8")
    dup = df.with_columns(pl.Series("site_order", [1, 1], dtype=pl.UInt32()))
    with pytest.raises(EngineError) as info:
        validate_table(dup, ref, where="w", state="1A.S8")
    assert info.value.what == "2 rows duplicate key ['merchant_id', 'legal_country_iso', 'site_order']"


def test_validate_table_rejects_wrong_column_order() -> None:
    df = _frame(_good()).select(["manifest_fingerprint", "seed", *HURDLE_COLUMNS[2:]])
    with pytest.raises(EngineError) as info:
        validate_table(df, HURDLE, where="w", state="1A.S1")
    assert info.value.code == "E_SCHEMA"
    assert "!= contract" in info.value.what
    assert str(HURDLE_COLUMNS) in info.value.what


def test_validate_table_rejects_missing_and_extra_columns() -> None:
    with pytest.raises(EngineError, match="columns"):
        validate_table(_frame(_good()).drop("is_multi"), HURDLE, where="w", state="1A.S1")
    with pytest.raises(EngineError, match="columns"):
        validate_table(_frame(_good()).with_columns(pl.lit(1).alias("x")), HURDLE, where="w", state="1A.S1")


def test_nullable_column_accepts_nulls() -> None:
    ref = "1A.yaml#/tables/s3_open"
    schema = table_schema(ref)
    assert schema.columns["deny_reason"].get("nullable") is True
    df = pl.DataFrame(
        {
            "seed": [1, 1],
            "manifest_fingerprint": [MF, MF],
            "merchant_id": [5, 6],
            "openness": [0.1, 0.2],
            "open_prob": [0.0, 0.3],
            "is_open": [False, True],
            "deny_reason": [None, "deny_home"],
        },
        schema=schema.polars_schema(),
    )
    validate_table(df, ref, where="w", state="1A.S3")
    bad = df.with_columns(pl.Series("deny_reason", [None, "deny_all"]))
    with pytest.raises(EngineError, match="column deny_reason: values outside enum"):
        validate_table(bad, ref, where="w", state="1A.S3")


def test_dataset_paths_exact(tmp_path: Path) -> None:
    assert dataset_dir(tmp_path, "s1_hurdle", mf=MF, seed=42) == (
        tmp_path / "data" / "layer1" / "1A" / "s1_hurdle" / "seed=42" / f"manifest_fingerprint={MF}"
    )
    assert dataset_file(tmp_path, "s1_hurdle", mf=MF, seed=42) == (
        tmp_path / "data/layer1/1A/s1_hurdle/seed=42" / f"manifest_fingerprint={MF}" / "part-00000.parquet"
    )
    assert PART_FILE == "part-00000.parquet"
    assert dataset_dir(tmp_path, "merchant_universe", mf=MF) == (
        tmp_path / "data" / "layer1" / "ING" / "merchant_universe" / f"manifest_fingerprint={MF}"
    )
    assert dataset_file(tmp_path, "ccy_country_weights", mf=MF) == (
        tmp_path / "data/layer1/1A/ccy_country_weights" / f"manifest_fingerprint={MF}" / "part-00000.parquet"
    )


def test_an_enum_violation_names_the_first_value_off_the_enum_in_row_order() -> None:
    """Several valid sectors and two off the enum: the message names the first of them as the rows have it,
    every time (a mask computed over one order of the distinct values and applied to another would not)."""
    sectors = ["travel", "other", "groceries", "fuel", "restaurants", "petrol", "grocery"]
    cols = {k: [v[i % 3] for i in range(len(sectors))] for k, v in _good().items()}
    cols["merchant_id"] = list(range(1, len(sectors) + 1))
    cols["sector"] = sectors
    with pytest.raises(EngineError) as info:
        validate_table(_frame(cols), HURDLE, where="w", state="1A.S1")
    assert info.value.what == "column sector: values outside enum, e.g. 'groceries'"
