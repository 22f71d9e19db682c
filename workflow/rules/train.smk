rule train:
    input:
        data="results/data/{dataset}.pt",
    output:
        model=f"results/models/{CELL}/model.pt",
        history=f"results/models/{CELL}/history.csv",
        # the epochs studies ask for (E9's early-stopped transfer sources)
        epochs=[
            f"results/models/{CELL}/epochs/epoch{e}.pt" for e in saved_epochs(config)
        ],
    log:
        f"results/logs/train/{CELL}.log",
    benchmark:
        f"results/benchmarks/train/{CELL}.tsv"
    threads: 1
    resources:
        gpu=1,
    params:
        settings=train_settings,
        outdir=lambda w, output: str(Path(output.model).parent),
    shell:
        "{PY} -m normrobust train --settings {params.settings} --data {input.data} "
        "--out {params.outdir} --threads {threads} 2> {log}"
