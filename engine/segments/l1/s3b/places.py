"""Where 3B's points live: the tz resolver set up for 3B (country-scope overrides only), great-circle
distances, and each country's anchor for the CDN locality term."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import shapely

from engine.core.horizon import Horizon
from engine.core.state import StateContext
from engine.segments.l1.s1b.geo import CountryShapes
from engine.segments.l1.s2a.policy import TzResolution
from engine.segments.l1.s2a.resolver import TzIndex, active_overrides, resolve
from engine.segments.l1.s2a.s1_tz_lookup import overrides_of, same_clock_over, tz_country_map, zone1970_map

EARTH_KM = 6371.0088  # mean Earth radius (IUGG)
# what 3B publishes for a resolved point (the 2A resolver's outputs it keeps)
Resolved = dict[str, list[str] | np.ndarray]


def tz_resolver(ctx: StateContext) -> Callable[[np.ndarray, np.ndarray, np.ndarray], Resolved]:
    """2A's resolver over the sealed tz references and 2A's sealed policies; 3B has no site or MCC, so only
    country-scope overrides can apply (layer1 3B.S1)."""
    policy: TzResolution = ctx.policy("2A/tz_resolution.yaml")
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    tz_country = ctx.sealed_table("ref_tz_country")
    tzmap = tz_country_map(tz_country)
    index = TzIndex.from_table(sorted(set(tz_country["tzid"].to_list())), ctx.sealed_table("ref_tz_polygons"))
    active = {
        k: v
        for k, v in active_overrides(
            overrides_of(ctx.policy("2A/tz_overrides.yaml")), horizon.start().date(), tz_country=tzmap
        ).items()
        if k[0] == "country"
    }
    same_clock = same_clock_over(*horizon.window())
    zone1970 = zone1970_map(tz_country)

    def run(lon: np.ndarray, lat: np.ndarray, iso2: np.ndarray) -> Resolved:
        res = resolve(
            index,
            lon,
            lat,
            iso2,
            None,
            None,
            tzmap,
            active,
            policy.epsilon_deg,
            zone1970=zone1970,
            zone1970_tzid=policy.zone1970_tzid,
            overlap_preference=policy.overlap_preference,
            same_clock=same_clock,
        )
        return {k: res[k] for k in ("tzid", "tz_index", "resolution_method")}

    return run


def great_circle_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Haversine distance on the mean sphere; broadcasts."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    return 2.0 * EARTH_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def country_anchors(shapes: CountryShapes, countries: list[str]) -> pl.DataFrame:
    """Per country the centroid of its largest polygon part (the mainland: a centroid of all parts would put
    France in the Atlantic), the `centroid_x` of 3B.S2's locality term."""
    rows = []
    for iso2 in countries:
        parts = shapes.parts[iso2]
        main = parts[int(np.argmax(shapely.area(np.asarray(parts, dtype=object))))]
        c = shapely.centroid(main)
        rows.append((iso2, float(shapely.get_y(c)), float(shapely.get_x(c))))
    return pl.DataFrame(rows, schema=["country_iso", "lat", "lon"], orient="row")


def representative_points(shapes: CountryShapes, countries: list[str]) -> dict[str, tuple[float, float]]:
    """(lat, lon) of a point surely inside each country: where a settlement goes when it has no city."""
    out = {}
    for iso2 in countries:
        p = shapely.point_on_surface(shapes.union(iso2))
        out[iso2] = (float(shapely.get_y(p)), float(shapely.get_x(p)))
    return out
