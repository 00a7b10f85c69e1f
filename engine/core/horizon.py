"""The scenario horizon: one config value (start, days), resolved into `horizon.yaml`, sealed by every
segment that uses time. The tz cache covers [start − before, end + after]; outside it there is no fallback.

`start_utc` is an instant, so it must name its zone (`Z` or `±HH:MM`): a naive time would be read in the
machine's local zone and the same config would build different worlds on two machines. The cache window
must lie in [1970-01-01, 2200-01-01): the tz database only guarantees zones agree from 1970, and the window
must stay far inside what datetime, epoch seconds and the downstream int64-µs timestamps represent.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from engine.core.policy_model import FieldError, Strict

WINDOW_MIN = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
WINDOW_END = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
_ZONED = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})")


def _utc_instant(value: Any) -> dt.datetime:
    """A whole-second instant with its zone, as ISO 8601 text (or the aware datetime YAML 1.1 made of it),
    normalised to UTC; naive, date-only or numeric values are refused."""
    shown = repr(value)
    if isinstance(value, str) and _ZONED.fullmatch(value):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{shown} is not a valid date and time") from exc
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise ValueError(f"{shown} is not a zoned timestamp: write e.g. '2026-01-05T00:00:00Z'")
    if value.microsecond:
        raise ValueError(f"{shown} is not on a whole second")
    if not WINDOW_MIN <= value < WINDOW_END:
        raise ValueError(f"{shown} is outside [{WINDOW_MIN:%Y-%m-%d}, {WINDOW_END:%Y-%m-%d})")
    return value.astimezone(dt.UTC)


class Horizon(Strict):
    start_utc: Annotated[dt.datetime, BeforeValidator(_utc_instant)]
    days: Annotated[int, Field(ge=1, le=3660)]
    cache_margin_days_before: Annotated[int, Field(ge=0, le=366)] = 7
    cache_margin_days_after: Annotated[int, Field(ge=0, le=3660)] = 200

    @model_validator(mode="after")
    def _window_representable(self) -> Horizon:
        start, end = self.window()
        if start < WINDOW_MIN:
            raise FieldError(
                f"the tz-cache window starts {start:%Y-%m-%d}, before {WINDOW_MIN:%Y-%m-%d}", "start_utc"
            )
        if end > WINDOW_END:
            raise FieldError(
                f"the tz-cache window ends {end:%Y-%m-%d}, after {WINDOW_END:%Y-%m-%d}", "start_utc"
            )
        return self

    def start(self) -> dt.datetime:
        return self.start_utc

    def end(self) -> dt.datetime:
        return self.start() + dt.timedelta(days=self.days)

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """The tz-cache window: the horizon plus its margins."""
        return (
            self.start() - dt.timedelta(days=self.cache_margin_days_before),
            self.end() + dt.timedelta(days=self.cache_margin_days_after),
        )

    def as_policy(self) -> dict[str, object]:
        """The resolved `horizon.yaml` document (start in UTC, `Z`)."""
        return self.model_dump(mode="json")


POLICIES = {"horizon": Horizon}
