# E9, E10: attacks made on one source cell (final weights or an early-stopped epoch), tried on the targets
# of the study's transfer block; every seed in one job.
rule transfer:
    input:
        unpack(transfer_inputs),
    output:
        per_seed(f"results/eval/{MODEL}/s{{seed}}/transfer/{{study}}/{{source}}.json"),
    log:
        f"results/logs/transfer/{MODEL}/{{study}}/{{source}}.log",
    benchmark:
        f"results/benchmarks/transfer/{MODEL}/transfer/{{study}}/{{source}}.tsv"
    threads: 1
    resources:
        gpu=1,
    params:
        plan=transfer_plan,
        settings=transfer_settings,
    shell:
        "{PY} -m normrobust transfer --plan {params.plan} --data {input.data} "
        "--settings {params.settings} --threads {threads} 2> {log}"
