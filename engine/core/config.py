"""Run configuration: preset + config.yaml + `--config` overrides, validated once by pydantic.

Everything is typed strictly (see `Strict`): `100.0` is not an integer, `true` is not a number, and a
string where a string is due stays one (`NO` is Norway). Snakemake hands `--config` values over as text
(nested ones through YAML's BaseLoader) and reads config.yaml with YAML 1.1; `cli_typed` gives both the YAML
1.2 core-schema meaning the engine reads every other YAML with (engine/core/yaml12.py). `policy_overrides`
leaves are typed by the policy field they override instead (engine/core/override_types.py).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from engine.core import yaml12
from engine.core.errors import EngineError
from engine.core.horizon import Horizon
from engine.core.override_types import typed_overrides
from engine.core.policy_model import FieldError, Strict
from engine.states import SEGMENTS

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = Path("config") / "config.yaml"  # the Snakefile's configfile, relative to the repository
PRESETS = ("tiny", "default", "large")
# the scenario packs the design's 5A ships (layer2_3.md §0.2)
SCENARIOS = ("baseline", "holiday_peak")


@cache
def segment_policies() -> dict[str, dict[str, type[BaseModel]]]:
    """The shipped policy packs `policy_overrides` may override, by segment (engine/states.py), each segment's
    models imported on first use."""
    return {seg: sdef.policy_models() for seg, sdef in SEGMENTS.items()}


def closest(value: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the nearest valid name (ignoring case), else the valid names."""
    names = sorted(choices)
    by_lower = {n.lower(): n for n in names}
    near = difflib.get_close_matches(value.lower(), list(by_lower), n=1)
    return f" (did you mean {by_lower[near[0]]!r}?)" if near else f" (known: {', '.join(names)})"


class UniverseSource(Strict):
    source: Literal["generate", "file"] = "generate"
    path: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _path_with_file(self) -> UniverseSource:
        if self.source == "file" and self.path is None:
            raise FieldError("merchant_universe.source is 'file' but no path is given", "path")
        if self.source == "generate" and self.path is not None:
            raise FieldError("merchant_universe.path is only read with source 'file'", "path")
        return self


