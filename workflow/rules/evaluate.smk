# Every seed of one model in one job: the dataset is loaded once.
rule evaluate:
    input:
        models=per_seed(L.model_file),
        data=L.data("{dataset}"),
    output:
        per_seed(L.metrics_file),
    log:
        L.log("evaluate", MODEL.path),
    benchmark:
        L.benchmark("evaluate", MODEL.path)
    threads: 1
    resources:
        gpu=1,
    params:
        settings=get_eval_settings,
        trained=get_trained_with,
    shell:
        "{PY} -m normrobust evaluate --model {input.models} --data {input.data} "
        "--settings {params.settings} --trained-with {params.trained} --out {output} "
        "--threads {threads} 2> {log}"


# AutoAttack (Croce & Hein 2020, through torchattacks) on every adversarially trained model, when the config has
# evaluation.autoattack: the reference PGD's robust accuracy is checked against.
rule evaluate_autoattack:
    input:
        models=per_seed(L.model_file),
        data=L.data("{dataset}"),
    output:
        per_seed(L.autoattack_file),
    log:
        L.log("evaluate_autoattack", MODEL.path),
    benchmark:
        L.benchmark("evaluate_autoattack", MODEL.path)
    threads: 1
    resources:
        gpu=1,
    params:
        settings=json_arg(json.dumps(PLAN.autoattack_settings(), sort_keys=True)),
        trained=get_trained_with,
    shell:
        "{PY} -m normrobust evaluate-autoattack --model {input.models} --data {input.data} "
        "--settings {params.settings} --trained-with {params.trained} --out {output} "
        "--threads {threads} 2> {log}"
