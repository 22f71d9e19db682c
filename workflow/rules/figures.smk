rule aggregate:
    input:
        metrics=all_metrics(),
        histories=all_histories(),
        transfers=all_transfers(),
    output:
        metrics="results/tables/metrics.csv",
        history="results/tables/history.csv",
        transfer="results/tables/transfer.csv",
        run_info="results/tables/run_info.json",
    log:
        "results/logs/aggregate.log",
    params:
        config=json_arg(config),
    shell:
        "{PY} -m normrobust aggregate --metrics {input.metrics} --histories {input.histories} "
        "--transfers {input.transfers} --config {params.config} --outdir results/tables 2> {log}"


rule claims:
    input:
        rules.aggregate.output,
    output:
        "results/tables/claims.csv",
    log:
        "results/logs/claims.log",
    shell:
        "{PY} -m normrobust claims --tables results/tables --out {output} 2> {log}"


rule figure:
    input:
        rules.aggregate.output,
    output:
        "results/figures/{figure}.pdf",
    log:
        "results/logs/figures/{figure}.log",
    shell:
        "{PY} -m normrobust figure {wildcards.figure} --tables results/tables --out {output} 2> {log}"
