"""6B.S7 reads each part once and checks every batch against the contract (s7_parts.CheckedParts): the same
verdict as validate_table on the whole frame, wherever the violation lies."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from engine.core.contracts import validate_table
from engine.core.errors import EngineError
from engine.core.parquet_io import write_parquet
from engine.segments.l3.s6b.s7_parts import CheckedParts
from tests.core.test_contracts import HURDLE, MF, VIOLATIONS, _frame, _good


def _read(paths: list[Path], rows: int) -> tuple[pl.DataFrame, CheckedParts]:
    parts = CheckedParts(paths, HURDLE, "1A.S1")
    frames = list(parts.frames(rows))
    return (pl.concat(frames) if frames else pl.DataFrame()), parts


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_one_batch_fails_exactly_as_the_whole_table(case: str, tmp_path: Path) -> None:
    frame = VIOLATIONS[case][0]()
    path = tmp_path / "part-00000.parquet"
    write_parquet(frame, path)
    with pytest.raises(EngineError) as whole:
        validate_table(frame, HURDLE, where=str(path), state="1A.S1", keys=False)
    rows, parts = _read([path], 1 << 20)
    assert rows.height == frame.height  # the scan still sees every row
    with pytest.raises(EngineError) as streamed:
        parts.verdict()
    assert (streamed.value.code, streamed.value.what, streamed.value.where) == (
        whole.value.code,
        whole.value.what,
        whole.value.where,
    )


def test_a_violation_in_a_later_batch_of_a_later_part_is_found(tmp_path: Path) -> None:
    good = _frame(_good())
    bad = VIOLATIONS["enum"][0]().slice(0, 1)  # its first row is off the sector enum
    paths = [tmp_path / "part-00000.parquet", tmp_path / "part-00001.parquet"]
    write_parquet(good, paths[0])
    write_parquet(pl.concat([good, bad]), paths[1])
    rows, parts = _read(paths, 2)
    assert rows.equals(pl.concat([good, good, bad]))
    with pytest.raises(EngineError) as info:
        parts.verdict()
    assert info.value.what.startswith("column sector: values outside enum")
    assert info.value.where == str(paths[1])


def test_good_parts_pass_and_keep_their_rows_in_order(tmp_path: Path) -> None:
    good = _frame(_good())
    paths = [tmp_path / f"part-{i:05d}.parquet" for i in range(3)]
    for i, path in enumerate(paths):
        write_parquet(good.slice(i, 2), path)
    rows, parts = _read(paths, 1)
    parts.verdict()
    assert rows.equals(pl.concat([good.slice(i, 2) for i in range(3)]))


def test_columns_out_of_order_are_refused_even_in_a_part_without_rows(tmp_path: Path) -> None:
    df = _frame(_good())
    path = tmp_path / "part-00000.parquet"
    write_parquet(df.select(list(reversed(df.columns))).head(0), path)
    rows, parts = _read([path], 1 << 20)
    assert rows.height == 0
    with pytest.raises(EngineError) as info:
        parts.verdict()
    assert info.value.code == "E_SCHEMA" and info.value.what.startswith("columns [")


TIMELINE = "6B.yaml#/tables/case_timeline"  # sort key (case_id, case_event_seq)


def _timeline(keys: list[tuple[int, int]]) -> pl.DataFrame:
    n = len(keys)
    kinds = ["CASE_OPENED", "DETECTION_ATTACHED", "DISPUTE_FILED", "CHARGEBACK_RAISED", "CHARGEBACK_DECIDED",
             "CASE_CLOSED"]  # fmt: skip
    return pl.DataFrame(
        {
            "seed": [42] * n,
            "manifest_fingerprint": [MF] * n,
            "scenario_id": ["baseline"] * n,
            "case_id": [k[0] for k in keys],
            "case_event_seq": [k[1] for k in keys],
            "event_type": ["CASE_OPENED"] * n,
            "ts_utc": [1_700_000_000_000_000] * n,
            "flow_id": [None] * n,
        },
        schema={"seed": pl.UInt64, "manifest_fingerprint": pl.String, "scenario_id": pl.String,
                "case_id": pl.UInt64, "case_event_seq": pl.UInt16, "event_type": pl.Enum(kinds),
                "ts_utc": pl.Datetime("us", "UTC"), "flow_id": pl.UInt64},
    )  # fmt: skip


def test_rows_out_of_order_across_parts_fail_the_contract(tmp_path: Path) -> None:
    # each part is sorted on its own; the partition is not: part 1 opens with a case part 0 has passed
    paths = [tmp_path / "part-00000.parquet", tmp_path / "part-00001.parquet"]
    write_parquet(_timeline([(1, 1), (1, 2), (2, 1)]), paths[0])
    write_parquet(_timeline([(1, 3), (3, 1)]), paths[1])
    parts = CheckedParts(paths, TIMELINE, "6B.S7")
    rows = pl.concat(list(parts.frames(2)))
    assert rows["case_id"].to_list() == [1, 1, 2, 1, 3]  # the scan still sees every row, in file order
    with pytest.raises(EngineError) as info:
        parts.verdict()
    assert info.value.code == "E_SCHEMA"
    assert info.value.what == (
        "row 3 sorts before the row above it by the sort key ['case_id', 'case_event_seq']: ('1', '3') after "
        "('2', '1')"
    )
    assert info.value.where == str(paths[1])
    in_order = CheckedParts(paths[:1], TIMELINE, "6B.S7")
    assert sum(f.height for f in in_order.frames(2)) == 3
    in_order.verdict()
