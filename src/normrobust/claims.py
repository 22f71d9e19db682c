"""``python -m normrobust claims``: every enabled study's claims checked against the tables → claims.csv.

Usage::

    python -m normrobust claims --tables results/tables --out results/tables/claims.csv

Each study module states its claims (normrobust.studies); the verdict rule is normrobust.analysis.verdicts;
the columns of the output are normrobust.analysis.claims.COLUMNS.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from .analysis.claims_step import evaluate_with_preconditions
from .analysis.tables import MissingInputError
from .analysis.verdicts import VERDICTS
from .layout import Layout
from .studies import analyses
from .utils import atomic_write, log


def write_claims(df: pd.DataFrame, out: str | Path) -> None:
    text = df.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    atomic_write(out, lambda f: f.write(text), mode="w")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m normrobust claims", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tables", default=Layout().tables_dir, help="directory of the aggregated tables")
    p.add_argument("--out", default=None, help="output CSV (default: TABLES/claims.csv)")
    p.add_argument("--preconditions", default=None, help="the preconditions table (default: preconditions.csv "
                                                          "beside --out)")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.tables) / "claims.csv"
    pre = Path(args.preconditions) if args.preconditions else out.with_name("preconditions.csv")
    try:
        df, table = evaluate_with_preconditions(analyses(), args.tables)
    except MissingInputError as e:
        print(f"normrobust claims: error: {e}", file=sys.stderr)
        return 1
    write_claims(df, out)
    write_claims(table, pre)
    counts = df["verdict"].value_counts()
    log(f"claims: {len(df)} checked ({', '.join(f'{k} {counts.get(k, 0)}' for k in VERDICTS)}) -> {out}")
    return 0
