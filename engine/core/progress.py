"""Progress of a long loop: rows done, rate and ETA, printed at most every 10 s (README §9)."""

from __future__ import annotations

import time
from collections.abc import Callable

INTERVAL_S = 10.0


class ProgressMeter:
    """Counts units done against a known total and reports through `emit` (a state's progress line);
    `clock` is injectable so a test can drive time."""

    def __init__(
        self,
        total: int,
        unit: str,
        emit: Callable[[str], None],
        *,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.unit, self.emit, self.interval_s, self.clock = total, unit, emit, interval_s, clock
        self.done = 0
        self.started = self.last = clock()

    def advance(self, n: int) -> None:
        self.done += n
        now = self.clock()
        if now - self.last >= self.interval_s:
            self.last = now
            self.emit(self.line(now))

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        left = max(self.total - self.done, 0)
        eta = f"{left / rate:.0f} s" if rate > 0 else "unknown"
        share = f" ({100.0 * self.done / self.total:.1f} %)" if self.total else ""
        return f"{self.done:,}/{self.total:,} {self.unit}{share}, {rate:,.0f} {self.unit}/s, ETA {eta}"

    def close(self) -> None:
        """The last line, whatever the interval: the total and the mean rate."""
        self.emit(self.line(self.clock()).split(", ETA")[0] + ", done")
