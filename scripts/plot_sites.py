"""Render a world map of a built world's site locations to PNG (land grey, population shaded, sites red).

    python scripts/plot_sites.py WORLD_ROOT docs/site_locations_default.png [--res 0.1]

Uses only the engine's own stack (rasterio's PNG driver), so no plotting library is needed.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import rasterio
import shapely
from rasterio import features
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin


def render(root: Path, out: Path, res: float) -> int:
    width, height = round(360 / res), round(180 / res)
    transform = from_origin(-180.0, 90.0, res, res)
    polygons = pl.read_parquet(
        next(root.glob("resources/ref_country_polygons/build=*/ref_country_polygons.parquet"))
    )
    land = features.rasterize(
        ((g, 1) for g in shapely.from_wkb(polygons["geometry"].to_numpy())),
        out_shape=(height, width),
        transform=transform,
        fill=0,
        dtype="uint8",
    )
    sites = pl.concat(
        pl.read_parquet(p) for p in root.glob("data/layer1/1B/site_locations/seed=*/*/part-00000.parquet")
    )
    col = np.clip(((sites["lon_deg"].to_numpy() + 180.0) / res).astype(int), 0, width - 1)
    row = np.clip(((90.0 - sites["lat_deg"].to_numpy()) / res).astype(int), 0, height - 1)
    rgb = np.full((3, height, width), 255, dtype=np.uint8)
    rgb[:, land == 1] = 215
    for dr in (-1, 0, 1):  # 3×3 dots so single sites stay visible
        for dc in (-1, 0, 1):
            r, c = np.clip(row + dr, 0, height - 1), np.clip(col + dc, 0, width - 1)
            rgb[0, r, c], rgb[1, r, c], rgb[2, r, c] = 200, 20, 20
    profile = {"driver": "PNG", "width": width, "height": height, "count": 3, "dtype": "uint8"}
    with warnings.catch_warnings():  # a picture, not a georeferenced raster
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(rgb)
    return sites.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--res", type=float, default=0.1)
    args = parser.parse_args()
    n = render(args.root, args.out, args.res)
    print(f"{n} sites → {args.out}")


if __name__ == "__main__":
    main()
