"""The country universe of every reference artefact: ISO 3166-1 as pinned pycountry lists it."""

from __future__ import annotations

import pycountry


def countries() -> list:
    """pycountry's countries sorted by alpha-2 code (249 in pycountry 26.2.16)."""
    return sorted(pycountry.countries, key=lambda c: c.alpha_2)


def iso2_codes() -> list[str]:
    """Alpha-2 codes of the universe, sorted; other artefacts key on these and nothing else."""
    return [c.alpha_2 for c in countries()]
