"""E5's analysis part: claims, figures, tables, report section (the study itself: __init__.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...analysis import plotting
from ...analysis.claims import MIN_RANK_CELLS, Claim, Rank, change_phrase, find_claim, norm_vs_none
from ...analysis.labels import fmt_signed, norm_label, regime_label, sort_norms, sort_regimes, tex_escape
from ...analysis.latex import empty_table, simple_table, stats_table
from ...analysis.metric import CLEAN, LIGS, Metric
from ...analysis.plotting import Figure
from ...analysis.preconditions import Learned
from ...analysis.selection import MODEL_KEYS, cell_order, nseeds_text, seed_stats, spearman
from ...analysis.study_view import StudyView
from . import KEY, TAG, TITLE  # noqa: F401 (the report driver reads them here)

TABLES = ("metrics",)
#: every model a claim compares learned its task: clean accuracy above chance + LEARNED_MARGIN (the claims step adds it,
#: with room to move: analysis.preconditions.attach_shared)
LEARNED = Learned(CLEAN)
PUBLISHED: list = []  # ours: no paper has these numbers
NRF = Metric("nrf_reliance")
#: |ρ| from which LIGS's agreement with the ground truth is called strong / moderate (else weak)
STRONG, MODERATE = 0.7, 0.4


def claims(view: StudyView) -> list[Claim]:
    out: list[Claim] = norm_vs_none(view, TAG, "nrf", "{norm} raises NRF reliance vs no norm under {regime} training",
                                    NRF, "increase")
    if len(view.models) >= MIN_RANK_CELLS:
        out.append(Rank(
            id=f"{TAG}-rank", study=KEY, metric="spearman(ligs,nrf_reliance)", direction="decrease",
            text=f"LIGS ranks the models the way the ground truth does: Spearman ρ(LIGS, NRF reliance) over the "
                 f"study's {len(view.models)} cells is negative on every seed",
            delta=f"Spearman ρ between LIGS and NRF reliance over the study's cells of one seed (at least "
                  f"{MIN_RANK_CELLS} cells)", x=LIGS, y=NRF, cells=view.models))
    return out


def rank_correlation(metrics: pd.DataFrame, view: StudyView) -> pd.DataFrame:
    """Spearman's ρ(LIGS, NRF reliance) over the study's cells, per seed and over the seed means.

    Columns: scope (``seed`` / ``seed means``), seed (NaN for the means), n_cells, spearman (NaN with fewer than
    three cells or a constant metric)."""
    m = view.rows(metrics)
    both = pd.concat({"x": LIGS.per_seed(m), "y": NRF.per_seed(m)}, axis=1).dropna().reset_index()
    rows = [{"scope": "seed", "seed": int(s), "n_cells": len(d), "spearman": spearman(d["x"], d["y"])}
            for s, d in both.groupby("seed")] if len(both) else []
    if len(both):
        means = both.groupby(list(MODEL_KEYS), as_index=False)[["x", "y"]].mean()
        rows.append({"scope": "seed means", "seed": np.nan, "n_cells": len(means),
                     "spearman": spearman(means["x"], means["y"])})
    return pd.DataFrame(rows, columns=["scope", "seed", "n_cells", "spearman"])


# ------------------------------------------------------------------------------------------ figures

NRF_PANELS = [("nrf_reliance", "NRF reliance"), ("rf_only_acc", "RF-only test accuracy (%)"),
              ("nrf_only_acc", "NRF-only test accuracy (%)")]


def fig_nrf_reliance(tables: dict[str, pd.DataFrame], view: StudyView):
    """Per norm × regime: NRF reliance, RF-only and NRF-only accuracy (a row per arch)."""
    m = view.rows(tables["metrics"])
    d = m[m["metric"].isin([k for k, _ in NRF_PANELS]) & m["value"].notna()]
    if d.empty:
        return plotting.no_data_figure(view.key, "NRF-reliance metrics (generated dataset only)", "metrics.csv")
    archs, norms = sorted(d["arch"].unique()), sort_norms(d["norm"])
    regimes = sort_regimes(set(d["regime"]) | set(view.regimes))
    fig, axes = plotting.subplots(len(archs), len(NRF_PANELS), figsize=(plotting.FULL_WIDTH, 2.1 * len(archs) + 0.3))
    for i, arch in enumerate(archs):
        for j, (metric, label) in enumerate(NRF_PANELS):
            ax = axes[i, j]
            ax.set_title(label.replace(" (%)", "") + (f" · {arch}" if len(archs) > 1 else ""))
            ax.set_ylabel(label if j == 0 else ("%" if "%" in label else label))
            s = d[(d["arch"] == arch) & (d["metric"] == metric)]
            if s.empty:
                plotting.note(ax, f"no {metric}\nin metrics.csv")
                continue
            k = 100.0 if "%" in label else 1.0
            st = seed_stats(s, ["norm", "regime"])
            plotting.bars(ax, st, "norm", norms, plotting.regime_series(regimes), scale=k, gid=f"{metric}|{arch}",
                          group_colour=plotting.norm_colour)
            ax.set_xticks(range(len(norms)), [norm_label(n) for n in norms])
            ax.set_ylim(min(0.0, float(st["min"].min()) * k * 1.05), max(1.0 * k, float(st["max"].max()) * k * 1.05))
            ax.tick_params(axis="x", labelsize=6.5)
    plotting.legend_top(fig, plotting.hatch_handles(regimes), f"{plotting.BAR_NOTE}; hatch: training regime",
                        ncol=len(regimes))
    fig.tight_layout(w_pad=0.8)
    return fig


def fig_ligs_vs_nrf(tables: dict[str, pd.DataFrame], view: StudyView):
    """LIGS (x) against NRF reliance (y), one point per cell: mean over seeds with min–max whiskers; colour per
    norm, marker and fill per regime; the Spearman rank correlation of the cell means in the title."""
    m = view.rows(tables["metrics"])
    d = m[m["metric"].isin(["ligs", "nrf_reliance"]) & m["value"].notna()]
    keys = ["arch", "norm", "regime"]
    st = {k: seed_stats(d[d["metric"] == k], keys) for k in ("ligs", "nrf_reliance")}
    both = st["ligs"].merge(st["nrf_reliance"], on=keys, suffixes=("_x", "_y"))
    if both.empty:
        return plotting.no_data_figure(view.key, "cells with both LIGS and NRF reliance", "metrics.csv")
    both = cell_order(both, keys)
    norms, regimes = sort_norms(both["norm"]), sort_regimes(both["regime"])
    fig, axes = plotting.subplots(figsize=(plotting.FULL_WIDTH * 0.6, 2.6))
    ax = axes[0, 0]
    for r in both.itertuples(index=False):
        col = plotting.norm_colour(r.norm)
        ax.errorbar(r.mean_x, r.mean_y, xerr=[[r.mean_x - r.min_x], [r.max_x - r.mean_x]],
                    yerr=[[r.mean_y - r.min_y], [r.max_y - r.mean_y]], fmt="none", ecolor=col, elinewidth=0.7,
                    alpha=0.7, capsize=1.2)
        ax.plot([r.mean_x], [r.mean_y], linestyle="none", marker=plotting.regime_marker(r.regime), markersize=5,
                markeredgecolor=col, markerfacecolor=col if r.regime == regimes[0] else "white", markeredgewidth=1.0,
                gid=f"point|{r.arch}|{r.norm}|{r.regime}")
        if both["arch"].nunique() > 1:
            ax.annotate(r.arch, (r.mean_x, r.mean_y), textcoords="offset points", xytext=(3, 2), fontsize=5.5,
                        color="0.35")
    rho = spearman(both["mean_x"], both["mean_y"])
    rho_txt = f"Spearman ρ = {rho:.2f}" if np.isfinite(rho) else "Spearman ρ: n/a (fewer than 3 distinct cells)"
    ax.set_title(f"{rho_txt} over {len(both)} cells (cell means)")
    ax.set_xlabel("LIGS (cosine similarity)")
    ax.set_ylabel("NRF reliance")
    handles = plotting.norm_handles(norms, marker=False) + [
        plotting.line_handle(linestyle="none", marker=plotting.regime_marker(r), markeredgecolor="0.2",
                             markerfacecolor="0.2" if r == regimes[0] else "white", label=regime_label(r))
        for r in regimes]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5),
               title=f"point: mean over seeds\nwhiskers: min–max\n({nseeds_text(d)})")
    fig.tight_layout()
    return fig


FIGURES = {
    "nrf_reliance": Figure(fig_nrf_reliance, ("metrics",),
                           "**E5: ground truth on generated data.** NRF reliance and accuracy on the RF-only and "
                           "NRF-only counterfactual test sets per norm and training regime (hatched: adversarial "
                           "training). Bar: mean over seeds; whisker: min–max."),
    "ligs_vs_nrf": Figure(fig_ligs_vs_nrf, ("metrics",),
                          "**E5: LIGS against the ground truth.** LIGS (x) against NRF reliance (y), one point per "
                          "cell (mean over seeds, min–max whiskers); colour: norm, marker: training regime; the title "
                          "gives Spearman's rank correlation of the cell means. A negative correlation means LIGS "
                          "ranks the models as the ground truth does."),
}


# ------------------------------------------------------------------------------------------ report

NRF_COLUMNS = [Metric("nrf_reliance", label="NRF reliance"), Metric("rf_only_acc", label="RF only (%)"),
               Metric("nrf_only_acc", label="NRF only (%)"), Metric("conflict_rf_rate", label="Conflict→RF (%)"),
               Metric("conflict_nrf_rate", label="Conflict→NRF (%)"), Metric("ligs", label="LIGS")]


def agreement(rho: float) -> str:
    """How well LIGS agrees with the ground truth: strength and direction of Spearman's ρ."""
    if rho is None or not np.isfinite(rho):
        return "not computable"
    a = abs(rho)
    strength = "strong" if a >= STRONG else ("moderate" if a >= MODERATE else "weak")
    if rho < 0:
        return (f"{strength} agreement with the ground truth: cells with higher LIGS rely less on the non-robust "
                "feature" if a >= MODERATE else f"{strength} agreement: the expected direction, but LIGS orders the "
                "cells by NRF reliance only loosely")
    return (f"{strength} disagreement: cells with higher LIGS rely more, not less, on the non-robust feature"
            if a >= MODERATE else
            "no useful agreement: the sign is opposite to the expected one and the correlation weak")


