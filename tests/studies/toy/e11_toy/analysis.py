"""E11's analysis part: its claim, figure, table and section."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...analysis import plotting
from ...analysis.claims import Claim, norm_vs_none
from ...analysis.labels import norm_label, sort_norms
from ...analysis.latex import main_table
from ...analysis.metric import CLEAN
from ...analysis.plotting import Figure
from ...analysis.selection import seed_stats
from ...analysis.study_view import StudyView
from . import KEY, TAG, TITLE  # noqa: F401 (the report driver reads them here)

TABLES = ("metrics",)
PUBLISHED: list = []


def claims(view: StudyView) -> list[Claim]:
    return norm_vs_none(view, TAG, "clean", "{norm} raises clean accuracy over no norm", CLEAN, "increase")


def fig_toy_clean(tables: dict[str, pd.DataFrame], view: StudyView):
    """Clean accuracy per norm: bars, mean over seeds with min–max whiskers."""
    st = seed_stats(CLEAN.rows(view.rows(tables["metrics"])), ["norm"])
    if st.empty:
        return plotting.no_data_figure(view.key, "clean accuracy", "metrics.csv")
    norms = sort_norms(st["norm"])
    fig, axes = plotting.subplots(figsize=(3, 2))
    plotting.bars(axes[0, 0], st, "norm", norms, [{"colour": None}], scale=100.0, gid="clean",
                  group_colour=plotting.norm_colour)
    axes[0, 0].set_xticks(range(len(norms)), [norm_label(n) for n in norms])
    axes[0, 0].set_ylabel("clean accuracy (%)")
    return fig


FIGURES = {"toy_clean": Figure(fig_toy_clean, ("metrics",), "**E11: a toy study.** Clean accuracy per norm. Bar: "
                               "mean over seeds; whisker: min–max.")}


def section(view: StudyView, frames: dict[str, Any], write_table) -> dict[str, Any]:
    return {"tables": {"main": write_table(f"main_{KEY}", main_table(frames["metrics"], view.head, view.models))}}
