"""The country universe of every reference artefact: ISO 3166-1 as pinned pycountry lists it."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pycountry


def countries() -> list:
    """pycountry's countries sorted by alpha-2 code (249 in pycountry 26.2.16)."""
    return sorted(pycountry.countries, key=lambda c: c.alpha_2)


def iso2_codes() -> list[str]:
    """Alpha-2 codes of the universe, sorted; other artefacts key on these and nothing else."""
    return [c.alpha_2 for c in countries()]


def country_rows(path: Path, header: list[str]) -> Iterator[tuple[str, list[str]]]:
    """("path:line", fields) of each row of a shipped CSV keyed by its first column, iso2. The header must be
    `header`, every iso2 a code of the universe, none twice: a malformed file fails the build loudly."""
    known = set(iso2_codes())
    seen: set[str] = set()
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        got = next(reader, None)
        if got != header:
            raise ValueError(f"{path}: header must be {','.join(header)}, got {got}")
        for line, row in enumerate(reader, start=2):
            where, iso2 = f"{path}:{line}", row[0]
            if iso2 not in known:
                raise ValueError(f"{where}: {iso2!r} is not an ISO 3166-1 alpha-2 code")
            if iso2 in seen:
                raise ValueError(f"{where}: duplicate row for {iso2}")
            seen.add(iso2)
            yield where, row
