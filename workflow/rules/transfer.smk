# E9, E10: attacks made on one source model (final weights or an early-stopped epoch), tried on the targets of the
# study's transfer block; every seed in one job.
rule transfer:
    input:
        unpack(get_transfer_inputs),
    output:
        per_seed(L.transfer_file, "{study}", "{source}"),
    log:
        L.log("transfer", L.transfer_target(MODEL, "{study}", "{source}")),
    benchmark:
        L.benchmark("transfer", L.transfer_target(MODEL, "{study}", "{source}"))
    threads: 1
    resources:
        gpu=1,
    params:
        plan=get_transfer_plan,
        settings=lambda w: json_arg(PLAN.transfer_settings(w.study).to_json()),
    shell:
        "{PY} -m normrobust transfer --plan {params.plan} --data {input.data} "
        "--settings {params.settings} --threads {threads} 2> {log}"
