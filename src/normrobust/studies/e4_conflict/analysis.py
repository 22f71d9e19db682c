"""E4's analysis part: claims, figures, tables, report section (the study itself: __init__.py)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...analysis import plotting
from ...analysis.claims import Claim, cell, pair
from ...analysis.labels import (
    dataset_label,
    dataset_method,
    fmt_paper,
    norm_label,
    regime_short,
    sort_norms,
)
from ...analysis.latex import stats_table
from ...analysis.metric import CLEAN, LIGS, Metric
from ...analysis.plotting import Figure
from ...analysis.preconditions import (
    LEARNED_MARGIN,
    Learned,
    Precondition,
    any_of,
    carries,
    carries_level,
    chance,
    learned,
)
from ...analysis.reproduction import Published, find
from ...analysis.selection import cell_order, nseeds_text, seed_stats
from ...analysis.study_view import StudyView
from . import CARRIES_LEVEL, KEY, READER_MARGIN, TAG, TITLE  # noqa: F401 (the report driver reads them here)

TABLES = ("metrics",)
SHIFTED = Metric("shifted_acc")
TRAIN_ACC = Metric("train_acc")
#: every model a claim compares learned its conflict training set: accuracy on it above chance +
#: LEARNED_MARGIN (the claims step adds it, with room to move: analysis.preconditions.attach_shared)
LEARNED = Learned(TRAIN_ACC, "its conflict training set")

_SETTING = "ResNet-18 trained on the conflict set (from CIFAR-10)"


def _fig6(norm: str, t: float, t1: float, ligs: float) -> list[Published]:
    kw = dict(norm=norm, dataset_method="conflict", arch_blocks=(2, 2, 2, 2), preset="paper-cifar10 with e4_conflict")
    who, src = "BN" if norm == "bn" else "no norm", "[B] Fig. 6 (fig)"
    return [Published(KEY, src, _SETTING, f"{who}: accuracy on labels t (%)", t, metric="clean_acc", **kw),
            Published(KEY, src, _SETTING, f"{who}: accuracy on labels t+1 (%)", t1, metric="shifted_acc", **kw),
            Published(KEY, src, _SETTING, f"{who}: LIGS", ligs, metric="ligs", **kw)]


PUBLISHED = [*_fig6("bn", 35, 18, 0.37), *_fig6("none", 3, 74, 0.97)]


def _paper(norm: str, metric: str) -> float | None:
    p = find(PUBLISHED, norm=norm, metric=metric)
    return p.value if p is not None else None


def _quote(metric: str, first: str = "bn") -> str:
    """[B]'s two models on one quantity: 'BN 35 vs none 3 (fig)' (``first``: the side named first)."""
    other = "none" if first == "bn" else "bn"
    name = {"bn": "BN", "none": "none"}
    a, b = find(PUBLISHED, norm=first, metric=metric), find(PUBLISHED, norm=other, metric=metric)
    return f"{name[first]} {a.short()} vs {name[other]} {b.short()} (fig)"


def claims(view: StudyView) -> list[Claim]:
    out: list[Claim] = []
    if "none" not in view.norms or view.std is None:
        return out
    conflict = [d for d in view.datasets if dataset_method(view.config, d) == "conflict"] or view.datasets
    for ds in conflict:
        for arch in view.archs:
            where = ([str(ds)] if len(conflict) > 1 else []) + ([arch] if len(view.archs) > 1 else [])
            sfx, tsfx = ("@" + "/".join(where), f" ({'/'.join(where)})") if where else ("", "")
            for norm in [n for n in sort_norms(view.norms) if n != "none"]:
                nl, bn = norm_label(norm), norm == "bn"
                t, b = cell(ds, arch, norm, view.std), cell(ds, arch, "none", view.std)
                out.append(pair(f"{TAG}-{norm}-t{sfx}", KEY, f"Trained on conflicting features, the {nl} model scores "
                                f"more on labels t (the NRFs' labels; clean accuracy) than the no-norm model{tsfx}",
                                CLEAN, t, b, "increase", paper=_quote("clean_acc") if bn else ""))
                out.append(pair(f"{TAG}-{norm}-t1{sfx}", KEY, f"The no-norm model scores more on labels t+1 (the RFs' "
                                f"labels; shifted accuracy) than the {nl} model{tsfx}", SHIFTED, b, t, "increase",
                                paper=_quote("shifted_acc", first="none") if bn else ""))
                out.append(pair(f"{TAG}-{norm}-ligs{sfx}", KEY, f"On conflicting features, {nl} has lower LIGS than "
                                f"no norm{tsfx}", LIGS, t, b, "decrease", paper=_quote("ligs") if bn else ""))
            follows = _follows_a_feature(view, ds, arch)
            for c in out[-3 * len([n for n in view.norms if n != "none"]):]:
                at_least = carries_level(view.config, ds, CARRIES_LEVEL, READER_MARGIN)
                c.requires += [carries(ds, at_least, "the new label's non-robust feature"), follows]
    return out


def _follows_a_feature(view: StudyView, ds: str, arch: str) -> Precondition:
    """The no-norm model follows one of the two features: accuracy on labels t or on labels t+1 above chance."""
    b, k = cell(ds, arch, "none", view.std), chance(view.config, ds)
    return any_of("the no-norm model follows one of the two features (labels t or t+1)",
                  [learned(KEY, b, CLEAN, k, LEARNED_MARGIN, "labels t"),
                   learned(KEY, b, SHIFTED, k, LEARNED_MARGIN, "labels t+1")])


