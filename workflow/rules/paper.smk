rule render_report:
    input:
        tables=get_tables(),
        claims=L.claims,
        preconditions=L.preconditions,
        figures=[L.figure(f) for f in PLAN.figures()],
        template=Path(workflow.basedir) / "paper" / "report.tex.j2",
        code=PLAN.report_code(),
    output:
        L.report_tex,
    log:
        L.log("render_report"),
    params:
        tables=lambda w, input: Path(input.claims).parent,
        figures=lambda w, input: Path(input.figures[0]).parent,
        outdir=lambda w, output: Path(output[0]).parent,
    shell:
        "{PY} -m normrobust report render --tables {params.tables} --figures {params.figures} "
        "--claims {input.claims} --preconditions {input.preconditions} --outdir {params.outdir} 2> {log}"


rule build_report:
    input:
        L.report_tex,
    output:
        report(L.report_pdf, caption="../report/paper.rst", category="Paper"),
    log:
        L.log("build_report"),
    params:
        texdir=lambda w, input: Path(input[0]).parent,
    shell:
        "{PY} -m normrobust report build --texdir {params.texdir} --out {output} > {log} 2>&1"
