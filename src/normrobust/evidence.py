"""``python -m normrobust evidence``: the evidence page (docs/evidence.md) from finished runs' tables.

Usage::

    python -m normrobust evidence --run NAME=TABLES_DIR [--run NAME=TABLES_DIR ...] --out docs/evidence.md

NAME names a run (the preset that made it, e.g. evidence-fmnist), TABLES_DIR is that finished run's aggregated tables
directory (results/tables/: run_info.json, claims.csv, metrics.csv, transfer.csv). To regenerate the page, rerun the
command line the page quotes in its first paragraph on the same tables: the output is byte-identical. The markdown is
built by normrobust.analysis.evidence; the published numbers are every study's ``PUBLISHED`` (normrobust.studies).
A missing input file is one error line naming the file.
"""

from __future__ import annotations

import argparse
import sys

from .analysis.evidence import command_line, load_run, page
from .analysis.tables import MissingInputError
from .layout import Layout
from .studies import analyses
from .utils import atomic_write, log

DEFAULT_OUT = "docs/evidence.md"


def run_arg(text: str) -> tuple[str, str]:
    """``NAME=TABLES_DIR`` → (name, tables directory as given)."""
    name, sep, tables = text.partition("=")
    if not sep or not name.strip() or not tables.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=TABLES_DIR (e.g. default={Layout().tables_dir}), got "
                                         f"{text!r}")
    return name, tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m normrobust evidence", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, type=run_arg, metavar="NAME=TABLES_DIR",
                   help="a finished run: its name and its tables directory (repeat for more runs, in page order)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"the markdown page to write (default: {DEFAULT_OUT})")
    args = p.parse_args(argv)
    names = [name for name, _ in args.run]
    if len(set(names)) != len(names):
        p.error(f"run names must differ (got {', '.join(names)})")
    published = [e for m in analyses() for e in m.PUBLISHED]
    try:
        runs = [load_run(name, tables, published) for name, tables in args.run]
    except MissingInputError as e:
        print(f"normrobust evidence: error: {e}", file=sys.stderr)
        return 1
    text = page(runs, command_line(args.run, args.out))
    atomic_write(args.out, lambda f: f.write(text.encode("utf-8")))
    log(f"evidence: {len(runs)} run{'s' if len(runs) != 1 else ''} -> {args.out}")
    return 0
