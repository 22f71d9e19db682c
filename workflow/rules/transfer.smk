rule transfer:
    input:
        source=f"results/models/{CELL}/model.pt",
        targets=transfer_targets,
        data="results/data/{dataset}.pt",
    output:
        f"results/eval/{CELL}/transfer.json",
    log:
        f"results/logs/transfer/{CELL}.log",
    benchmark:
        f"results/benchmarks/transfer/{CELL}.tsv"
    threads: 1
    resources:
        gpu=1,
    params:
        settings=json_arg(config["transfer"]),
        device=config.get("device", "auto"),
    shell:
        "{PY} -m normrobust transfer --source {input.source} --targets {input.targets} "
        "--data {input.data} --settings {params.settings} --device {params.device} "
        "--out {output} --threads {threads} 2> {log}"
