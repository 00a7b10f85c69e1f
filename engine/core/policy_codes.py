"""Codes named in policies (countries, MCCs, time zones, currencies) checked against the sealed references.

A policy's JSON Schema can only check a code's shape (`^[A-Z]{2}$`); whether `ZZ` is a country needs the
reference the segment's S0 seals. Models mark such fields with `Code`; `check_policy_codes` walks every marked
value of the segment's policies and refuses one its reference does not list, naming the closest valid code.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import polars as pl
from pydantic import BaseModel

from engine.core.errors import EngineError

# code kind → (reference id, column listing the valid codes)
REFERENCES: dict[str, tuple[str, str]] = {
    "country": ("ref_countries", "iso2"),
    "mcc": ("ref_mcc", "mcc"),
    "tzid": ("ref_tz_country", "tzid"),
    "currency": ("ref_currencies", "currency"),
}


@dataclass(frozen=True)
class Code:
    """Marks a policy value as a code of `kind`, or of the kind named by the sibling field `by` (an
    override's scope); kinds without a reference (a site id) are not checked."""

    kind: str = ""
    by: str = ""


Found = tuple[tuple[str | int, ...], str, Any]  # (field path, kind, code)


def _walk(
    ann: Any, value: Any, path: tuple[str | int, ...], owner: BaseModel, marks: list[Code]
) -> Iterator[Found]:
    if value is None:
        return
    for mark in marks:
        kind = mark.kind or str(getattr(owner, mark.by))
        if kind in REFERENCES:
            yield path, kind, value
    origin, args = get_origin(ann), get_args(ann)
    if origin is Annotated:
        yield from _walk(args[0], value, path, owner, [m for m in args[1:] if isinstance(m, Code)])
    elif isinstance(value, BaseModel):
        yield from coded_values(value, path)
    elif origin in (Union, types.UnionType):
        (arg,) = (a for a in args if a is not type(None))
        yield from _walk(arg, value, path, owner, [])
    elif origin is dict:
        for key, item in value.items():
            yield from _walk(args[0], key, (*path, key), owner, [])
            yield from _walk(args[1], item, (*path, key), owner, [])
    elif origin in (list, tuple):
        for i, item in enumerate(value):
            item_ann = args[0] if origin is list or args[-1] is Ellipsis else args[i]
            yield from _walk(item_ann, item, (*path, i), owner, [])


def coded_values(model: BaseModel, path: tuple[str | int, ...] = ()) -> Iterator[Found]:
    """Every value of `model` marked with `Code`, with its field path and kind."""
    for name, info in type(model).model_fields.items():
        marks = [m for m in info.metadata if isinstance(m, Code)]
        yield from _walk(info.annotation, getattr(model, name), (*path, name), model, marks)


def closest_code(code: Any, known: list[Any]) -> Any | None:
    """The nearest valid code (`known` is sorted; ties go to the first): numerically for MCCs, by spelling
    (ignoring case) for the rest, None when no code shares a character with it."""
    if isinstance(code, int):
        return min(known, key=lambda k: abs(k - code))
    text = str(code).lower()
    ratios = [difflib.SequenceMatcher(None, text, str(k).lower()).ratio() for k in known]
    best = max(range(len(known)), key=ratios.__getitem__)
    return known[best] if ratios[best] > 0 else None


def check_policy_codes(policies: Mapping[str, BaseModel], paths: Mapping[str, Path], state: str) -> None:
    """Refuse (E_POLICY_INVALID) a marked code that its sealed reference does not list; `policies` maps input
    ids (`2A/tz_overrides.yaml`) to validated models, `paths` every sealed input id to its file. Kinds whose
    reference this S0 does not seal are left alone."""
    known: dict[str, list[Any]] = {}
    for kind, (ref, column) in REFERENCES.items():
        if ref in paths:
            known[kind] = sorted(set(pl.read_parquet(paths[ref], columns=[column])[column].to_list()))
    for key, model in sorted(policies.items()):
        for path, kind, code in coded_values(model):
            valid = known.get(kind)
            value = int(code) if kind == "mcc" and str(code).isdigit() else code
            if valid is None or value in valid:
                continue
            ref, near = REFERENCES[kind][0], closest_code(value, valid)
            raise EngineError(
                "E_POLICY_INVALID",
                f"{kind} code {value!r} is not in {ref}"
                + (f" (closest: {near!r})" if near is not None else ""),
                where=f"{paths[key]} field {'.'.join(str(p) for p in path)}",
                fix=f"use a code {ref} lists",
                state=state,
            )
