"""1A.S0 — seal the merchant universe, the references and 1A's policies (README §6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from engine.core.canonical import sha256_file
from engine.core.contracts import dataset_file, dictionary, validate_table
from engine.core.errors import EngineError
from engine.core.layout import ingress_report_path
from engine.core.policy import load_policy_file
from engine.core.sealing import check_fingerprint, check_policies, check_references, write_gate

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


def _check_policy_codes(root: Path, sealed: dict[str, str], mcc_ref: pl.DataFrame) -> None:
    sectors = load_policy_file("1A", "sectors", root / sealed["1A/sectors.yaml"], state=STATE)
    known = set(mcc_ref["mcc"].to_list())
    for name, sector in sectors.sectors.items():
        unknown = [c for c in sector.mccs if c not in known]
        if unknown:
            raise EngineError(
                "E_POLICY_INVALID",
                f"sector {name} lists MCCs not in ref_mcc: {unknown}",
                where=sealed["1A/sectors.yaml"],
                fix="list only ISO 18245 codes",
                state=STATE,
            )
    for key in sealed:
        if key.startswith("1A/"):
            load_policy_file("1A", key[3:].removesuffix(".yaml"), root / sealed[key], state=STATE)


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
    check_fingerprint(spec, STATE)
    inputs = check_policies(root, spec, STATE) + check_references(root, spec, STATE)
    paths = {i["id"]: i["path"] for i in inputs}
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
    mcc_ref = pl.read_parquet(root / paths["ref_mcc"])
    _check_universe(
        pl.read_parquet(universe_path),
        pl.read_parquet(root / paths["ref_countries"]),
        mcc_ref,
        str(universe_path),
    )
    _check_policy_codes(root, paths, mcc_ref)
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
