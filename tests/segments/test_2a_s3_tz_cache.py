"""2A.S3: the transition cache — exact 2026 DST instants, no-DST zones, hourly agreement with zoneinfo."""

import datetime as dt

import polars as pl
import pytest

from engine.core.tzdb import force_tzdata
from engine.segments.l1.s2a.tz_cache import check_hourly, transitions

START = dt.datetime(2025, 12, 29, tzinfo=dt.UTC)
END = dt.datetime(2026, 12, 31, tzinfo=dt.UTC)


@pytest.fixture(scope="module", autouse=True)
def _tzdata() -> None:
    force_tzdata()


def _utc(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000


def test_london_and_new_york_2026_transitions_exact() -> None:
    t = transitions(["America/New_York", "Europe/London"], START, END)
    london = t.filter(pl.col("tzid") == "Europe/London").select(
        "valid_from", "utc_offset_s", "is_dst", "abbrev"
    )
    assert london.rows() == [
        (_utc(2025, 12, 29), 0, False, "GMT"),
        (_utc(2026, 3, 29, 1), 3600, True, "BST"),
        (_utc(2026, 10, 25, 1), 0, False, "GMT"),
    ]
    ny = t.filter(pl.col("tzid") == "America/New_York").select("valid_from", "utc_offset_s")
    assert ny.rows() == [
        (_utc(2025, 12, 29), -18000),
        (_utc(2026, 3, 8, 7), -14400),
        (_utc(2026, 11, 1, 6), -18000),
    ]
    assert t.filter(pl.col("tzid") == "Europe/London")["tz_index"].unique().to_list() == [1]


def test_zone_without_dst_has_one_row_and_hourly_check_agrees() -> None:
    zones = ["Asia/Tokyo", "Asia/Kathmandu", "Australia/Lord_Howe", "America/Sao_Paulo", "Africa/Casablanca"]
    t = transitions(zones, START, END)
    assert t.filter(pl.col("tzid") == "Asia/Tokyo").height == 1
    assert check_hourly(t, zones, START, END) == []
    for (_z,), grp in t.group_by(["tzid"]):
        assert grp["valid_from"].is_sorted() and grp["valid_from"].n_unique() == grp.height


def test_hourly_check_catches_a_wrong_row() -> None:
    t = transitions(["Europe/London"], START, END)
    broken = t.with_columns(
        pl.when(pl.col("utc_offset_s") == 3600)
        .then(7200)
        .otherwise(pl.col("utc_offset_s"))
        .alias("utc_offset_s")
    )
    assert check_hourly(broken, ["Europe/London"], START, END)
    assert check_hourly(t.head(0), ["Europe/London"], START, END) == ["Europe/London: not in the table"]
