# Segment 3A — zone allocation. One rule per state; see engine/segments/l1/s3a/<state>.py,
# contracts/3A.yaml and tests/segments/test_3a_*.py.

MF_3A = PLAN["3A"].manifest_fingerprint
GATE_3A = gate_dir(ROOT, "3A", MF_3A)
SEALED_3A = str(GATE_3A / "sealed_inputs.json")
UPSTREAM_3A = str(gate_dir(ROOT, "3A", MF_3A, "{seed}") / "sealed_upstream.json")
RUN_3A = run_state(MF_3A, seeded=False)
RUN_3A_SEED = run_state(MF_3A)


rule seg3A_s0_gate:
    """Seed-free seal of 3A's policies, 2A's resolver settings, the tz references and 1B's tile tables,
    plus every seed's 1A, 1B and 2A flags."""
    input:
        policy_files("3A"),
        reference_files("3A"),
        SEALED_2A,
        expand(f"{BUNDLE_1A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_1B}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_2A}/_passed.flag", seed=SEEDS),
        expand(ds("outlet_catalogue", MF_1A), seed=SEEDS),
        expand(ds("site_timezones", MF_2A), seed=SEEDS),
        ds("tile_index", MF_1B, seed=None),
        ds("tile_weights", MF_1B, seed=None),
        spec=spec_file("3A"),
    output:
        sealed=SEALED_3A,
        receipt=str(GATE_3A / "s0_gate_receipt.json"),
        upstream=expand(UPSTREAM_3A, seed=SEEDS),
    log:
        job_log("3A", "s0_gate", seeded=False),
    benchmark:
        job_benchmark("3A", "s0_gate", seeded=False),
    resources:
        mem_mb=500,
    conda:
        CONDA_ENV
    shell:
        run_spec_state("3A.S0")


rule seg3A_s1_escalation:
    input:
        SEALED_3A,
        UPSTREAM_3A,
    output:
        ds("s1_pairs", MF_3A),
        ds("s1_pair_zones", MF_3A),
        state_report("3A", "s1_escalation"),
    log:
        job_log("3A", "s1_escalation"),
    benchmark:
        job_benchmark("3A", "s1_escalation"),
    resources:
        mem_mb=400,
    params:
        state="3A.S1",
    conda:
        CONDA_ENV
    shell:
        RUN_3A_SEED


rule seg3A_s2_zone_priors:
    input:
        SEALED_3A,
    output:
        ds("s2_zone_priors", MF_3A, seed=None),
        state_report("3A", "s2_zone_priors", seeded=False),
    log:
        job_log("3A", "s2_zone_priors", seeded=False),
    benchmark:
        job_benchmark("3A", "s2_zone_priors", seeded=False),
    resources:
        mem_mb=4600,
    params:
        state="3A.S2",
    conda:
        CONDA_ENV
    shell:
        RUN_3A


rule seg3A_s3_zone_shares:
    input:
        SEALED_3A,
        UPSTREAM_3A,
        rules.seg3A_s1_escalation.output,
        rules.seg3A_s2_zone_priors.output,
    output:
        ds("s3_zone_shares", MF_3A),
        state_report("3A", "s3_zone_shares"),
    log:
        job_log("3A", "s3_zone_shares"),
    benchmark:
        job_benchmark("3A", "s3_zone_shares"),
    resources:
        mem_mb=400,
    params:
        state="3A.S3",
    conda:
        CONDA_ENV
    shell:
        RUN_3A_SEED


rule seg3A_s4_zone_counts:
    input:
        SEALED_3A,
        UPSTREAM_3A,
        rules.seg3A_s1_escalation.output,
        rules.seg3A_s3_zone_shares.output,
    output:
        ds("s4_zone_counts", MF_3A),
        state_report("3A", "s4_zone_counts"),
    log:
        job_log("3A", "s4_zone_counts"),
    benchmark:
        job_benchmark("3A", "s4_zone_counts"),
    resources:
        mem_mb=300,
    params:
        state="3A.S4",
    conda:
        CONDA_ENV
    shell:
        RUN_3A_SEED


rule seg3A_s5_zone_alloc:
    input:
        SEALED_3A,
        UPSTREAM_3A,
        rules.seg3A_s1_escalation.output,
        rules.seg3A_s2_zone_priors.output,
        rules.seg3A_s4_zone_counts.output,
    output:
        ds("zone_alloc", MF_3A),
        str(ROOT / "data/layer1/3A/zone_alloc_universe/seed={seed}" / f"manifest_fingerprint={MF_3A}" / "zone_alloc_universe.json"),
        state_report("3A", "s5_zone_alloc"),
    log:
        job_log("3A", "s5_zone_alloc"),
    benchmark:
        job_benchmark("3A", "s5_zone_alloc"),
    resources:
        mem_mb=300,
    params:
        state="3A.S5",
    conda:
        CONDA_ENV
    shell:
        RUN_3A_SEED


BUNDLE_3A = str(bundle_dir(ROOT, "3A", "{seed}", MF_3A))


rule seg3A_s6_validation:
    input:
        SEALED_3A,
        UPSTREAM_3A,
        rules.seg3A_s1_escalation.output,
        rules.seg3A_s2_zone_priors.output,
        rules.seg3A_s3_zone_shares.output,
        rules.seg3A_s4_zone_counts.output,
        rules.seg3A_s5_zone_alloc.output,
    output:
        [f"{BUNDLE_3A}/{name}" for name in [*BUNDLE_FILES, "zone_mix_tv.json"]],
    log:
        job_log("3A", "s6_validation"),
    benchmark:
        job_benchmark("3A", "s6_validation"),
    resources:
        mem_mb=300,
    params:
        state="3A.S6",
    conda:
        CONDA_ENV
    shell:
        RUN_3A_SEED


rule seg3A:
    """3A's validation bundle with _passed.flag and every 3A output, for every configured seed."""
    input:
        rules.seg2A.input,
        expand(rules.seg3A_s6_validation.output, seed=SEEDS),
        expand(rules.seg3A_s6_validation.input, seed=SEEDS),
        rules.seg3A_s0_gate.input,
