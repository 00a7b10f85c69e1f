"""5A's keys, closed vocabularies and categorical columns, shared by its states and its validation."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.segments.l2.s5a.policy import CHANNELS, CLASSES, CONVENTIONS, ROLES

PROFILE_KEY = ["merchant_id", "legal_country_iso", "tzid", "channel_group"]
# the channel group's code (layer2_3.md §0.3): CP = 0, CNP = 1, which is also its sort order
CHANNEL = pl.Enum(list(CHANNELS))
CLASS = pl.Enum(list(CLASSES))
CONVENTION = pl.Enum(list(CONVENTIONS))
ROLE = pl.Enum(list(ROLES))
VIRTUAL_MODE = pl.Enum(["PHYSICAL", "HYBRID", "VIRTUAL_ONLY"])
EVENT_TYPES = ("HOLIDAY", "HOLIDAY_EVE", "PAYDAY", "PROMO", "PEAK")
EVENT_TYPE = pl.Enum(list(EVENT_TYPES))
WEEK = 168


def vocabulary(values: pl.Series) -> pl.Enum:
    """An Enum of the sorted distinct values, so its physical order is the text order (sorts agree)."""
    return pl.Enum(sorted(values.cast(pl.String).unique().to_list()))


def zone_code(iso_num: np.ndarray, tz_index: np.ndarray) -> np.ndarray:
    """`iso_num << 16 | tz_index` (layer2_3.md §0.3)."""
    return (np.asarray(iso_num, dtype=np.uint64) << np.uint64(16)) | np.asarray(tz_index, dtype=np.uint64)


def shape_id(cls: int, channel: int, convention: int, variant: int) -> int:
    """Shapes are numbered class-major, then channel group, weekend convention and variant."""
    return ((cls * len(CHANNELS) + channel) * len(CONVENTIONS) + convention) * 3 + variant
