# Segment 2A — civil time. One rule per state; see engine/segments/l1/s2a/<state>.py,
# contracts/2A.yaml and tests/segments/test_2a_<state>.py.

MF_2A = PLAN["2A"].manifest_fingerprint
GATE_2A = gate_dir(ROOT, "2A", MF_2A)
SEALED_2A = str(GATE_2A / "sealed_inputs.json")
UPSTREAM_2A = str(gate_dir(ROOT, "2A", MF_2A, "{seed}") / "sealed_upstream.json")
RUN_2A = run_state(MF_2A, seeded=False)
RUN_2A_SEED = run_state(MF_2A)


rule seg2A_s0_gate:
    """Seed-free seal of tz references, tzdata, horizon and policies, plus every seed's 1A and 1B flags."""
    input:
        policy_files("2A"),
        reference_files("2A"),
        expand(f"{BUNDLE_1A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_1B}/_passed.flag", seed=SEEDS),
        expand(ds("merchant_catalogue", MF_1A), seed=SEEDS),
        expand(ds("site_locations", MF_1B), seed=SEEDS),
        spec=spec_file("2A"),
    output:
        sealed=SEALED_2A,
        receipt=str(GATE_2A / "s0_gate_receipt.json"),
        upstream=expand(UPSTREAM_2A, seed=SEEDS),
    log:
        job_log("2A", "s0_gate", seeded=False),
    benchmark:
        job_benchmark("2A", "s0_gate", seeded=False),
    resources:
        mem_mb=500,
    conda:
        CONDA_ENV
    shell:
        run_spec_state("2A.S0")


rule seg2A_s1_tz_lookup:
    input:
        SEALED_2A,
        UPSTREAM_2A,
    output:
        ds("s1_tz_lookup", MF_2A),
        state_report("2A", "s1_tz_lookup"),
    log:
        job_log("2A", "s1_tz_lookup"),
    benchmark:
        job_benchmark("2A", "s1_tz_lookup"),
    resources:
        mem_mb=1200,
    params:
        state="2A.S1",
    conda:
        CONDA_ENV
    shell:
        RUN_2A_SEED


rule seg2A_s2_site_timezones:
    input:
        SEALED_2A,
        UPSTREAM_2A,
        rules.seg2A_s1_tz_lookup.output,
    output:
        ds("site_timezones", MF_2A),
        ds("tz_in_use", MF_2A),
        state_report("2A", "s2_site_timezones"),
    log:
        job_log("2A", "s2_site_timezones"),
    benchmark:
        job_benchmark("2A", "s2_site_timezones"),
    resources:
        mem_mb=600,
    params:
        state="2A.S2",
    conda:
        CONDA_ENV
    shell:
        RUN_2A_SEED


rule seg2A_s3_tz_cache:
    input:
        SEALED_2A,
    output:
        ds("tz_transitions", MF_2A, seed=None),
        str(ROOT / "data/layer1/2A/tz_cache_manifest" / f"manifest_fingerprint={MF_2A}" / "tz_cache_manifest.json"),
        state_report("2A", "s3_tz_cache", seeded=False),
    log:
        job_log("2A", "s3_tz_cache", seeded=False),
    benchmark:
        job_benchmark("2A", "s3_tz_cache", seeded=False),
    resources:
        mem_mb=500,
    params:
        state="2A.S3",
    conda:
        CONDA_ENV
    shell:
        RUN_2A


rule seg2A_s4_dst_windows:
    input:
        SEALED_2A,
        rules.seg2A_s3_tz_cache.output,
    output:
        ds("tz_dst_windows", MF_2A, seed=None),
        state_report("2A", "s4_dst_windows", seeded=False),
    log:
        job_log("2A", "s4_dst_windows", seeded=False),
    benchmark:
        job_benchmark("2A", "s4_dst_windows", seeded=False),
    resources:
        mem_mb=500,
    params:
        state="2A.S4",
    conda:
        CONDA_ENV
    shell:
        RUN_2A


BUNDLE_2A = str(bundle_dir(ROOT, "2A", "{seed}", MF_2A))


rule seg2A_s5_validation:
    input:
        SEALED_2A,
        UPSTREAM_2A,
        rules.seg2A_s1_tz_lookup.output,
        rules.seg2A_s2_site_timezones.output,
        rules.seg2A_s3_tz_cache.output,
        rules.seg2A_s4_dst_windows.output,
    output:
        [f"{BUNDLE_2A}/{name}" for name in [*BUNDLE_FILES, "s4_legality.json"]],
    log:
        job_log("2A", "s5_validation"),
    benchmark:
        job_benchmark("2A", "s5_validation"),
    resources:
        mem_mb=600,
    params:
        state="2A.S5",
    conda:
        CONDA_ENV
    shell:
        RUN_2A_SEED


rule seg2A:
    """2A's validation bundle with _passed.flag and every 2A output, for every configured seed."""
    input:
        rules.seg1B.input,
        expand(rules.seg2A_s5_validation.output, seed=SEEDS),
        expand(rules.seg2A_s5_validation.input, seed=SEEDS),
        rules.seg2A_s0_gate.input,
