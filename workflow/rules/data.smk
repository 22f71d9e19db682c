rule prepare_data:
    output:
        "results/data/{dataset}.pt",
    log:
        "results/logs/prepare_data/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_data/{dataset}.tsv"
    params:
        settings=lambda w: json_arg(config["datasets"][w.dataset]),
        data_dir=data_dir_arg(),
    shell:
        "{PY} -m normrobust prepare-data --name {wildcards.dataset} "
        "--settings {params.settings} {params.data_dir} --out {output} 2> {log}"
