"""DST gaps and folds (2A.S4 library) on known 2026 dates, and the independent zoneinfo cross-check."""

import datetime as dt

import polars as pl
import pytest

from engine.segments.l1.s2a.dst import SCHEMA, dst_windows, independent_windows
from engine.segments.l1.s2a.tz_cache import transitions

H0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
H1 = H0 + dt.timedelta(days=90)  # 2026-04-05: both March changes inside, the autumn ones outside
W0, W1 = H0 - dt.timedelta(days=7), H0 + dt.timedelta(days=365)  # a year: autumn changes included
ZONES = sorted(
    [
        "Africa/Cairo",
        "Africa/Casablanca",
        "America/Asuncion",
        "America/Havana",
        "America/Mexico_City",
        "America/New_York",
        "America/Santiago",
        "America/St_Johns",
        "Antarctica/Troll",
        "Asia/Gaza",
        "Asia/Kathmandu",
        "Asia/Tehran",
        "Asia/Tokyo",
        "Australia/Lord_Howe",
        "Australia/Sydney",
        "Europe/Berlin",
        "Europe/Dublin",
        "Europe/London",
        "Pacific/Chatham",
        "Pacific/Norfolk",
    ]
)


pytestmark = pytest.mark.usefixtures("forced_tzdata")


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return transitions(ZONES, W0, W1)


@pytest.fixture(scope="module")
def windows(table: pl.DataFrame) -> pl.DataFrame:
    return dst_windows(table, H0, H1)


def local(*args: int) -> int:
    """Naive wall-clock microseconds since 1970-01-01T00:00."""
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000


def of(windows: pl.DataFrame, tzid: str) -> list[tuple]:
    return (
        windows.filter(pl.col("tzid") == tzid)
        .select("kind", "transition_utc", "local_start", "local_end", "delta_s", "in_horizon")
        .rows()
    )


def test_schema_and_order(windows: pl.DataFrame) -> None:
    assert windows.schema == SCHEMA
    assert windows.equals(windows.sort("tz_index", "transition_utc"))


def test_london_gap_and_fold(windows: pl.DataFrame) -> None:
    assert of(windows, "Europe/London") == [
        ("GAP", local(2026, 3, 29, 1), local(2026, 3, 29, 1), local(2026, 3, 29, 2), 3600, True),
        ("FOLD", local(2026, 10, 25, 1), local(2026, 10, 25, 1), local(2026, 10, 25, 2), -3600, False),
    ]


def test_new_york_gap_and_fold(windows: pl.DataFrame) -> None:
    assert of(windows, "America/New_York") == [
        ("GAP", local(2026, 3, 8, 7), local(2026, 3, 8, 2), local(2026, 3, 8, 3), 3600, True),
        ("FOLD", local(2026, 11, 1, 6), local(2026, 11, 1, 1), local(2026, 11, 1, 2), -3600, False),
    ]


def test_lord_howe_half_hour_windows(windows: pl.DataFrame) -> None:
    kinds = [(k, (e - s) // 1_000_000, d) for k, _, s, e, d, _ in of(windows, "Australia/Lord_Howe")]
    assert kinds == [("FOLD", 1800, -1800), ("GAP", 1800, 1800)]


def test_zones_without_offset_changes_have_no_windows(windows: pl.DataFrame) -> None:
    assert of(windows, "Asia/Tokyo") == [] and of(windows, "Asia/Kathmandu") == []


def test_abbreviation_only_changes_are_not_windows() -> None:
    table = pl.DataFrame(
        {
            "tz_index": [0, 0, 0],
            "tzid": ["Zone/X"] * 3,
            "valid_from": [0, 10_000_000, 20_000_000],
            "utc_offset_s": [3600, 3600, 0],
            "is_dst": [False, True, False],
            "abbrev": ["A", "B", "C"],
        },
        schema_overrides={"tz_index": pl.UInt16, "utc_offset_s": pl.Int32},
    )
    w = dst_windows(table, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(1970, 1, 2, tzinfo=dt.UTC))
    assert w.select("kind", "transition_utc", "local_start", "local_end", "delta_s").rows() == [
        ("FOLD", 20_000_000, 20_000_000, 20_000_000 + 3_600_000_000, -3600)
    ]


def test_independent_windows_equal_dst_windows_over_a_year(table: pl.DataFrame) -> None:
    ours = dst_windows(table, W0, W1).filter(pl.col("in_horizon"))
    theirs = independent_windows(ZONES, W0, W1)
    assert theirs.schema == SCHEMA
    assert ours.height >= 25
    assert ours.equals(theirs)


def test_independent_windows_in_the_horizon(windows: pl.DataFrame) -> None:
    ours = windows.filter(pl.col("in_horizon"))
    assert ours.equals(independent_windows(ZONES, H0, H1))
    starts = ours.filter(pl.col("tzid").is_in(["Europe/London", "America/New_York"]))["kind"].to_list()
    assert starts == ["GAP", "GAP"]


@pytest.mark.parametrize(
    ("preset", "days"),
    [("tiny", 14), ("default", 35), ("large", 90)],
)
def test_every_preset_horizon_starts_2026_03_02(preset: str, days: int) -> None:
    from engine.core.config import load_run_config

    policy = load_run_config({"preset": preset}).horizon.as_policy()
    assert (policy["start_utc"], policy["days"]) == ("2026-03-02T00:00:00Z", days)


def test_default_horizon_holds_a_gap_and_a_fold() -> None:
    """Amendment 8: the default preset's horizon (2026-03-02, 35 days) holds the US and EU spring gaps and
    the southern-hemisphere autumn folds (Sydney, Santiago), each exact to the second."""
    from engine.core.config import load_run_config

    horizon = load_run_config({"preset": "default"}).horizon
    start, end = horizon.window()
    zones = ["America/New_York", "America/Santiago", "Asia/Tokyo", "Australia/Sydney", "Europe/London"]
    w = dst_windows(transitions(zones, start, end), horizon.start(), horizon.end())
    inside = w.filter(pl.col("in_horizon"))
    assert of(inside, "America/New_York") == [
        ("GAP", local(2026, 3, 8, 7), local(2026, 3, 8, 2), local(2026, 3, 8, 3), 3600, True)
    ]
    assert of(inside, "Europe/London") == [
        ("GAP", local(2026, 3, 29, 1), local(2026, 3, 29, 1), local(2026, 3, 29, 2), 3600, True)
    ]
    assert of(inside, "Australia/Sydney") == [
        ("FOLD", local(2026, 4, 4, 16), local(2026, 4, 5, 2), local(2026, 4, 5, 3), -3600, True)
    ]
    assert of(inside, "America/Santiago") == [
        ("FOLD", local(2026, 4, 5, 3), local(2026, 4, 4, 23), local(2026, 4, 5, 0), -3600, True)
    ]
    assert of(inside, "Asia/Tokyo") == []
    assert inside.equals(independent_windows(zones, horizon.start(), horizon.end()))


def test_tiny_horizon_holds_the_us_gap_only() -> None:
    from engine.core.config import load_run_config

    horizon = load_run_config({"preset": "tiny"}).horizon
    start, end = horizon.window()
    zones = ["America/New_York", "Europe/London"]
    inside = dst_windows(transitions(zones, start, end), horizon.start(), horizon.end()).filter(
        pl.col("in_horizon")
    )
    assert inside.select("tzid", "kind", "transition_utc").rows() == [
        ("America/New_York", "GAP", local(2026, 3, 8, 7))
    ]