def fail_reason(row: pd.Series) -> str:
    return ("the derived datasets are built from the pipeline's own small models at this scale; their robust and "
            "non-robust features are weaker than in [B]'s CIFAR-10 sets, and short training may not pick them up")


# ------------------------------------------------------------------------------------------ figures

def _cell_key(arch: str, norm: str, regime: str, multi_arch: bool, multi_regime: bool) -> str:
    s = norm_label(norm)
    if multi_regime:
        s += f"\n{regime_short(regime)}"
    return f"{arch}\n{s}" if multi_arch else s


def fig_conflict(tables: dict[str, pd.DataFrame], view: StudyView):
    """Per norm, accuracy on the real test set against the labels t (``clean_acc``; scored by a model that uses
    the NRFs) and t+1 (``shifted_acc``; scored by one that uses the RFs), and LIGS."""
    m = view.rows(tables["metrics"])
    m = m[m["value"].notna() & m["metric"].isin(["clean_acc", "shifted_acc", "ligs"])]
    if m.empty:
        return plotting.no_data_figure(view.key, "results on the conflict dataset", "metrics.csv")
    multi_arch, multi_regime = m["arch"].nunique() > 1, m["regime"].nunique() > 1
    order = ["dataset", "arch", "regime", "norm"]
    cells = cell_order(m[order].drop_duplicates(), order)
    keys = [_cell_key(a, n, r, multi_arch, multi_regime)
            for a, n, r in zip(cells["arch"], cells["norm"], cells["regime"])]
    groups = list(dict.fromkeys(keys))
    colour_of = dict(zip(keys, (plotting.norm_colour(n) for n in cells["norm"])))
    m = m.assign(_cell=[_cell_key(a, n, r, multi_arch, multi_regime)
                        for a, n, r in zip(m["arch"], m["norm"], m["regime"])])
    fig, axes = plotting.subplots(1, 2, figsize=(min(plotting.FULL_WIDTH, 2.4 + 0.9 * len(groups)), 2.3),
                                  gridspec_kw={"width_ratios": [2, 1.3]})
    ax = axes[0, 0]
    acc = seed_stats(m[m["metric"].isin(["clean_acc", "shifted_acc"])], ["_cell", "metric"])
    ax.set_title("accuracy on the real test set")
    ax.set_ylabel("accuracy (%)")
    if acc.empty:
        plotting.note(ax, f"{plotting.NO_DATA}:\nno clean_acc / shifted_acc")
    else:
        plotting.bars(ax, acc, "_cell", groups, [{"match": {"metric": "clean_acc"}, "colour": None, "alpha": 0.9},
                                                 {"match": {"metric": "shifted_acc"}, "colour": None, "hatch": "////",
                                                  "alpha": 0.45}],
                      scale=100.0, gid="acc", group_colour=colour_of.get)
        ax.set_xticks(range(len(groups)), groups)
        plotting.pct_ylim(ax)
    ax = axes[0, 1]
    lg = seed_stats(m[m["metric"] == "ligs"], ["_cell"])
    ax.set_title("LIGS")
    ax.set_ylabel("LIGS (cosine similarity)")
    if lg.empty:
        plotting.note(ax, f"{plotting.NO_DATA}:\nno LIGS")
    else:
        plotting.bars(ax, lg, "_cell", groups, [{"match": {}, "colour": None}], gid="ligs", group_colour=colour_of.get)
        ax.set_xticks(range(len(groups)), groups)
        plotting.ligs_ylim(ax, lg)
    handles = [plotting.patch_handle(facecolor="0.6", edgecolor="0.15", lw=0.5, label="labels t (NRF use)"),
               plotting.patch_handle(facecolor="0.85", edgecolor="0.15", lw=0.5, hatch="////",
                                     label="labels t+1 (RF use)")]
    plotting.legend_top(fig, handles, f"{plotting.BAR_NOTE} ({nseeds_text(m)}); colour: norm")
    fig.tight_layout(w_pad=0.8)
    return fig


FIGURES = {
    "conflict": Figure(fig_conflict, ("metrics",),
                       "**E4: conflicting features.** Models trained on the conflict set (robust features of class y, "
                       "non-robust features of y+1, label y+1): accuracy on the real test set against the labels t "
                       "(scored by non-robust-feature use) and t+1 (robust-feature use), and LIGS, per norm ([B] "
                       "Fig. 6). Bar: mean over seeds; whisker: min–max."),
}


# ------------------------------------------------------------------------------------------ report

def section(view: StudyView, frames: dict[str, Any], write_table) -> dict[str, Any]:
    specs = [Metric("clean_acc", label="Acc. on t (%)"), Metric("shifted_acc", label="Acc. on t+1 (%)"),
             Metric("ligs", label="LIGS")]

    def extra(row: dict[str, Any]) -> dict[str, str]:
        return {"[B] t (%)": fmt_paper(_paper(row["norm"], "clean_acc"), True),
                "[B] t+1 (%)": fmt_paper(_paper(row["norm"], "shifted_acc"), True),
                "[B] LIGS": fmt_paper(_paper(row["norm"], "ligs"), False)}

    table = stats_table(view.rows(frames["metrics"]), specs, always=("norm",),
                        formats={"dataset": lambda d: dataset_label(view.config, d)}, extra=extra)
    return {"tables": {"main": write_table(f"main_{KEY}", table)}}
