"""The scenario horizon: one config value (start, days), resolved into `horizon.yaml`, sealed by every
segment that uses time. The tz cache covers [start − before, end + after]; outside it there is no fallback."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field

from engine.segments.l1.s1a.policy import Strict


class Horizon(Strict):
    start_utc: dt.datetime
    days: Annotated[int, Field(ge=1, le=3660)]
    cache_margin_days_before: Annotated[int, Field(ge=0, le=366)] = 7
    cache_margin_days_after: Annotated[int, Field(ge=0, le=3660)] = 200

    def start(self) -> dt.datetime:
        return self.start_utc.astimezone(dt.UTC)

    def end(self) -> dt.datetime:
        return self.start() + dt.timedelta(days=self.days)

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """The tz-cache window: the horizon plus its margins."""
        return (
            self.start() - dt.timedelta(days=self.cache_margin_days_before),
            self.end() + dt.timedelta(days=self.cache_margin_days_after),
        )

    def as_policy(self) -> dict[str, object]:
        return {
            "cache_margin_days_after": self.cache_margin_days_after,
            "cache_margin_days_before": self.cache_margin_days_before,
            "days": self.days,
            "start_utc": self.start().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


POLICIES = {"horizon": Horizon}
