# Every seed of one model (dataset, arch, norm, regime) in one job, one seed after the other.
rule train:
    input:
        data=L.data("{dataset}"),
    output:
        model=per_seed(L.model_file),
        history=per_seed(L.history_file),
        # the epochs studies ask for (E9's early-stopped transfer sources)
        epochs=[f for e in PLAN.saved_epochs for f in per_seed(L.epoch_file, e)],
    log:
        L.log("train", MODEL.path),
    benchmark:
        L.benchmark("train", MODEL.path)
    threads: 1
    resources:
        gpu=1,
    params:
        settings=get_train_settings,
        outdir=L.model_dir(MODEL),
        seeds=" ".join(map(str, PLAN.seeds)),
    shell:
        "{PY} -m normrobust train --settings {params.settings} --seeds {params.seeds} --data {input.data} "
        "--out {params.outdir} --threads {threads} 2> {log}"
