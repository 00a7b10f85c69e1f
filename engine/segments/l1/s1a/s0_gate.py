"""1A.S0 — seal the merchant universe, the references and 1A's policies (README §6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from engine.core.canonical import sha256_file
from engine.core.contracts import dataset_file, dictionary, validate_table
from engine.core.errors import EngineError
from engine.core.gates import read_input_table
from engine.core.layout import ingress_report_path
from engine.core.sealing import check_inputs, write_gate

STATE = "1A.S0"


def _check_universe(
    universe: pl.DataFrame, countries: pl.DataFrame, mcc_ref: pl.DataFrame, where: str
) -> None:
    validate_table(universe, dictionary()["merchant_universe"]["schema"], where=where, state=STATE)
    eligible = countries.filter(pl.col("eligible"))["iso2"].implode()
    bad_home = universe.filter(~pl.col("home_country_iso").is_in(eligible))
    if bad_home.height:
        raise EngineError(
            "E_1A_HOME_UNKNOWN",
            f"{bad_home.height} merchants have a non-eligible home, e.g. {bad_home['home_country_iso'][0]}",
            where=where,
            fix="use eligible home countries (see ref_countries.eligible)",
            state=STATE,
        )
    bad_mcc = universe.filter(~pl.col("mcc").is_in(mcc_ref["mcc"].implode()))
    if bad_mcc.height:
        raise EngineError(
            "E_1A_MCC_UNKNOWN",
            f"{bad_mcc.height} merchants have an MCC not in ref_mcc, e.g. {bad_mcc['mcc'][0]}",
            where=where,
            fix="use ISO 18245 merchant category codes",
            state=STATE,
        )


def _check_ingress_digest(root: Path, ing_mf: str, universe_path: Path) -> None:
    """The universe must still be the bytes the ingress published (its report records the digest)."""
    report = ingress_report_path(root, ing_mf)
    recorded = json.loads(report.read_text()).get("sha256") if report.is_file() else None
    if recorded != sha256_file(universe_path):
        raise EngineError(
            "E_SEALED_INPUT_DIGEST_MISMATCH",
            "the merchant universe differs from what the ingress published",
            where=str(universe_path),
            fix="delete the universe partition and rerun so the ingress rebuilds it",
            state=STATE,
        )


def run(root: Path, spec: dict[str, Any]) -> None:
    inputs, paths = check_inputs(root, spec, STATE)
    universe_path = dataset_file(root, "merchant_universe", mf=spec["upstream"]["ING"])
    if not universe_path.is_file():
        raise EngineError(
            "E_UPSTREAM_MISSING",
            "the merchant universe has not been produced",
            where=str(universe_path),
            fix="run the ingress rule first (snakemake ingress_merchant_universe)",
            state=STATE,
        )
    _check_ingress_digest(root, spec["upstream"]["ING"], universe_path)
    _check_universe(
        read_input_table(universe_path, state=STATE),
        read_input_table(paths["ref_countries"], state=STATE),
        read_input_table(paths["ref_mcc"], state=STATE),
        str(universe_path),
    )
    inputs.append(
        {
            "id": "merchant_universe",
            "kind": "upstream_dataset",
            "path": str(universe_path.relative_to(root)),
            "sha256": sha256_file(universe_path),
        }
    )
    checks = ["fingerprint", "policies", "references", "universe_schema", "universe_homes", "universe_mccs"]
    write_gate(root, spec, inputs, checks, STATE)
