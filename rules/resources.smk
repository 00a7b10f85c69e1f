# Reference artefacts, built from installed registry packages and shipped files (never downloaded).
# The build folder is named by the recipe id, so a new package version or recipe gets a new folder.
# Tables are Parquet (rule ref_build); population rasters are GeoTIFF (rule ref_build_raster).

REF_BUILD = "{ENV} {ENGINE} ref-build {wildcards.ref} --out $(dirname {output.provenance:q})" + TO_LOG
REF_LOG = str(ROOT / "logs/resources/{ref}/build={rid}/job.log")
REF_BENCHMARK = str(ROOT / "benchmarks/resources/{ref}/build={rid}/benchmark.tsv")


rule ref_build:
    output:
        data=str(ROOT / "resources/{ref}/build={rid}/{ref}.parquet"),
        provenance=str(ROOT / "resources/{ref}/build={rid}/provenance.json"),
    log:
        REF_LOG,
    benchmark:
        REF_BENCHMARK,
    resources:
        mem_mb=1500,
    wildcard_constraints:
        ref=r"ref_(?!population_raster_)[a-z0-9_]+",
        rid=r"[0-9a-f]{64}",
    conda:
        CONDA_ENV
    shell:
        REF_BUILD


rule ref_build_raster:
    output:
        data=str(ROOT / "resources/{ref}/build={rid}/{ref}.tif"),
        provenance=str(ROOT / "resources/{ref}/build={rid}/provenance.json"),
    log:
        REF_LOG,
    benchmark:
        REF_BENCHMARK,
    resources:
        mem_mb=1400,
    wildcard_constraints:
        ref=r"ref_population_raster_[0-9p]+",
        rid=r"[0-9a-f]{64}",
    conda:
        CONDA_ENV
    shell:
        REF_BUILD