class RunConfig(Strict):
    """The validated run configuration every rule and state works from."""

    preset: Literal["tiny", "default", "large"]
    output_root: Annotated[str, Field(min_length=1)] = "."
    seeds: list[Annotated[int, Field(ge=0, lt=2**64)]] = Field(min_length=1)
    shards: Annotated[int, Field(ge=1, le=4096)] = 1
    scenarios: list[str] = Field(min_length=1)
    merchant_universe: UniverseSource = UniverseSource()
    horizon: Horizon
    policy_overrides: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    # per-draw RNG event logs under logs/ (operational, never read back): no data byte or fingerprint
    # depends on it
    rng_event_log: Literal["off", "sample", "full"] = "off"

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        for i, seed in enumerate(seeds):
            if seed in seeds[:i]:
                raise FieldError(f"seed {seed} is listed twice (seeds.{seeds.index(seed)})", i)
        return seeds

    @field_validator("scenarios")
    @classmethod
    def _known_scenarios(cls, scenarios: list[str]) -> list[str]:
        for i, name in enumerate(scenarios):
            if name not in SCENARIOS:
                raise FieldError(f"unknown scenario {name!r}{closest(name, SCENARIOS)}", i)
            if name in scenarios[:i]:
                raise FieldError(f"scenario {name!r} is listed twice", i)
        return scenarios

    @field_validator("policy_overrides")
    @classmethod
    def _known_packs(
        cls, overrides: dict[str, dict[str, dict[str, Any]]]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """Names are checked here, values when the plan resolves each policy (E_POLICY_INVALID)."""
        for seg, packs in overrides.items():
            if seg not in SEGMENTS:
                raise FieldError(f"unknown segment {seg!r}{closest(seg, SEGMENTS)}", seg)
            for name, doc in packs.items():
                models = SEGMENTS[seg].policy_models()
                if name not in models:
                    raise FieldError(f"unknown {seg} policy {name!r}{closest(name, models)}", seg, name)
                fields = models[name].model_fields
                for key in doc:
                    if key not in fields:
                        raise FieldError(
                            f"unknown field {key!r} of {seg}/{name}{closest(key, fields)}", seg, name, key
                        )
        return overrides


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; lists and scalars in `override` replace those in `base`."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _same(a: Any, b: Any) -> bool:
    """Deep equality that tells 1 from 1.0 from true."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


_ABSENT = object()
OVERRIDES = "policy_overrides"


def cli_typed(
    value: Any, as11: Any = _ABSENT, as12: Any = None, *, leaf: Callable[[str], Any] = yaml12.scalar
) -> Any:
    """What Snakemake hands over, read as YAML 1.2: a value equal to the config file's YAML-1.1 reading
    (`as11`) takes the file's 1.2 reading (`as12`); any other text leaf is a `--config` scalar and is typed
    by `leaf` (the 1.2 core schema). (A `--config` value equal to the file's 1.1 reading counts as the
    file's.)"""
    if as11 is not _ABSENT and _same(value, as11):
        return copy.deepcopy(as12)
    if isinstance(value, dict):
        both = isinstance(as11, dict) and isinstance(as12, dict)
        return {
            k: cli_typed(v, as11[k], as12[k], leaf=leaf)
            if both and k in as11 and k in as12
            else cli_typed(v, leaf=leaf)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [cli_typed(v, leaf=leaf) for v in value]
    return leaf(value) if isinstance(value, str) else value


def _config_file_readings(repo_root: Path) -> tuple[Any, Any]:
    """config.yaml as Snakemake read it (YAML 1.1, through yte's FullLoader) and as the engine reads it."""
    path = repo_root / CONFIG_FILE
    if not path.is_file():
        return _ABSENT, None
    text = path.read_text()
    return yaml.load(text, Loader=yaml.FullLoader), yaml12.load(text)


FIXES = {
    "finite_number": "write a finite number (.inf and .nan are not allowed)",
    "int_type": "write a whole number: no decimal point, quotes or true/false",
    "float_type": "write a number: no quotes or true/false",
    "bool_type": "write true or false",
    "string_type": "write text (quote it if YAML would read a number or true/false)",
    "list_type": "write a list, e.g. [a, b]",
    "dict_type": "write a mapping, e.g. {key: value}",
    "tuple_type": "write a two-item list [lo, hi]",
    "missing": "add the field",
    "extra_forbidden": "remove the field or correct its spelling",
    "literal_error": "use one of the listed values",
    "value_error": "correct the value so the rule holds",
}
BOUNDS_FIX = "use a value inside the stated bounds"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the nested model at `loc` (empty when `loc` leaves the model tree)."""
    for part in loc:
        info = model.model_fields.get(part) if isinstance(part, str) else None
        ann = info.annotation if info else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def explain(err: ErrorDetails, model: type[BaseModel]) -> tuple[str, str, str]:
    """One pydantic error as (field path, what, fix); a `FieldError` adds its own path."""
    loc = tuple(p for p in err["loc"] if p != "[key]")
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        loc, what = loc + cause.path, str(cause)
    elif isinstance(cause, ValueError):
        what = str(cause)
    elif err["type"] == "extra_forbidden":
        what = f"unknown field {loc[-1]!r}{closest(str(loc[-1]), _fields_at(model, loc[:-1]))}"
    else:
        what = f"{err['msg']} (got {_shown(err.get('input'))})"
    fix = FIXES.get(err["type"], BOUNDS_FIX)
    return ".".join(str(p) for p in loc) or "<root>", what, fix


def read_yaml(path: Path, *, code: str, state: str) -> Any:
    """A user-editable YAML file (preset, policy) under the 1.2 core schema; a syntax error is `code`."""
    try:
        return yaml12.load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        raise EngineError(
            code, f"not valid YAML: {problem}{at}", where=str(path), fix="fix the YAML syntax", state=state
        ) from None


def _config_error(what: str, path: str, fix: str) -> EngineError:
    return EngineError("E_CONFIG_INVALID", what, where=f"config field {path}", fix=fix, state="config")


def load_run_config(raw: dict[str, Any], repo_root: Path = REPO_ROOT) -> RunConfig:
    """Resolve the preset named in `raw` and validate the merged config (E_CONFIG_INVALID on error)."""
    as11, as12 = _config_file_readings(repo_root)
    raw, overrides = {k: v for k, v in raw.items() if k != OVERRIDES}, raw.get(OVERRIDES, _ABSENT)
    raw = cli_typed(raw, as11, as12)
    if overrides is not _ABSENT:  # text leaves stay text here and are typed by the policy field they override
        from_file = (
            isinstance(as11, dict) and OVERRIDES in as11 and isinstance(as12, dict) and OVERRIDES in as12
        )
        file11, file12 = (as11[OVERRIDES], as12[OVERRIDES]) if from_file else (_ABSENT, None)
        raw[OVERRIDES] = typed_overrides(cli_typed(overrides, file11, file12, leaf=str))
    preset = raw.get("preset", "default")
    if preset not in PRESETS:
        raise _config_error(f"unknown preset {preset!r}", "preset", f"use one of {', '.join(PRESETS)}")
    preset_file = repo_root / "config" / "presets" / f"{preset}.yaml"
    preset_doc = read_yaml(preset_file, code="E_CONFIG_INVALID", state="config") or {}
    if not isinstance(preset_doc, dict):
        raise EngineError(
            "E_CONFIG_INVALID",
            "a preset must be a mapping of config fields",
            where=str(preset_file),
            fix="write the preset as `key: value` lines",
            state="config",
        )
    try:
        return RunConfig.model_validate(deep_merge(preset_doc, {**raw, "preset": preset}))
    except ValidationError as exc:
        path, what, fix = explain(exc.errors()[0], RunConfig)
        raise _config_error(
            what, path, f"{fix}, in config/config.yaml or on the --config command line"
        ) from None
