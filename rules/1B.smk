# Segment 1B — outlet coordinates. One rule per state; see engine/segments/l1/s1b/<state>.py,
# contracts/1B.yaml and tests/segments/test_1b_<state>.py.

MF_1B = PLAN["1B"].manifest_fingerprint
GATE_1B = gate_dir(ROOT, "1B", MF_1B)
SEALED_1B = str(GATE_1B / "sealed_inputs.json")
UPSTREAM_1B = str(gate_dir(ROOT, "1B", MF_1B, "{seed}") / "sealed_upstream.json")
RUN_1B = run_state(MF_1B, seeded=False)
RUN_1B_SEED = run_state(MF_1B)


rule seg1B_s0_gate:
    """Seed-free seal of policies and references, plus every seed's verified 1A flag and outlet digest."""
    input:
        policy_files("1B"),
        reference_files("1B"),
        expand(f"{BUNDLE_1A}/_passed.flag", seed=SEEDS),
        expand(ds("outlet_catalogue", MF_1A), seed=SEEDS),
        spec=spec_file("1B"),
    output:
        sealed=SEALED_1B,
        receipt=str(GATE_1B / "s0_gate_receipt.json"),
        upstream=expand(UPSTREAM_1B, seed=SEEDS),
    log:
        job_log("1B", "s0_gate", seeded=False),
    benchmark:
        job_benchmark("1B", "s0_gate", seeded=False),
    resources:
        mem_mb=600,
    conda:
        CONDA_ENV
    shell:
        run_spec_state("1B.S0")


rule seg1B_s1_tile_index:
    input:
        SEALED_1B,
    output:
        ds("tile_index", MF_1B, seed=None),
        state_report("1B", "s1_tile_index", seeded=False),
    log:
        job_log("1B", "s1_tile_index", seeded=False),
    benchmark:
        job_benchmark("1B", "s1_tile_index", seeded=False),
    resources:
        mem_mb=5900,
    params:
        state="1B.S1",
    conda:
        CONDA_ENV
    shell:
        RUN_1B


rule seg1B_s2_tile_weights:
    input:
        SEALED_1B,
        rules.seg1B_s1_tile_index.output,
    output:
        ds("tile_weights", MF_1B, seed=None),
        state_report("1B", "s2_tile_weights", seeded=False),
    log:
        job_log("1B", "s2_tile_weights", seeded=False),
    benchmark:
        job_benchmark("1B", "s2_tile_weights", seeded=False),
    resources:
        mem_mb=4600,
    params:
        state="1B.S2",
    conda:
        CONDA_ENV
    shell:
        RUN_1B


rule seg1B_s3_requirements:
    input:
        SEALED_1B,
        UPSTREAM_1B,
        rules.seg1B_s1_tile_index.output,
    output:
        ds("s3_requirements", MF_1B),
        state_report("1B", "s3_requirements"),
    log:
        job_log("1B", "s3_requirements"),
    benchmark:
        job_benchmark("1B", "s3_requirements"),
    resources:
        mem_mb=1900,
    params:
        state="1B.S3",
    conda:
        CONDA_ENV
    shell:
        RUN_1B_SEED


rule seg1B_s4_tile_sampler:
    input:
        SEALED_1B,
        rules.seg1B_s2_tile_weights.output,
    output:
        ds("tile_sampler", MF_1B, seed=None),
        state_report("1B", "s4_tile_sampler", seeded=False),
    log:
        job_log("1B", "s4_tile_sampler", seeded=False),
    benchmark:
        job_benchmark("1B", "s4_tile_sampler", seeded=False),
    threads: 2
    resources:
        mem_mb=4200,
    params:
        state="1B.S4",
    conda:
        CONDA_ENV
    shell:
        RUN_1B


rule seg1B_s5_site_tile:
    input:
        SEALED_1B,
        UPSTREAM_1B,
        rules.seg1B_s3_requirements.output,
        rules.seg1B_s4_tile_sampler.output,
    output:
        ds("s5_site_tile", MF_1B),
        state_report("1B", "s5_site_tile"),
    log:
        job_log("1B", "s5_site_tile"),
    benchmark:
        job_benchmark("1B", "s5_site_tile"),
    threads: 2
    resources:
        mem_mb=2600,
    params:
        state="1B.S5",
    conda:
        CONDA_ENV
    shell:
        RUN_1B_SEED


rule seg1B_s6_jitter:
    input:
        SEALED_1B,
        UPSTREAM_1B,
        rules.seg1B_s1_tile_index.output,
        rules.seg1B_s5_site_tile.output,
    output:
        ds("s6_site_jitter", MF_1B),
        state_report("1B", "s6_jitter"),
    log:
        job_log("1B", "s6_jitter"),
    benchmark:
        job_benchmark("1B", "s6_jitter"),
    threads: 2
    resources:
        mem_mb=3800,
    params:
        state="1B.S6",
    conda:
        CONDA_ENV
    shell:
        RUN_1B_SEED


rule seg1B_s7_synthesis:
    input:
        SEALED_1B,
        UPSTREAM_1B,
        rules.seg1B_s5_site_tile.output,
        rules.seg1B_s6_jitter.output,
    output:
        ds("s7_site_synthesis", MF_1B),
        state_report("1B", "s7_synthesis"),
    log:
        job_log("1B", "s7_synthesis"),
    benchmark:
        job_benchmark("1B", "s7_synthesis"),
    resources:
        mem_mb=3500,
    params:
        state="1B.S7",
    conda:
        CONDA_ENV
    shell:
        RUN_1B_SEED


rule seg1B_s8_site_locations:
    input:
        SEALED_1B,
        UPSTREAM_1B,
        rules.seg1B_s7_synthesis.output,
    output:
        ds("site_locations", MF_1B),
        state_report("1B", "s8_site_locations"),
    log:
        job_log("1B", "s8_site_locations"),
    benchmark:
        job_benchmark("1B", "s8_site_locations"),
    resources:
        mem_mb=600,
    params:
        state="1B.S8",
    conda:
        CONDA_ENV
    shell:
        RUN_1B_SEED


BUNDLE_1B = str(bundle_dir(ROOT, "1B", "{seed}", MF_1B))


rule seg1B_s9_validation:
    input:
        SEALED_1B,
        UPSTREAM_1B,
        rules.seg1B_s1_tile_index.output,
        rules.seg1B_s2_tile_weights.output,
        rules.seg1B_s3_requirements.output,
        rules.seg1B_s4_tile_sampler.output,
        rules.seg1B_s5_site_tile.output,
        rules.seg1B_s6_jitter.output,
        rules.seg1B_s7_synthesis.output,
        rules.seg1B_s8_site_locations.output,
    output:
        [f"{BUNDLE_1B}/{name}" for name in BUNDLE_FILES],
    log:
        job_log("1B", "s9_validation"),
    benchmark:
        job_benchmark("1B", "s9_validation"),
    resources:
        mem_mb=7400,
    params:
        state="1B.S9",
    conda:
        CONDA_ENV
    shell:
        RUN_1B_SEED


rule seg1B:
    """1B's validation bundle with _passed.flag and every 1B output, for every configured seed."""
    input:
        rules.seg1A.input,
        expand(rules.seg1B_s9_validation.output, seed=SEEDS),
        expand(rules.seg1B_s9_validation.input, seed=SEEDS),
        rules.seg1B_s0_gate.input,
