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
from .claims import Claim, evaluate
from .study_view import StudyView
from .tables import read_optional, read_run_info, read_table


def expand_claims(studies: Sequence[ModuleType], run_info: dict[str, Any]) -> list[Claim]:
    """Every claim of the enabled studies, study by study in registry order."""
    enabled = enabled_studies(run_info.get("config") or {})
    return [c for m in studies if m.KEY in enabled for c in m.claims(StudyView.of(run_info, m.KEY))]


def needed_tables(studies: Sequence[ModuleType], run_info: dict[str, Any]) -> set[str]:
    """The tables (metrics, images, history, transfer) the enabled studies' claims read."""
    return {t for c in expand_claims(studies, run_info) for t in c.needs()}


def load_and_evaluate(studies: Sequence[ModuleType], tables_dir: str | Path) -> pd.DataFrame:
    """Read the tables the enabled studies' claims need from ``tables_dir`` and evaluate the claims.

    Raises :class:`~normrobust.analysis.tables.MissingInputError` naming the file when a needed table is absent;
    ``images.csv`` (per-image outcomes, for paired test-sampling variances) is optional: without it (tables of an
    older version) the claims use the recorded standard errors."""
    info = read_run_info(tables_dir, required=True)
    claims = expand_claims(studies, info)
    need = {t for c in claims for t in c.needs()}
    frames = {n: read_table(tables_dir, n) for n in ("metrics", "history", "transfer") if n in need}
    if "images" in need:
        frames["images"] = read_optional(tables_dir, "images")
    return evaluate(claims, frames)


__all__ = ["expand_claims", "load_and_evaluate", "needed_tables"]
