"""The claims step: every enabled study's claims, measured on the tables they need (``python -m normrobust claims``).

The claims are evaluated here once, into ``results/tables/claims.csv``; the report reads that file and never
evaluates them itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from ..plan import enabled_studies
from . import preconditions
from .claims import Claim, evaluate
from .study_view import StudyView
from .tables import read_optional, read_run_info, read_table


def expand_claims(studies: Sequence[ModuleType], run_info: dict[str, Any]) -> list[Claim]:
    """Every claim of the enabled studies, study by study in registry order."""
    enabled = enabled_studies(run_info.get("config") or {})
    return [c for m in studies if m.KEY in enabled for c in study_claims(m, run_info)]


def study_claims(study: ModuleType, run_info: dict[str, Any]) -> list[Claim]:
    """One study's claims (its analysis module's ``claims``), with the preconditions its comparisons share
    (:func:`~normrobust.analysis.preconditions.attach_shared`, from its ``LEARNED``)."""
    view = StudyView.of(run_info, study.KEY)
    return preconditions.attach_shared(study.claims(view), view.config, getattr(study, "LEARNED", None))


def needed_tables(studies: Sequence[ModuleType], run_info: dict[str, Any]) -> set[str]:
    """The tables (metrics, images, history, transfer) the enabled studies' claims read."""
    return {t for c in expand_claims(studies, run_info) for t in c.needs()}


def load_and_evaluate(studies: Sequence[ModuleType], tables_dir: str | Path) -> pd.DataFrame:
    """The claims table of the run in ``tables_dir`` (:func:`evaluate_with_preconditions`, the table only)."""
    return evaluate_with_preconditions(studies, tables_dir)[0]


def evaluate_with_preconditions(studies: Sequence[ModuleType], tables_dir: str | Path
                                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the tables the enabled studies' claims need from ``tables_dir``, evaluate the claims, judge their
    preconditions (a claim whose precondition does not hold is NOT TESTABLE): (claims table, preconditions table).

    Raises :class:`~normrobust.analysis.tables.MissingInputError` naming the file when a needed table is absent;
    ``images.csv`` (per-image outcomes, for paired test-sampling variances) and ``derived.csv`` (what derived
    datasets carry) are optional: without them (tables of an older version) the claims use the recorded standard
    errors, and a precondition that reads a missing table is not shown to hold."""
    info = read_run_info(tables_dir, required=True)
    claims = expand_claims(studies, info)
    need = {t for c in claims for t in c.needs()}
    need |= {t for c in claims for p in c.requires for t in p.tables}
    frames = {n: read_table(tables_dir, n) for n in ("metrics", "history", "transfer") if n in need}
    for n in ("images", "derived"):
        if n in need:
            frames[n] = read_optional(tables_dir, n)
    judged, table = preconditions.judge_all(claims, frames)
    return preconditions.apply(evaluate(claims, frames), judged), table


__all__ = ["evaluate_with_preconditions", "expand_claims", "load_and_evaluate", "needed_tables", "study_claims"]
