# Segment 2B — routing. One rule per state; see engine/segments/l1/s2b/<state>.py, contracts/2B.yaml and
# tests/segments/test_2b_<state>.py. The alias blobs and JSON evidence are files in their own partitions.

MF_2B = PLAN["2B"].manifest_fingerprint
GATE_2B = gate_dir(ROOT, "2B", MF_2B)
SEALED_2B = str(GATE_2B / "sealed_inputs.json")
UPSTREAM_2B = str(gate_dir(ROOT, "2B", MF_2B, "{seed}") / "sealed_upstream.json")
RUN_2B_SEED = run_state(MF_2B)


def part_2B(name, fname):
    """A file of a 2B partition that is not a Parquet dataset (a blob, an index, JSON evidence)."""
    return str(ROOT / "data/layer1/2B" / name / "seed={seed}" / f"manifest_fingerprint={MF_2B}" / fname)


rule seg2B_s0_gate:
    """Seed-free seal of 2B's policies and the horizon, plus every seed's verified 1B and 2A flags."""
    input:
        policy_files("2B"),
        reference_files("2B"),
        SEALED_2A,
        expand(f"{BUNDLE_1B}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_2A}/_passed.flag", seed=SEEDS),
        expand(ds("site_locations", MF_1B), seed=SEEDS),
        ds("tile_weights", MF_1B, seed=None),
        expand(ds("site_timezones", MF_2A), seed=SEEDS),
        expand(ds("tz_in_use", MF_2A), seed=SEEDS),
        spec=spec_file("2B"),
    output:
        sealed=SEALED_2B,
        receipt=str(GATE_2B / "s0_gate_receipt.json"),
        upstream=expand(UPSTREAM_2B, seed=SEEDS),
    log:
        job_log("2B", "s0_gate", seeded=False),
    benchmark:
        job_benchmark("2B", "s0_gate", seeded=False),
    resources:
        mem_mb=500,
    conda:
        CONDA_ENV
    shell:
        run_spec_state("2B.S0")


rule seg2B_s1_site_weights:
    input:
        SEALED_2B,
        UPSTREAM_2B,
    output:
        ds("s1_site_weights", MF_2B),
        state_report("2B", "s1_site_weights"),
    log:
        job_log("2B", "s1_site_weights"),
    benchmark:
        job_benchmark("2B", "s1_site_weights"),
    resources:
        mem_mb=2400,
    params:
        state="2B.S1",
    conda:
        CONDA_ENV
    shell:
        RUN_2B_SEED


rule seg2B_s2_site_alias:
    input:
        SEALED_2B,
        UPSTREAM_2B,
        rules.seg2B_s1_site_weights.output,
    output:
        ds("s2_site_alias_members", MF_2B),
        part_2B("site_alias", "site_alias.bin"),
        part_2B("site_alias", "site_alias_index.json"),
        state_report("2B", "s2_site_alias"),
    log:
        job_log("2B", "s2_site_alias"),
    benchmark:
        job_benchmark("2B", "s2_site_alias"),
    resources:
        mem_mb=500,
    params:
        state="2B.S2",
    conda:
        CONDA_ENV
    shell:
        RUN_2B_SEED


rule seg2B_s3_day_effects:
    input:
        SEALED_2B,
        UPSTREAM_2B,
        rules.seg2B_s1_site_weights.output,
    output:
        ds("s3_day_effects", MF_2B),
        state_report("2B", "s3_day_effects"),
    log:
        job_log("2B", "s3_day_effects"),
    benchmark:
        job_benchmark("2B", "s3_day_effects"),
    resources:
        mem_mb=1000,
    params:
        state="2B.S3",
    conda:
        CONDA_ENV
    shell:
        RUN_2B_SEED


rule seg2B_s4_group_weights:
    input:
        SEALED_2B,
        UPSTREAM_2B,
        rules.seg2B_s1_site_weights.output,
        rules.seg2B_s3_day_effects.output,
    output:
        ds("s4_group_weights", MF_2B),
        state_report("2B", "s4_group_weights"),
    log:
        job_log("2B", "s4_group_weights"),
    benchmark:
        job_benchmark("2B", "s4_group_weights"),
    resources:
        mem_mb=1000,
    params:
        state="2B.S4",
    conda:
        CONDA_ENV
    shell:
        RUN_2B_SEED


rule seg2B_s5_group_alias:
    input:
        SEALED_2B,
        UPSTREAM_2B,
        rules.seg2B_s4_group_weights.output,
    output:
        part_2B("group_alias", "group_alias.bin"),
        part_2B("group_alias", "group_alias_index.json"),
        state_report("2B", "s5_group_alias"),
    log:
        job_log("2B", "s5_group_alias"),
    benchmark:
        job_benchmark("2B", "s5_group_alias"),
    resources:
        mem_mb=600,
    params:
        state="2B.S5",
    conda:
        CONDA_ENV
    shell:
        RUN_2B_SEED


rule seg2B_s6_router_probe:
    input:
        SEALED_2B,
        UPSTREAM_2B,
        rules.seg2B_s2_site_alias.output,
        rules.seg2B_s4_group_weights.output,
        rules.seg2B_s5_group_alias.output,
    output:
        ds("s6_router_probe", MF_2B),
        part_2B("s6_probe_summary", "s6_probe_summary.json"),
        state_report("2B", "s6_router_probe"),
    log:
        job_log("2B", "s6_router_probe"),
    benchmark:
        job_benchmark("2B", "s6_router_probe"),
    resources:
        mem_mb=2000,
    params:
        state="2B.S6",
    conda:
        CONDA_ENV
    shell:
        RUN_2B_SEED


rule seg2B_s7_audit:
    input:
        SEALED_2B,
        UPSTREAM_2B,
        rules.seg2B_s2_site_alias.output,
        rules.seg2B_s3_day_effects.output,
        rules.seg2B_s4_group_weights.output,
        rules.seg2B_s5_group_alias.output,
    output:
        part_2B("s7_audit", "s7_audit.json"),
        state_report("2B", "s7_audit"),
    log:
        job_log("2B", "s7_audit"),
    benchmark:
        job_benchmark("2B", "s7_audit"),
    resources:
        mem_mb=1100,
    params:
        state="2B.S7",
    conda:
        CONDA_ENV
    shell:
        RUN_2B_SEED


BUNDLE_2B = str(bundle_dir(ROOT, "2B", "{seed}", MF_2B))


rule seg2B_s8_validation:
    input:
        SEALED_2B,
        UPSTREAM_2B,
        rules.seg2B_s1_site_weights.output,
        rules.seg2B_s2_site_alias.output,
        rules.seg2B_s3_day_effects.output,
        rules.seg2B_s4_group_weights.output,
        rules.seg2B_s5_group_alias.output,
        rules.seg2B_s6_router_probe.output,
        rules.seg2B_s7_audit.output,
    output:
        [f"{BUNDLE_2B}/{name}" for name in BUNDLE_FILES],
    log:
        job_log("2B", "s8_validation"),
    benchmark:
        job_benchmark("2B", "s8_validation"),
    resources:
        mem_mb=900,
    params:
        state="2B.S8",
    conda:
        CONDA_ENV
    shell:
        RUN_2B_SEED


rule seg2B:
    """2B's validation bundle with _passed.flag and every 2B output, for every configured seed."""
    input:
        rules.seg2A.input,
        expand(rules.seg2B_s8_validation.output, seed=SEEDS),
        expand(rules.seg2B_s8_validation.input, seed=SEEDS),
        rules.seg2B_s0_gate.input,
