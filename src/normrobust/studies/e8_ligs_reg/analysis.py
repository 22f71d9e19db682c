"""E8's analysis part: claims, figures, tables, report section (the study itself: __init__.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...analysis import plotting
from ...analysis.claims import Claim, cell, pair
from ...analysis.labels import attack_eps_label, fmt_num, join_words, norm_label, sort_norms, tex_number
from ...analysis.latex import stats_table
from ...analysis.metric import CLEAN, LIGS, Metric
from ...analysis.plotting import Figure
from ...analysis.preconditions import Learned
from ...analysis.selection import nseeds_text, seed_stats
from ...analysis.study_view import StudyView
from ...analysis.verdicts import MANIPULATION_CHECK, tol_text
from ...regimes import ligs_weight, objective
from . import KEY, TAG, TITLE  # noqa: F401 (the report driver reads them here)

TABLES = ("metrics",)
#: every model a claim compares learned its task: clean accuracy above chance + LEARNED_MARGIN (the claims step adds it,
#: with room to move: analysis.preconditions.attach_shared)
LEARNED = Learned(CLEAN)
PUBLISHED: list = []
#: "little change in clean accuracy": |Δ| below 2 points, less than what BN itself does to clean accuracy in [B]
#: (Fig. 3: a gain of 2.8 points; the values are in E2's PUBLISHED)
TOL_SMALL = 0.02


def weights(view: StudyView) -> dict[str, float]:
    """The study's x axis: regime → LIGS weight (ligs_reg regimes), 0 for clean training; others left out."""
    out = {}
    for r in view.regimes:
        cfg = view.regime_config(r)
        if objective(cfg) == "ligs_reg":
            out[r] = ligs_weight(cfg)
        elif objective(cfg) == "clean" and not cfg.get("training"):
            out[r] = 0.0
    return out


def claims(view: StudyView) -> list[Claim]:
    out: list[Claim] = []
    if view.std is None:
        return out
    regs = sorted((r for r, w in weights(view).items() if objective(view.regime_config(r)) == "ligs_reg"),
                  key=lambda r: ligs_weight(view.regime_config(r)))
    for ds in view.datasets:
        for arch in view.archs:
            sfx, tsfx = view.where(ds, arch)
            for norm in sort_norms(view.norms):
                nl = norm_label(norm)
                for r in regs:
                    what = f"LIGS regularisation ({r}, weight {fmt_num(ligs_weight(view.regime_config(r)))})"
                    t, b = cell(ds, arch, norm, r), cell(ds, arch, norm, view.std)
                    out.append(pair(f"{TAG}-{norm}-{r}-robust{sfx}", KEY, f"{what} raises {view.head.text} over "
                                    f"standard training, {nl}{tsfx}", view.head, t, b, "increase"))
                    out.append(pair(f"{TAG}-{norm}-{r}-clean{sfx}", KEY, f"{what} changes clean accuracy little "
                                    f"(|Δ| ≤ {tol_text('clean_acc', TOL_SMALL)}), {nl}{tsfx}", CLEAN, t, b, "small",
                                    TOL_SMALL))
                    check = pair(f"{TAG}-{norm}-{r}-ligs{sfx}", KEY, f"{what} raises LIGS, {nl}{tsfx}", LIGS, t, b,
                                 "increase")
                    check.kind = MANIPULATION_CHECK  # the objective is 1 − LIGS: true by construction, not evidence
                    out.append(check)
    return out


def fail_reason(row: pd.Series) -> str:
    return ("the LIGS term trades clean accuracy for gradient alignment: a large weight on a small model costs more "
            "clean accuracy than [B]'s 'little change'")


# ------------------------------------------------------------------------------------------ figures

def fig_ligs_reg(tables: dict[str, pd.DataFrame], view: StudyView):
    """Clean accuracy, headline robust accuracy and LIGS against the LIGS regulariser's weight (standard = 0), a
    line per norm (mean over seeds, band min–max); a row per arch."""
    w = weights(view)
    m = view.rows(tables["metrics"])
    m = m[m["value"].notna() & m["regime"].isin(list(w))]
    if m.empty:
        return plotting.no_data_figure(view.key, "results of standard or ligs_reg regimes", "metrics.csv")
    m = m.assign(_w=m["regime"].map(w))
    archs = [a for a in view.archs if a in set(m["arch"])]
    norms = sort_norms(m["norm"])
    xs = sorted(set(m["_w"]))
    pos = [x for x in xs if x > 0]
    head = attack_eps_label(view.head.attack, view.head.eps)
    panels = [(CLEAN, "clean accuracy (%)", 100.0), (view.head, f"robust accuracy (%)\n{head}", 100.0),
              (LIGS, "LIGS (cosine similarity)", 1.0)]
    fig, axes = plotting.subplots(len(archs), 3, figsize=(plotting.FULL_WIDTH, 2.0 * len(archs) + 0.3))
    for i, arch in enumerate(archs):
        for j, (metric, label, scale) in enumerate(panels):
            ax = axes[i, j]
            plotting.panel_labels(ax, label, arch if len(archs) > 1 else None)
            ax.set_xlabel("LIGS weight λ (0: standard)")
            st = seed_stats(metric.rows(m[m["arch"] == arch]), ["_w", "norm"])
            if st.empty:
                plotting.note(ax, f"{plotting.NO_DATA}:\nno {metric.text}")
                continue
            for norm in norms:
                s = st[st["norm"] == norm].sort_values("_w")
                if len(s):
                    plotting.band(ax, s["_w"], s["mean"], s["min"], s["max"], plotting.norm_colour(norm), scale=scale,
                                  marker=plotting.norm_marker(norm), gid=f"{metric.name}|{arch}|{norm}")
            if len(pos) >= 2 and max(pos) / min(pos) > 20:
                ax.set_xscale("symlog", linthresh=min(pos))
            if len(xs) <= 7:
                ax.set_xticks(xs, [fmt_num(x) for x in xs])
                ax.minorticks_off()
            plotting.ligs_ylim(ax, st) if metric.name == "ligs" else plotting.pct_ylim(ax)
    plotting.legend_top(fig, plotting.norm_handles(norms), f"{plotting.SPREAD_NOTE} ({nseeds_text(m)})")
    fig.tight_layout(w_pad=0.8)
    return fig


FIGURES = {
    "ligs_reg": Figure(fig_ligs_reg, ("metrics",),
                       "**E8: LIGS regularisation.** Clean accuracy, headline robust accuracy and LIGS against the "
                       "weight of the LIGS term (standard training = 0), a line per norm. Line: mean over seeds; band: "
                       "min–max."),
}


# ------------------------------------------------------------------------------------------ report

def section(view: StudyView, frames: dict[str, Any], write_table) -> dict[str, Any]:
    w = weights(view)
    m = view.rows(frames["metrics"])
    m = m[m["regime"].isin(list(w))].assign(ligs_weight=lambda d: d["regime"].map(w))
    table = stats_table(m, [Metric("clean_acc", label="Clean (%)"), view.head, Metric("ligs", label="LIGS")],
                        ("dataset", "arch", "ligs_weight", "norm"), always=("ligs_weight", "norm"),
                        headers={"ligs_weight": "LIGS weight"}, formats={"ligs_weight": fmt_num})
    return {"tables": {"main": write_table(f"main_{KEY}", table)},
            "weights": join_words([tex_number(x) for x in sorted(set(w.values())) if np.isfinite(x)])}
