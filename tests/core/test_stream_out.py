"""A streamed publish (state.StreamOut) checks the contract's row order across its batches, so a state can
never publish a partition whose rows break the order docs/outputs.md promises."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from engine.core.errors import EngineError
from engine.core.parquet_io import PartWriter
from engine.core.state import StreamOut
from tests.segments.test_6b_s7_parts import TIMELINE, _timeline

IDENTITY = ["seed", "manifest_fingerprint", "scenario_id"]


def _out(tmp_path: Path) -> StreamOut:
    identity = _timeline([(1, 1)]).select(IDENTITY)
    return StreamOut("case_timeline", TIMELINE, identity, PartWriter(tmp_path), "target", "6B.S6")


def test_batches_in_order_are_written_whole(tmp_path: Path) -> None:
    out = _out(tmp_path)
    for keys in ([(1, 1), (1, 2)], [], [(2, 1), (5, 1)]):
        out.write(_timeline(keys).drop(IDENTITY))
    assert out.writer.close() == [("part-00000.parquet", 4)]
    assert pl.read_parquet(tmp_path / "part-00000.parquet")["case_id"].to_list() == [1, 1, 2, 5]


def test_a_batch_that_steps_back_is_refused_before_it_is_written(tmp_path: Path) -> None:
    out = _out(tmp_path)
    out.write(_timeline([(1, 1), (2, 1)]).drop(IDENTITY))
    with pytest.raises(EngineError) as info:
        out.write(_timeline([(1, 2)]).drop(IDENTITY))
    assert (info.value.code, info.value.where, info.value.state) == ("E_SCHEMA", "target", "6B.S6")
    assert info.value.what == (
        "row 2 sorts before the row above it by the sort key ['case_id', 'case_event_seq']: ('1', '2') after "
        "('2', '1')"
    )
    assert out.rows == 2
