if not TABLES_ONLY:

    localrules:
        aggregate,

    rule aggregate:
        input:
            metrics=PLAN.metrics_files() + PLAN.autoattack_files(),
            histories=PLAN.history_files(),
            transfers=PLAN.transfer_files(),
            benchmarks=PLAN.benchmark_files(),
            derived=PLAN.derived_records(),
        output:
            metrics=report(
                L.table("metrics"), caption="../report/tables.rst", category="Tables"
            ),
            history=report(
                L.table("history"), caption="../report/tables.rst", category="Tables"
            ),
            transfer=report(
                L.table("transfer"), caption="../report/tables.rst", category="Tables"
            ),
            costs=report(
                L.table("costs"), caption="../report/tables.rst", category="Tables"
            ),
            derived=L.table("derived"),
            images=L.table("images"),
            run_info=L.table("run_info"),
        log:
            L.log("aggregate"),
        params:
            config=json_arg(json.dumps(PLAN.recorded_config(), sort_keys=True)),
            outdir=lambda w, output: Path(output.metrics).parent,
        shell:
            "{PY} -m normrobust aggregate --metrics {input.metrics} --histories {input.histories} "
            "--transfers {input.transfers} --benchmarks {input.benchmarks} --derived {input.derived} "
            "--config {params.config} --outdir {params.outdir} 2> {log}"


rule claims:
    input:
        tables=get_tables(),
        code=PLAN.report_code(),
    output:
        claims=report(L.claims, caption="../report/claims.rst", category="Claims"),
        preconditions=L.preconditions,
    log:
        L.log("claims"),
    params:
        tables=lambda w, output: Path(output.claims).parent,
    shell:
        "{PY} -m normrobust claims --tables {params.tables} --out {output.claims} "
        "--preconditions {output.preconditions} 2> {log}"


# One figure of a study (showyourwork's "one figure = one script": here one function of the study's analysis part).
rule figure:
    input:
        unpack(get_figure_inputs),
    output:
        report(
            L.figure("{figure}"),
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        L.log("figures", "{figure}"),
    params:
        code=get_figure_code,
        caption=lambda w: figure_studies()[w.figure].FIGURES[w.figure].caption,
        tables=lambda w, input: Path(input.tables[0]).parent,
    shell:
        "{PY} -m normrobust figure {wildcards.figure} --tables {params.tables} --out {output} 2> {log}"
