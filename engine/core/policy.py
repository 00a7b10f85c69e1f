"""Policy packs: resolved from config, validated strictly twice (JSON Schema, then pydantic).

The JSON Schemas under contracts/policies/ are generated from the pydantic models (`python -m engine
contracts --write`), and a test keeps them in sync, so the two validators cannot drift. The bytes sealed for
a policy are its validated model's dump, so two spellings of one value (`1` and `1.0` for a float, `5e-1` and
`0.5`) resolve to the same bytes and the same fingerprint.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError

from engine.core import yaml12
from engine.core.config import REPO_ROOT, closest, deep_merge, explain, read_yaml, segment_policies
from engine.core.contracts import BASE_URI, registry
from engine.core.contracts import policy_schema_path as schema_path
from engine.core.errors import EngineError
from engine.core.horizon import POLICIES as CFG_POLICIES
from engine.states import SEGMENTS

POLICY_DIR = REPO_ROOT / "config" / "policies"


def policy_models() -> dict[str, dict[str, type[BaseModel]]]:
    """Every policy model by segment: "CFG" (not shipped files: resolved from the run config itself, the
    horizon) and each registered segment's (engine/states.py), all of them imported."""
    return {"CFG": CFG_POLICIES, **segment_policies()}


def policy_model(seg: str, name: str) -> type[BaseModel]:
    """One policy's model, importing only its own segment's policy module."""
    return CFG_POLICIES[name] if seg == "CFG" else SEGMENTS[seg].policy_models()[name]


def generated_schema(seg: str, name: str) -> dict[str, Any]:
    schema = policy_model(seg, name).model_json_schema()
    schema["$id"] = f"{BASE_URI}policies/{seg}/{name}.schema.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def schema_text(seg: str, name: str) -> str:
    return json.dumps(generated_schema(seg, name), indent=2, sort_keys=True) + "\n"


@cache
def _validator(seg: str, name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(schema_path(seg, name).read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry())


def _schema_error(err: jsonschema.ValidationError) -> tuple[list[Any], str]:
    """(field path, what) of a JSON-Schema error; unknown or missing keys and bad names name the key itself
    and the closest valid name."""
    if err.validator in ("anyOf", "oneOf") and err.context:
        # an optional field (`X | None`) fails its object branch: explain that branch, not the union
        branches = [e for e in err.context if not (e.validator == "type" and e.validator_value == "null")]
        if branches:
            return _schema_error(max(branches, key=lambda e: len(e.absolute_path)))
    path = list(err.absolute_path)
    if err.validator == "additionalProperties":
        allowed = err.schema.get("properties", {})
        key = sorted((k for k in err.instance if k not in allowed), key=str)[0]
        return [*path, key], f"unknown field {key!r}{closest(str(key), allowed)}"
    if err.validator == "required":
        key = next(k for k in err.validator_value if k not in err.instance)
        return [*path, key], f"required field {key!r} is missing"
    if "propertyNames" in err.schema_path:
        key = err.instance
        near = closest(str(key), err.validator_value) if err.validator == "enum" else ""
        return [*path, key], f"{key!r} is not a valid key here{near}"
    if err.validator == "enum" and isinstance(err.instance, str):
        return path, f"{err.instance!r} is not allowed{closest(err.instance, err.validator_value)}"
    return path, err.message


def _dotted(path: list[Any]) -> str:
    return ".".join(str(p) for p in path) or "<root>"


def validate_policy(seg: str, name: str, doc: Any, *, source: str, state: str) -> BaseModel:
    """Strict JSON-Schema check, then the pydantic model the code uses; E_POLICY_INVALID names the field."""
    errors = sorted(
        _validator(seg, name).iter_errors(doc),
        key=lambda e: [(isinstance(p, str), p) for p in e.absolute_path],
    )
    if errors:
        path, what = _schema_error(errors[0])
        raise EngineError(
            "E_POLICY_INVALID",
            what,
            where=f"{source} field {_dotted(path)}",
            fix=f"correct the policy (schema contracts/policies/{seg}/{name}.schema.json)",
            state=state,
        )
    model = policy_model(seg, name)
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        where, what, fix = explain(exc.errors()[0], model)
        raise EngineError(
            "E_POLICY_INVALID", what, where=f"{source} field {where}", fix=fix, state=state
        ) from None


def dump_policy(doc: Any) -> bytes:
    """A policy's byte form (sealed and hashed): sorted-key YAML reading back the same as YAML 1.1 or 1.2."""
    return yaml12.dump(doc).encode("utf-8")


def resolve_policy(
    seg: str,
    name: str,
    overrides: dict[str, dict[str, dict[str, Any]]],
    config_docs: dict[str, Any] | None = None,
) -> bytes:
    """Shipped policy (or, for CFG, the run config's own value) + overrides, validated; the bytes to seal are
    the model's JSON-mode dump, so every spelling of one value seals the same bytes."""
    if seg == "CFG":
        doc, label = (config_docs or {})[name], f"config field {name}"
    else:
        shipped = read_yaml(POLICY_DIR / seg / f"{name}.yaml", code="E_POLICY_INVALID", state="config")
        override = overrides.get(seg, {}).get(name, {})
        doc = deep_merge(shipped, override) if isinstance(shipped, dict) else shipped
        label = f"config/policies/{seg}/{name}.yaml (+ policy_overrides)"
    model = validate_policy(seg, name, doc, source=label, state="config")
    return dump_policy(model.model_dump(mode="json"))


def load_policy_file(seg: str, name: str, path: Path, *, state: str) -> BaseModel:
    doc = read_yaml(path, code="E_POLICY_INVALID", state=state)
    return validate_policy(seg, name, doc, source=str(path), state=state)
