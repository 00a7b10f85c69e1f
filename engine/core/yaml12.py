"""YAML with the 1.2 core schema's plain scalars: only true/false are booleans, no sexagesimal or `_` numbers,
no timestamps. PyYAML resolves YAML 1.1, where `NO` (Norway) is false and `1:30` is 90; every YAML the engine
reads (config, presets, policies, `--config` values, contracts) goes through `load` here instead."""

from __future__ import annotations

import re
from typing import Any

import yaml

_LOADER_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_RESOLVERS_12 = (
    (_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    (_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), "-+0123456789"),
    (
        _FLOAT,
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        "-+.0123456789",
    ),
)


def _without_11_scalars(resolvers: dict[Any, list[tuple[str, Any]]]) -> dict[Any, list[tuple[str, Any]]]:
    drop = {_BOOL, _INT, _FLOAT, _TIMESTAMP}
    return {first: [(tag, rx) for tag, rx in rs if tag not in drop] for first, rs in resolvers.items()}


def _int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    return int(text[2:] if base != 10 else text, base)


def _float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    return float(str(loader.construct_scalar(node)).lower().replace(".inf", "inf").replace(".nan", "nan"))


def _bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"


class Loader(_LOADER_BASE):  # type: ignore[misc]
    """SafeLoader with 1.2 core-schema resolvers and constructors for bool, int and float."""

    yaml_implicit_resolvers = _without_11_scalars(_LOADER_BASE.yaml_implicit_resolvers)


class _Dumper(yaml.SafeDumper):
    """SafeDumper that also quotes strings a 1.2 reader would type (e.g. `0o17`), so a dump reads back
    the same under both 1.1 and 1.2 readers."""


for _tag, _rx, _first in _RESOLVERS_12:
    Loader.add_implicit_resolver(_tag, _rx, list(_first))
    _Dumper.add_implicit_resolver(_tag, _rx, list(_first))
for _tag, _construct in ((_BOOL, _bool), (_INT, _int), (_FLOAT, _float)):
    Loader.add_constructor(_tag, _construct)


def load(text: str | bytes) -> Any:
    """One YAML document under the 1.2 core schema (the engine's only YAML reader)."""
    return yaml.load(text, Loader=Loader)


def scalar(text: str) -> Any:
    """The value of `text` as one plain YAML 1.2 scalar: how a `--config` value, which Snakemake hands over
    as text, is typed (`14` → 14, `NO` → 'NO', `2026-01-05T00:00:00Z` → text)."""
    loader = Loader("")
    try:
        return loader.construct_object(
            yaml.ScalarNode(loader.resolve(yaml.ScalarNode, text, (True, False)), text)
        )
    finally:
        loader.dispose()


def dump(doc: Any) -> str:
    """Sorted-key block YAML that reads back identically under YAML 1.1 and 1.2 readers."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True)
