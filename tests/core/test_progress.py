"""ProgressMeter: a line at most every interval with rows done, rate and ETA, and a closing line."""

from __future__ import annotations

from engine.core.progress import ProgressMeter


def test_lines_at_the_interval_with_rate_and_eta() -> None:
    now = [100.0]
    lines: list[str] = []
    meter = ProgressMeter(1_000, "arrivals", lines.append, interval_s=10.0, clock=lambda: now[0])
    now[0] = 105.0
    meter.advance(100)  # 5 s: below the interval, silent
    assert lines == []
    now[0] = 110.0
    meter.advance(100)  # 200 in 10 s = 20/s, 800 left → 40 s
    assert lines == ["200/1,000 arrivals (20.0 %), 20 arrivals/s, ETA 40 s"]
    now[0] = 115.0
    meter.advance(300)  # 5 s after the last line: silent
    now[0] = 120.0
    meter.advance(500)
    assert lines[-1] == "1,000/1,000 arrivals (100.0 %), 50 arrivals/s, ETA 0 s"
    meter.close()
    assert lines[-1] == "1,000/1,000 arrivals (100.0 %), 50 arrivals/s, done"
    assert len(lines) == 3
