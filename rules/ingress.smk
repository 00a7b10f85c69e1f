# Ingress: the merchant universe (generated from policy, or a user file), sealed by 1A.S0.

MF_ING = PLAN["ING"].manifest_fingerprint


rule ingress_merchant_universe:
    input:
        policy_files("ING"),
        reference_files("ING"),
        spec=spec_file("ING"),
    output:
        table=ds("merchant_universe", MF_ING),
        report=str(ingress_report_path(ROOT, MF_ING)),
    log:
        job_log("ING", "merchant_universe", seeded=False),
    benchmark:
        job_benchmark("ING", "merchant_universe", seeded=False),
    resources:
        mem_mb=500,
    conda:
        CONDA_ENV
    shell:
        run_spec_state("ING")
