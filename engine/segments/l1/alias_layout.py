"""The `alias_layout.yaml` policy model shared by 2B (site and group tables) and 3B (edge tables): edge slices
must be byte-compatible with 2B's, so both segments validate their copy of the pack with this one model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from engine.core.policy_model import FieldError, Strict

if TYPE_CHECKING:
    from engine.kernels.alias_blob import AliasLayout


class AliasLayoutPolicy(Strict):
    layout_version: Literal[1]
    magic: Literal["ALS1"]
    endianness: Literal["little"]
    alignment_bytes: Literal[8, 16, 32]
    mass_bits: Annotated[int, Field(ge=1, le=32)]
    # the shared decoder's coin is a raw lane's low 32 bits, so the quantisation is Q0.32
    prob_qbits: Literal[32]

    @model_validator(mode="after")
    def _mass_fits(self) -> AliasLayoutPolicy:
        if self.mass_bits > self.prob_qbits:
            raise FieldError(f"mass_bits {self.mass_bits} exceeds prob_qbits {self.prob_qbits}", "mass_bits")
        return self

    def layout(self) -> AliasLayout:
        """The kernels' view of the same fields (engine/kernels/alias_blob.py; imported here so that
        validating the policy loads no numba)."""
        from engine.kernels.alias_blob import AliasLayout

        return AliasLayout(**self.model_dump())
