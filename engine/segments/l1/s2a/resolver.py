"""The tz resolver (2A.S1): one tzid per point through one fallback ladder, shared by 2A, 3A and 3B.

Pure library code: callers read the references and policies and pass arrays in. The common path (a point
inside exactly one of its country's zones, or inside one after a single nudge) is vectorised over the whole
batch with one STRtree query; only the rare fallbacks run per point in Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np
import polars as pl
import shapely
from numpy.typing import ArrayLike
from pyproj import Geod

from engine.core.errors import EngineError

STATE = "2A.S1"
METHODS = (
    "POLYGON",
    "NUDGE",
    "OVERLAP_POLICY",
    "OVERRIDE_SITE",
    "OVERRIDE_MCC",
    "OVERRIDE_COUNTRY",
    "COUNTRY_SINGLETON",
    "NEAREST_WITHIN",
    "NEAREST_BEYOND",
)
KM_PER_DEG = 111.0  # the design's nearest threshold is ε·111 km
Scope = Literal["site", "mcc", "country"]
Zone1970Tzid = Literal["country", "polygon"]
SCOPE_PRECEDENCE: tuple[Scope, ...] = ("site", "mcc", "country")
_GEOD = Geod(ellps="WGS84")


# --------------------------------------------------------------------------------------------- overrides


@dataclass(frozen=True)
class Override:
    """One `tz_overrides.yaml` entry; `target` is a site_id, a 4-digit MCC or an iso2, by scope."""

    scope: Scope
    target: str
    tzid: str
    reason: str
    expires: dt.date | None = None

    def key(self) -> tuple[Scope, str]:
        return override_key(self.scope, self.target)


def override_key(scope: Scope, target: str | int) -> tuple[Scope, str]:
    """Canonical (scope, target) so "0042"/42 site ids and 5411/"5411" MCCs meet the same entry."""
    if scope == "site":
        return scope, str(int(target))
    if scope == "mcc":
        return scope, f"{int(target):04d}"
    if scope == "country":
        return scope, str(target).upper()
    raise ValueError(f"unknown override scope {scope!r}")


def active_overrides(
    overrides: Iterable[Override],
    horizon_start: dt.date,
    *,
    tz_country: Mapping[str, Sequence[str]] | None = None,
    target_countries: Mapping[tuple[Scope, str], Iterable[str]] | None = None,
) -> dict[tuple[Scope, str], Override]:
    """The entries in force at the horizon start (never the wall clock), keyed by canonical (scope, target).

    With `tz_country`, every active tzid is also checked against its target's country: a country entry
    against its own iso2, a site or mcc entry against each country the caller lists for it in
    `target_countries` (the site's legal country; every country where the MCC has sites).
    """
    active: dict[tuple[Scope, str], Override] = {}
    for ov in overrides:
        if ov.expires is not None and ov.expires < horizon_start:
            continue
        key = ov.key()
        if key in active:
            raise EngineError(
                "E_2A_OVERRIDE_DUPLICATE",
                f"more than one active override for {key[0]} {key[1]} at {horizon_start.isoformat()}",
                where="tz_overrides.yaml",
                fix="keep one active entry per (scope, target); give the others an earlier expires date",
                state=STATE,
            )
        active[key] = ov
    if tz_country is not None:
        check_override_tzids(active, tz_country, target_countries or {})
    return active


def check_override_tzids(
    active: Mapping[tuple[Scope, str], Override],
    tz_country: Mapping[str, Sequence[str]],
    target_countries: Mapping[tuple[Scope, str], Iterable[str]],
) -> None:
    """Each active tzid is listed for its target's country(ies); targets the caller has no country for
    (a site or MCC absent from the data) are inert and pass."""
    canon = {override_key(s, t): list(cs) for (s, t), cs in target_countries.items()}
    for key, ov in sorted(active.items()):
        countries = [key[1]] if key[0] == "country" else canon.get(key, [])
        for iso2 in countries:
            _check_listed(ov, iso2, tz_country)


def _check_listed(ov: Override, iso2: str, tz_country: Mapping[str, Sequence[str]]) -> None:
    if ov.tzid not in tz_country.get(iso2, ()):
        raise EngineError(
            "E_2A_OVERRIDE_TZID",
            f"override {ov.scope} {ov.target} names {ov.tzid}, which is not a zone of {iso2}",
            where="tz_overrides.yaml",
            fix=f"use one of {iso2}'s zones: {', '.join(tz_country.get(iso2, [])) or '—'}",
            state=STATE,
        )


# --------------------------------------------------------------------------------------------- the index


class TzIndex:
    """All tz polygon parts with their tz_index; `tzids` is the ASCII-sorted list whose positions are
    tz_index."""

    def __init__(
        self,
        tzids: Sequence[str],
        part_geoms: ArrayLike,
        part_tz_index: ArrayLike,
        *,
        check_valid: bool = True,
    ) -> None:
        self.tzids = list(tzids)
        if any(a >= b for a, b in pairwise(self.tzids)):
            raise ValueError("tzids must be unique and in ASCII order (their positions are tz_index)")
        if len(self.tzids) > np.iinfo(np.uint16).max:
            raise ValueError("more tzids than a u16 tz_index can hold")
        self.position = {tz: i for i, tz in enumerate(self.tzids)}
        self.geoms = np.asarray(part_geoms, dtype=object).reshape(-1)
        self.part_tz = np.asarray(part_tz_index, dtype=np.int64).reshape(-1)
        if self.geoms.shape != self.part_tz.shape:
            raise ValueError("part_geoms and part_tz_index differ in length")
        if self.part_tz.size and (self.part_tz.min() < 0 or self.part_tz.max() >= len(self.tzids)):
            raise ValueError("part_tz_index outside the tzid list")
        if check_valid and self.geoms.size:
            bad = ~shapely.is_valid(self.geoms)
            if bad.any():
                i = int(bad.argmax())
                raise EngineError(
                    "E_GEOMETRY_INVALID",
                    f"{int(bad.sum())} invalid tz polygon parts, e.g. {self.tzids[self.part_tz[i]]}",
                    where="ref_tz_polygons",
                    fix="rebuild ref_tz_polygons (repairs happen at build time)",
                    state=STATE,
                )
        self.has_parts = np.zeros(len(self.tzids), dtype=bool)
        self.has_parts[self.part_tz] = True
        order = np.argsort(self.part_tz, kind="stable")
        bounds = np.searchsorted(self.part_tz[order], np.arange(len(self.tzids) + 1))
        self._parts_of = [order[bounds[i] : bounds[i + 1]] for i in range(len(self.tzids))]
        self.dropped_tzids: list[str] = []

    @classmethod
    def from_table(cls, tzids: Sequence[str], table: pl.DataFrame, *, check_valid: bool = True) -> TzIndex:
        """From `ref_tz_polygons` rows (tzid, geometry WKB). Parts of tzids outside `tzids` can never be a
        candidate (candidates must be listed for a country), so they are left out and named in
        `dropped_tzids` for the run report."""
        position = {tz: i for i, tz in enumerate(tzids)}
        names = table["tzid"].to_list()
        keep = np.array([n in position for n in names], dtype=bool)
        geoms = shapely.from_wkb(table["geometry"].to_numpy()[keep]) if keep.any() else np.empty(0, object)
        tzi = np.array([position[n] for n, k in zip(names, keep, strict=True) if k], dtype=np.int64)
        index = cls(tzids, geoms, tzi, check_valid=check_valid)
        index.dropped_tzids = sorted({n for n in names if n not in position})
        return index

    def parts_of(self, tz_index: int) -> np.ndarray:
        """Row positions of the parts of one tzid."""
        return self._parts_of[tz_index]


# --------------------------------------------------------------------------------------------- the ladder


def nudge(lon: np.ndarray, lat: np.ndarray, epsilon_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """One step north-east: lat+ε clamped to [−90, 90], lon+ε wrapped into [−180, 180)."""
    lon2 = np.mod(np.asarray(lon, dtype=np.float64) + epsilon_deg + 180.0, 360.0) - 180.0
    lon2 = np.where(lon2 >= 180.0, lon2 - 360.0, lon2)  # np.mod may round a tiny negative up to 360
    lat2 = np.clip(np.asarray(lat, dtype=np.float64) + epsilon_deg, -90.0, 90.0)
    return lon2, lat2


class _Countries:
    """Per-batch country codes and the (country, tz_index) pairs that may be candidates: the country's
    zone.tab zones (`listed`) and the zones zone1970.tab lists for it (`accepted`, amendment 7)."""

    def __init__(
        self,
        index: TzIndex,
        country_iso: np.ndarray,
        tz_country: Mapping[str, Sequence[str]],
        zone1970: Mapping[str, Sequence[str]],
    ):
        self.codes, self.code_of_point = np.unique(country_iso, return_inverse=True)
        self.listed: dict[str, list[int]] = {}
        keys: list[int] = []
        n_tz = len(index.tzids)
        for c, iso2 in enumerate(self.codes.tolist()):
            self.listed[iso2] = self._positions(index, iso2, tz_country.get(iso2, ()))
            accepted = self._positions(index, iso2, zone1970.get(iso2, ()))
            keys.extend(c * n_tz + t for t in sorted(set(self.listed[iso2]) | set(accepted)))
        self.allowed = np.array(sorted(keys), dtype=np.int64)

    @staticmethod
    def _positions(index: TzIndex, iso2: str, tzids: Iterable[str]) -> list[int]:
        out = []
        for tz in tzids:
            if tz not in index.position:
                raise ValueError(f"tzid {tz} of {iso2} is not in the tz index (references out of step)")
            out.append(index.position[tz])
        return sorted(set(out))


def _candidates(
    index: TzIndex,
    lon: np.ndarray,
    lat: np.ndarray,
    code: np.ndarray,
    allowed: np.ndarray,
    rank: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point: how many distinct candidate tz_index cover it, that tz_index where there is one, and
    where there are several, the candidate that ranks first in the overlap preference (−1 if none does).

    `rank[t]` is tz_index t's position in the preference list, or a large number when it is not listed."""
    n = lon.size
    count = np.zeros(n, dtype=np.int64)
    single = np.full(n, -1, dtype=np.int64)
    preferred = np.full(n, -1, dtype=np.int64)
    if n == 0 or index.geoms.size == 0:
        return count, single, preferred
    n_tz = len(index.tzids)
    # queried from the parts' side: an STRtree over the points, each part asked which points it covers
    # (GEOS: covered_by(p, A) ⇔ covers(A, p), so the pairs are the same; the pairs are deduplicated below, so
    # their order does not matter). A thousand detailed parts against 10^4–10^6 points is ~15× faster so.
    gi, pi = shapely.STRtree(shapely.points(lon, lat)).query(index.geoms, predicate="covers")
    tzi = index.part_tz[gi]
    ok = np.isin(code[pi] * n_tz + tzi, allowed)
    pair = np.unique(pi[ok].astype(np.int64) * n_tz + tzi[ok])
    upi, utz = pair // n_tz, pair % n_tz
    count += np.bincount(upi, minlength=n)
    single[upi] = utz  # only read where count == 1
    listed = rank[utz] < _UNRANKED
    if listed.any():
        # per point the candidate of lowest rank: sort by (point, rank) and keep each point's first
        order = np.lexsort((rank[utz[listed]], upi[listed]))
        p_sorted, t_sorted = upi[listed][order], utz[listed][order]
        first = np.ones(p_sorted.size, dtype=bool)
        first[1:] = p_sorted[1:] != p_sorted[:-1]
        preferred[p_sorted[first]] = t_sorted[first]
    return count, single, preferred


_UNRANKED = np.iinfo(np.int64).max


def resolve(
    index: TzIndex,
    lon: ArrayLike,
    lat: ArrayLike,
    country_iso: ArrayLike,
    site_id: ArrayLike | None,
    mcc: ArrayLike | None,
    tz_country: Mapping[str, Sequence[str]],
    overrides: Mapping[tuple[Scope, str], Override],
    epsilon_deg: float,
    *,
    zone1970: Mapping[str, Sequence[str]] | None = None,
    zone1970_tzid: Zone1970Tzid = "country",
    overlap_preference: Sequence[str] = (),
    same_clock: Callable[[str, str], bool] | None = None,
) -> dict[str, np.ndarray | list[str]]:
    """Resolve each point to one tzid of its country through the 2A.S1 ladder (with amendment 7).

    `tz_country` is the legal list (zone.tab: country → zones); `zone1970` (country → zones zone1970.tab
    lists for it) widens the candidates of steps 1–3 only. A point whose one candidate is a zone1970-only
    zone publishes, with `zone1970_tzid="country"`, its country's zone when the country has exactly one
    zone.tab zone and `same_clock(polygon zone, country zone)` holds (the caller compares the two zones' UTC
    offsets over its window; None trusts zone1970.tab), else the polygon's zone; with "polygon" always the
    polygon's zone. Where several candidates cover a point (or its nudge), the first of them in
    `overlap_preference` wins (OVERLAP_POLICY); if none is listed there the ladder goes on.
    `overrides` is the active set from `active_overrides`; `site_id`/`mcc` may be None (3A and 3B resolve
    with country-scope overrides only). Returns tzid, tz_index (u16), resolution_method, n_candidates (u8:
    distinct candidate zones covering the original point, before any nudge) and nearest_km (NaN unless
    NEAREST_*), all in input order.
    """
    lon = np.asarray(lon, dtype=np.float64).reshape(-1)
    lat = np.asarray(lat, dtype=np.float64).reshape(-1)
    iso = np.asarray(country_iso, dtype=str).reshape(-1)
    n = lon.size
    if lat.size != n or iso.size != n:
        raise ValueError("lon, lat and country_iso differ in length")
    sites = None if site_id is None else np.asarray(site_id).reshape(-1)
    mccs = None if mcc is None else np.asarray(mcc).reshape(-1)
    for name, arr in (("site_id", sites), ("mcc", mccs)):
        if arr is not None and arr.size != n:
            raise ValueError(f"{name} differs in length from lon")
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise ValueError("non-finite coordinates")
    if n and (lon.min() < -180.0 or lon.max() >= 180.0 or lat.min() < -90.0 or lat.max() > 90.0):
        raise ValueError("coordinates outside lon [−180, 180), lat [−90, 90]")

    if zone1970_tzid not in ("country", "polygon"):
        raise ValueError(f"zone1970_tzid must be 'country' or 'polygon', not {zone1970_tzid!r}")
    countries = _Countries(index, iso, tz_country, zone1970 or {})
    code = countries.code_of_point.reshape(-1).astype(np.int64)
    rank = np.full(len(index.tzids), _UNRANKED, dtype=np.int64)
    for r, tz in enumerate(overlap_preference):
        if tz not in index.position:
            raise ValueError(f"overlap preference {tz} is not in the tz index")
        rank[index.position[tz]] = min(int(rank[index.position[tz]]), r)

    # Steps 1–2: one batch query; several candidates → the overlap preference, if it names one.
    count, single, preferred = _candidates(index, lon, lat, code, countries.allowed, rank)
    tz_out = np.where(count == 1, single, -1)
    method = np.full(n, "", dtype=object)
    method[count == 1] = "POLYGON"
    overlap = (count >= 2) & (preferred >= 0)
    tz_out[overlap] = preferred[overlap]
    method[overlap] = "OVERLAP_POLICY"

    # Step 3: nudge the rest once and re-query them as a batch.
    rest = np.flatnonzero(tz_out < 0)
    if rest.size:
        lon2, lat2 = nudge(lon[rest], lat[rest], epsilon_deg)
        count2, single2, preferred2 = _candidates(index, lon2, lat2, code[rest], countries.allowed, rank)
        hit = count2 == 1
        tz_out[rest[hit]] = single2[hit]
        method[rest[hit]] = "NUDGE"
        hit2 = (count2 >= 2) & (preferred2 >= 0)
        tz_out[rest[hit2]] = preferred2[hit2]
        method[rest[hit2]] = "OVERLAP_POLICY"

    # A zone1970-only zone in a single-zone country publishes the country's zone under "country".
    if zone1970_tzid == "country":
        for c, iso2 in enumerate(countries.codes.tolist()):
            listed = countries.listed[iso2]
            if len(listed) != 1:
                continue
            mine = (code == c) & (tz_out >= 0) & (tz_out != listed[0])
            for t in np.unique(tz_out[mine]).tolist():
                if same_clock is None or same_clock(index.tzids[t], index.tzids[listed[0]]):
                    tz_out[mine & (tz_out == t)] = listed[0]

    # Steps 4–7: rare, per point.
    nearest_km = np.full(n, np.nan, dtype=np.float64)
    parts_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for i in np.flatnonzero(tz_out < 0).tolist():
        c = str(iso[i])
        listed = countries.listed[c]
        ov = _override_for(overrides, sites, mccs, i, c)
        if ov is not None:
            _check_listed(ov[1], c, tz_country)
            tz_out[i] = index.position[ov[1].tzid]
            method[i] = "OVERRIDE_" + ov[0].upper()
            continue
        if len(listed) == 1:
            tz_out[i] = listed[0]
            method[i] = "COUNTRY_SINGLETON"
            continue
        if c not in parts_cache:
            parts_cache[c] = _country_parts(index, c, listed)
        geoms, part_tz = parts_cache[c]
        t, km = _nearest(float(lon[i]), float(lat[i]), geoms, part_tz)
        tz_out[i] = t
        nearest_km[i] = km
        method[i] = "NEAREST_WITHIN" if km <= epsilon_deg * KM_PER_DEG else "NEAREST_BEYOND"

    return {
        "tzid": [index.tzids[t] for t in tz_out.tolist()],
        "tz_index": tz_out.astype(np.uint16),
        "resolution_method": method.tolist(),
        "n_candidates": np.minimum(count, 255).astype(np.uint8),
        "nearest_km": nearest_km,
    }


def _override_for(
    overrides: Mapping[tuple[Scope, str], Override],
    sites: np.ndarray | None,
    mccs: np.ndarray | None,
    i: int,
    iso2: str,
) -> tuple[Scope, Override] | None:
    """The winning active entry for point i: site beats mcc beats country."""
    if not overrides:
        return None
    keys: list[tuple[Scope, str]] = []
    if sites is not None:
        keys.append(override_key("site", int(sites[i])))
    if mccs is not None:
        keys.append(override_key("mcc", int(mccs[i])))
    keys.append(override_key("country", iso2))
    for key in keys:
        if key in overrides:
            return key[0], overrides[key]
    return None


def _country_parts(index: TzIndex, iso2: str, listed: list[int]) -> tuple[np.ndarray, np.ndarray]:
    rows = [index.parts_of(t) for t in listed]
    idx = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    if idx.size == 0:
        raise EngineError(
            "E_2A_NO_TZ_FOR_COUNTRY",
            f"no tz polygon for a zone of {iso2} ({', '.join(index.tzids[t] for t in listed) or 'no zones'})",
            where="ref_tz_polygons",
            fix="rebuild the tz references so every country's zones have polygon parts",
            state=STATE,
        )
    return index.geoms[idx], index.part_tz[idx]


def _nearest(lon: float, lat: float, geoms: np.ndarray, part_tz: np.ndarray) -> tuple[int, float]:
    """Nearest part by geodesic distance (WGS84) to the part's nearest point; ties by tz_index.

    The nearest point is found in lon/lat from the point and its copies one turn east and west, so a part
    just across the antimeridian offers its near edge, not its far one; the shortest geodesic wins.
    """
    dist_m = np.full(geoms.size, np.inf)
    for shift in (0.0, 360.0, -360.0):
        ends = shapely.get_point(shapely.shortest_line(shapely.points(lon + shift, lat), geoms), 1)
        x, y = shapely.get_x(ends), shapely.get_y(ends)
        _, _, d = _GEOD.inv(np.full(x.size, lon), np.full(y.size, lat), x, y)
        dist_m = np.minimum(dist_m, np.asarray(d))
    best = int(np.lexsort((part_tz, dist_m))[0])
    return int(part_tz[best]), float(dist_m[best]) / 1000.0
