"""E1's analysis part: claims, figures, tables, report section (the study itself: __init__.py)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...analysis import plotting
from ...analysis.claims import Claim, change_phrase, find_claim, norm_vs_none
from ...analysis.labels import (
    attack_label,
    eps_axis_label,
    fmt_num,
    join_words,
    norm_label,
    regime_label,
    sort_attacks,
    sort_norms,
    sort_regimes,
    tex_escape,
)
from ...analysis.latex import main_table
from ...analysis.metric import CLEAN, LIGS
from ...analysis.plotting import Figure
from ...analysis.preconditions import Learned
from ...analysis.selection import seed_stats
from ...analysis.study_view import StudyView
from . import KEY, TAG, TITLE  # noqa: F401 (the report driver reads them here)

TABLES = ("metrics",)
#: every model a claim compares learned its task: clean accuracy above chance + LEARNED_MARGIN (the claims step adds it,
#: with room to move: analysis.preconditions.attach_shared)
LEARNED = Learned(CLEAN)
PUBLISHED: list = []  # [B] gives E1 no numbers of its own ([B]'s Fig. 3 values are E2's)
#: "raises or keeps" clean accuracy: a drop below 1 point still counts as kept (accuracy as a fraction); [B]'s BN
#: gain is 2.8 points (Fig. 3, typed in E2's PUBLISHED), so a 1-point drop would already be the opposite of their effect
TOL_KEEP = 0.01


def claims(view: StudyView) -> list[Claim]:
    return (norm_vs_none(view, TAG, "clean", "{norm} raises clean accuracy or keeps it (drop ≤ {tol}) vs no norm "
                         "under {regime} training", CLEAN, "increase_or_keep", TOL_KEEP)
            + norm_vs_none(view, TAG, "robust", "{norm} lowers {metric} vs no norm under {regime} training",
                           view.head, "decrease")
            + norm_vs_none(view, TAG, "ligs", "{norm} lowers LIGS vs no norm under {regime} training", LIGS,
                           "decrease"))


# ------------------------------------------------------------------------------------------ figures

def fig_robust_vs_eps(tables: dict[str, pd.DataFrame], view: StudyView):
    """A panel per attack (and arch): accuracy against ε, a line per norm, line style per regime; ε = 0 is the
    clean accuracy, Gaussian-noise accuracy the last panel."""
    m = view.rows(tables["metrics"])
    acc = m[m["metric"].isin(["robust_acc", "noise_acc"]) & m["value"].notna()].copy()
    acc.loc[acc["metric"] == "noise_acc", "attack"] = "gaussian"
    if acc.empty:
        return plotting.no_data_figure(view.key, "robust_acc / noise_acc", "metrics.csv")
    attacks, archs = sort_attacks(acc["attack"]), sorted(acc["arch"].unique())
    norms, regimes = sort_norms(acc["norm"]), sort_regimes(acc["regime"])
    clean = seed_stats(m[(m["metric"] == "clean_acc") & m["value"].notna()], ["arch", "norm", "regime"])
    fig, axes = plotting.subplots(len(archs), len(attacks), figsize=(plotting.FULL_WIDTH, 2.0 * len(archs) + 0.5),
                                  sharey=True)
    for i, arch in enumerate(archs):
        for j, attack in enumerate(attacks):
            ax = axes[i, j]
            ax.set_title(attack_label(attack) + (f" · {arch}" if len(archs) > 1 else ""))
            ax.set_xlabel(eps_axis_label(attack))
            if j == 0:
                ax.set_ylabel("accuracy (%)")
            d = acc[(acc["arch"] == arch) & (acc["attack"] == attack)]
            if d.empty:
                plotting.note(ax, f"no {attack_label(attack)}\nresults")
                continue
            st = seed_stats(d, ["norm", "regime", "eps"])
            for regime in regimes:
                for norm in norms:
                    s = st[(st["norm"] == norm) & (st["regime"] == regime)].sort_values("eps")
                    if s.empty:
                        continue
                    c0 = clean[(clean["arch"] == arch) & (clean["norm"] == norm) & (clean["regime"] == regime)]
                    x, y, lo, hi = (list(s["eps"]), list(s["mean"]), list(s["min"]), list(s["max"]))
                    if len(c0):
                        x, y = [0.0] + x, [float(c0["mean"].iloc[0])] + y
                        lo, hi = [float(c0["min"].iloc[0])] + lo, [float(c0["max"].iloc[0])] + hi
                    plotting.band(ax, x, y, lo, hi, plotting.norm_colour(norm), scale=100.0, alpha=0.12,
                                  ls=plotting.regime_linestyle(regime), marker=plotting.norm_marker(norm),
                                  gid=f"{attack}|{arch}|{regime}|{norm}")
            ax.set_ylim(-2, 102)
            ax.set_xlim(left=0)
            xs = sorted({0.0} | set(float(e) for e in st["eps"]))
            if len(xs) <= 6:
                ax.set_xticks(xs, [fmt_num(x) for x in xs])
    handles = plotting.norm_handles(norms) + (plotting.regime_handles(regimes) if len(regimes) > 1 else [])
    title = f"{plotting.SPREAD_NOTE}; ε = 0 is clean accuracy"
    if len(regimes) == 1:
        title += f"; {regime_label(regimes[0])} training"
    plotting.legend_top(fig, handles, title)
    fig.tight_layout(w_pad=0.6)
    return fig


def fig_ligs_per_norm(tables: dict[str, pd.DataFrame], view: StudyView):
    """Grouped bars: LIGS per norm (groups) and regime (hatch), a panel per arch."""
    m = view.rows(tables["metrics"])
    d = m[(m["metric"] == "ligs") & m["value"].notna()]
    if d.empty:
        return plotting.no_data_figure(view.key, "LIGS", "metrics.csv")
    archs, norms = sorted(d["arch"].unique()), sort_norms(d["norm"])
    regimes = sort_regimes(set(d["regime"]) | set(view.regimes))
    fig, axes = plotting.subplots(1, len(archs), figsize=(min(plotting.FULL_WIDTH, 3.4 * len(archs)), 2.3),
                                  sharey=True)
    for j, arch in enumerate(archs):
        ax = axes[0, j]
        st = seed_stats(d[d["arch"] == arch], ["norm", "regime"])
        plotting.bars(ax, st, "norm", norms, plotting.regime_series(regimes), gid=f"ligs|{arch}",
                      group_colour=plotting.norm_colour)
        ax.set_xticks(range(len(norms)), [norm_label(n) for n in norms])
        if len(archs) > 1:
            ax.set_title(arch)
        if j == 0:
            ax.set_ylabel("LIGS (cosine similarity)")
        plotting.ligs_ylim(ax, st)
    plotting.legend_top(fig, plotting.hatch_handles(regimes), f"{plotting.BAR_NOTE}; hatch: training regime",
                        ncol=len(regimes))
    fig.tight_layout()
    return fig


FIGURES = {
    "robust_vs_eps": Figure(fig_robust_vs_eps, ("metrics",),
                            "**E1: accuracy against attack strength.** Accuracy (%) of every norm and training regime "
                            "under each attack as ε grows (L∞ ε in units of 1/255, L2 ε and noise σ on the [0,1] pixel "
                            "scale; ε = 0 is clean accuracy). One colour per norm, one line style per training regime; "
                            "line: mean over seeds; band: min–max over seeds. A model leaning on non-robust features "
                            "falls faster."),
    "ligs_per_norm": Figure(fig_ligs_per_norm, ("metrics",),
                            "**E1: LIGS per norm.** Local input-gradient similarity (cosine of the input gradients at "
                            "x and at x + N(0, σ²)) per norm and training regime (hatched: adversarial training). Bar: "
                            "mean over seeds; whisker: min–max. Higher LIGS means locally more linear, more robust "
                            "features."),
}


# ------------------------------------------------------------------------------------------ report

def section(view: StudyView, frames: dict[str, Any], write_table) -> dict[str, Any]:
    return {"tables": {"main": write_table(f"main_{KEY}", main_table(frames["metrics"], view.head, view.models))}}


def abstract(view: StudyView, claims_df: pd.DataFrame, ctx: dict[str, Any]) -> list[str]:
    """BN against no norm under standard training, from E1's claims."""
    rows = [find_claim(claims_df, [f"{TAG}-bn-{k}"]) for k in ("clean", "robust", "ligs")]
    what = ["clean accuracy", tex_escape(view.head.text), "LIGS"]
    bits = [change_phrase(r, w) for r, w in zip(rows, what) if r is not None]
    if not bits:
        return []
    n = max(int(r["n_seeds"]) for r in rows if r is not None)
    return [f"Under standard training, batch normalisation (BN) {join_words(bits)} compared with the same network "
            f"without normalisation (mean of per-seed paired differences, {n} seed{'s' if n != 1 else ''})."]
