# Segment 6A — the entity world (design layer2_3.md §3). One rule per state; see engine/segments/l3/s6a/<state>.py,
# contracts/6A.yaml, docs/datasets/6A.md and tests/segments/test_6a_*.py. 6A is scenario-free and unsharded: its
# tables are the bank's static world, read whole by every 6B shard. It needs no 5B output, so it runs beside 5B.

MF_6A = PLAN["6A"].manifest_fingerprint
GATE_6A = gate_dir(ROOT, "6A", MF_6A)
SEALED_6A = str(GATE_6A / "sealed_inputs.json")
UPSTREAM_6A = str(gate_dir(ROOT, "6A", MF_6A, "{seed}") / "sealed_upstream.json")
RUN_6A_SEED = run_state(MF_6A)


rule seg6A_s0_gate:
    """Seed-free seal of 6A's policies, the horizon and the references, plus every seed's 1A, 2A, 2B, 3B and 5A
    flags and the merchants, sites, site weights, virtual modes and demand profile 6A reads."""
    input:
        policy_files("6A"),
        reference_files("6A"),
        SEALED_2A,
        expand(f"{BUNDLE_1A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_2A}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_2B}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_3B}/_passed.flag", seed=SEEDS),
        expand(f"{BUNDLE_5A}/_passed.flag", seed=SEEDS),
        spec=spec_file("6A"),
    output:
        sealed=SEALED_6A,
        receipt=str(GATE_6A / "s0_gate_receipt.json"),
        upstream=expand(UPSTREAM_6A, seed=SEEDS),
    log:
        job_log("6A", "s0_gate", seeded=False),
    benchmark:
        job_benchmark("6A", "s0_gate", seeded=False),
    resources:
        mem_mb=800,
    conda:
        CONDA_ENV
    shell:
        run_spec_state("6A.S0")


rule seg6A_s1_parties:
    input:
        SEALED_6A,
        UPSTREAM_6A,
    output:
        ds("parties", MF_6A),
        state_report("6A", "s1_parties"),
    log:
        job_log("6A", "s1_parties"),
    benchmark:
        job_benchmark("6A", "s1_parties"),
    resources:
        mem_mb=2000,
    params:
        state="6A.S1",
    conda:
        CONDA_ENV
    shell:
        RUN_6A_SEED


rule seg6A_s2_accounts:
    input:
        SEALED_6A,
        UPSTREAM_6A,
        rules.seg6A_s1_parties.output,
    output:
        ds("accounts", MF_6A),
        ds("issuers", MF_6A),
        state_report("6A", "s2_accounts"),
    log:
        job_log("6A", "s2_accounts"),
    benchmark:
        job_benchmark("6A", "s2_accounts"),
    resources:
        mem_mb=3000,
    params:
        state="6A.S2",
    conda:
        CONDA_ENV
    shell:
        RUN_6A_SEED


rule seg6A_s3_instruments:
    input:
        SEALED_6A,
        UPSTREAM_6A,
        rules.seg6A_s1_parties.output,
        rules.seg6A_s2_accounts.output,
    output:
        ds("instruments", MF_6A),
        state_report("6A", "s3_instruments"),
    log:
        job_log("6A", "s3_instruments"),
    benchmark:
        job_benchmark("6A", "s3_instruments"),
    resources:
        mem_mb=4000,
    params:
        state="6A.S3",
    conda:
        CONDA_ENV
    shell:
        RUN_6A_SEED


rule seg6A_s4_terminals:
    input:
        SEALED_6A,
        UPSTREAM_6A,
    output:
        ds("terminals", MF_6A),
        state_report("6A", "s4_terminals"),
    log:
        job_log("6A", "s4_terminals"),
    benchmark:
        job_benchmark("6A", "s4_terminals"),
    resources:
        mem_mb=2000,
    params:
        state="6A.S4",
    conda:
        CONDA_ENV
    shell:
        RUN_6A_SEED


rule seg6A_s5_devices_ips:
    input:
        SEALED_6A,
        UPSTREAM_6A,
        rules.seg6A_s1_parties.output,
        rules.seg6A_s4_terminals.output,
    output:
        ds("devices", MF_6A),
        ds("device_links", MF_6A),
        ds("ips", MF_6A),
        ds("ip_links", MF_6A),
        state_report("6A", "s5_devices_ips"),
    log:
        job_log("6A", "s5_devices_ips"),
    benchmark:
        job_benchmark("6A", "s5_devices_ips"),
    resources:
        mem_mb=5000,
    params:
        state="6A.S5",
    conda:
        CONDA_ENV
    shell:
        RUN_6A_SEED


rule seg6A_s6_roles:
    input:
        SEALED_6A,
        UPSTREAM_6A,
        rules.seg6A_s1_parties.output,
        rules.seg6A_s2_accounts.output,
        rules.seg6A_s3_instruments.output,
        rules.seg6A_s5_devices_ips.output,
    output:
        ds("party_roles", MF_6A),
        ds("account_roles", MF_6A),
        ds("device_roles", MF_6A),
        ds("ip_roles", MF_6A),
        ds("merchant_roles", MF_6A),
        state_report("6A", "s6_roles"),
    log:
        job_log("6A", "s6_roles"),
    benchmark:
        job_benchmark("6A", "s6_roles"),
    resources:
        mem_mb=5000,
    params:
        state="6A.S6",
    conda:
        CONDA_ENV
    shell:
        RUN_6A_SEED


BUNDLE_6A = str(bundle_dir(ROOT, "6A", "{seed}", MF_6A))


rule seg6A_s7_validation:
    input:
        SEALED_6A,
        UPSTREAM_6A,
        rules.seg6A_s1_parties.output,
        rules.seg6A_s2_accounts.output,
        rules.seg6A_s3_instruments.output,
        rules.seg6A_s4_terminals.output,
        rules.seg6A_s5_devices_ips.output,
        rules.seg6A_s6_roles.output,
    output:
        [f"{BUNDLE_6A}/{name}" for name in [*BUNDLE_FILES, "summary.json"]],
    log:
        job_log("6A", "s7_validation"),
    benchmark:
        job_benchmark("6A", "s7_validation"),
    resources:
        mem_mb=5000,
    params:
        state="6A.S7",
    conda:
        CONDA_ENV
    shell:
        RUN_6A_SEED


rule seg6A:
    """6A's validation bundle with _passed.flag and every 6A output, for every configured seed."""
    input:
        rules.seg5A.input,
        expand(rules.seg6A_s7_validation.output, seed=SEEDS),
        expand(rules.seg6A_s7_validation.input, seed=SEEDS),
        rules.seg6A_s0_gate.input,
