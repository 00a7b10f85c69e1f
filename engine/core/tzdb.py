"""Civil time from the pinned tzdata package only: `force_tzdata()` cuts zoneinfo off the system tz files.

`zoneinfo` looks in `zoneinfo.TZPATH` (the system's /usr/share/zoneinfo and friends) before it falls back to
the `tzdata` package; a machine with different system tz files would then resolve zones differently.
`force_tzdata` empties the search path, so every `ZoneInfo(key)` comes from the installed tzdata package,
clears zoneinfo's cache of zones already loaded from elsewhere, and returns the IANA release it now uses.
"""

from __future__ import annotations

import zoneinfo
from importlib.resources import files

_VERSION_PREFIX = "# version "


def tzdata_version() -> str:
    """IANA release of the installed tzdata package (e.g. "2026f"), from its `tzdata.zi` header."""
    with files("tzdata").joinpath("zoneinfo", "tzdata.zi").open("r", encoding="utf-8") as fh:
        first = fh.readline().strip()
    if not first.startswith(_VERSION_PREFIX):
        raise ValueError(f"tzdata.zi does not start with {_VERSION_PREFIX!r}: {first!r}")
    return first.removeprefix(_VERSION_PREFIX)


def force_tzdata() -> str:
    """Make zoneinfo load only from the tzdata package; returns the IANA version it now serves."""
    zoneinfo.reset_tzpath([])
    zoneinfo.ZoneInfo.clear_cache()
    return tzdata_version()
