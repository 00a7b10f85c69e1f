"""Policy packs: resolved from config, validated strictly twice (JSON Schema, then pydantic).

The JSON Schemas under contracts/policies/ are generated from the pydantic models (`python -m engine
contracts --write`), and a test keeps them in sync, so the two validators cannot drift.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import BaseModel, ValidationError

from engine.core.config import REPO_ROOT, deep_merge
from engine.core.contracts import BASE_URI, CONTRACTS_DIR, registry
from engine.core.errors import EngineError
from engine.core.horizon import POLICIES as CFG_POLICIES
from engine.segments.l1.ingress.policy import POLICIES as ING_POLICIES
from engine.segments.l1.s1a.policy import POLICIES as S1A_POLICIES
from engine.segments.l1.s1b.policy import POLICIES as S1B_POLICIES
from engine.segments.l1.s2a.policy import POLICIES as S2A_POLICIES

# "CFG" policies are not shipped files: they are resolved from the run config itself (the horizon)
MODELS: dict[str, dict[str, type[BaseModel]]] = {
    "CFG": CFG_POLICIES,
    "ING": ING_POLICIES,
    "1A": S1A_POLICIES,
    "1B": S1B_POLICIES,
    "2A": S2A_POLICIES,
}
POLICY_DIR = REPO_ROOT / "config" / "policies"


def schema_path(seg: str, name: str) -> Path:
    return CONTRACTS_DIR / "policies" / seg / f"{name}.schema.json"


def generated_schema(seg: str, name: str) -> dict[str, Any]:
    schema = MODELS[seg][name].model_json_schema()
    schema["$id"] = f"{BASE_URI}policies/{seg}/{name}.schema.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def schema_text(seg: str, name: str) -> str:
    return json.dumps(generated_schema(seg, name), indent=2, sort_keys=True) + "\n"


@cache
def _validator(seg: str, name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(schema_path(seg, name).read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry())


def _where(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<root>"


def validate_policy(seg: str, name: str, doc: Any, *, source: str, state: str) -> BaseModel:
    """Strict JSON-Schema check, then the pydantic model the code uses; E_POLICY_INVALID names the field."""
    errors = sorted(_validator(seg, name).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        raise EngineError(
            "E_POLICY_INVALID",
            f"{err.message}",
            where=f"{source} field {_where(err.absolute_path)}",
            fix=f"correct the policy (schema contracts/policies/{seg}/{name}.schema.json)",
            state=state,
        )
    try:
        return MODELS[seg][name].model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise EngineError(
            "E_POLICY_INVALID",
            err["msg"],
            where=f"{source} field {_where(err['loc'])}",
            fix="correct the policy so its cross-field rules hold",
            state=state,
        ) from None


def dump_policy(doc: Any) -> bytes:
    """The resolved policy's byte form (sealed and hashed): sorted-key YAML."""
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, allow_unicode=True).encode("utf-8")


def resolve_policy(
    seg: str,
    name: str,
    overrides: dict[str, dict[str, dict[str, Any]]],
    config_docs: dict[str, Any] | None = None,
) -> bytes:
    """Shipped policy (or, for CFG, the run config's own value) + overrides, validated; the bytes to seal."""
    if seg == "CFG":
        doc, label = (config_docs or {})[name], f"config field {name}"
    else:
        source = POLICY_DIR / seg / f"{name}.yaml"
        doc = deep_merge(yaml.safe_load(source.read_text()), overrides.get(seg, {}).get(name, {}))
        label = f"config/policies/{seg}/{name}.yaml (+ policy_overrides)"
    validate_policy(seg, name, doc, source=label, state="config")
    return dump_policy(doc)


def load_policy_file(seg: str, name: str, path: Path, *, state: str) -> BaseModel:
    return validate_policy(seg, name, yaml.safe_load(path.read_text()), source=str(path), state=state)
