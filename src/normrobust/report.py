"""``python -m normrobust report``: render the LaTeX report from the aggregated tables, then compile it.

Usage::

    python -m normrobust report render --tables results/tables --figures results/figures \\
        --claims results/tables/claims.csv --outdir paper/generated [--template paper/report.tex.j2] \\
        [--preconditions results/tables/preconditions.csv]
    python -m normrobust report build --texdir paper/generated --out results/report.pdf

The driver is normrobust.analysis.report (render; its "Setup" section: report_setup) and
normrobust.analysis.report_build (build); the sections come from the study registry, normrobust.studies. The
claims are read from the claims step's file (``python -m normrobust claims``), never evaluated here, and so are
their preconditions (its ``preconditions.csv``; by default the one beside ``--claims``; a missing file means none, and
the report says so).
"""

from __future__ import annotations

import argparse
import sys

from .analysis.report import render
from .analysis.report_build import build
from .analysis.tables import MissingInputError
from .layout import Layout
from .studies import analyses

LAYOUT = Layout()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m normrobust report", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="write the report's .tex, tables and figures")
    r.add_argument("--tables", default=LAYOUT.tables_dir, help="directory of the aggregated tables")
    r.add_argument("--figures", default=LAYOUT.figures_dir, help="directory of the figure PDFs (NAME.pdf)")
    r.add_argument("--outdir", default=LAYOUT.tex, help="where report.tex, tables/, figures/ go")
    r.add_argument("--claims", required=True,
                   help=f"the claims CSV the claims step wrote from the same tables (e.g. {LAYOUT.claims})")
    r.add_argument("--preconditions", default=None,
                   help="the preconditions table the claims step wrote (default: preconditions.csv beside --claims; "
                        "optional: without it the report says it has none)")
    r.add_argument("--template", default=None, help="jinja2 template (default: paper/report.tex.j2)")
    b = sub.add_parser("build", help="compile the rendered report with latexmk")
    b.add_argument("--texdir", default=LAYOUT.tex, help="directory holding report.tex")
    b.add_argument("--tex", default="report.tex", help="main .tex file in TEXDIR")
    b.add_argument("--out", default=LAYOUT.report_pdf, help="where to copy the PDF")
    args = p.parse_args(argv)
    if args.cmd == "render":
        try:
            render(args.tables, args.figures, args.outdir, analyses(), args.claims, template=args.template,
                   preconditions_csv=args.preconditions)
        except MissingInputError as e:
            print(f"normrobust report render: error: {e}", file=sys.stderr)
            return 1
        return 0
    return build(args.texdir, args.out, tex=args.tex)
