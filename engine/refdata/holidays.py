"""`ref_holidays`: public holidays per country and local date, from the pinned `holidays` package.

One row per (country_iso, local_date) for every country of the ISO 3166-1 universe that `holidays` supports,
over the fixed years `YEARS` (every preset's horizon year ± 1 lies inside; 5A.S0 checks it). Only the
package's default category (public holidays) is used. Names are asked for in US English where the country's
calendar has that translation, else in its own default language: with no language given the package
translates by the process locale, so the bytes would depend on the environment. Several holidays on one date
are one row, their names joined by "; " as the package joins them. A country the package knows but which has
no public holiday in these years (e.g. Ukraine under martial law) is recorded as a repair, as is one it does
not support.
"""

from __future__ import annotations

from pathlib import Path

import holidays
import polars as pl

from engine.refdata import iso3166
from engine.refdata.provenance import repair, write_artefact

NAME = "ref_holidays"
SCHEMA = pl.Schema({"country_iso": pl.String, "local_date": pl.Date, "name": pl.String})
YEARS = range(2024, 2029)
LANGUAGE = "en_US"


def calendar(iso2: str) -> holidays.HolidayBase:
    """The country's public holidays over YEARS, named in a pinned language (never the process locale)."""
    probe = holidays.country_holidays(iso2)
    language = LANGUAGE if LANGUAGE in probe.supported_languages else probe.default_language
    return holidays.country_holidays(iso2, years=YEARS, language=language)


def holiday_table() -> tuple[pl.DataFrame, list[dict[str, str]]]:
    """Every supported country's rows, sorted by (country_iso, local_date), and the countries left out."""
    supported = holidays.list_supported_countries()
    rows: list[tuple[str, object, str]] = []
    repairs: list[dict[str, str]] = []
    for iso2 in iso3166.iso2_codes():
        if iso2 not in supported:
            repairs.append(repair(iso2, "omitted", "the holidays package has no calendar for this country"))
            continue
        days = sorted(calendar(iso2).items())
        if not days:
            repairs.append(repair(iso2, "omitted", f"no public holiday in {YEARS[0]}–{YEARS[-1]}"))
        rows.extend((iso2, day, name) for day, name in days)
    return pl.DataFrame(rows, schema=SCHEMA, orient="row"), repairs


def build(out_dir: Path) -> None:
    df, repairs = holiday_table()
    write_artefact(
        NAME,
        df,
        out_dir,
        repairs=repairs,
        notes=[
            f"holidays.country_holidays(iso2, years={YEARS[0]}..{YEARS[-1]}) with the default categories "
            "(public holidays only), observed days included as the package lists them",
            f"names in {LANGUAGE} where the country's calendar translates to it, else its default language",
            "one row per (country_iso, local_date); several holidays on one date are joined by '; '",
        ],
        extra={"years": [YEARS[0], YEARS[-1]], "countries": int(df["country_iso"].n_unique())},
    )
