"""The transition cache (2A.S3 library): exact instants, coalescing, hourly agreement with zoneinfo."""

import datetime as dt
import zoneinfo
from itertools import pairwise

import polars as pl
import pytest

from engine.core.tzdb import force_tzdata
from engine.segments.l1.s2a.tz_cache import SCHEMA, check_hourly, load_zone, transitions

START = dt.datetime(2025, 12, 29, tzinfo=dt.UTC)  # horizon 2026-01-05 − 7 days
END = dt.datetime(2027, 1, 10, tzinfo=dt.UTC)
ZONES = [
    "Africa/Casablanca",
    "America/New_York",
    "America/St_Johns",
    "Asia/Kathmandu",
    "Asia/Tokyo",
    "Australia/Lord_Howe",
    "Europe/Dublin",  # negative DST in tzdata: winter is the "DST" period (is_dst flips, offsets as usual)
    "Europe/London",
    "Pacific/Chatham",
]


pytestmark = pytest.mark.usefixtures("forced_tzdata")


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return transitions(ZONES, START, END)


def us(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000


def rows(table: pl.DataFrame, tzid: str) -> list[tuple]:
    return (
        table.filter(pl.col("tzid") == tzid)
        .select("valid_from", "utc_offset_s", "is_dst", "abbrev")
        .filter(pl.col("valid_from") < us(2027, 1, 1))
        .rows()
    )


def test_schema_and_tz_index(table: pl.DataFrame) -> None:
    assert table.schema == SCHEMA
    assert dict(table.unique("tzid").select("tzid", "tz_index").iter_rows()) == {
        z: i for i, z in enumerate(ZONES)
    }
    assert table.equals(table.sort("tz_index", "valid_from"))


def test_london_2026_exact(table: pl.DataFrame) -> None:
    assert rows(table, "Europe/London") == [
        (us(2025, 12, 29), 0, False, "GMT"),
        (us(2026, 3, 29, 1), 3600, True, "BST"),
        (us(2026, 10, 25, 1), 0, False, "GMT"),
    ]


def test_new_york_2026_exact(table: pl.DataFrame) -> None:
    assert rows(table, "America/New_York") == [
        (us(2025, 12, 29), -18000, False, "EST"),
        (us(2026, 3, 8, 7), -14400, True, "EDT"),
        (us(2026, 11, 1, 6), -18000, False, "EST"),
    ]


def test_first_row_is_the_window_start_and_valid_from_strictly_increases(table: pl.DataFrame) -> None:
    for (tzid,), g in table.group_by(["tzid"]):
        vf = g.sort("valid_from")["valid_from"]
        assert vf[0] == us(2025, 12, 29), tzid
        assert (vf.diff().drop_nulls() > 0).all(), tzid
    assert table.equals(table.sort("tz_index", "valid_from"))


def test_no_dst_zones_have_one_row(table: pl.DataFrame) -> None:
    assert rows(table, "Asia/Tokyo") == [(us(2025, 12, 29), 32400, False, "JST")]
    assert rows(table, "Asia/Kathmandu") == [(us(2025, 12, 29), 20700, False, "+0545")]


def test_half_hour_dst_of_lord_howe(table: pl.DataFrame) -> None:
    offsets = [r[1] for r in rows(table, "Australia/Lord_Howe")]
    assert offsets == [39600, 37800, 39600]  # +11 (summer), +10:30 from April, +11 again from October


def test_consecutive_rows_always_differ(table: pl.DataFrame) -> None:
    key = ["utc_offset_s", "is_dst", "abbrev"]
    for (tzid,), g in table.group_by(["tzid"]):
        states = g.sort("valid_from").select(key).rows()
        assert all(a != b for a, b in pairwise(states)), tzid


def test_hourly_check_agrees(table: pl.DataFrame) -> None:
    assert check_hourly(table, ZONES, START, END) == []
    assert check_hourly(table, ["Europe/London", "Asia/Tokyo"], START, END) == []  # any subset


def test_hourly_check_reports_each_kind_of_defect(table: pl.DataFrame) -> None:
    london = table.filter(pl.col("tzid") == "Europe/London")
    late = london.with_columns(
        pl.when(pl.col("utc_offset_s") == 3600)
        .then(pl.col("valid_from") + 3_600_000_000)
        .otherwise(pl.col("valid_from"))
        .alias("valid_from")
    )
    (problem,) = check_hourly(late, ["Europe/London"], START, END)
    assert problem.startswith("Europe/London: 1 hours disagree, first 2026-03-29T01:00:00Z")
    assert check_hourly(london.head(0), ["Europe/London"], START, END) == ["Europe/London: not in the table"]
    assert any("window start" in p for p in check_hourly(london.slice(1), ["Europe/London"], START, END))
    swapped = london.reverse()
    assert any("strictly increasing" in p for p in check_hourly(swapped, ["Europe/London"], START, END))


def test_refuses_unforced_zoneinfo_and_bad_windows() -> None:
    zoneinfo.reset_tzpath(["/nonexistent"])
    try:
        with pytest.raises(RuntimeError):
            load_zone("Europe/London")
    finally:
        force_tzdata()
    with pytest.raises(ValueError):
        transitions(["Europe/London"], START.replace(tzinfo=None), END)
    with pytest.raises(ValueError):
        transitions(["Europe/London"], END, START)
    with pytest.raises(ValueError):
        transitions(["Europe/London", "Europe/London"], START, END)
