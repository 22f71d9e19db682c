rule prepare_data:
    output:
        L.data("{dataset}"),
    log:
        L.log("prepare_data", "{dataset}"),
    benchmark:
        L.benchmark("prepare_data", "{dataset}")
    wildcard_constraints:
        dataset=_alternatives([d for d in config["datasets"] if d not in PLAN.derived]),
    params:
        settings=lambda w: json_arg(
            json.dumps(config["datasets"][w.dataset], sort_keys=True)
        ),
    shell:
        "{PY} -m normrobust prepare-data --name {wildcards.dataset} "
        "--settings {params.settings} --out {output} 2> {log}"


# E3/E4: a dataset made from a trained model (robust / non-robust features, targeted attacks), read by its
# held-out reader models when it names them (their files are inputs: readers_robust, readers_standard).
rule derive_data:
    input:
        unpack(get_derive_inputs),
    output:
        data=L.data("{dataset}"),
        record=L.data_record("{dataset}"),
    log:
        L.log("derive_data", "{dataset}"),
    benchmark:
        L.benchmark("derive_data", "{dataset}")
    wildcard_constraints:
        dataset=_alternatives(PLAN.derived),
    threads: 1
    resources:
        gpu=1,
    params:
        settings=lambda w: json_arg(
            json.dumps(PLAN.derive_settings(w.dataset), sort_keys=True)
        ),
        trained=lambda w: PLAN.source_digest(w.dataset),
        readers=lambda w: PLAN.reader_args(w.dataset),
    shell:
        "{PY} -m normrobust derive-data --name {wildcards.dataset} --settings {params.settings} "
        "--base {input.base} --source {input.source} --source-trained-with {params.trained} "
        "{params.readers} --out {output.data} "
        "--threads {threads} 2> {log}"
