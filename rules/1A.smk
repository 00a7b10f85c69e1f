# Segment 1A — merchants and outlet counts per country. One rule per state; see
# engine/segments/l1/s1a/<state>.py, contracts/1A.yaml and tests/segments/test_1a_<state>.py.

MF_1A = PLAN["1A"].manifest_fingerprint
GATE_1A = gate_dir(ROOT, "1A", MF_1A)
SEALED_1A = str(GATE_1A / "sealed_inputs.json")
RUN_1A = run_state(MF_1A, seeded=False)
RUN_1A_SEED = run_state(MF_1A)


rule seg1A_s0_gate:
    input:
        policy_files("1A"),
        reference_files("1A"),
        universe=ds("merchant_universe", MF_ING),
        ingress_report=rules.ingress_merchant_universe.output.report,
        spec=spec_file("1A"),
    output:
        sealed=SEALED_1A,
        receipt=str(GATE_1A / "s0_gate_receipt.json"),
    log:
        job_log("1A", "s0_gate", seeded=False),
    benchmark:
        job_benchmark("1A", "s0_gate", seeded=False),
    resources:
        mem_mb=400,
    conda:
        CONDA_ENV
    shell:
        run_spec_state("1A.S0")


rule seg1A_s1_hurdle:
    input:
        SEALED_1A,
    output:
        ds("s1_hurdle", MF_1A),
        state_report("1A", "s1_hurdle"),
    log:
        job_log("1A", "s1_hurdle"),
    benchmark:
        job_benchmark("1A", "s1_hurdle"),
    resources:
        mem_mb=500,
    params:
        state="1A.S1",
    conda:
        CONDA_ENV
    shell:
        RUN_1A_SEED


rule seg1A_s2_nb_outlets:
    input:
        SEALED_1A,
        rules.seg1A_s1_hurdle.output,
    output:
        ds("s2_outlet_count", MF_1A),
        state_report("1A", "s2_nb_outlets"),
    log:
        job_log("1A", "s2_nb_outlets"),
    benchmark:
        job_benchmark("1A", "s2_nb_outlets"),
    resources:
        mem_mb=500,
    params:
        state="1A.S2",
    conda:
        CONDA_ENV
    shell:
        RUN_1A_SEED


rule seg1A_s3_candidates:
    input:
        SEALED_1A,
        rules.seg1A_s1_hurdle.output,
        rules.seg1A_s2_nb_outlets.output,
    output:
        ds("s3_candidates", MF_1A),
        ds("s3_open", MF_1A),
        state_report("1A", "s3_candidates"),
    log:
        job_log("1A", "s3_candidates"),
    benchmark:
        job_benchmark("1A", "s3_candidates"),
    resources:
        mem_mb=600,
    params:
        state="1A.S3",
    conda:
        CONDA_ENV
    shell:
        RUN_1A_SEED


rule seg1A_s4_ztp:
    input:
        SEALED_1A,
        rules.seg1A_s2_nb_outlets.output,
        rules.seg1A_s3_candidates.output,
    output:
        ds("s4_foreign_count", MF_1A),
        state_report("1A", "s4_ztp"),
    log:
        job_log("1A", "s4_ztp"),
    benchmark:
        job_benchmark("1A", "s4_ztp"),
    resources:
        mem_mb=500,
    params:
        state="1A.S4",
    conda:
        CONDA_ENV
    shell:
        RUN_1A_SEED


rule seg1A_s5_currency_weights:
    input:
        SEALED_1A,
    output:
        ds("ccy_country_weights", MF_1A, seed=None),
        state_report("1A", "s5_currency_weights", seeded=False),
    log:
        job_log("1A", "s5_currency_weights", seeded=False),
    benchmark:
        job_benchmark("1A", "s5_currency_weights", seeded=False),
    resources:
        mem_mb=600,
    params:
        state="1A.S5",
    conda:
        CONDA_ENV
    shell:
        RUN_1A


rule seg1A_s6_foreign_set:
    input:
        SEALED_1A,
        rules.seg1A_s3_candidates.output,
        rules.seg1A_s4_ztp.output,
        rules.seg1A_s5_currency_weights.output,
    output:
        ds("s6_foreign_set", MF_1A),
        state_report("1A", "s6_foreign_set"),
    log:
        job_log("1A", "s6_foreign_set"),
    benchmark:
        job_benchmark("1A", "s6_foreign_set"),
    resources:
        mem_mb=600,
    params:
        state="1A.S6",
    conda:
        CONDA_ENV
    shell:
        RUN_1A_SEED


rule seg1A_s7_integerise:
    input:
        SEALED_1A,
        rules.seg1A_s2_nb_outlets.output,
        rules.seg1A_s5_currency_weights.output,
        rules.seg1A_s6_foreign_set.output,
    output:
        ds("s7_country_counts", MF_1A),
        state_report("1A", "s7_integerise"),
    log:
        job_log("1A", "s7_integerise"),
    benchmark:
        job_benchmark("1A", "s7_integerise"),
    resources:
        mem_mb=600,
    params:
        state="1A.S7",
    conda:
        CONDA_ENV
    shell:
        RUN_1A_SEED


rule seg1A_s8_outlet_catalogue:
    input:
        SEALED_1A,
        rules.seg1A_s1_hurdle.output,
        rules.seg1A_s2_nb_outlets.output,
        rules.seg1A_s3_candidates.output,
        rules.seg1A_s7_integerise.output,
    output:
        ds("outlet_catalogue", MF_1A),
        ds("merchant_catalogue", MF_1A),
        state_report("1A", "s8_outlet_catalogue"),
    log:
        job_log("1A", "s8_outlet_catalogue"),
    benchmark:
        job_benchmark("1A", "s8_outlet_catalogue"),
    resources:
        mem_mb=600,
    params:
        state="1A.S8",
    conda:
        CONDA_ENV
    shell:
        RUN_1A_SEED


BUNDLE_1A = str(bundle_dir(ROOT, "1A", "{seed}", MF_1A))


rule seg1A_s9_validation:
    input:
        SEALED_1A,
        rules.seg1A_s1_hurdle.output,
        rules.seg1A_s2_nb_outlets.output,
        rules.seg1A_s3_candidates.output,
        rules.seg1A_s4_ztp.output,
        rules.seg1A_s5_currency_weights.output,
        rules.seg1A_s6_foreign_set.output,
        rules.seg1A_s7_integerise.output,
        rules.seg1A_s8_outlet_catalogue.output,
    output:
        [f"{BUNDLE_1A}/{name}" for name in BUNDLE_FILES],
    log:
        job_log("1A", "s9_validation"),
    benchmark:
        job_benchmark("1A", "s9_validation"),
    resources:
        mem_mb=600,
    params:
        state="1A.S9",
    conda:
        CONDA_ENV
    shell:
        RUN_1A_SEED


rule seg1A:
    """1A's validation bundle with _passed.flag and every 1A output, for every configured seed.

    Naming every output (not only the flag) and every sealed input (policies, references) makes a deleted
    intermediate partition, policy or reference count as missing, so it and what depends on it are rebuilt.
    """
    input:
        expand(rules.seg1A_s9_validation.output, seed=SEEDS),
        expand(rules.seg1A_s9_validation.input, seed=SEEDS),
        rules.seg1A_s0_gate.input,
        rules.ingress_merchant_universe.input,
