"""`ref_mcc`: every merchant category code iso18245 knows (ISO 18245 plus card-network lists), one row each.

iso18245 merges the ISO list with the Visa, Mastercard, Amex, Stripe and USDA lists (airline and hotel codes
such as 3000 exist only there). Rows are deduplicated by numeric code; the description is the first non-empty
one in `DESCRIPTION_ORDER` — ISO's wording first, then the networks' (Mastercard before Visa because Visa
writes airline names in capitals) — or, for a code no list describes, its ISO range's description.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import iso18245
import polars as pl

from engine.refdata.provenance import write_artefact

NAME = "ref_mcc"
SCHEMA = pl.Schema({"mcc": pl.UInt16, "description": pl.String})
DESCRIPTION_ORDER = (
    "iso_description",
    "mastercard_description",
    "visa_description",
    "amex_description",
    "stripe_description",
    "usda_description",
    "alipay_description",
)


def _description(entry: iso18245.MCC) -> tuple[str, str]:
    """(source field, text) of the first non-empty description, falling back to the ISO range's."""
    for field in DESCRIPTION_ORDER:
        text = getattr(entry, field).strip()
        if text:
            return field, text
    return "range_description", entry.range.description.strip()


def mcc_table() -> tuple[pl.DataFrame, Counter[str]]:
    """The MCC table and how many descriptions each source list supplied."""
    chosen: dict[int, tuple[str, str]] = {}
    for entry in iso18245.get_all_mccs():  # sorted by code string; the first spelling of a number wins
        chosen.setdefault(int(entry.mcc), _description(entry))
    rows = [(code, text) for code, (_, text) in sorted(chosen.items())]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row"), Counter(source for source, _ in chosen.values())


def build(out_dir: Path) -> None:
    df, sources = mcc_table()
    write_artefact(
        NAME,
        df,
        out_dir,
        repairs=[],
        notes=[
            "all codes of iso18245.get_all_mccs(): ISO 18245 plus the Visa, Mastercard, Amex, Stripe and "
            "USDA lists",
            "deduplicated by numeric code; description = first non-empty of " + ", ".join(DESCRIPTION_ORDER),
        ],
        extra={"description_sources": dict(sorted(sources.items()))},
    )
