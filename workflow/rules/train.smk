# Every seed of one cell (dataset, arch, norm, regime) in one job, one seed after the other.
rule train:
    input:
        data="results/data/{dataset}.pt",
    output:
        model=per_seed(f"results/models/{MODEL}/s{{seed}}/model.pt"),
        history=per_seed(f"results/models/{MODEL}/s{{seed}}/history.csv"),
        # the epochs studies ask for (E9's early-stopped transfer sources)
        epochs=[
            f
            for e in saved_epochs(config)
            for f in per_seed(f"results/models/{MODEL}/s{{seed}}/epochs/epoch{e}.pt")
        ],
    log:
        f"results/logs/train/{MODEL}.log",
    benchmark:
        f"results/benchmarks/train/{MODEL}.tsv"
    threads: 1
    resources:
        gpu=1,
    params:
        settings=train_settings,
        outdir=f"results/models/{MODEL}",
        seeds=" ".join(map(str, SEEDS)),
    shell:
        "{PY} -m normrobust train --settings {params.settings} --seeds {params.seeds} --data {input.data} "
        "--out {params.outdir} --threads {threads} 2> {log}"
