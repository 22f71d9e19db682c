rule evaluate:
    input:
        model=f"results/models/{CELL}/model.pt",
        data="results/data/{dataset}.pt",
    output:
        f"results/eval/{CELL}/metrics.json",
    log:
        f"results/logs/evaluate/{CELL}.log",
    benchmark:
        f"results/benchmarks/evaluate/{CELL}.tsv"
    threads: 1
    resources:
        gpu=1,
    params:
        settings=json_arg(config["evaluation"]),
        device=config.get("device", "auto"),
    shell:
        "{PY} -m normrobust evaluate --model {input.model} --data {input.data} "
        "--settings {params.settings} --device {params.device} --out {output} "
        "--threads {threads} 2> {log}"