def corr_table(frame: pd.DataFrame) -> str:
    rows = []
    for _, r in frame.iterrows():
        if r["scope"] != "seed" and len(frame) > 1:
            rows.append(None)
        scope = f"seed {int(r['seed'])}" if r["scope"] == "seed" else "mean over seeds"
        rows.append([scope, str(int(r["n_cells"])), fmt_signed(r["spearman"], digits=3)])
    return simple_table(["Scope", "Cells", r"Spearman $\rho$"], rows, "lrr")


def corr_context(corr: pd.DataFrame) -> dict[str, Any]:
    means, per = corr[corr["scope"] == "seed means"], corr[corr["scope"] == "seed"]
    out: dict[str, Any] = {"n_cells": 0, "rho_tex": "", "agreement": "not computable", "per_seed": ""}
    if len(means):
        r = means.iloc[0]
        out["n_cells"] = int(r["n_cells"])
        out["rho_tex"] = (f"$\\rho = {fmt_signed(r['spearman'], digits=3, tex=False).replace('−', '-')}$"
                          if np.isfinite(r["spearman"]) else "")
        out["agreement"] = agreement(float(r["spearman"]))
    vals = per["spearman"].dropna()
    if len(vals):
        lo, hi = float(vals.min()), float(vals.max())
        out["per_seed"] = (f"{fmt_signed(lo, digits=3)} to {fmt_signed(hi, digits=3)}" if len(vals) > 1
                           else fmt_signed(lo, digits=3))
    return out


