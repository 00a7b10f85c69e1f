# Reference artefacts, built from installed registry packages and shipped files (never downloaded).
# The build folder is named by the recipe id, so a new package version or recipe gets a new folder.


rule ref_build:
    output:
        table=str(ROOT / "resources/{ref}/build={rid}/{ref}.parquet"),
        provenance=str(ROOT / "resources/{ref}/build={rid}/provenance.json"),
    wildcard_constraints:
        ref=r"ref_[a-z0-9_]+",
        rid=r"[0-9a-f]{64}",
    conda:
        CONDA_ENV
    shell:
        "{ENV} {ENGINE} ref-build {wildcards.ref} --out $(dirname {output.table:q})"
