# Segment 5A — expected demand intensity. One rule per state; see engine/segments/l2/s5a/<state>.py,
# contracts/5A.yaml, docs/datasets/5A.md and tests/segments/test_5a_*.py. S4 runs per scenario and shard; its
# shard-0 job also writes the scenario's scenario_events (named to Snakemake through the run report).

MF_5A = PLAN["5A"].manifest_fingerprint
GATE_5A = gate_dir(ROOT, "5A", MF_5A)
SEALED_5A = str(GATE_5A / "sealed_inputs.json")
UPSTREAM_5A = str(gate_dir(ROOT, "5A", MF_5A, "{seed}") / "sealed_upstream.json")
RUN_5A = run_state(MF_5A, seeded=False, layer2=True)
RUN_5A_SEED = run_state(MF_5A, layer2=True)


rule seg5A_s0_gate:
    """Seed-free seal of 5A's policies and scenario packs, the horizon 2A sealed and the references, plus
    every seed's 1A, 2A, 3A and 3B flags and the merchants, zones, tz cache and virtual modes 5A reads."""
    input:
        policy_files("5A"),
        reference_files("5A"),
        SEALED_2A,
        expand(f"{BUNDLE_1A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_2A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_3A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_3B}/_passed.flag", seed=SEEDS),
        expand(ds("merchant_catalogue", MF_1A), seed=SEEDS),
        expand(ds("zone_alloc", MF_3A), seed=SEEDS),
        expand(ds("virtual_classification", MF_3B), seed=SEEDS),
        ds("tz_transitions", MF_2A, seed=None),
        ds("tz_dst_windows", MF_2A, seed=None),
        spec=spec_file("5A"),
    output:
        sealed=SEALED_5A,
        receipt=str(GATE_5A / "s0_gate_receipt.json"),
        upstream=expand(UPSTREAM_5A, seed=SEEDS),
    log:
        job_log("5A", "s0_gate", seeded=False),
    benchmark:
        job_benchmark("5A", "s0_gate", seeded=False),
    resources:
        mem_mb=500,
    conda:
        CONDA_ENV
    shell:
        run_spec_state("5A.S0")


rule seg5A_s1_class_scale:
    input:
        SEALED_5A,
        UPSTREAM_5A,
    output:
        ds("merchant_zone_profile", MF_5A),
        state_report("5A", "s1_class_scale"),
    log:
        job_log("5A", "s1_class_scale"),
    benchmark:
        job_benchmark("5A", "s1_class_scale"),
    resources:
        mem_mb=1000,
    params:
        state="5A.S1",
    conda:
        CONDA_ENV
    shell:
        RUN_5A_SEED


rule seg5A_s2_shapes:
    input:
        SEALED_5A,
    output:
        ds("shape_library", MF_5A, seed=None),
        state_report("5A", "s2_shapes", seeded=False),
    log:
        job_log("5A", "s2_shapes", seeded=False),
    benchmark:
        job_benchmark("5A", "s2_shapes", seeded=False),
    resources:
        mem_mb=400,
    params:
        state="5A.S2",
    conda:
        CONDA_ENV
    shell:
        RUN_5A


rule seg5A_s3_baseline:
    input:
        SEALED_5A,
        UPSTREAM_5A,
        rules.seg5A_s1_class_scale.output,
        rules.seg5A_s2_shapes.output,
    output:
        ds("merchant_zone_baseline", MF_5A),
        state_report("5A", "s3_baseline"),
    log:
        job_log("5A", "s3_baseline"),
    benchmark:
        job_benchmark("5A", "s3_baseline"),
    resources:
        mem_mb=2000,
    params:
        state="5A.S3",
    conda:
        CONDA_ENV
    shell:
        RUN_5A_SEED


rule seg5A_s4_scenario:
    input:
        SEALED_5A,
        UPSTREAM_5A,
        rules.seg5A_s1_class_scale.output,
        rules.seg5A_s3_baseline.output,
    output:
        ds("merchant_zone_scenario", MF_5A),
        state_report("5A", "s4_scenario", scenario=True, shard=True),
    log:
        job_log("5A", "s4_scenario", scenario=True, shard=True),
    benchmark:
        job_benchmark("5A", "s4_scenario", scenario=True, shard=True),
    resources:
        mem_mb=3000,
    params:
        state="5A.S4",
    conda:
        CONDA_ENV
    shell:
        run_state(MF_5A, scenario=True, shard=True)


BUNDLE_5A = str(bundle_dir(ROOT, "5A", "{seed}", MF_5A))


rule seg5A_s5_validation:
    input:
        SEALED_5A,
        UPSTREAM_5A,
        rules.seg5A_s1_class_scale.output,
        rules.seg5A_s2_shapes.output,
        rules.seg5A_s3_baseline.output,
        expand(rules.seg5A_s4_scenario.output, scenario=SCENARIOS, shard=SHARDS, allow_missing=True),
    output:
        [f"{BUNDLE_5A}/{name}" for name in [*BUNDLE_FILES, "dst_audit.json", "summary.json"]],
    log:
        job_log("5A", "s5_validation"),
    benchmark:
        job_benchmark("5A", "s5_validation"),
    resources:
        mem_mb=3000,
    params:
        state="5A.S5",
    conda:
        CONDA_ENV
    shell:
        RUN_5A_SEED


rule seg5A:
    """5A's validation bundle with _passed.flag and every 5A output, for every configured seed."""
    input:
        rules.seg3A.input,
        rules.seg3B.input,
        expand(rules.seg5A_s5_validation.output, seed=SEEDS),
        expand(rules.seg5A_s5_validation.input, seed=SEEDS),
        rules.seg5A_s0_gate.input,
