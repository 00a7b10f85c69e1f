"""The building blocks every segment's policy models are made of; the models themselves live with their
segment (`<segment package>/policy.py`, named in the segment registry, engine/states.py).

Every model is `Strict`: unknown keys, a bool or float where an integer is due, a string where a number is
due, and .inf/.nan are refused, so `100` and `100.0` can never mean two different worlds. A cross-field rule
raises `FieldError` with the path of the field it concerns, so the error names that field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from engine.core.policy_codes import Code


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class FieldError(ValueError):
    """A cross-field rule broken at `path` (relative to the raising model), so the error names that field."""

    def __init__(self, message: str, *path: str | int) -> None:
        super().__init__(message)
        self.path = path


def pair(item: Any) -> Any:
    """A (lo, hi) pair as YAML writes it, a 2-list: only the tuple is lax (a list is accepted), its items
    stay strict."""
    return Annotated[tuple[item, item], Field(strict=False)]


def ordered(lo_hi: tuple[float, float], *path: str | int) -> None:
    if lo_hi[0] > lo_hi[1]:
        raise FieldError(f"[{lo_hi[0]}, {lo_hi[1]}] is reversed: lo must not exceed hi", *path)


def number_text(value: Any) -> Any:
    """Text that may be written as a number (`--config` items, and so every override, read `1` as one): it
    is sealed as its text, so `1` and `"1"` are one value."""
    return str(value) if type(value) is int else value


# a text field a YAML writer or the command line may give as a number (ids, versions, targets)
NumberText = BeforeValidator(number_text, json_schema_input_type=str | int)

Prob = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
# logit / log-linear coefficients: e^10 already moves odds or means by a factor of 22 000
Coef = Annotated[float, Field(ge=-10.0, le=10.0)]
# exponents applied to GDP (~1e13) or population: beyond 4 the weights overflow towards inf
Exponent = Annotated[float, Field(gt=0.0, le=4.0)]
Iso2 = Annotated[str, Field(pattern=r"^[A-Z]{2}$"), Code("country")]
Mcc = Annotated[int, Field(ge=0, le=9999)]
MccCode = Annotated[Mcc, Code("mcc")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$"), Code("currency")]


def expand_codes(mccs: list[int], ranges: list[tuple[int, int]], *path: str | int) -> list[int]:
    """The listed MCCs and every member of the (ordered) ranges."""
    codes = list(mccs)
    for i, (lo, hi) in enumerate(ranges):
        ordered((lo, hi), *path, "ranges", i)
        codes.extend(range(lo, hi + 1))
    return codes


class Check(Strict):
    id: Annotated[str, Field(pattern=r"^[0-9A-Z]{2,3}\.R[0-9]{2}[a-z]?$")]
    metric: str
    lo: float | None
    hi: float | None
    severity: Literal["REQUIRED", "WARN"]
    min_support: Annotated[int, Field(ge=1)] | None = None


class ReplaySample(Strict):
    share: Annotated[float, Field(gt=0.0, le=1.0)]
    min_rows: Annotated[int, Field(ge=1)]


class Validation(Strict):
    min_support: Annotated[int, Field(ge=1)]
    replay_sample: ReplaySample | None = None
    checks: list[Check] = Field(min_length=1)

    @model_validator(mode="after")
    def _checks(self) -> Validation:
        seen: dict[str, int] = {}
        for i, check in enumerate(self.checks):
            if check.id in seen:
                raise FieldError(f"check id {check.id} repeats checks.{seen[check.id]}", "checks", i, "id")
            seen[check.id] = i
            if check.lo is not None and check.hi is not None:
                ordered((check.lo, check.hi), "checks", i, "lo")
        return self


def validation_model(seg: str, metrics: tuple[str, ...]) -> type[Validation]:
    """A segment's validation pack: check ids carry the segment, and a check may only name a metric the
    segment's validation state computes (an unknown one would fail after the data was written)."""
    check = create_model(
        f"Check{seg}",
        __base__=Check,
        id=(Annotated[str, Field(pattern=rf"^{seg}\.R[0-9]{{2}}[a-z]?$")], ...),
        metric=(Literal[metrics], ...),
    )
    return create_model(f"Validation{seg}", __base__=Validation, checks=(list[check], Field(min_length=1)))