def section(view: StudyView, frames: dict[str, Any], write_table) -> dict[str, Any]:
    metrics = frames["metrics"]
    rows = view.rows(metrics)
    has_nrf = any(len(c.rows(rows)) for c in NRF_COLUMNS[:-1])
    nrf = stats_table(rows, NRF_COLUMNS) if has_nrf else empty_table("no NRF-reliance metrics for this selection")
    corr = rank_correlation(metrics, view)
    corr_tex = corr_table(corr) if len(corr) else empty_table("no cell has both LIGS and NRF reliance")
    return {"tables": {"nrf": write_table(f"nrf_{KEY}", nrf), "corr": write_table(f"corr_{KEY}", corr_tex)},
            "corr": corr_context(corr)}


def abstract(view: StudyView, claims_df: pd.DataFrame, ctx: dict[str, Any]) -> list[str]:
    out = []
    r = find_claim(claims_df, [f"{TAG}-bn-nrf"])
    if r is not None:
        out.append(f"On the generated data, BN {change_phrase(r, 'reliance on non-robust features')}.")
    c = ctx.get("corr") or {}
    if c.get("rho_tex"):
        out.append(f"Over the {c['n_cells']} cells of {TAG}, LIGS and the measured NRF reliance have a Spearman rank "
                   f"correlation of {c['rho_tex']} ({tex_escape(c['agreement'])}).")
    return out
