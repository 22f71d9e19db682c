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
        settings=json_arg(evaluation_settings(config)),
    shell:
        "{PY} -m normrobust evaluate --model {input.models} --data {input.data} "
        "--settings {params.settings} --out {output} "
        "--threads {threads} 2> {log}"


# AutoAttack (Croce & Hein 2020, through torchattacks) on every adversarially trained cell, when the config has
# evaluation.autoattack: the reference PGD's robust accuracy is checked against.
rule evaluate_autoattack:
    input:
        models=per_seed(f"results/models/{MODEL}/s{{seed}}/model.pt"),
        data="results/data/{dataset}.pt",
    output:
        per_seed(f"results/eval/{MODEL}/s{{seed}}/autoattack.json"),
    log:
        f"results/logs/evaluate_autoattack/{MODEL}.log",
    benchmark:
        f"results/benchmarks/evaluate_autoattack/{MODEL}.tsv"
    threads: 1
    resources:
        gpu=1,
    params:
        settings=json_arg(config["evaluation"]),
    shell:
        "{PY} -m normrobust evaluate-autoattack --model {input.models} --data {input.data} "
        "--settings {params.settings} --out {output} "
        "--threads {threads} 2> {log}"
