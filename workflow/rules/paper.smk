rule render_report:
    input:
        tables=rules.aggregate.output,
        claims="results/tables/claims.csv",
        figures=figure_targets(),
        template=Path(workflow.basedir) / "paper" / "report.tex.j2",
    output:
        "paper/generated/report.tex",
    log:
        "results/logs/render_report.log",
    shell:
        "{PY} -m normrobust report render --tables results/tables --figures results/figures --claims {input.claims} "
        "--outdir paper/generated 2> {log}"


rule build_report:
    input:
        "paper/generated/report.tex",
    output:
        REPORT_PDF,
    log:
        "results/logs/build_report.log",
    shell:
        "{PY} -m normrobust report build --texdir paper/generated --out {output} > {log} 2>&1"
