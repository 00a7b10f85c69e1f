# Segment 5B — realised arrivals. One rule per state; see engine/segments/l2/s5b/<state>.py, contracts/5B.yaml,
# docs/datasets/5B.md and tests/segments/test_5b_*.py. S2 runs per scenario, S3 and S4 per scenario and shard
# (streamed, multi-part: the run report is what Snakemake tracks beside part-00000).

MF_5B = PLAN["5B"].manifest_fingerprint
GATE_5B = gate_dir(ROOT, "5B", MF_5B)
SEALED_5B = str(GATE_5B / "sealed_inputs.json")
UPSTREAM_5B = str(gate_dir(ROOT, "5B", MF_5B, "{seed}") / "sealed_upstream.json")
RUN_5B_SEED = run_state(MF_5B, layer2=True)


rule seg5B_s0_gate:
    """Seed-free seal of 5B's policies, the horizon and the alias layout, plus every seed's 1A, 2A, 2B, 3A, 3B
    and 5A flags and the tables 5B reads; checks the clocks and routes cover the horizon."""
    input:
        policy_files("5B"),
        SEALED_2A,
        SEALED_5A,
        expand(f"{BUNDLE_1A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_2A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_2B}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_3A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_3B}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_5A}/_passed.flag", seed=SEEDS),
        spec=spec_file("5B"),
    output:
        sealed=SEALED_5B,
        receipt=str(GATE_5B / "s0_gate_receipt.json"),
        upstream=expand(UPSTREAM_5B, seed=SEEDS),
    log:
        job_log("5B", "s0_gate", seeded=False),
    benchmark:
        job_benchmark("5B", "s0_gate", seeded=False),
    resources:
        mem_mb=800,
    conda:
        CONDA_ENV
    shell:
        run_spec_state("5B.S0")


rule seg5B_s1_grid_grouping:
    input:
        SEALED_5B,
        UPSTREAM_5B,
    output:
        ds("time_grid", MF_5B),
        ds("grouping", MF_5B),
        state_report("5B", "s1_grid_grouping"),
    log:
        job_log("5B", "s1_grid_grouping"),
    benchmark:
        job_benchmark("5B", "s1_grid_grouping"),
    resources:
        mem_mb=1000,
    params:
        state="5B.S1",
    conda:
        CONDA_ENV
    shell:
        RUN_5B_SEED


rule seg5B_s2_latent:
    input:
        SEALED_5B,
        UPSTREAM_5B,
        rules.seg5B_s1_grid_grouping.output,
    output:
        ds("group_params", MF_5B),
        ds("latent_field", MF_5B),
        state_report("5B", "s2_latent", scenario=True),
    log:
        job_log("5B", "s2_latent", scenario=True),
    benchmark:
        job_benchmark("5B", "s2_latent", scenario=True),
    resources:
        mem_mb=1500,
    params:
        state="5B.S2",
    conda:
        CONDA_ENV
    shell:
        run_state(MF_5B, scenario=True)


rule seg5B_s3_counts:
    input:
        SEALED_5B,
        UPSTREAM_5B,
        rules.seg5B_s1_grid_grouping.output,
        rules.seg5B_s2_latent.output,
    output:
        ds("bucket_counts", MF_5B),
        ds("cell_totals", MF_5B),
        state_report("5B", "s3_counts", scenario=True, shard=True),
    log:
        job_log("5B", "s3_counts", scenario=True, shard=True),
    benchmark:
        job_benchmark("5B", "s3_counts", scenario=True, shard=True),
    resources:
        mem_mb=3000,
    params:
        state="5B.S3",
    conda:
        CONDA_ENV
    shell:
        run_state(MF_5B, scenario=True, shard=True)


rule seg5B_s4_arrivals:
    input:
        SEALED_5B,
        UPSTREAM_5B,
        rules.seg5B_s3_counts.output,
    output:
        ds("arrival_events", MF_5B),
        state_report("5B", "s4_arrivals", scenario=True, shard=True),
    log:
        job_log("5B", "s4_arrivals", scenario=True, shard=True),
    benchmark:
        job_benchmark("5B", "s4_arrivals", scenario=True, shard=True),
    resources:
        mem_mb=3000,
    params:
        state="5B.S4",
    conda:
        CONDA_ENV
    shell:
        run_state(MF_5B, scenario=True, shard=True)


BUNDLE_5B = str(bundle_dir(ROOT, "5B", "{seed}", MF_5B))


rule seg5B_s5_validation:
    input:
        SEALED_5B,
        UPSTREAM_5B,
        rules.seg5B_s1_grid_grouping.output,
        expand(rules.seg5B_s2_latent.output, scenario=SCENARIOS, allow_missing=True),
        expand(rules.seg5B_s3_counts.output, scenario=SCENARIOS, shard=SHARDS, allow_missing=True),
        expand(rules.seg5B_s4_arrivals.output, scenario=SCENARIOS, shard=SHARDS, allow_missing=True),
    output:
        [f"{BUNDLE_5B}/{name}" for name in [*BUNDLE_FILES, "summary.json", "civil_time_audit.json"]],
    log:
        job_log("5B", "s5_validation"),
    benchmark:
        job_benchmark("5B", "s5_validation"),
    resources:
        mem_mb=3000,
    params:
        state="5B.S5",
    conda:
        CONDA_ENV
    shell:
        RUN_5B_SEED


rule seg5B:
    """5B's validation bundle with _passed.flag and every 5B output, for every configured seed."""
    input:
        rules.seg5A.input,
        expand(rules.seg5B_s5_validation.output, seed=SEEDS),
        expand(rules.seg5B_s5_validation.input, seed=SEEDS),
        rules.seg5B_s0_gate.input,
