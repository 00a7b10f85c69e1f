"""`ref_countries`: ISO 3166-1 countries with UN M49 region/sub-region and whether a merchant may live there.

Regions come from country_converter (`continent`, `UNregion`). `UNregion` is the finest M49 grouping (the
intermediate region where M49 has one, e.g. "South America", else the sub-region, e.g. "Western Europe"), and
the region is its M49 parent from `M49_REGION`. Where coco's `continent` disagrees with that parent (coco
files Bouvet, South Georgia and Heard Island under "Antarctica", Christmas and Cocos Islands under "Asia"),
M49 wins and the change is recorded; M49 gives Antarctica no region at all, so it keeps coco's "Antarctica".

A country is `eligible` when it has a macro row, a currency, at least one time zone and a real (not
synthetic) country polygon. Those are computed here from the same package functions the other artefacts use,
never by reading their output files, so this artefact builds on its own.
"""

from __future__ import annotations

from pathlib import Path

import country_converter as coco
import polars as pl

from engine.refdata import country_polygons, currencies, iso3166, macro, tz_country
from engine.refdata.provenance import repair, write_artefact

NAME = "ref_countries"
SCHEMA = pl.Schema(
    {
        "iso2": pl.String,
        "iso3": pl.String,
        "iso_num": pl.UInt16,
        "name": pl.String,
        "region": pl.String,
        "subregion": pl.String,
        "eligible": pl.Boolean,
        "ineligible_reason": pl.String,
    }
)

# UN M49 (unstats.un.org/unsd/methodology/m49): region of each sub-region / intermediate region coco uses.
M49_REGION: dict[str, str] = {
    **dict.fromkeys(
        ("Northern Africa", "Eastern Africa", "Middle Africa", "Southern Africa", "Western Africa"), "Africa"
    ),
    **dict.fromkeys(("Caribbean", "Central America", "South America", "Northern America"), "Americas"),
    **dict.fromkeys(
        ("Central Asia", "Eastern Asia", "South-eastern Asia", "Southern Asia", "Western Asia"), "Asia"
    ),
    **dict.fromkeys(("Eastern Europe", "Northern Europe", "Southern Europe", "Western Europe"), "Europe"),
    **dict.fromkeys(("Australia and New Zealand", "Melanesia", "Micronesia", "Polynesia"), "Oceania"),
}
# Countries M49 places in no region: (region, subregion) used instead.
NO_M49_REGION: dict[str, tuple[str, str]] = {"AQ": ("Antarctica", "Antarctica")}
_COCO_CONTINENT = {"America": "Americas"}  # coco's spelling -> M49's

# Eligibility tokens in `ineligible_reason`, in this order, comma-separated.
NO_MACRO, NO_CURRENCY, NO_TZID, NO_POLYGON = "no_macro", "no_currency", "no_tzid", "no_polygon"


def m49_regions() -> tuple[dict[str, tuple[str, str]], list[dict[str, str]]]:
    """iso2 -> (region, subregion) for the whole universe, and the corrections made to coco's continents."""
    data = coco.CountryConverter().data
    by_iso3 = dict(zip(data["ISO3"], zip(data["continent"], data["UNregion"], strict=True), strict=True))
    regions: dict[str, tuple[str, str]] = {}
    repairs: list[dict[str, str]] = []
    for c in iso3166.countries():
        if c.alpha_3 not in by_iso3:
            raise LookupError(f"country_converter has no row for {c.alpha_3} ({c.name})")
        continent, subregion = by_iso3[c.alpha_3]
        if c.alpha_2 in NO_M49_REGION:
            region, subregion = NO_M49_REGION[c.alpha_2]
            repairs.append(repair(c.alpha_2, "assigned", f"no UN M49 region; set to {region} / {subregion}"))
        elif subregion not in M49_REGION:
            raise LookupError(
                f"{c.alpha_2}: country_converter UNregion {subregion!r} is not an M49 sub-region"
            )
        else:
            region = M49_REGION[subregion]
            coco_region = _COCO_CONTINENT.get(continent, continent)
            if region != coco_region:
                why = f"region {coco_region} (coco continent) -> {region}, the M49 region of {subregion}"
                repairs.append(repair(c.alpha_2, "replaced", why))
        regions[c.alpha_2] = (region, subregion)
    return regions, repairs


def _omitted(repairs: list[dict[str, str]]) -> dict[str, str]:
    return {r["key"]: r["reason"] for r in repairs if r["action"] == "omitted"}


def country_table() -> tuple[pl.DataFrame, list[dict[str, str]], list[dict[str, object]]]:
    """The country table, the region repairs, and every non-eligible code with its reasons."""
    regions, repairs = m49_regions()
    macro_df, macro_gaps = macro.macro_table()
    currency_df, currency_repairs = currencies.currency_table()
    tz_df, tz_gaps = tz_country.tz_table()
    polygons = country_polygons.polygons()
    checks = (
        (NO_MACRO, set(macro_df["iso2"]), _omitted(macro_gaps)),
        (NO_CURRENCY, set(currency_df["iso2"]), _omitted(currency_repairs)),
        (NO_TZID, set(tz_df["iso2"]), _omitted(tz_gaps)),
        (NO_POLYGON, country_polygons.real_polygon_codes(), polygons.synthetic),
    )
    rows: list[tuple[str, str, int, str, str, str, bool, str | None]] = []
    ineligible: list[dict[str, object]] = []
    for c in iso3166.countries():
        failed = [
            (token, why.get(c.alpha_2, "")) for token, present, why in checks if c.alpha_2 not in present
        ]
        if failed:
            ineligible.append(
                {
                    "iso2": c.alpha_2,
                    "name": c.name,
                    "reasons": [f"{token}: {detail}" for token, detail in failed],
                }
            )
        reason = ",".join(token for token, _ in failed) or None
        rows.append((c.alpha_2, c.alpha_3, int(c.numeric), c.name, *regions[c.alpha_2], not failed, reason))
    return pl.DataFrame(rows, schema=SCHEMA, orient="row"), repairs, ineligible


def build(out_dir: Path) -> None:
    df, repairs, ineligible = country_table()
    write_artefact(
        NAME,
        df,
        out_dir,
        repairs=repairs,
        notes=[
            "universe: every country of pycountry (ISO 3166-1); name is pycountry's name",
            "region/subregion: UN M49 via country_converter; subregion is the M49 intermediate region where "
            "there is one, else the sub-region",
            "eligible = has a ref_country_macro row, a ref_currencies row, a ref_tz_country row and a real "
            "(non-synthetic) ref_country_polygons polygon, computed from the same sources in memory; the "
            "repairs behind those are in each artefact's own provenance",
            "ineligible_reason tokens, comma-separated in this order: "
            f"{NO_MACRO}, {NO_CURRENCY}, {NO_TZID}, {NO_POLYGON}",
        ],
        extra={"eligible": int(df["eligible"].sum()), "ineligible": ineligible},
    )
