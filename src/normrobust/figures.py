"""Figures of the report, made from the aggregated tables only.

Usage::

    python -m normrobust figure NAME --tables results/tables --out results/figures/NAME.pdf
        [--study STUDY|all] [--dataset NAME] [--arch NAME ...]

NAME is one of ``trajectories`` (E2: clean / robust accuracy and LIGS per epoch), ``robust_vs_eps`` (E1:
robust accuracy against ε per attack), ``ligs_per_norm`` (E1: LIGS per norm and regime),
``transfer_heatmap`` (E9: transfer success per source and target) and ``nrf_reliance`` (E5: NRF reliance,
RF-only and NRF-only accuracy).

Each figure selects the cells of its study in ``run_info.json`` (dataset, archs, norms, regimes);
``--study all`` plots every cell of one dataset instead. Lines and bars are the mean over seeds; bands and
whiskers span min to max over seeds (stated in every legend). Colours are Okabe–Ito, fixed per norm;
the regime is shown by the line style (solid: standard) or the bar hatch. Missing metrics or regimes give
a note inside the plot instead of an error; a missing input file is an error naming the file. The PDFs are
deterministic (no creation date).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from . import tables as T  # noqa: E402
from .studies import FIGURE_STUDY  # noqa: E402

# ------------------------------------------------------------------------------------------ style

#: Okabe & Ito (2008) colour-blind-safe palette, one fixed colour per norm
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "skyblue": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7"}
NORM_COLOUR = {"none": OKABE_ITO["black"], "bn": OKABE_ITO["vermillion"], "ln": OKABE_ITO["blue"],
               "in": OKABE_ITO["green"], "gn": OKABE_ITO["purple"]}
EXTRA_COLOURS = [OKABE_ITO["orange"], OKABE_ITO["skyblue"], OKABE_ITO["yellow"]]
NORM_MARKER = {"none": "o", "bn": "s", "ln": "^", "in": "D", "gn": "v"}
EXTRA_MARKERS = ["P", "X", "*"]
REGIME_LINESTYLE = {"standard": "-", "pgd_linf": "--"}
EXTRA_LINESTYLES = [":", "-.", (0, (5, 1, 1, 1, 1, 1))]
REGIME_HATCH = {"standard": "", "pgd_linf": "////"}
EXTRA_HATCHES = ["....", "xxxx", "\\\\\\\\"]
SPREAD_NOTE = "line: mean over seeds; band: min–max over seeds"
BAR_NOTE = "bar: mean over seeds; whisker: min–max over seeds; hatch: training regime"

STYLE = {
    "font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8,
    "legend.fontsize": 7, "legend.title_fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "axes.spines.top": False, "axes.spines.right": False, "axes.linewidth": 0.6, "axes.grid": True,
    "grid.alpha": 0.3, "grid.linewidth": 0.5, "lines.linewidth": 1.3, "lines.markersize": 3.5,
    "legend.frameon": False, "pdf.fonttype": 42, "savefig.bbox": "tight", "savefig.pad_inches": 0.02,
    "hatch.linewidth": 0.6, "figure.dpi": 100,
}
FULL_WIDTH = 6.3  # inches: the report's text width; it includes figures at natural size (shrunk if wider)


def _extra(mapping: dict[str, Any], extras: list[Any], key: str) -> Any:
    if key in mapping:
        return mapping[key]
    return extras[sum(ord(c) for c in str(key)) % len(extras)]


def norm_colour(norm: str) -> str:
    return _extra(NORM_COLOUR, EXTRA_COLOURS, norm)


def norm_marker(norm: str) -> str:
    return _extra(NORM_MARKER, EXTRA_MARKERS, norm)


def regime_linestyle(regime: str) -> Any:
    return _extra(REGIME_LINESTYLE, EXTRA_LINESTYLES, regime)


def regime_hatch(regime: str) -> str:
    return _extra(REGIME_HATCH, EXTRA_HATCHES, regime)


def _pct(metric: str) -> float:
    return 100.0 if T.metric_is_percent(metric) else 1.0


# -------------------------------------------------------------------------------------- selection

@dataclass
class Selection:
    """Which cells a figure shows; ``None`` = everything present."""

    dataset: str | None = None
    archs: list[str] | None = None
    norms: list[str] | None = None
    regimes: list[str] | None = None
    study: str | None = None

    def describe(self) -> str:
        parts = [self.dataset or "", ", ".join(self.archs or [])]
        return " · ".join(p for p in parts if p)


def make_selection(run_info: dict[str, Any], study: str | None, dataset: str | None = None,
                   archs: Sequence[str] | None = None) -> Selection:
    st = ((run_info.get("config") or {}).get("studies") or {}).get(study) if study else None
    sel = Selection(study=study if st else None)
    if st:
        sel.dataset = st.get("dataset")
        sel.archs = [str(a) for a in st.get("archs", [])] or None
        sel.norms = [str(n) for n in st.get("norms", [])] or None
        sel.regimes = [str(r) for r in st.get("regimes", [])] or None
    if dataset:
        sel.dataset = dataset
    if archs:
        sel.archs = list(archs)
    return sel


def _apply(df: pd.DataFrame, sel: Selection, prefix: str = "") -> pd.DataFrame:
    """Filter rows to the selection (columns ``dataset``, ``{prefix}arch``, ``{prefix}norm``, ...)."""
    if df.empty:
        return df
    if sel.dataset is None and "dataset" in df.columns and df["dataset"].nunique() > 0:
        sel.dataset = sorted(df["dataset"].unique())[0]
    m = pd.Series(True, index=df.index)
    if sel.dataset is not None and "dataset" in df.columns:
        m &= df["dataset"] == sel.dataset
    for col, vals in ((f"{prefix}arch", sel.archs), (f"{prefix}norm", sel.norms),
                      (f"{prefix}regime", sel.regimes)):
        if vals is not None and col in df.columns:
            m &= df[col].isin(vals)
    return df[m]


# ------------------------------------------------------------------------------------------ helpers

def _note(ax, text: str) -> None:
    """A visible note inside an (otherwise empty) axis: data missing."""
    # per-axis tick settings only: axes may share their scales with panels that do have data
    ax.tick_params(left=False, bottom=False, labelleft=False, labelbottom=False)
    ax.grid(False)
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=7, color="0.3",
            multialignment="center", bbox={"boxstyle": "round", "fc": "0.95", "ec": "0.7", "lw": 0.5})


def _note_figure(text: str, width: float = FULL_WIDTH / 2, height: float = 1.6):
    """A whole figure that only says what is missing (the report stays buildable)."""
    fig, ax = plt.subplots(figsize=(width, height))
    _note(ax, text)
    for sp in ax.spines.values():
        sp.set_visible(False)
    return fig


def _agg(df: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    st = T.seed_stats(df, keys, value=value)
    for c in ("mean", "std", "min", "max"):
        st[c] = st[c].astype(float)
    return st


def _norm_handles(norms: Sequence[str], marker: bool = True) -> list[Any]:
    return [Line2D([], [], color=norm_colour(n), marker=norm_marker(n) if marker else None,
                   label=T.norm_label(n)) for n in norms]


def _regime_handles(regimes: Sequence[str]) -> list[Any]:
    return [Line2D([], [], color="0.2", linestyle=regime_linestyle(r), label=T.regime_label(r))
            for r in regimes]


def _hatch_handles(regimes: Sequence[str]) -> list[Any]:
    return [Patch(facecolor="0.85", edgecolor="0.2", hatch=regime_hatch(r), label=T.regime_label(r), lw=0.6)
            for r in regimes]


def _legend_top(fig, handles: list[Any], title: str = SPREAD_NOTE) -> None:
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(handles), 7),
               title=title, handlelength=2.4, columnspacing=1.2)


def _attack_desc(attack: dict[str, Any] | None) -> str:
    """'PGD-L∞ ε=4/255' from a config attack dict."""
    if not isinstance(attack, dict):
        return ""
    name = f"{str(attack.get('type', '')).lower()}_{attack.get('norm', '')}"
    label = T.attack_label(name) if name in T.ATTACK_LABEL else name.upper()
    eps = attack.get("eps")
    if eps is None:
        return label
    return f"{label} {T.eps_label(name, float(eps))}"


def _eps_axis_label(attack: str) -> str:
    if attack == "gaussian":
        return "noise std σ"
    if T.is_linf(attack):
        return "ε (×1/255)"
    if "l2" in attack:
        return "ε (L2 norm)"
    return "ε"


# -------------------------------------------------------------------------------------- figures

def fig_trajectories(history: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """Per regime (rows) and arch: clean accuracy, robust accuracy and LIGS per epoch (columns)."""
    h = _apply(history, sel)
    if h.empty:
        return _note_figure(f"no training history for\n{sel.describe() or 'this selection'}\nin history.csv")
    regimes = T.sort_regimes(set(sel.regimes or []) | set(h["regime"]))
    archs = sorted(set(sel.archs or []) | set(h["arch"])) if sel.archs else sorted(set(h["arch"]))
    norms = T.sort_norms(h["norm"])
    rows = [(a, r) for a in archs for r in regimes]
    hist_attack = _attack_desc((((run_info or {}).get("config") or {}).get("training") or {})
                               .get("history", {}).get("attack"))
    cols = [("clean_acc", "clean accuracy (%)"),
            ("robust_acc", f"robust accuracy (%){', ' + hist_attack if hist_attack else ''}"),
            ("ligs", "LIGS")]
    fig, axes = plt.subplots(len(rows), 3, figsize=(FULL_WIDTH, 1.75 * len(rows) + 0.3), squeeze=False)
    nseeds = h["seed"].nunique()
    lr_drawn = False
    for i, (arch, regime) in enumerate(rows):
        cell = h[(h["arch"] == arch) & (h["regime"] == regime)]
        for j, (metric, label) in enumerate(cols):
            ax = axes[i, j]
            row_name = T.regime_label(regime) + (f" · {arch}" if len(archs) > 1 else "")
            if i == 0:
                ax.set_title(label)
            ax.set_ylabel(f"{row_name}\n{label.split(' (')[0].split(',')[0]}" if j == 0 else
                          {"clean_acc": "%", "robust_acc": "%", "ligs": "LIGS"}[metric])
            if i == len(rows) - 1:
                ax.set_xlabel("epoch")
            d = cell[cell[metric].notna()]
            if d.empty:
                _note(ax, f"no {T.METRIC_LABEL.get(metric, metric)}\nfor {T.regime_label(regime)}")
                continue
            # lr decays as dotted vertical lines
            lr = d.groupby("epoch")["lr"].mean().sort_index()
            for e0, e1, l0, l1 in zip(lr.index[:-1], lr.index[1:], lr.values[:-1], lr.values[1:]):
                if np.isfinite(l0) and np.isfinite(l1) and l1 < l0 * 0.999:
                    ax.axvline(e1, color="0.6", lw=0.6, ls=":", zorder=0)
                    lr_drawn = True
            st = _agg(d, ["norm", "epoch"], metric)
            for norm in norms:
                s = st[st["norm"] == norm].sort_values("epoch")
                if s.empty:
                    continue
                k = _pct(metric)
                ax.plot(s["epoch"], s["mean"] * k, color=norm_colour(norm), label=T.norm_label(norm))
                ax.fill_between(s["epoch"], s["min"] * k, s["max"] * k, color=norm_colour(norm), alpha=0.18,
                                lw=0)
            if metric == "ligs":
                lo = min(0.0, float(st["min"].min()))
                ax.set_ylim(lo if lo < 0 else max(0.0, float(st["min"].min()) - 0.05), 1.01)
    handles = _norm_handles(norms, marker=False)
    if lr_drawn:
        handles.append(Line2D([], [], color="0.6", ls=":", lw=0.8, label="lr decay"))
    _legend_top(fig, handles, f"{SPREAD_NOTE} ({nseeds} seed{'s' if nseeds != 1 else ''})")
    fig.align_ylabels(axes[:, 0])
    fig.tight_layout(h_pad=0.6, w_pad=0.8)
    return fig


def fig_robust_vs_eps(metrics: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """A panel per attack (and arch): accuracy against ε, a line per norm, line style per regime.

    ε = 0 is the clean accuracy. Gaussian-noise accuracy is the last panel when present.
    """
    m = _apply(metrics, sel)
    acc = m[m["metric"].isin(["robust_acc", "noise_acc"]) & m["value"].notna()].copy()
    acc.loc[acc["metric"] == "noise_acc", "attack"] = "gaussian"
    if acc.empty:
        return _note_figure(f"no robust_acc / noise_acc for\n{sel.describe() or 'this selection'}\nin metrics.csv")
    attacks = T.sort_attacks(acc["attack"])
    archs = sorted(acc["arch"].unique())
    norms = T.sort_norms(acc["norm"])
    regimes = T.sort_regimes(acc["regime"])
    clean = m[(m["metric"] == "clean_acc") & m["value"].notna()]
    clean_st = _agg(clean, ["arch", "norm", "regime"], "value")
    ncol = len(attacks)
    fig, axes = plt.subplots(len(archs), ncol, figsize=(FULL_WIDTH, 2.0 * len(archs) + 0.5), squeeze=False,
                             sharey=True)
    for i, arch in enumerate(archs):
        for j, attack in enumerate(attacks):
            ax = axes[i, j]
            ax.set_title(T.attack_label(attack) + (f" · {arch}" if len(archs) > 1 else ""))
            ax.set_xlabel(_eps_axis_label(attack))
            if j == 0:
                ax.set_ylabel("accuracy (%)")
            d = acc[(acc["arch"] == arch) & (acc["attack"] == attack)]
            if d.empty:
                _note(ax, f"no {T.attack_label(attack)}\nresults")
                continue
            st = _agg(d, ["norm", "regime", "eps"], "value")
            for regime in regimes:
                for norm in norms:
                    s = st[(st["norm"] == norm) & (st["regime"] == regime)].sort_values("eps")
                    if s.empty:
                        continue
                    c0 = clean_st[(clean_st["arch"] == arch) & (clean_st["norm"] == norm)
                                  & (clean_st["regime"] == regime)]
                    x, y, lo, hi = (list(s["eps"]), list(s["mean"]), list(s["min"]), list(s["max"]))
                    if len(c0):
                        x, y = [0.0] + x, [float(c0["mean"].iloc[0])] + y
                        lo, hi = [float(c0["min"].iloc[0])] + lo, [float(c0["max"].iloc[0])] + hi
                    col = norm_colour(norm)
                    ax.plot(x, np.array(y) * 100, color=col, ls=regime_linestyle(regime), marker=norm_marker(norm))
                    ax.fill_between(x, np.array(lo) * 100, np.array(hi) * 100, color=col, alpha=0.12, lw=0)
            ax.set_ylim(-2, 102)
            ax.set_xlim(left=0)
            xs = sorted({0.0} | set(float(e) for e in st["eps"]))
            if len(xs) <= 6:
                ax.set_xticks(xs, [T.fmt_num(x) for x in xs])
    handles = _norm_handles(norms) + (_regime_handles(regimes) if len(regimes) > 1 else [])
    title = f"{SPREAD_NOTE}; ε = 0 is clean accuracy"
    if len(regimes) == 1:
        title += f"; {T.regime_label(regimes[0])} training"
    _legend_top(fig, handles, title)
    fig.tight_layout(w_pad=0.6)
    return fig


def _grouped_bars(ax, st: pd.DataFrame, norms: list[str], regimes: list[str], scale: float = 1.0) -> None:
    """Bars per norm (groups) × regime (hatch), mean with min–max whiskers; n/a where missing."""
    width = 0.8 / max(len(regimes), 1)
    for gi, norm in enumerate(norms):
        for ri, regime in enumerate(regimes):
            x = gi - 0.4 + width * (ri + 0.5)
            s = st[(st["norm"] == norm) & (st["regime"] == regime)]
            if s.empty or not np.isfinite(s["mean"].iloc[0]):
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=5.5, color="0.4", rotation=90)
                continue
            mean, lo, hi = (float(s[c].iloc[0]) * scale for c in ("mean", "min", "max"))
            ax.bar(x, mean, width=width * 0.92, color=norm_colour(norm), alpha=0.85 if ri == 0 else 0.55,
                   hatch=regime_hatch(regime), edgecolor="0.15", linewidth=0.5)
            ax.errorbar(x, mean, yerr=[[mean - lo], [hi - mean]], color="0.1", lw=0.8, capsize=1.8, capthick=0.8)
    ax.set_xticks(range(len(norms)), [T.norm_label(n) for n in norms])
    ax.set_xlim(-0.6, len(norms) - 0.4)
    ax.grid(axis="x", visible=False)


def fig_ligs_per_norm(metrics: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """Grouped bars: LIGS per norm (groups) and regime (hatch), a panel per arch."""
    m = _apply(metrics, sel)
    d = m[(m["metric"] == "ligs") & m["value"].notna()]
    if d.empty:
        return _note_figure(f"no LIGS for\n{sel.describe() or 'this selection'}\nin metrics.csv")
    archs = sorted(d["arch"].unique())
    norms = T.sort_norms(d["norm"])
    regimes = T.sort_regimes(set(d["regime"]) | set(sel.regimes or []))
    fig, axes = plt.subplots(1, len(archs), figsize=(min(FULL_WIDTH, 3.4 * len(archs)), 2.3), squeeze=False,
                             sharey=True)
    for j, arch in enumerate(archs):
        ax = axes[0, j]
        st = _agg(d[d["arch"] == arch], ["norm", "regime"], "value")
        _grouped_bars(ax, st, norms, regimes)
        if len(archs) > 1:
            ax.set_title(arch)
        if j == 0:
            ax.set_ylabel("LIGS (cosine similarity)")
        lo = float(st["min"].min()) if len(st) else 0.0
        ax.set_ylim(min(0.0, lo - 0.05), 1.05)
    fig.legend(handles=_hatch_handles(regimes), loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncol=len(regimes), title=BAR_NOTE)
    fig.tight_layout()
    return fig


NRF_PANELS = [("nrf_reliance", "NRF reliance"), ("rf_only_acc", "RF-only test accuracy (%)"),
              ("nrf_only_acc", "NRF-only test accuracy (%)")]


def fig_nrf_reliance(metrics: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """Per norm × regime: NRF reliance, RF-only and NRF-only accuracy (a row per arch)."""
    m = _apply(metrics, sel)
    d = m[m["metric"].isin([k for k, _ in NRF_PANELS]) & m["value"].notna()]
    if d.empty:
        return _note_figure(f"no NRF-reliance metrics for\n{sel.describe() or 'this selection'}\nin metrics.csv "
                            "(generated dataset only)")
    archs = sorted(d["arch"].unique())
    norms = T.sort_norms(d["norm"])
    regimes = T.sort_regimes(set(d["regime"]) | set(sel.regimes or []))
    fig, axes = plt.subplots(len(archs), len(NRF_PANELS), figsize=(FULL_WIDTH, 2.1 * len(archs) + 0.3),
                             squeeze=False)
    for i, arch in enumerate(archs):
        for j, (metric, label) in enumerate(NRF_PANELS):
            ax = axes[i, j]
            ax.set_title(label.replace(" (%)", "") + (f" · {arch}" if len(archs) > 1 else ""))
            ax.set_ylabel(label if j == 0 else ("%" if "%" in label else label))
            s = d[(d["arch"] == arch) & (d["metric"] == metric)]
            if s.empty:
                _note(ax, f"no {metric}\nin metrics.csv")
                continue
            k = _pct(metric)
            st = _agg(s, ["norm", "regime"], "value")
            _grouped_bars(ax, st, norms, regimes, scale=k)
            top = max(1.0 * k, float(st["max"].max()) * k * 1.05)
            ax.set_ylim(min(0.0, float(st["min"].min()) * k * 1.05), top)
            ax.tick_params(axis="x", labelsize=6.5)
    fig.legend(handles=_hatch_handles(regimes), loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncol=len(regimes), title=BAR_NOTE)
    fig.tight_layout(w_pad=0.8)
    return fig


def fig_transfer_heatmap(transfer: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """Source (rows) × target (columns) transfer success rate (%), mean over seeds, annotated."""
    t = _apply(transfer, Selection(dataset=sel.dataset))  # dataset only; archs/norms below
    if sel.dataset is None and not t.empty:
        sel.dataset = t["dataset"].iloc[0]
    if sel.archs is not None:
        t = t[t["source_arch"].isin(sel.archs) & t["target_arch"].isin(sel.archs)]
    if sel.norms is not None:
        t = t[t["source_norm"].isin(sel.norms) & t["target_norm"].isin(sel.norms)]
    if sel.regimes is not None:
        t = t[t["source_regime"].isin(sel.regimes)]
    t = t[t["success_rate"].notna()]
    if t.empty:
        return _note_figure(f"no transfer results for\n{sel.describe() or 'this selection'}\nin transfer.csv")
    mat = T.transfer_matrix(t)
    multi_arch = len(set(mat["source_arch"]) | set(mat["target_arch"])) > 1

    def name(a, r, n):
        s = f"{T.norm_label(n)} ({T.regime_short(r)})"
        return f"{a}/{s}" if multi_arch else s

    src = T.cell_order(mat[["source_arch", "source_regime", "source_norm"]].drop_duplicates(),
                        ["source_arch", "source_regime", "source_norm"])
    tgt = T.cell_order(mat[["target_arch", "target_regime", "target_norm"]].drop_duplicates(),
                        ["target_arch", "target_regime", "target_norm"])
    src_k = [tuple(r) for r in src.itertuples(index=False)]
    tgt_k = [tuple(r) for r in tgt.itertuples(index=False)]
    grid = np.full((len(src_k), len(tgt_k)), np.nan)
    look = {(r.source_arch, r.source_regime, r.source_norm, r.target_arch, r.target_regime, r.target_norm): r.mean
            for r in mat.itertuples(index=False)}
    for i, s in enumerate(src_k):
        for j, g in enumerate(tgt_k):
            grid[i, j] = look.get(s + g, np.nan) * 100
    w = min(FULL_WIDTH, 1.9 + 0.62 * len(tgt_k))
    h = 0.9 + 0.27 * len(src_k)
    fig, ax = plt.subplots(figsize=(w, h))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.88")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=100, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid[i, j]
            ax.text(j, i, "–" if not np.isfinite(v) else f"{v:.0f}", ha="center", va="center", fontsize=6.5,
                    color="0.3" if not np.isfinite(v) else ("black" if v > 60 else "white"))
    ax.set_xticks(range(len(tgt_k)), [name(*k) for k in tgt_k], rotation=35, ha="right")
    ax.set_yticks(range(len(src_k)), [name(*k) for k in src_k])
    ax.set_xlabel("target model (norm, training regime)")
    ax.set_ylabel("source model")
    ax.grid(False)
    for s in ax.spines.values():
        s.set_visible(False)
    nseeds = t["seed"].nunique()
    cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    cb.set_label(f"success rate (%), mean over {nseeds} seed{'s' if nseeds != 1 else ''}")
    cb.outline.set_linewidth(0.4)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class FigureSpec:
    func: Callable[..., Any]
    table: str  # the CSV it reads
    study: str  # the study whose cells it shows by default


FIGURES: dict[str, FigureSpec] = {
    "trajectories": FigureSpec(fig_trajectories, "history", FIGURE_STUDY["trajectories"]),
    "robust_vs_eps": FigureSpec(fig_robust_vs_eps, "metrics", FIGURE_STUDY["robust_vs_eps"]),
    "ligs_per_norm": FigureSpec(fig_ligs_per_norm, "metrics", FIGURE_STUDY["ligs_per_norm"]),
    "transfer_heatmap": FigureSpec(fig_transfer_heatmap, "transfer", FIGURE_STUDY["transfer_heatmap"]),
    "nrf_reliance": FigureSpec(fig_nrf_reliance, "metrics", FIGURE_STUDY["nrf_reliance"]),
}


def save_figure(fig, out: str | Path) -> None:
    """Write a vector PDF atomically, without creation date (byte-identical reruns)."""
    from .utils import atomic_write

    meta = {"CreationDate": None, "ModDate": None, "Creator": "normrobust figures", "Producer": None}
    atomic_write(out, lambda f: fig.savefig(f, format="pdf", metadata=meta))
    plt.close(fig)


def build_figure(name: str, tables_dir: str | Path, out: str | Path, *, study: str | None = "default",
                 dataset: str | None = None, archs: Sequence[str] | None = None) -> Path:
    """Build figure ``name`` from ``tables_dir`` into ``out`` (PDF).

    ``study="default"`` uses the figure's own study, ``None`` / ``"all"`` every cell of one dataset.
    Raises :class:`normrobust.tables.MissingInputError` when the input CSV is absent.
    """
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r} (choose from {', '.join(FIGURES)})")
    spec = FIGURES[name]
    df = T.read_table(tables_dir, spec.table)
    info = T.read_run_info(tables_dir, required=False)
    st = spec.study if study == "default" else (None if study in (None, "all", "none") else study)
    sel = make_selection(info, st, dataset=dataset, archs=archs)
    with plt.rc_context(STYLE):
        fig = spec.func(df, sel, info)
        save_figure(fig, out)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m normrobust figure", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(FIGURES), help="which figure")
    p.add_argument("--tables", default="results/tables", help="directory of the aggregated tables")
    p.add_argument("--out", required=True, help="output PDF")
    p.add_argument("--study", default="default",
                   help="study whose cells to show (default: the figure's own; 'all': every cell)")
    p.add_argument("--dataset", default=None, help="dataset to show (default: the study's)")
    p.add_argument("--arch", nargs="+", default=None, help="architecture(s) to show (default: the study's)")
    args = p.parse_args(argv)
    try:
        out = build_figure(args.name, args.tables, args.out, study=args.study, dataset=args.dataset,
                           archs=args.arch)
    except T.MissingInputError as e:
        print(f"normrobust figure {args.name}: error: {e}", file=sys.stderr)
        return 1
    from .utils import log

    log(f"figure {args.name} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
