"""Run configuration: preset + config.yaml + `--config` overrides, validated once by pydantic."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.core.errors import EngineError
from engine.core.horizon import Horizon

REPO_ROOT = Path(__file__).resolve().parents[2]
PRESETS = ("tiny", "default", "large")


class UniverseSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: Literal["generate", "file"] = "generate"
    path: str | None = None


class RunConfig(BaseModel):
    """The validated run configuration every rule and state works from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    preset: Literal["tiny", "default", "large"]
    output_root: str = "."
    seeds: list[Annotated[int, Field(ge=0, lt=2**64)]] = Field(min_length=1)
    shards: Annotated[int, Field(ge=1, le=4096)] = 1
    scenarios: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]] = Field(min_length=1)
    merchant_universe: UniverseSource = UniverseSource()
    horizon: Horizon
    policy_overrides: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; lists and scalars in `override` replace those in `base`."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def typed_leaves(obj: Any) -> Any:
    """Re-read string leaves as YAML scalars: `snakemake --config` hands nested values over as strings."""
    if isinstance(obj, dict):
        return {k: typed_leaves(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [typed_leaves(v) for v in obj]
    if isinstance(obj, str):
        try:
            return yaml.safe_load(obj)
        except yaml.YAMLError:
            return obj
    return obj


def _field_path(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err["loc"]) or "<root>"


def load_run_config(raw: dict[str, Any], repo_root: Path = REPO_ROOT) -> RunConfig:
    """Resolve the preset named in `raw` and validate the merged config (E_CONFIG_INVALID on error)."""
    preset = raw.get("preset", "default")
    if preset not in PRESETS:
        raise EngineError(
            "E_CONFIG_INVALID",
            f"unknown preset {preset!r}",
            where="config field preset",
            fix=f"use one of {', '.join(PRESETS)}",
            state="config",
        )
    preset_file = repo_root / "config" / "presets" / f"{preset}.yaml"
    raw = {**raw, "preset": preset}
    if "policy_overrides" in raw:
        raw["policy_overrides"] = typed_leaves(raw["policy_overrides"])
    merged = deep_merge(yaml.safe_load(preset_file.read_text()) or {}, raw)
    try:
        cfg = RunConfig.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise EngineError(
            "E_CONFIG_INVALID",
            f"{err['msg']} (got {err.get('input')!r})",
            where=f"config field {_field_path(err)}",
            fix="correct the value in config/config.yaml or on the --config command line",
            state="config",
        ) from None
    if cfg.merchant_universe.source == "file" and not cfg.merchant_universe.path:
        raise EngineError(
            "E_CONFIG_INVALID",
            "merchant_universe.source is 'file' but no path is given",
            where="config field merchant_universe.path",
            fix="set merchant_universe.path to a CSV or Parquet merchant table",
            state="config",
        )
    return cfg
