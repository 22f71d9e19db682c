# E9, E10: attacks made on one source (final weights or an early-stopped epoch), tried on the targets
# of the study's transfer block.
rule transfer:
    input:
        unpack(transfer_inputs),
    output:
        f"results/eval/{CELL}/transfer/{{study}}/{{source}}.json",
    log:
        f"results/logs/transfer/{CELL}/{{study}}/{{source}}.log",
    benchmark:
        f"results/benchmarks/transfer/{CELL}/transfer/{{study}}/{{source}}.tsv"
    threads: 1
    resources:
        gpu=1,
    params:
        settings=transfer_settings,
        epoch=source_epoch_arg,
        device=config.get("device", "auto"),
    shell:
        "{PY} -m normrobust transfer --source {input.source} {params.epoch} --targets {input.targets} "
        "--data {input.data} --settings {params.settings} --device {params.device} "
        "--out {output} --threads {threads} 2> {log}"
