"""`--config policy_overrides=…` reaches the engine as text: Snakemake reads nested values with YAML's
BaseLoader, so a quoted "4853" and a plain 4853 arrive alike. Each text leaf is therefore typed by the policy
field it overrides: YAML 1.2's reading where the field's JSON Schema admits it, the text itself where the
field takes text only (a Mastercard reason code "4853", a Visa code "10.4" stay text)."""

from __future__ import annotations

import json
import re
from typing import Any

from engine.core import yaml12
from engine.core.contracts import policy_schema_path, registry

NAME = re.compile(r"[A-Za-z0-9_]+")  # a segment or policy name: never a path out of contracts/policies/
Branch = tuple[dict[str, Any], Any]  # a schema and the `referencing` resolver its `$ref`s resolve through
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}


def typed_overrides(overrides: Any) -> Any:
    """Every text leaf of `policy_overrides` ({segment: {policy: doc}}) typed by its field; a segment or
    policy without a schema (an unknown name, refused later with its closest valid name) by YAML 1.2 alone."""
    if not isinstance(overrides, dict):
        return typed(overrides, [])
    out: dict[Any, Any] = {}
    for seg, packs in overrides.items():
        if not isinstance(packs, dict):
            out[seg] = typed(packs, [])
            continue
        out[seg] = {}
        for name, doc in packs.items():
            path = policy_schema_path(str(seg), str(name))
            schemas = []
            if all(NAME.fullmatch(str(part)) for part in (seg, name)) and path.is_file():
                schema = json.loads(path.read_text())
                schemas = [(schema, registry().resolver(base_uri=schema["$id"]))]
            out[seg][name] = typed(doc, schemas)
    return out


def typed(value: Any, schemas: list[Branch]) -> Any:
    """`value` with its text leaves typed under `schemas` (the alternatives its field may take)."""
    branches = _expanded(schemas)
    if isinstance(value, dict):
        return {k: typed(v, _children(branches, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v, _children(branches, i)) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    reading = yaml12.scalar(value)
    if isinstance(reading, str) or _admits(branches, reading) or not _admits(branches, value):
        return reading
    return value


def _expanded(schemas: list[Branch]) -> list[Branch]:
    """The alternatives with `$ref`s followed and anyOf/oneOf/allOf branches listed on their own."""
    out = []
    for schema, resolver in schemas:
        if "$ref" in schema:
            found = resolver.lookup(schema["$ref"])
            out += _expanded([(found.contents, found.resolver)])
        branches = [(b, resolver) for key in ("anyOf", "oneOf", "allOf") for b in schema.get(key, [])]
        out += _expanded(branches) if branches else [(schema, resolver)]
    return out


def _children(branches: list[Branch], key: str | int) -> list[Branch]:
    """The schemas a mapping's `key` (or a list's item `key`) may take under any of `branches`."""
    out = []
    for schema, resolver in branches:
        if isinstance(key, int):
            prefix = schema.get("prefixItems", [])
            child = prefix[key] if key < len(prefix) else schema.get("items")
        else:
            child = schema.get("properties", {}).get(key, schema.get("additionalProperties"))
        if isinstance(child, dict):
            out.append((child, resolver))
    return out


def _admits(branches: list[Branch], value: Any) -> bool:
    """Whether some branch's type, enum or const admits `value` (bool is not a number here)."""
    for schema, _ in branches:
        if "const" in schema or "enum" in schema:
            allowed = schema.get("enum", [schema.get("const")])
            if any(type(a) is type(value) and a == value for a in allowed):
                return True
            continue
        kinds = schema.get("type")
        if kinds is None:
            return True  # a branch without a type takes anything
        for kind in [kinds] if isinstance(kinds, str) else kinds:
            if isinstance(value, JSON_TYPES[kind]) and not (kind != "boolean" and isinstance(value, bool)):
                return True
    return False
