"""`ref_tz_country`: (iso2, tzid) pairs from `zone.tab` of the pinned tzdata package.

`zone.tab` lists each zone under exactly one country, which is what a country → legal-time-zone lookup needs
(`zone1970.tab` merges countries into shared zones). It is read from the tzdata package through
importlib.resources, never from /usr/share/zoneinfo, so the system's tz files cannot leak in.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import polars as pl

from engine.refdata import iso3166
from engine.refdata.provenance import repair, write_artefact

NAME = "ref_tz_country"
SCHEMA = pl.Schema({"iso2": pl.String, "tzid": pl.String})


def zone_tab() -> list[tuple[str, str]]:
    """(iso2, tzid) of every zone.tab line, checked against the country universe and the shipped zones."""
    zoneinfo = files("tzdata").joinpath("zoneinfo")
    known = set(iso3166.iso2_codes())
    pairs: list[tuple[str, str]] = []
    for line in zoneinfo.joinpath("zone.tab").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        iso2, _coordinates, tzid, *_comment = line.split("\t")
        if iso2 not in known:
            raise ValueError(f"zone.tab: {iso2!r} ({tzid}) is not an ISO 3166-1 alpha-2 code")
        if not zoneinfo.joinpath(*tzid.split("/")).is_file():
            raise ValueError(f"zone.tab: {tzid} has no compiled zone in the tzdata package")
        pairs.append((iso2, tzid))
    return sorted(pairs)


def tz_table() -> tuple[pl.DataFrame, list[dict[str, str]]]:
    """The pairs as a table, and the countries that zone.tab gives no zone."""
    df = pl.DataFrame(zone_tab(), schema=SCHEMA, orient="row")
    covered = set(df["iso2"])
    omitted = [
        repair(c, "omitted", "no zone in tzdata zone.tab") for c in iso3166.iso2_codes() if c not in covered
    ]
    return df, omitted


def build(out_dir: Path) -> None:
    df, repairs = tz_table()
    write_artefact(
        NAME,
        df,
        out_dir,
        repairs=repairs,
        notes=["source: zone.tab of the tzdata package (one country per zone); sorted by (iso2, tzid)"],
    )
