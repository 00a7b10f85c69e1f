"""2A.S4: DST gaps and folds on known dates, and agreement with an independent zoneinfo probe."""

import datetime as dt

import polars as pl
import pytest

from engine.core.tzdb import force_tzdata
from engine.segments.l1.s2a.dst import dst_windows, independent_windows
from engine.segments.l1.s2a.tz_cache import transitions

H0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
H1 = H0 + dt.timedelta(days=90)
ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "America/Santiago",
    "Europe/Berlin",
    "America/Havana",
    "Asia/Tokyo",
    "Pacific/Chatham",
    "Africa/Cairo",
]


@pytest.fixture(scope="module")
def windows() -> pl.DataFrame:
    force_tzdata()
    return dst_windows(transitions(ZONES, H0 - dt.timedelta(days=7), H1 + dt.timedelta(days=300)), H0, H1)


def _local(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000


def test_known_gaps_and_folds(windows: pl.DataFrame) -> None:
    london = windows.filter(pl.col("tzid") == "Europe/London").select(
        "kind", "local_start", "local_end", "in_horizon"
    )
    assert london.rows() == [
        ("GAP", _local(2026, 3, 29, 1), _local(2026, 3, 29, 2), True),
        ("FOLD", _local(2026, 10, 25, 1), _local(2026, 10, 25, 2), False),
    ]
    ny = windows.filter(pl.col("tzid") == "America/New_York").select(
        "kind", "local_start", "local_end", "delta_s"
    )
    assert ny.rows() == [
        ("GAP", _local(2026, 3, 8, 2), _local(2026, 3, 8, 3), 3600),
        ("FOLD", _local(2026, 11, 1, 1), _local(2026, 11, 1, 2), -3600),
    ]


def test_independent_probe_agrees_in_the_horizon(windows: pl.DataFrame) -> None:
    cols = ["tzid", "kind", "transition_utc", "local_start", "local_end", "delta_s"]
    ours = windows.filter(pl.col("in_horizon")).select(cols).sort("tzid", "transition_utc")
    theirs = independent_windows(ZONES, H0, H1).select(cols).sort("tzid", "transition_utc")
    # spring GAPs of New York, London, Berlin, Havana; autumn FOLDs of Sydney, Lord Howe, Chatham
    assert ours.height == 7 and ours.equals(theirs)
