# Ingress: the merchant universe (generated from policy, or a user file), sealed by 1A.S0.

MF_ING = PLAN["ING"].manifest_fingerprint


rule ingress_merchant_universe:
    input:
        policy_files("ING"),
        reference_files("ING"),
    output:
        table=ds("merchant_universe", MF_ING),
        report=str(ingress_report_path(ROOT, MF_ING)),
    params:
        spec=spec_arg("ING"),
    conda:
        CONDA_ENV
    shell:
        "{ENV} {ENGINE} run ING --root {QROOT} --spec {params.spec}"
