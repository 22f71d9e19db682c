rule prepare_data:
    output:
        "results/data/{dataset}.pt",
    log:
        "results/logs/prepare_data/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_data/{dataset}.tsv"
    wildcard_constraints:
        dataset=_alternatives(
            [d for d in config["datasets"] if d not in DERIVED] or ["generated"]
        ),
    params:
        settings=lambda w: json_arg(config["datasets"][w.dataset]),
    shell:
        "{PY} -m normrobust prepare-data --name {wildcards.dataset} "
        "--settings {params.settings} --out {output} 2> {log}"


# E3/E4: a dataset made from a trained model (robust / non-robust features, targeted attacks).
rule derive_data:
    input:
        unpack(derive_inputs),
    output:
        data="results/data/{dataset}.pt",
        record="results/data/{dataset}.json",
    log:
        "results/logs/derive_data/{dataset}.log",
    benchmark:
        "results/benchmarks/derive_data/{dataset}.tsv"
    wildcard_constraints:
        dataset=_alternatives(DERIVED or ["__none__"]),
    threads: 1
    resources:
        gpu=1,
    params:
        settings=lambda w: json_arg(derive_settings(w)),
    shell:
        "{PY} -m normrobust derive-data --name {wildcards.dataset} --settings {params.settings} "
        "--base {input.base} --source {input.source} --out {output.data} "
        "--threads {threads} 2> {log}"
