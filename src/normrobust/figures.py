"""``python -m normrobust figure NAME``: one figure of a study, drawn from the aggregated tables only.

Usage::

    python -m normrobust figure NAME --tables results/tables --out results/figures/NAME.pdf [--dataset D] [--arch A ...]

NAME is a figure of a study module (normrobust.studies: each module's ``FIGURES``); the figure shows the cells of
its study in ``run_info.json``'s config (``--dataset`` / ``--arch`` narrow it). A missing input file is an error
naming the file; missing metrics or regimes give a note inside the plot. The PDFs are deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FunctionType

from .analysis import plotting
from .analysis.study_view import StudyView
from .analysis.tables import MissingInputError, read_run_info, read_table
from .layout import Layout
from .studies import figure_studies
from .utils import log


def make_figure(name: str, tables_dir: str | Path, *, dataset: str | None = None, archs: Sequence[str] | None = None):
    """Figure ``name`` from ``tables_dir`` as a matplotlib figure, not saved (the caller closes it).

    Bars carry a gid ``metric|...|group|series`` and lines ``metric|...``, so their values can be read back."""
    if name not in figure_studies():
        raise ValueError(f"unknown figure {name!r} (allowed: {', '.join(figure_studies())})")
    study = figure_studies()[name]
    figure = study.FIGURES[name]
    frames = {t: read_table(tables_dir, t) for t in figure.tables}
    view = StudyView.of(read_run_info(tables_dir, required=False), study.KEY, dataset=dataset,
                        archs=list(archs) if archs else None)
    with plotting.style():
        return figure.draw(frames, view)


def build_figure(name: str, tables_dir: str | Path, out: str | Path, **kw) -> Path:
    """Build figure ``name`` into ``out`` (PDF). Raises MissingInputError naming an absent input CSV."""
    with plotting.style():
        plotting.save_figure(make_figure(name, tables_dir, **kw), out)
    return Path(out)


def code_fingerprint(name: str) -> str:
    """A hash of the code that draws figure ``name``: its draw function and the functions of its study module that
    it calls (directly or through each other). The workflow reruns a figure when this changes."""
    module = figure_studies()[name]
    figure = module.FIGURES[name]
    seen: dict[str, str] = {}
    todo = [figure.draw]
    while todo:
        fn = todo.pop()
        if fn.__qualname__ in seen:
            continue
        seen[fn.__qualname__] = inspect.getsource(fn)
        names = set(fn.__code__.co_names)
        for const in fn.__code__.co_consts:  # nested functions and lambdas
            if inspect.iscode(const):
                names |= set(const.co_names)
        todo += [v for k in names if isinstance(v := getattr(module, k, None), FunctionType)
                 and v.__module__ == module.__name__]
    text = "\n".join(seen[k] for k in sorted(seen)) + figure.caption
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m normrobust figure", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=list(figure_studies()), help="which figure")
    p.add_argument("--tables", default=Layout().tables_dir, help="directory of the aggregated tables")
    p.add_argument("--out", required=True, help="output PDF")
    p.add_argument("--dataset", default=None, help="dataset to show (default: the study's)")
    p.add_argument("--arch", nargs="+", default=None, help="architecture(s) to show (default: the study's)")
    args = p.parse_args(argv)
    try:
        out = build_figure(args.name, args.tables, args.out, dataset=args.dataset, archs=args.arch)
    except MissingInputError as e:
        print(f"normrobust figure {args.name}: error: {e}", file=sys.stderr)
        return 1
    log(f"figure {args.name} -> {out}")
    return 0
