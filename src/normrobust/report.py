"""``python -m normrobust report``: render the LaTeX report from the aggregated tables, then compile it.

Usage::

    python -m normrobust report render --tables results/tables --figures results/figures \\
        --outdir paper/generated [--claims results/tables/claims.csv] [--template paper/report.tex.j2]
    python -m normrobust report build --texdir paper/generated --out results/report.pdf

The driver is normrobust.analysis.report; the sections come from the study registry, normrobust.studies.
"""

from __future__ import annotations

import argparse
import sys

from .analysis.report import build, render
from .analysis.tables import MissingInputError
from .studies import STUDIES


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m normrobust report", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="write the report's .tex, tables and figures")
    r.add_argument("--tables", default="results/tables", help="directory of the aggregated tables")
    r.add_argument("--figures", default="results/figures", help="directory of the figure PDFs (NAME.pdf)")
    r.add_argument("--outdir", default="paper/generated", help="where report.tex, tables/, figures/ go")
    r.add_argument("--claims", default=None, help="claims CSV to use (default: evaluate from the tables)")
    r.add_argument("--template", default=None, help="jinja2 template (default: paper/report.tex.j2)")
    b = sub.add_parser("build", help="compile the rendered report with latexmk")
    b.add_argument("--texdir", default="paper/generated", help="directory holding report.tex")
    b.add_argument("--tex", default="report.tex", help="main .tex file in TEXDIR")
    b.add_argument("--out", default="results/report.pdf", help="where to copy the PDF")
    args = p.parse_args(argv)
    if args.cmd == "render":
        try:
            render(args.tables, args.figures, args.outdir, list(STUDIES.values()), claims_csv=args.claims,
                   template=args.template)
        except MissingInputError as e:
            print(f"normrobust report render: error: {e}", file=sys.stderr)
            return 1
        return 0
    return build(args.texdir, args.out, tex=args.tex)
