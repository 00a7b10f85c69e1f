"""2B's RNG families re-derived for validation's replay law (engine.core.validation), from layer1 §2B.

Nothing here calls a 2B state or a numba kernel: lanes come from numpy's Philox (`PhiloxBlocks`), the
normal, the profile inversion and the alias decode (straight off the blob bytes) are written out again in
plain Python.
"""

from __future__ import annotations

import hashlib
import math
import struct
from bisect import bisect_right
from collections import Counter
from typing import Any

import numpy as np
import polars as pl

from engine.core.rng import SampleRule
from engine.core.validation import PhiloxBlocks, Replay, one_block_each, u01, with_counter
from engine.segments.l1.s2b.policy import PROFILES, DayEffects, SiteWeights

_LO32 = 0xFFFFFFFF
# a probe event is one merchant's P ≥ 1,024 arrivals: 1 % of merchants, at least 20 (≥ 20,480 arrivals
# replayed bit for bit), at any merchant count; the default rule would replay every merchant below 10^5
PROBE_SAMPLE = SampleRule(share=0.01, min_rows=20, full_below=0)


def _normal(w0: int, w1: int) -> float:
    return math.sqrt(-2.0 * math.log(u01(w0))) * math.cos(2.0 * math.pi * u01(w1))


def _usage(draws: int) -> Any:
    def usage(rows: pl.DataFrame) -> pl.DataFrame:
        return one_block_each(rows).with_columns(pl.lit(draws, dtype=pl.Int64).alias("draws"))

    return usage


def site_profile(weights: pl.DataFrame, policy: SiteWeights) -> Replay:
    """2B.S1 step 2: u(w0) of ⟨merchant_id, 0, 0, 0⟩ inverted over the tier's HUB, HEAVY, FLAT."""
    rows = with_counter(
        weights.group_by("merchant_id")
        .agg(pl.len().alias("n"), pl.col("profile").first())
        .filter(pl.col("n") > 1)
        .sort("merchant_id"),
        "merchant_id",
    )
    tiers = [t.min_sites for t in policy.profiles]

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        out = []
        for n, *counter in sample.select("n", "c0", "c1", "c2", "c3").iter_rows():
            tier = policy.profiles[bisect_right(tiers, n) - 1]
            u, acc, pick = u01(gen.block(*counter)[0]), 0.0, PROFILES[-1]
            for name in PROFILES:
                acc += getattr(tier, name)
                if u < acc:
                    pick = name
                    break
            out.append(pick)
        return pl.concat([pl.DataFrame({"profile": out}), one_block_each(sample)], how="horizontal")

    return Replay("2B.site_profile", rows, ("profile",), rederive, one_block_each)


def site_noise(weights: pl.DataFrame) -> Replay:
    """2B.S1 step 3: Z by Box–Muller (cos branch) on u(w0), u(w1) of ⟨merchant_id, site_id, 0, 0⟩."""
    rows = with_counter(weights.filter(pl.col("noise_z").is_not_null()), "merchant_id", "site_id")

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        z = [_normal(*gen.block(*c)[:2]) for c in sample.select("c0", "c1", "c2", "c3").iter_rows()]
        return pl.concat([pl.DataFrame({"noise_z": z}), _usage(2)(sample)], how="horizontal")

    return Replay("2B.site_noise", rows, ("noise_z",), rederive, _usage(2))


