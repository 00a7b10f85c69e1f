"""1B.S8 — the slim consumer-facing location table."""

from __future__ import annotations

from engine.core.state import StateContext

COLUMNS = [
    "site_id",
    "merchant_id",
    "legal_country_iso",
    "site_order",
    "tile_id",
    "lat_deg",
    "lon_deg",
    "placement",
    "city_name",
    "admin1_code",
]


def run(ctx: StateContext) -> None:
    synthesis = ctx.read("s7_site_synthesis")
    out = synthesis.select(COLUMNS).sort(["merchant_id", "legal_country_iso", "site_order"])
    ctx.publish("site_locations", out)
