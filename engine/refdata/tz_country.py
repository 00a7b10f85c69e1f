"""`ref_tz_country`: (iso2, tzid) pairs from `zone.tab` of the pinned tzdata package, plus `zone1970`.

`zone.tab` lists each zone under exactly one country, which is what a country → legal-time-zone lookup needs:
its pairs are the rows, the legal list. `zone1970` is, per row, the countries `zone1970.tab` lists for that
tzid (empty when zone1970.tab has no line for it): the zones whose clocks a country's region has followed
since 1970 (e.g. `Asia/Bangkok` for TH, CX, KH, LA, VN), which the tz resolver's step 1 also accepts
(layer1.md amendment 7). Both files are read from the tzdata package through importlib.resources, never
from /usr/share/zoneinfo, so the system's tz files cannot leak in.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import polars as pl

from engine.refdata import iso3166
from engine.refdata.provenance import repair, write_artefact

NAME = "ref_tz_country"
SCHEMA = pl.Schema({"iso2": pl.String, "tzid": pl.String, "zone1970": pl.List(pl.String)})


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


def zone1970_tab(zone_tzids: set[str]) -> dict[str, list[str]]:
    """tzid → the sorted countries of its zone1970.tab line; every tzid and country must be known."""
    zoneinfo = files("tzdata").joinpath("zoneinfo")
    known = set(iso3166.iso2_codes())
    out: dict[str, list[str]] = {}
    for line in zoneinfo.joinpath("zone1970.tab").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        codes, _coordinates, tzid, *_comment = line.split("\t")
        countries = codes.split(",")
        if unknown := [c for c in countries if c not in known]:
            raise ValueError(f"zone1970.tab: {unknown} ({tzid}) are not ISO 3166-1 alpha-2 codes")
        if tzid not in zone_tzids:
            raise ValueError(f"zone1970.tab: {tzid} is not a zone.tab zone")
        if tzid in out:
            raise ValueError(f"zone1970.tab: {tzid} listed twice")
        out[tzid] = sorted(countries)
    return out


def tz_table() -> tuple[pl.DataFrame, list[dict[str, str]]]:
    """The pairs as a table (with each tzid's zone1970.tab countries), and the countries that zone.tab
    gives no zone."""
    pairs = zone_tab()
    shared = zone1970_tab({tz for _, tz in pairs})
    df = pl.DataFrame([(iso2, tz, shared.get(tz, [])) for iso2, tz in pairs], schema=SCHEMA, orient="row")
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
        notes=[
            "source: zone.tab of the tzdata package (one country per zone); sorted by (iso2, tzid)",
            "zone1970: the countries zone1970.tab of the same package lists for the tzid (empty if none)",
        ],
    )
