rule render_report:
    input:
        tables=table_inputs(),
        claims="results/tables/claims.csv",
        figures=figure_targets(),
        template=Path(workflow.basedir) / "paper" / "report.tex.j2",
        code=report_code(),
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
        report(REPORT_PDF, caption="../report/paper.rst", category="Paper"),
    log:
        "results/logs/build_report.log",
    shell:
        "{PY} -m normrobust report build --texdir paper/generated --out {output} > {log} 2>&1"
