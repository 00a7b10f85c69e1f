"""6B.S5's account-event score features: a flow's party had an event of a type in the 24 h before it, both
ends included (bank_world.EventTimes, engine/kernels/window_hits.py), against known answers and a brute-force
scan of every event."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.segments.l3.s6b.bank_score import recent_events
from engine.segments.l3.s6b.bank_world import EventTimes

T0 = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
US = pl.Datetime("us", "UTC")


def _flows(parties: list[int | None], times: list[dt.datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        {"party_id": pl.Series(parties, dtype=pl.UInt64), "ts_utc": pl.Series(times, dtype=US)}
    )


def test_the_window_is_the_24_hours_up_to_the_flow_both_ends_included() -> None:
    h, us = dt.timedelta(hours=1), dt.timedelta(microseconds=1)
    events = EventTimes.of(_flows([1, 3, 3], [T0, T0 - 30 * h, T0 + 5 * h]))
    flows = _flows(
        [1, 1, 1, 1, 2, None, 3, 3, 99],
        [T0, T0 + 24 * h, T0 + 24 * h + us, T0 - us, T0, T0, T0, T0 + 5 * h, T0],
    )
    # party 1: at the event, 24 h after, 1 µs too late, 1 µs before it; party 2 has none; no party; party
    # 3's events are 30 h before (too old) and 5 h after T0 (in the future at T0, on time at T0 + 5 h);
    # party 99 is past every party with an event
    got = recent_events(flows, {"NEW_PAYEE_ADDED": events})["NEW_PAYEE_ADDED"]
    assert got.tolist() == [True, True, False, False, False, False, False, True, False]


def test_no_events_means_no_hits() -> None:
    events = EventTimes.of(pl.DataFrame(schema={"party_id": pl.UInt64, "ts_utc": US}))
    assert not events.within(
        _flows([1, None], [T0, T0])["party_id"], _flows([1, None], [T0, T0])["ts_utc"], 1
    ).any()


@settings(max_examples=150, deadline=None)
@given(
    events=st.lists(st.tuples(st.integers(1, 6), st.integers(0, 200)), max_size=40),
    flows=st.lists(st.tuples(st.one_of(st.none(), st.integers(1, 8)), st.integers(0, 200)), max_size=40),
    window=st.integers(0, 60),
)
def test_hits_equal_a_scan_of_every_event(
    events: list[tuple[int, int]], flows: list[tuple[int | None, int]], window: int
) -> None:
    # times in seconds from T0, window in seconds: coarse values make equal times and exact edges common
    def at(seconds: int) -> dt.datetime:
        return T0 + dt.timedelta(seconds=seconds)

    times = EventTimes.of(_flows([p for p, _ in events], [at(s) for _, s in events]))
    f = _flows([p for p, _ in flows], [at(s) for _, s in flows])
    got = times.within(f["party_id"], f["ts_utc"], window * 1_000_000).tolist()
    want = [p is not None and any(q == p and s - window <= e <= s for q, e in events) for p, s in flows]
    assert got == want
