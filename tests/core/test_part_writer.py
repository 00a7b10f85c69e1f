"""PartWriter: fixed row groups and parts whatever the batch cuts, so a streamed table's bytes depend only on
its rows; an empty stream still writes its first part."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import engine.core.parquet_io as pio
from engine.core.parquet_io import PartWriter

TZIDS = ["America/New_York", "Europe/Paris", "Asia/Tokyo"]


def _table(lo: int, hi: int) -> pa.Table:
    ids = np.arange(lo, hi, dtype=np.uint64)
    return pl.DataFrame(
        {
            "arrival_id": ids,
            "tzid": pl.Series([TZIDS[i % 3] for i in range(lo, hi)]).cast(pl.Enum(TZIDS)),
            "x": (ids % 7).astype(np.float32),
        }
    ).to_arrow()


def _write(folder: Path, cuts: list[int]) -> dict[str, str]:
    folder.mkdir()
    writer = PartWriter(folder)
    for lo, hi in itertools.pairwise(cuts):
        writer.write(_table(lo, hi))
    parts = writer.close()
    assert [name for name, _ in parts] == sorted(p.name for p in folder.iterdir())
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def small_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pio, "ROW_GROUP_SIZE", 100)
    monkeypatch.setattr(pio, "PART_ROWS", 300)


def test_bytes_do_not_depend_on_batch_cuts(tmp_path: Path, small_groups: None) -> None:
    one = _write(tmp_path / "a", [0, 1000])
    many = _write(tmp_path / "b", [0, 1, 99, 100, 101, 350, 351, 999, 1000])
    assert one == many
    assert list(one) == [f"part-{i:05d}.parquet" for i in range(4)]  # 300 + 300 + 300 + 100 rows


def test_row_groups_and_parts_are_cut_at_fixed_sizes(tmp_path: Path, small_groups: None) -> None:
    _write(tmp_path / "a", [0, 37, 650])
    files = sorted((tmp_path / "a").iterdir())
    groups = [
        [pq.ParquetFile(f).metadata.row_group(g).num_rows for g in range(pq.ParquetFile(f).num_row_groups)]
        for f in files
    ]
    assert groups == [[100, 100, 100], [100, 100, 100], [50]]
    back = pl.read_parquet(files)
    assert back["arrival_id"].to_list() == list(range(650))
    assert back["tzid"][:4].cast(pl.String).to_list() == [TZIDS[0], TZIDS[1], TZIDS[2], TZIDS[0]]


def test_an_empty_stream_writes_one_empty_part(tmp_path: Path) -> None:
    writer = PartWriter(tmp_path)
    schema = _table(0, 1).schema
    assert writer.close(schema) == [("part-00000.parquet", 0)]
    back = pq.read_table(tmp_path / "part-00000.parquet")
    assert back.num_rows == 0 and back.schema.names == ["arrival_id", "tzid", "x"]


def test_only_64_bit_ids_and_times_carry_statistics(tmp_path: Path) -> None:
    """Row-group min/max are written for the keys readers prune by (64-bit ids, timestamps), not for
    dictionary, 32-bit or float columns, whose statistics cost write time and prune nothing."""
    table = pa.table(
        {
            "flow_id": pa.array([5, 3, 9], pa.uint64()),
            "ts_utc": pa.array([30, 10, 20], pa.timestamp("us", "UTC")),
            "tzid": pa.array(TZIDS).dictionary_encode(),
            "zone": pa.array([1, 2, 3], pa.uint32()),
            "x": pa.array([0.5, 1.5, 2.5], pa.float32()),
        }
    )
    writer = PartWriter(tmp_path)
    writer.write(table)
    writer.close()
    group = pq.ParquetFile(tmp_path / "part-00000.parquet").metadata.row_group(0)
    stats = {group.column(i).path_in_schema: group.column(i).statistics for i in range(group.num_columns)}
    assert {name for name, s in stats.items() if s is not None and s.has_min_max} == {"flow_id", "ts_utc"}
    assert (stats["flow_id"].min, stats["flow_id"].max) == (3, 9)


def test_write_parquet_bytes_do_not_depend_on_chunks(tmp_path: Path) -> None:
    # 400,000 distinct doubles overflow the 1 MiB dictionary page: where the writer falls back to plain pages
    # was decided chunk by chunk, so a frame cut by a 16-thread query wrote other bytes than a 2-thread one
    rng = np.random.default_rng(7)
    frame = pl.DataFrame({"id": np.arange(400_000, dtype=np.uint64), "w": rng.random(400_000)})
    digests = set()
    for cuts in ([0, 400_000], [0, 1, 150_000, 399_999, 400_000], list(range(0, 400_001, 25_000))):
        chunked = pl.concat([frame.slice(lo, hi - lo) for lo, hi in itertools.pairwise(cuts)], rechunk=False)
        assert chunked.n_chunks() == len(cuts) - 1
        for i, data in enumerate((chunked, chunked.to_arrow())):
            path = tmp_path / f"{len(cuts)}-{i}.parquet"
            pio.write_parquet(data, path)
            digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
    assert pl.read_parquet(path).equals(frame)
