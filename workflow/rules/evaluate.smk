# Every seed of one cell in one job: the dataset is loaded once.
rule evaluate:
    input:
        models=per_seed(f"results/models/{MODEL}/s{{seed}}/model.pt"),
        data="results/data/{dataset}.pt",
    output:
        per_seed(f"results/eval/{MODEL}/s{{seed}}/metrics.json"),
    log:
        f"results/logs/evaluate/{MODEL}.log",
    benchmark:
        f"results/benchmarks/evaluate/{MODEL}.tsv"
    threads: 1
    resources:
        gpu=1,
    params:
        settings=json_arg(config["evaluation"]),
        device=config.get("device", "auto"),
    shell:
        "{PY} -m normrobust evaluate --model {input.models} --data {input.data} "
        "--settings {params.settings} --device {params.device} --out {output} "
        "--threads {threads} 2> {log}"