def day_effect(effects: pl.DataFrame, n_sites: pl.DataFrame, policy: DayEffects) -> Replay:
    """2B.S3: γ = exp(σZ − σ²/2) on ⟨merchant_id, tz_index, day_index, 0⟩, σ by site count, clipped."""
    rows = with_counter(
        effects.join(n_sites, on="merchant_id", how="left"), "merchant_id", "tz_index", "day_index"
    )
    tiers = [t.min_sites for t in policy.sigma]
    lo, hi = policy.clip

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        gammas, clipped = [], []
        for n, *counter in sample.select("n_sites", "c0", "c1", "c2", "c3").iter_rows():
            sigma = policy.sigma[bisect_right(tiers, n) - 1].sigma
            g = math.exp(sigma * _normal(*gen.block(*counter)[:2]) - sigma * sigma / 2)
            clipped.append(g < lo or g > hi)
            gammas.append(min(max(g, lo), hi))
        frame = pl.DataFrame({"gamma": gammas, "clipped": clipped})
        return pl.concat([frame, _usage(2)(sample)], how="horizontal")

    return Replay("2B.day_effect", rows, ("gamma", "clipped"), rederive, _usage(2))


class BlobDecoder:
    """§2B.S2's shared decoder straight off a blob's bytes."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def pick(self, offset: int, n: int, w: int) -> int:
        j = ((w >> 32) * n) >> 32
        prob_q, alias = struct.unpack_from("<2I", self.blob, offset + 16 + 8 * j)
        return j if (w & _LO32) < prob_q else alias


def routes_digest(routes: list[tuple[int, int, int]]) -> str:
    """A merchant's probe outcome as one comparable value: sha256 over its sorted (tz, site, count)."""
    text = ";".join(f"{t},{s},{c}" for t, s, c in sorted(routes))
    return hashlib.sha256(text.encode()).hexdigest()


def probe(
    table: pl.DataFrame,
    site: tuple[bytes, dict[str, Any]],
    group: tuple[bytes, dict[str, Any]],
    members: pl.DataFrame,
    per_merchant: int,
) -> Replay:
    """2B.S6: arrival k of merchant m on day k mod days; w0 and w1 of ⟨m, k, 0, 0⟩ decode the day's group
    slice, then the group's site slice. One event per merchant (P blocks, 2P lanes, P counters)."""
    published = {
        mid: routes_digest([(t, s, c) for _, t, s, c in grp.iter_rows() if c])
        for (mid,), grp in table.select("merchant_id", "tz_index", "site_id", "observed").group_by(
            ["merchant_id"]
        )
    }
    rows = with_counter(
        pl.DataFrame({"merchant_id": sorted(published)}, schema={"merchant_id": pl.UInt64}).with_columns(
            pl.col("merchant_id").replace_strict(published, return_dtype=pl.String).alias("routes")
        ),
        "merchant_id",
    )
    site_dec, group_dec = BlobDecoder(site[0]), BlobDecoder(group[0])
    slices = {(int(s["merchant_id"]), int(s["tz_index"])): (s["offset"], s["n"]) for s in site[1]["slices"]}
    blocks = {int(m["merchant_id"]): m for m in group[1]["merchants"]}
    ids = {
        key: grp["site_id"].to_list()
        for key, grp in members.sort("member_index").group_by(["merchant_id", "tz_index"])
    }

    def usage(sample: pl.DataFrame) -> pl.DataFrame:
        n = np.full(sample.height, per_merchant, dtype=np.int64)
        return pl.DataFrame({"draws": 2 * n, "blocks": n, "streams": n})

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        out = []
        for mid in sample["merchant_id"].to_list():
            m, tally = blocks[mid], Counter()
            for k in range(per_merchant):
                w0, w1, _, _ = gen.block(mid, k, 0, 0)
                at = m["offset"] + (k % m["days"]) * m["slice_length"]
                tz = m["tz_indexes"][group_dec.pick(at, m["n_groups"], w0)]
                off, n = slices[(mid, tz)]
                tally[(tz, ids[(mid, tz)][site_dec.pick(off, n, w1)])] += 1
            out.append(routes_digest([(t, s, c) for (t, s), c in tally.items()]))
        return pl.concat([pl.DataFrame({"routes": out}), usage(sample)], how="horizontal")

    return Replay("2B.probe", rows, ("routes",), rederive, usage, PROBE_SAMPLE)
