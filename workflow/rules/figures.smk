if not TABLES_ONLY:

    localrules:
        aggregate,

    rule aggregate:
        input:
            metrics=all_metrics(),
            histories=all_histories(),
            transfers=all_transfers(),
            benchmarks=all_benchmarks(),
            derived=all_derived(),
        output:
            metrics=report(
                TABLES["metrics"], caption="../report/tables.rst", category="Tables"
            ),
            history=report(
                TABLES["history"], caption="../report/tables.rst", category="Tables"
            ),
            transfer=report(
                TABLES["transfer"], caption="../report/tables.rst", category="Tables"
            ),
            costs=report(
                TABLES["costs"], caption="../report/tables.rst", category="Tables"
            ),
            derived=TABLES["derived"],
            run_info=TABLES["run_info"],
        log:
            "results/logs/aggregate.log",
        params:
            config=json_arg(recorded_config(config)),
        shell:
            "{PY} -m normrobust aggregate --metrics {input.metrics} --histories {input.histories} "
            "--transfers {input.transfers} --benchmarks {input.benchmarks} --derived {input.derived} "
            "--config {params.config} "
            "--outdir results/tables 2> {log}"


rule claims:
    input:
        tables=table_inputs(),
        code=report_code(),
    output:
        report(
            "results/tables/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        "results/logs/claims.log",
    shell:
        "{PY} -m normrobust claims --tables results/tables --out {output} 2> {log}"


# One figure of a study (showyourwork's "one figure = one script": here one function of the study's module).
rule figure:
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/figures/{figure}.pdf",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        "results/logs/figures/{figure}.log",
    params:
        code=figure_code,
        caption=figure_caption,
    shell:
        "{PY} -m normrobust figure {wildcards.figure} --tables results/tables --out {output} 2> {log}"
