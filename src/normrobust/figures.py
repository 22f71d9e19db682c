"""Figures of the report, made from the aggregated tables only.

Usage::

    python -m normrobust figure NAME --tables results/tables --out results/figures/NAME.pdf
        [--study STUDY|all] [--dataset NAME] [--arch NAME ...]

NAME is one of

* ``robust_vs_eps`` (E1: robust accuracy against ε per attack), ``ligs_per_norm`` (E1: LIGS per norm, regime);
* ``trajectories`` (E2, paper Fig. 3: clean accuracy, robust accuracy per history attack, LIGS per epoch);
* ``disentangled`` (E3, paper Fig. 4: clean / robust accuracy and LIGS per derived dataset, BN vs none);
* ``conflict`` (E4, paper Fig. 6: accuracy against labels t and t+1, LIGS);
* ``nrf_reliance`` (E5: NRF reliance, RF-only and NRF-only accuracy), ``ligs_vs_nrf`` (E5: LIGS against
  NRF reliance per cell, Spearman rank correlation);
* ``factors`` (E6: LIGS and clean accuracy of each one-at-a-time variant of the base cell);
* ``adv_training`` (E7: clean and robust accuracy per training regime and norm);
* ``ligs_reg`` (E8: clean / robust accuracy and LIGS against the LIGS regulariser's weight);
* ``transfer_heatmap`` (E9: success per source and target), ``transfer_sources`` (E9: success per kind of
  source: final, early-stopped, slightly robust);
* ``fgsm`` (E10, [G]: FGSM error and confidence against ε, transfer error between standard and FGSM-trained).

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
from matplotlib.ticker import MaxNLocator  # noqa: E402

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
    """Which cells a figure shows; ``None`` = everything present.

    ``dataset`` is one name or, for a study over several datasets (E3), a list of names. ``spec`` is the
    study's own config entry (design, transfer block, ...) when the study is in the config.
    """

    dataset: str | list[str] | None = None
    archs: list[str] | None = None
    norms: list[str] | None = None
    regimes: list[str] | None = None
    study: str | None = None
    spec: dict[str, Any] | None = None

    def datasets(self) -> list[str] | None:
        if self.dataset is None:
            return None
        return [self.dataset] if isinstance(self.dataset, str) else [str(d) for d in self.dataset]

    def describe(self) -> str:
        parts = [", ".join(self.datasets() or []), ", ".join(self.archs or [])]
        return " · ".join(p for p in parts if p)


def make_selection(run_info: dict[str, Any], study: str | None, dataset: str | None = None,
                   archs: Sequence[str] | None = None) -> Selection:
    st = ((run_info.get("config") or {}).get("studies") or {}).get(study) if study else None
    sel = Selection(study=study if st else None, spec=st if st else None)
    if st:
        d = st.get("dataset")
        sel.dataset = d if isinstance(d, str) or d is None else [str(x) for x in d]
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
        m &= df["dataset"].isin(sel.datasets())
    for col, vals in ((f"{prefix}arch", sel.archs), (f"{prefix}norm", sel.norms),
                      (f"{prefix}regime", sel.regimes)):
        if vals is not None and col in df.columns:
            m &= df[col].isin(vals)
    return df[m]


# ------------------------------------------------------------------------------------------ helpers

def _cfg(run_info: dict[str, Any] | None) -> dict[str, Any]:
    return (run_info or {}).get("config") or {}


def _num(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """Columns parsed as numbers (tables read newer columns as text); unparsable entries NaN."""
    cols = [c for c in cols if c in df.columns and not pd.api.types.is_numeric_dtype(df[c])]
    if not cols:
        return df
    df = df.copy()
    for c in cols:
        df[c] = pd.to_numeric(df[c].replace({"": None}), errors="coerce")
    return df


def _truthy(col: pd.Series) -> pd.Series:
    """A True/False column written as text ('True', 'false', '1', ...) as booleans."""
    if pd.api.types.is_bool_dtype(col):
        return col
    return col.astype(str).str.strip().str.lower().isin(["true", "1", "1.0", "yes"])


def _eps_is(col: pd.Series, eps: float) -> pd.Series:
    return pd.Series(np.isclose(col.astype(float), float(eps), rtol=1e-6, atol=1e-9), index=col.index)


def _headline_rows(m: pd.DataFrame, run_info: dict[str, Any] | None) -> tuple[pd.DataFrame, str]:
    """The headline robust-accuracy rows (config evaluation.headline) and their label ('PGD-L∞ ε=4/255')."""
    h = T.headline(run_info or {})
    r = m[(m["metric"] == "robust_acc") & (m["attack"] == h["attack"])]
    r = r[_eps_is(r["eps"], h["eps"])] if len(r) else r
    return r, T.attack_eps_label(h["attack"], h["eps"])


def _panel_labels(ax, label: str, arch: str | None = None) -> None:
    """Title (without the unit, with the arch when a figure has a row per arch, and the label's second line)
    and y label (the label's first line) of one metric panel."""
    first, *rest = label.split("\n")
    ax.set_title(first.replace(" (%)", "").replace(" (cosine similarity)", "") + (f" · {arch}" if arch else "")
                 + ("\n" + rest[0] if rest else ""))
    ax.set_ylabel(first)


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

def history_panels(history: pd.DataFrame, run_info: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """The per-epoch panels (column, title): clean accuracy, ``robust_acc`` (config training.history.attack),
    one ``robust_acc_<name>`` per extra history attack present (config order, then by name), LIGS."""
    hist_cfg = (_cfg(run_info).get("training") or {}).get("history") or {}
    hist_attack = _attack_desc(hist_cfg.get("attack"))
    cols = [("clean_acc", "clean accuracy (%)"),
            ("robust_acc", f"robust accuracy (%){', ' + hist_attack if hist_attack else ''}")]
    extra_cfg = hist_cfg.get("extra_attacks") or {}
    present = [c[len("robust_acc_"):] for c in history.columns if str(c).startswith("robust_acc_")]
    names = [n for n in extra_cfg if n in present] + sorted(n for n in present if n not in extra_cfg)
    for name in names:
        desc = _attack_desc(extra_cfg.get(name)) or (T.attack_label(name) if name in T.ATTACK_LABEL else name)
        cols.append((f"robust_acc_{name}", f"robust accuracy (%), {desc}"))
    cols.append(("ligs", "LIGS"))
    return cols


def fig_trajectories(history: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """Per regime (rows) and arch: clean accuracy, robust accuracy (one panel per history attack) and LIGS
    per epoch (columns), as paper Fig. 3 (clean / PGD-L∞ / PGD-L2 / LIGS)."""
    history = _num(history, [c for c in history.columns if str(c).startswith("robust_acc_")])
    h = _apply(history, sel)
    if h.empty:
        return _note_figure(f"no training history for\n{sel.describe() or 'this selection'}\nin history.csv")
    regimes = T.sort_regimes(set(sel.regimes or []) | set(h["regime"]))
    archs = sorted(set(sel.archs or []) | set(h["arch"])) if sel.archs else sorted(set(h["arch"]))
    norms = T.sort_norms(h["norm"])
    rows = [(a, r) for a in archs for r in regimes]
    cols = history_panels(h, run_info)
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(FULL_WIDTH, 1.75 * len(rows) + 0.3), squeeze=False)
    nseeds = h["seed"].nunique()
    lr_drawn = False
    for i, (arch, regime) in enumerate(rows):
        cell = h[(h["arch"] == arch) & (h["regime"] == regime)]
        for j, (metric, label) in enumerate(cols):
            ax = axes[i, j]
            row_name = T.regime_label(regime) + (f" · {arch}" if len(archs) > 1 else "")
            if i == 0:
                ax.set_title(label.replace(" (%), ", " (%)\n") if len(cols) > 3 else label)
            ax.set_ylabel(f"{row_name}\n{label.split(' (')[0].split(',')[0]}" if j == 0 else
                          ("LIGS" if metric == "ligs" else "%"))
            if i == len(rows) - 1:
                ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
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
                k = 1.0 if metric == "ligs" else 100.0
                ax.plot(s["epoch"], s["mean"] * k, color=norm_colour(norm), label=T.norm_label(norm),
                        gid=f"{metric}|{arch}|{regime}|{norm}")
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
    if "study" in t.columns and sel.study is not None:  # newer tables: the rows this study's block made
        t = t[t["study"] == sel.study]
    if "source_final" in t.columns:  # finished sources only (early-stopped ones: figure transfer_sources)
        t = t[_truthy(t["source_final"])]
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


# ------------------------------------------------------------------------------ figures of E3-E10

#: colours per architecture where the norm is fixed (E10): Okabe–Ito, by the arch's position
ARCH_COLOURS = [OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["green"], OKABE_ITO["skyblue"],
                OKABE_ITO["purple"], OKABE_ITO["vermillion"], OKABE_ITO["black"]]
REGIME_MARKER = {"standard": "o", "pgd_linf": "s"}
EXTRA_REGIME_MARKERS = ["^", "D", "v", "P"]
#: derived-dataset methods (config datasets.<name>.method) → the names PAPER.md uses
DATASET_METHOD_LABEL = {"robust": r"$D_{\mathrm{R}}$", "nonrobust": r"$D_{\mathrm{NR}}$",
                        "rand": r"$D_{\mathrm{rand}}$", "det": r"$D_{\mathrm{det}}$",
                        "conflict": r"$D_{\mathrm{conflict}}$"}
DISENTANGLED_METHODS = ["robust", "nonrobust", "rand", "det"]
ACTIVATION_LABEL = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "selu": "SELU", "elu": "ELU", "gelu": "GELU",
                    "tanh": "tanh"}
OPTIMIZER_LABEL = {"sgd": "SGD", "adam": "Adam", "adagrad": "Adagrad"}
NO_DATA = "no data"


def regime_marker(regime: str) -> str:
    return _extra(REGIME_MARKER, EXTRA_REGIME_MARKERS, regime)


def arch_colours(archs: Sequence[str]) -> dict[str, str]:
    return {a: ARCH_COLOURS[i % len(ARCH_COLOURS)] for i, a in enumerate(archs)}


def _no_data_figure(study: str | None, what: str, table: str, sel: Selection | None = None) -> Any:
    where = f"study {study}" if study else (sel.describe() if sel is not None and sel.describe() else "this selection")
    return _note_figure(f"{NO_DATA}: no {what}\nfor {where}\nin {table}")


def _study_datasets(sel: Selection, run_info: dict[str, Any] | None, methods: Sequence[str]) -> list[str]:
    """The datasets a study over derived datasets shows: the selection's, else every config dataset whose
    ``method`` is one of ``methods`` (in that order)."""
    if sel.datasets():
        return sel.datasets()
    ds = _cfg(run_info).get("datasets") or {}
    found = [(methods.index(c.get("method")), n) for n, c in ds.items()
             if isinstance(c, dict) and c.get("method") in methods]
    return [n for _, n in sorted(found)]


def dataset_label(name: str, run_info: dict[str, Any] | None) -> str:
    """D_R, D_NR, D_rand, D_det (from the dataset's ``method``), else the dataset's name."""
    c = (_cfg(run_info).get("datasets") or {}).get(name) or {}
    return DATASET_METHOD_LABEL.get(c.get("method"), str(name)) if isinstance(c, dict) else str(name)


def _filter_cells(m: pd.DataFrame, sel: Selection, datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of the selection's archs / norms / regimes (and the given datasets, default the selection's)."""
    mask = pd.Series(True, index=m.index)
    ds = list(datasets) if datasets is not None else sel.datasets()
    if ds is not None:
        mask &= m["dataset"].isin(ds)
    for col, vals in (("arch", sel.archs), ("norm", sel.norms), ("regime", sel.regimes)):
        if vals is not None:
            mask &= m[col].isin(vals)
    return m[mask]


def _bars(ax, st: pd.DataFrame, group_col: str, groups: Sequence[Any], series: Sequence[dict[str, Any]],
          *, scale: float = 1.0, gid: str = "", group_colour: Callable[[Any], str] | None = None) -> None:
    """Grouped bars: ``groups`` on x (values of ``group_col``), one bar per series within a group.

    A series is a dict: ``match`` (column → value the stats rows must have), ``colour`` (None: the
    group's, from ``group_colour``), ``hatch``, ``alpha``. Bars are mean over seeds with min–max whiskers;
    missing ones say n/a. Every bar's gid is ``gid|group|match values`` (tests read the heights back).
    """
    width = 0.8 / max(len(series), 1)
    for gi, g in enumerate(groups):
        for si, s in enumerate(series):
            x = gi - 0.4 + width * (si + 0.5)
            r = st[st[group_col] == g]
            for k, v in s.get("match", {}).items():
                r = r[r[k] == v]
            if r.empty or not np.isfinite(float(r["mean"].iloc[0])):
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=5.5, color="0.4", rotation=90)
                continue
            mean, lo, hi = (float(r[c].iloc[0]) * scale for c in ("mean", "min", "max"))
            colour = s.get("colour") or (group_colour(g) if group_colour else "0.5")
            bc = ax.bar(x, mean, width=width * 0.92, color=colour, alpha=s.get("alpha", 0.85),
                        hatch=s.get("hatch", ""), edgecolor="0.15", linewidth=0.5)
            bc.patches[0].set_gid("|".join([gid, str(g)] + [str(v) for v in s.get("match", {}).values()]))
            ax.errorbar(x, mean, yerr=[[mean - lo], [hi - mean]], color="0.1", lw=0.8, capsize=1.8,
                        capthick=0.8)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.grid(axis="x", visible=False)


def _norm_series(norms: Sequence[str], regimes: Sequence[str] = ("standard",)) -> list[dict[str, Any]]:
    """One bar series per norm × regime: colour per norm, hatch per regime (first regime solid)."""
    return [{"match": {"norm": n, "regime": r}, "colour": norm_colour(n), "hatch": regime_hatch(r),
             "alpha": 0.85 if ri == 0 else 0.55} for ri, r in enumerate(regimes) for n in norms]


def _norm_patches(norms: Sequence[str]) -> list[Any]:
    return [Patch(facecolor=norm_colour(n), edgecolor="0.15", lw=0.5, alpha=0.85, label=T.norm_label(n))
            for n in norms]


def _pct_ylim(ax) -> None:
    ax.set_ylim(0, 105)


def _ligs_ylim(ax, st: pd.DataFrame) -> None:
    lo = float(st["min"].min()) if len(st) and np.isfinite(st["min"].min()) else 0.0
    ax.set_ylim(min(0.0, lo - 0.05), 1.05)


def _stats3(m: pd.DataFrame, run_info: dict[str, Any] | None, keys: list[str]) -> tuple[list[tuple], str]:
    """Seed stats of the three usual panels: clean accuracy, headline robust accuracy, LIGS."""
    rob, head = _headline_rows(m, run_info)
    panels = [("clean_acc", "clean accuracy (%)", m[m["metric"] == "clean_acc"], 100.0),
              ("robust_acc", f"robust accuracy (%)\n{head}", rob, 100.0),
              ("ligs", "LIGS (cosine similarity)", m[m["metric"] == "ligs"], 1.0)]
    return [(k, lab, _agg(d[d["value"].notna()], keys, "value"), sc) for k, lab, d, sc in panels], head


def _nseeds_note(df: pd.DataFrame) -> str:
    n = int(df["seed"].nunique()) if "seed" in df.columns and len(df) else 0
    return f"{n} seed{'s' if n != 1 else ''}"


def fig_disentangled(metrics: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """E3 (paper Fig. 4): per derived dataset (D_R, D_NR, D_rand, D_det), bars per norm (and regime):
    clean accuracy, headline robust accuracy and LIGS, all on the real test set; a row per arch."""
    datasets = _study_datasets(sel, run_info, DISENTANGLED_METHODS)
    m = _filter_cells(metrics, sel, datasets) if datasets else metrics.iloc[0:0]
    m = m[m["value"].notna()]
    if m.empty:
        return _no_data_figure(sel.study, "results on the disentangled datasets", "metrics.csv", sel)
    datasets = [d for d in datasets if d in set(m["dataset"])] + sorted(set(m["dataset"]) - set(datasets))
    archs = [a for a in (sel.archs or []) if a in set(m["arch"])] or sorted(m["arch"].unique())
    norms = T.sort_norms(m["norm"])
    regimes = [r for r in (sel.regimes or []) if r in set(m["regime"])] or T.sort_regimes(m["regime"])
    fig, axes = plt.subplots(len(archs), 3, figsize=(FULL_WIDTH, 2.1 * len(archs) + 0.3), squeeze=False)
    for i, arch in enumerate(archs):
        panels, _ = _stats3(m[m["arch"] == arch], run_info, ["dataset", "norm", "regime"])
        for j, (metric, label, st, scale) in enumerate(panels):
            ax = axes[i, j]
            _panel_labels(ax, label, arch if len(archs) > 1 else None)
            if st.empty:
                _note(ax, f"{NO_DATA}:\nno {T.METRIC_LABEL.get(metric, metric)}")
                continue
            _bars(ax, st, "dataset", datasets, _norm_series(norms, regimes), scale=scale, gid=f"{metric}|{arch}")
            ax.set_xticks(range(len(datasets)), [dataset_label(d, run_info) for d in datasets])
            _ligs_ylim(ax, st) if metric == "ligs" else _pct_ylim(ax)
            ax.set_xlabel("training set (test: real images)")
    handles = _norm_patches(norms) + (_hatch_handles(regimes) if len(regimes) > 1 else [])
    _legend_top(fig, handles, f"{BAR_NOTE.split('; hatch')[0]} ({_nseeds_note(m)})")
    fig.tight_layout(w_pad=0.8)
    return fig


def _cell_key(arch: str, norm: str, regime: str, multi_arch: bool, multi_regime: bool) -> str:
    s = T.norm_label(norm)
    if multi_regime:
        s += f"\n{T.regime_short(regime)}"
    if multi_arch:
        s = f"{arch}\n{s}"
    return s


def fig_conflict(metrics: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """E4 (paper Fig. 6): per norm, accuracy on the real test set against the labels t (``clean_acc``;
    scored by a model that uses the NRFs) and t+1 (``shifted_acc``; scored by one that uses the RFs),
    and LIGS."""
    datasets = _study_datasets(sel, run_info, ["conflict"])
    m = _filter_cells(metrics, sel, datasets) if datasets else metrics.iloc[0:0]
    m = m[m["value"].notna() & m["metric"].isin(["clean_acc", "shifted_acc", "ligs"])]
    if m.empty:
        return _no_data_figure(sel.study, "results on the conflict dataset", "metrics.csv", sel)
    multi_arch, multi_regime = m["arch"].nunique() > 1, m["regime"].nunique() > 1
    cells = T.cell_order(m[["dataset", "arch", "regime", "norm"]].drop_duplicates(),
                         ["dataset", "arch", "regime", "norm"])
    m = m.assign(_cell=[_cell_key(a, n, r, multi_arch, multi_regime)
                        for a, n, r in zip(m["arch"], m["norm"], m["regime"])])
    groups = list(dict.fromkeys(_cell_key(a, n, r, multi_arch, multi_regime)
                                for a, n, r in zip(cells["arch"], cells["norm"], cells["regime"])))
    colour_of = {_cell_key(a, n, r, multi_arch, multi_regime): norm_colour(n)
                 for a, n, r in zip(cells["arch"], cells["norm"], cells["regime"])}
    fig, axes = plt.subplots(1, 2, figsize=(min(FULL_WIDTH, 2.4 + 0.9 * len(groups)), 2.3), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1.3]})
    ax = axes[0, 0]
    acc = _agg(m[m["metric"].isin(["clean_acc", "shifted_acc"])], ["_cell", "metric"], "value")
    ax.set_title("accuracy on the real test set")
    ax.set_ylabel("accuracy (%)")
    if acc.empty:
        _note(ax, f"{NO_DATA}:\nno clean_acc / shifted_acc")
    else:
        _bars(ax, acc, "_cell", groups, [{"match": {"metric": "clean_acc"}, "colour": None, "alpha": 0.9},
                                         {"match": {"metric": "shifted_acc"}, "colour": None, "hatch": "////",
                                          "alpha": 0.45}],
              scale=100.0, gid="acc", group_colour=colour_of.get)
        ax.set_xticks(range(len(groups)), groups)
        _pct_ylim(ax)
    ax = axes[0, 1]
    lg = _agg(m[m["metric"] == "ligs"], ["_cell"], "value")
    ax.set_title("LIGS")
    ax.set_ylabel("LIGS (cosine similarity)")
    if lg.empty:
        _note(ax, f"{NO_DATA}:\nno LIGS")
    else:
        _bars(ax, lg, "_cell", groups, [{"match": {}, "colour": None}], gid="ligs", group_colour=colour_of.get)
        ax.set_xticks(range(len(groups)), groups)
        _ligs_ylim(ax, lg)
    handles = [Patch(facecolor="0.6", edgecolor="0.15", lw=0.5, label="labels t (NRF use)"),
               Patch(facecolor="0.85", edgecolor="0.15", lw=0.5, hatch="////", label="labels t+1 (RF use)")]
    _legend_top(fig, handles, f"{BAR_NOTE.split('; hatch')[0]} ({_nseeds_note(m)}); colour: norm")
    fig.tight_layout(w_pad=0.8)
    return fig


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN with fewer than 3 pairs or a constant side."""
    d = pd.DataFrame({"x": list(x), "y": list(y)}).dropna()
    if len(d) < 3:
        return float("nan")
    rx, ry = d["x"].rank(), d["y"].rank()
    if rx.nunique() < 2 or ry.nunique() < 2:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def fig_ligs_vs_nrf(metrics: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """E5: LIGS (x) against NRF reliance (y), one point per cell (arch × norm × regime): mean over seeds
    with min–max whiskers; colour per norm, marker and fill per regime; the Spearman rank correlation of
    the cell means in the title."""
    m = _apply(metrics, sel)
    d = m[m["metric"].isin(["ligs", "nrf_reliance"]) & m["value"].notna()]
    keys = ["arch", "norm", "regime"]
    st = {k: _agg(d[d["metric"] == k], keys, "value") for k in ("ligs", "nrf_reliance")}
    both = st["ligs"].merge(st["nrf_reliance"], on=keys, suffixes=("_x", "_y"))
    if both.empty:
        return _no_data_figure(sel.study, "cells with both LIGS and NRF reliance", "metrics.csv", sel)
    both = T.cell_order(both, keys)
    norms, regimes = T.sort_norms(both["norm"]), T.sort_regimes(both["regime"])
    multi_arch = both["arch"].nunique() > 1
    fig, ax = plt.subplots(figsize=(FULL_WIDTH * 0.6, 2.6))
    for r in both.itertuples(index=False):
        col = norm_colour(r.norm)
        ax.errorbar(r.mean_x, r.mean_y, xerr=[[r.mean_x - r.min_x], [r.max_x - r.mean_x]],
                    yerr=[[r.mean_y - r.min_y], [r.max_y - r.mean_y]], fmt="none", ecolor=col, elinewidth=0.7,
                    alpha=0.7, capsize=1.2)
        ax.plot([r.mean_x], [r.mean_y], linestyle="none", marker=regime_marker(r.regime), markersize=5,
                markeredgecolor=col, markerfacecolor=col if r.regime == regimes[0] else "white",
                markeredgewidth=1.0, gid=f"point|{r.arch}|{r.norm}|{r.regime}")
        if multi_arch:
            ax.annotate(r.arch, (r.mean_x, r.mean_y), textcoords="offset points", xytext=(3, 2), fontsize=5.5,
                        color="0.35")
    rho = spearman(both["mean_x"], both["mean_y"])
    rho_txt = f"Spearman ρ = {rho:.2f}" if np.isfinite(rho) else "Spearman ρ: n/a (fewer than 3 distinct cells)"
    ax.set_title(f"{rho_txt} over {len(both)} cells (cell means)")
    ax.set_xlabel("LIGS (cosine similarity)")
    ax.set_ylabel("NRF reliance")
    handles = _norm_handles(norms, marker=False) + [
        Line2D([], [], linestyle="none", marker=regime_marker(r), markeredgecolor="0.2",
               markerfacecolor="0.2" if r == regimes[0] else "white", label=T.regime_label(r)) for r in regimes]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5),
               title=f"point: mean over seeds\nwhiskers: min–max\n({_nseeds_note(d)})")
    fig.tight_layout()
    return fig


def _sci(x: float) -> str:
    """0.005 → '5e-3', 0.2 → '0.2', 0 → '0'."""
    x = float(x)
    if x == 0 or not np.isfinite(x):
        return T.fmt_num(x) if np.isfinite(x) else str(x)
    if abs(x) < 0.01 or abs(x) >= 1e4:
        e = int(np.floor(np.log10(abs(x))))
        return f"{T.fmt_num(x / 10 ** e)}e{e}"
    return T.fmt_num(x)


def arch_difference(arch: dict[str, Any], base: dict[str, Any], name: str = "") -> str:
    """How an arch config differs from the base arch: 'width ×2', 'depth ×2', 'SELU', ... (else its name)."""
    arch, base = arch or {}, base or {}
    parts = []
    if arch.get("kind") != base.get("kind"):
        return name or str(arch.get("kind"))
    for key, word in (("width", "width"), ("depth", "depth")):
        a, b = float(arch.get(key, 1) or 1), float(base.get(key, 1) or 1)
        if not np.isclose(a, b):
            parts.append(f"{word} ×{T.fmt_num(a / b)}")
    a, b = arch.get("activation", "relu") or "relu", base.get("activation", "relu") or "relu"
    if a != b:
        parts.append(ACTIVATION_LABEL.get(a, str(a)))
    for key, word in (("widths", "widths"), ("blocks", "blocks"), ("hidden", "hidden")):
        if arch.get(key) != base.get(key) and arch.get(key) is not None:
            parts.append(f"{word} {'-'.join(str(v) for v in arch[key])}")
    for key, word in (("convs_per_stage", "convs/stage"), ("layers", "layers"), ("pieces", "pieces"),
                      ("dropout", "dropout")):
        if arch.get(key) != base.get(key) and arch.get(key) is not None:
            parts.append(f"{word} {T.fmt_num(arch[key])}")
    return ", ".join(parts) or name


def regime_difference(regime: dict[str, Any], base: dict[str, Any], training: dict[str, Any],
                      name: str = "") -> str:
    """How a regime differs from the base regime: its training overrides ('wd 5e-3', 'lr 0.2', 'Adam',
    ...) against the base's effective settings; a different attack/objective gives the regime's label."""
    regime, base, training = regime or {}, base or {}, training or {}
    parts = []
    if (regime.get("attack") != base.get("attack") or regime.get("objective") != base.get("objective")):
        parts.append(T.regime_label(name))
    eff = {**training, **(regime.get("training") or {})}
    eff0 = {**training, **(base.get("training") or {})}
    if str(eff.get("optimizer", "sgd")) != str(eff0.get("optimizer", "sgd")):
        parts.append(OPTIMIZER_LABEL.get(str(eff.get("optimizer")), str(eff.get("optimizer"))))
    for key, word in (("lr", "lr"), ("weight_decay", "wd"), ("momentum", "momentum")):
        a, b = eff.get(key), eff0.get(key)
        if a is not None and (b is None or not np.isclose(float(a), float(b))):
            parts.append(f"{word} {_sci(float(a))}")
    return ", ".join(parts) or name


def factor_variants(spec: dict[str, Any], run_info: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """E6 (design one_at_a_time): (arch, regime, label) of the base cell then each variant."""
    cfg = _cfg(run_info)
    archs, regimes = [str(a) for a in spec.get("archs", [])], [str(r) for r in spec.get("regimes", [])]
    if not archs or not regimes:
        return []
    a0, r0 = archs[0], regimes[0]
    acfg, rcfg = cfg.get("archs") or {}, cfg.get("regimes") or {}
    out = [(a0, r0, "base")]
    out += [(a, r0, arch_difference(acfg.get(a), acfg.get(a0), a)) for a in archs[1:]]
    out += [(a0, r, regime_difference(rcfg.get(r), rcfg.get(r0), cfg.get("training") or {}, r))
            for r in regimes[1:]]
    return out


def fig_factors(metrics: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """E6: LIGS and clean accuracy of the base cell (archs[0] × regimes[0], shaded) and each one-at-a-time
    variant (labelled by what differs), bars per norm; a dashed line marks the no-norm base cell."""
    if sel.spec is None:
        return _note_figure(f"{NO_DATA}: study e6_factors is not\nin the config of run_info.json")
    variants = factor_variants({**sel.spec, **({"archs": sel.archs} if sel.archs else {})}, run_info)
    ds = sel.datasets() or []
    m = metrics[metrics["dataset"].isin(ds) & metrics["value"].notna()
                & metrics["metric"].isin(["ligs", "clean_acc"])]
    pairs = {(a, r): lab for a, r, lab in variants}
    cell = pd.Series([(a, r) in pairs for a, r in zip(m["arch"], m["regime"])], index=m.index, dtype=bool)
    norms_sel = sel.norms or T.sort_norms(m["norm"])
    d = m[cell & m["norm"].isin(norms_sel)]
    if d.empty or not variants:
        return _no_data_figure(sel.study, "results for the base cell or its variants", "metrics.csv", sel)
    d = d.assign(_variant=[pairs[(a, r)] for a, r in zip(d["arch"], d["regime"])])
    groups = [lab for _, _, lab in variants]
    norms = [n for n in norms_sel if n in set(d["norm"])]
    a0, r0 = variants[0][0], variants[0][1]
    ref = m[(m["arch"] == a0) & (m["regime"] == r0) & (m["norm"] == "none")]
    fig, axes = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.5), squeeze=False)
    drew_ref = False
    for j, (metric, label, scale) in enumerate([("ligs", "LIGS (cosine similarity)", 1.0),
                                                ("clean_acc", "clean accuracy (%)", 100.0)]):
        ax = axes[0, j]
        ax.set_title(label.split(" (")[0])
        ax.set_ylabel(label)
        st = _agg(d[d["metric"] == metric], ["_variant", "norm"], "value")
        if st.empty:
            _note(ax, f"{NO_DATA}:\nno {T.METRIC_LABEL.get(metric, metric)}")
            continue
        ax.axvspan(-0.45, 0.45, color="0.92", zorder=0, lw=0)
        _bars(ax, st, "_variant", groups, [{"match": {"norm": n}, "colour": norm_colour(n)} for n in norms],
              scale=scale, gid=metric)
        ax.set_xticks(range(len(groups)), [f"base ({a0}, {T.regime_short(r0)})"] + groups[1:], rotation=30,
                      ha="right", rotation_mode="anchor")
        r = ref[ref["metric"] == metric]
        if len(r):
            v = float(_agg(r, ["metric"], "value")["mean"].iloc[0]) * scale
            ax.axhline(v, color=norm_colour("none"), ls="--", lw=0.8, zorder=3, gid=f"ref|{metric}")
            drew_ref = True
        _ligs_ylim(ax, st) if metric == "ligs" else _pct_ylim(ax)
    handles = _norm_patches(norms) + [Patch(facecolor="0.92", label="base cell")]
    if drew_ref:
        handles.append(Line2D([], [], color=norm_colour("none"), ls="--", lw=0.8, label="no norm, base cell"))
    _legend_top(fig, handles, f"{BAR_NOTE.split('; hatch')[0]} ({_nseeds_note(d)}); one factor changed at a time")
    fig.tight_layout(w_pad=1.0)
    return fig


def fig_adv_training(metrics: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """E7: per training regime (study order: standard, PGD AT, mixed, AdvProp, FGSM AT), bars per norm:
    clean accuracy and headline robust accuracy; a row per arch."""
    m = _apply(metrics, sel)
    m = m[m["value"].notna()]
    if m.empty:
        return _no_data_figure(sel.study, "results", "metrics.csv", sel)
    regimes = [r for r in (sel.regimes or []) if r in set(m["regime"])] or T.sort_regimes(m["regime"])
    archs = [a for a in (sel.archs or []) if a in set(m["arch"])] or sorted(m["arch"].unique())
    norms = T.sort_norms(m["norm"])
    fig, axes = plt.subplots(len(archs), 2, figsize=(FULL_WIDTH, 2.2 * len(archs) + 0.3), squeeze=False)
    for i, arch in enumerate(archs):
        panels, _ = _stats3(m[m["arch"] == arch], run_info, ["regime", "norm"])
        for j, (metric, label, st, scale) in enumerate(panels[:2]):
            ax = axes[i, j]
            ax.set_title(label.replace(" (%)", "").replace("\n", ", ") + (f" · {arch}" if len(archs) > 1 else ""))
            ax.set_ylabel(label.split("\n")[0])
            if st.empty:
                _note(ax, f"{NO_DATA}:\nno {T.METRIC_LABEL.get(metric, metric)}")
                continue
            _bars(ax, st, "regime", regimes, [{"match": {"norm": n}, "colour": norm_colour(n)} for n in norms],
                  scale=scale, gid=f"{metric}|{arch}")
            ax.set_xticks(range(len(regimes)), [T.regime_label(r).replace(" (", "\n(") for r in regimes],
                          rotation=20 if len(regimes) > 3 else 0, ha="right" if len(regimes) > 3 else "center")
            _pct_ylim(ax)
            ax.set_xlabel("training regime")
    _legend_top(fig, _norm_patches(norms), f"{BAR_NOTE.split('; hatch')[0]} ({_nseeds_note(m)})")
    fig.tight_layout(w_pad=0.8)
    return fig


def ligs_weights(regimes: Sequence[str], run_info: dict[str, Any] | None) -> dict[str, float]:
    """Regime → LIGS-regulariser weight (:func:`normrobust.tables.ligs_weights`) from run_info's config."""
    return T.ligs_weights(regimes, _cfg(run_info))


def fig_ligs_reg(metrics: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """E8: clean accuracy, headline robust accuracy and LIGS against the LIGS regulariser's weight
    (``standard`` = 0), a line per norm (mean over seeds, band min–max); a row per arch."""
    m = _apply(metrics, sel)
    m = m[m["value"].notna()]
    weights = ligs_weights(sorted(set(m["regime"])), run_info)
    m = m[m["regime"].isin(list(weights))]
    if m.empty:
        return _no_data_figure(sel.study, "results of standard or ligs_reg regimes", "metrics.csv", sel)
    m = m.assign(_w=m["regime"].map(weights))
    archs = [a for a in (sel.archs or []) if a in set(m["arch"])] or sorted(m["arch"].unique())
    norms = T.sort_norms(m["norm"])
    xs = sorted(set(m["_w"]))
    pos = [x for x in xs if x > 0]
    fig, axes = plt.subplots(len(archs), 3, figsize=(FULL_WIDTH, 2.0 * len(archs) + 0.3), squeeze=False)
    for i, arch in enumerate(archs):
        panels, _ = _stats3(m[m["arch"] == arch], run_info, ["_w", "norm"])
        for j, (metric, label, st, scale) in enumerate(panels):
            ax = axes[i, j]
            _panel_labels(ax, label, arch if len(archs) > 1 else None)
            ax.set_xlabel("LIGS weight λ (0: standard)")
            if st.empty:
                _note(ax, f"{NO_DATA}:\nno {T.METRIC_LABEL.get(metric, metric)}")
                continue
            for norm in norms:
                s = st[st["norm"] == norm].sort_values("_w")
                if s.empty:
                    continue
                col = norm_colour(norm)
                ax.plot(s["_w"], s["mean"] * scale, color=col, marker=norm_marker(norm),
                        gid=f"{metric}|{arch}|{norm}")
                ax.fill_between(s["_w"], s["min"] * scale, s["max"] * scale, color=col, alpha=0.15, lw=0)
            if len(pos) >= 2 and max(pos) / min(pos) > 20:
                ax.set_xscale("symlog", linthresh=min(pos))
            if len(xs) <= 7:
                ax.set_xticks(xs, [T.fmt_num(x) for x in xs])
                ax.minorticks_off()
            _ligs_ylim(ax, st) if metric == "ligs" else _pct_ylim(ax)
    _legend_top(fig, _norm_handles(norms), f"{SPREAD_NOTE} ({_nseeds_note(m)})")
    fig.tight_layout(w_pad=0.8)
    return fig


def _transfer_rows(transfer: pd.DataFrame, sel: Selection, study: str | None) -> pd.DataFrame:
    """Transfer rows of the selection's dataset (and of ``study`` when the table has a study column),
    with the newer columns parsed (source_final as bool, source_epoch / error_rate / n_total as numbers)."""
    t = _num(transfer, ["source_epoch", "error_rate", "n_total", "success_rate"])
    if "study" in t.columns and study is not None:
        t = t[t["study"] == study]
    ds = sel.datasets()
    if ds is None and len(t):
        ds = [sorted(t["dataset"].unique())[0]]
    if ds is not None:
        t = t[t["dataset"].isin(ds)]
    t = t.copy()
    t["source_final"] = _truthy(t["source_final"]) if "source_final" in t.columns else True
    return t


def _regime_name(regime: str, run_info: dict[str, Any] | None) -> str:
    """A regime's label; regimes the tables module does not know are named by their training attack."""
    attack = ((_cfg(run_info).get("regimes") or {}).get(regime) or {}).get("attack")
    desc = _attack_desc(attack)
    if regime in T.REGIME_LABEL:
        eps = desc.split(" ", 1)[1] if " ε=" in desc else ""
        return T.regime_label(regime) + (f" {eps}" if eps else "")
    if " ε=" in desc:
        name, eps = desc.split(" ε=", 1)
        return f"{name} AT ε={eps}"
    return f"{desc} AT" if desc else str(regime)


def transfer_source_kinds(transfer: pd.DataFrame, sel: Selection,
                          run_info: dict[str, Any] | None = None) -> pd.DataFrame:
    """E9: per (source kind, source arch, source norm, seed) the mean success rate over the targets
    (target regime in the study's transfer targets, default standard), a source's own cell excluded.

    Kinds: a finished source of a target regime ('standard (final)'), an early-stopped one ('epoch k'),
    a finished source of another regime (a slightly robust source, named by its regime)."""
    targets = list(((sel.spec or {}).get("transfer") or {}).get("targets") or ["standard"])
    t = _transfer_rows(transfer, sel, sel.study)
    if sel.archs is not None:
        t = t[t["source_arch"].isin(sel.archs) & t["target_arch"].isin(sel.archs)]
    if sel.norms is not None:
        t = t[t["source_norm"].isin(sel.norms) & t["target_norm"].isin(sel.norms)]
    own = ((t["source_arch"] == t["target_arch"]) & (t["source_norm"] == t["target_norm"])
           & (t["source_regime"] == t["target_regime"]))
    t = t[~own & t["target_regime"].isin(targets) & t["success_rate"].notna()]
    cols = ["kind", "order", "source_arch", "source_norm", "seed", "success_rate"]
    if t.empty:
        return pd.DataFrame(columns=cols)
    one_target = len(targets) == 1

    def kind(r) -> tuple[str, tuple]:
        reg = _regime_name(r.source_regime, run_info).replace(" ε=", "\nε=")
        ro = T.REGIME_ORDER.index(r.source_regime) if r.source_regime in T.REGIME_ORDER else 99
        if r.source_regime in targets:
            if r.source_final:
                return f"{reg}\n(final)", (0, ro, 0, r.source_regime)
            ep = int(r.source_epoch) if "source_epoch" in t.columns and np.isfinite(r.source_epoch) else -1
            return (f"epoch {ep}" if one_target else f"{reg}\nepoch {ep}"), (1, ro, ep, r.source_regime)
        if r.source_final:
            return f"{reg}\n(final)", (2, ro, 0, r.source_regime)
        ep = int(r.source_epoch) if np.isfinite(r.source_epoch) else -1
        return f"{reg}\nepoch {ep}", (3, ro, ep, r.source_regime)

    kinds = [kind(r) for r in t.itertuples(index=False)]
    t = t.assign(kind=[k for k, _ in kinds], order=[o for _, o in kinds])
    out = t.groupby(["kind", "order", "source_arch", "source_norm", "seed"], as_index=False,
                    sort=False)["success_rate"].mean()
    return out[cols]


def fig_transfer_sources(transfer: pd.DataFrame, sel: Selection, run_info: dict[str, Any] | None = None):
    """E9: mean transfer success over the standard targets per kind of source (finished standard,
    early-stopped 'epoch k', slightly robust), bars per source norm; a source's own cell excluded."""
    per = transfer_source_kinds(transfer, sel, run_info)
    if per.empty:
        return _no_data_figure(sel.study, "transfer results", "transfer.csv", sel)
    kinds = [k for k, _ in sorted({(k, o) for k, o in zip(per["kind"], per["order"])}, key=lambda x: x[1])]
    archs = sorted(per["source_arch"].unique())
    norms = T.sort_norms(per["source_norm"])
    fig, axes = plt.subplots(1, len(archs), figsize=(min(FULL_WIDTH, 1.8 + 0.95 * len(kinds) * len(archs)), 2.4),
                             squeeze=False, sharey=True)
    for j, arch in enumerate(archs):
        ax = axes[0, j]
        st = _agg(per[per["source_arch"] == arch], ["kind", "source_norm"], "success_rate")
        _bars(ax, st, "kind", kinds, [{"match": {"source_norm": n}, "colour": norm_colour(n)} for n in norms],
              scale=100.0, gid=f"success|{arch}")
        ax.set_xticks(range(len(kinds)), kinds)
        ax.set_xlabel("source model" + (f" ({arch})" if len(archs) > 1 else ""))
        if j == 0:
            ax.set_ylabel("transfer success rate (%)\nmean over standard targets")
        _pct_ylim(ax)
    _legend_top(fig, _norm_patches(norms),
                f"{BAR_NOTE.split('; hatch')[0]} ({_nseeds_note(per)}); colour: source norm; own cell excluded")
    fig.tight_layout()
    return fig


#: [G] on MNIST at ε = 0.25 (= 63.75/255): FGSM error, confidence on the errors, transfer error rates
G_EPS = 63.75
G_ERROR = {("linear", "standard"): 0.999, ("maxout", "standard"): 0.894, ("maxout", "fgsm"): 0.179}
G_CONFIDENCE = {("linear", "standard"): 0.793, ("maxout", "standard"): 0.976}
G_TRANSFER = {("maxout", "standard→adv"): 0.196, ("maxout", "adv→standard"): 0.409}


def _fgsm_attack(m: pd.DataFrame, run_info: dict[str, Any] | None) -> str | None:
    """The FGSM evaluation attack: the headline one if it is FGSM, else the first L∞ FGSM attack."""
    attacks = (_cfg(run_info).get("evaluation") or {}).get("attacks") or {}
    names = [n for n, a in attacks.items() if isinstance(a, dict) and str(a.get("type", "")).lower() == "fgsm"]
    present = set(m.loc[m["metric"] == "robust_acc", "attack"])
    names = [n for n in names if n in present] or sorted(a for a in present if str(a).startswith("fgsm"))
    if not names:
        return None
    head = T.headline(run_info or {})["attack"]
    if head in names:
        return head
    return sorted(names, key=lambda n: (not T.is_linf(n), n))[0]


def fig_fgsm(tables: dict[str, pd.DataFrame], sel: Selection, run_info: dict[str, Any] | None = None):
    """E10 ([G]): FGSM error (1 − robust accuracy; ε = 0 is the clean error) against ε per arch × regime,
    mean confidence on the misclassified adversarial examples, and the transfer error rates standard →
    FGSM-trained and back (``error_rate`` of study e10_fgsm's transfer rows). [G]'s MNIST numbers are
    marked when the dataset is MNIST."""
    metrics, transfer = tables["metrics"], tables["transfer"]
    m = _apply(metrics, sel)
    m = m[m["value"].notna()]
    attack = _fgsm_attack(m, run_info)
    if m.empty or attack is None:
        return _no_data_figure(sel.study, "FGSM results", "metrics.csv", sel)
    ds = sel.datasets()[0] if sel.datasets() else str(m["dataset"].iloc[0])
    cfg = _cfg(run_info)
    kind_of = {a: str(((cfg.get("archs") or {}).get(a) or {}).get("kind", a)) for a in set(m["arch"])}
    on_mnist = str(((cfg.get("datasets") or {}).get(ds) or {}).get("kind", "")) == "mnist"
    archs = [a for a in (sel.archs or []) if a in set(m["arch"])] or sorted(m["arch"].unique())
    regimes = [r for r in (sel.regimes or []) if r in set(m["regime"])] or T.sort_regimes(m["regime"])
    norms = T.sort_norms(m["norm"])
    colours = arch_colours(archs)
    keys = ["arch", "regime", "norm", "eps"]
    rob = m[(m["metric"] == "robust_acc") & (m["attack"] == attack)]
    err = _agg(rob.assign(value=1.0 - rob["value"]), keys, "value")
    clean = m[m["metric"] == "clean_acc"]
    clean_err = _agg(clean.assign(value=1.0 - clean["value"], eps=0.0), keys, "value")
    err = pd.concat([clean_err, err], ignore_index=True) if len(err) else err
    conf = _agg(m[(m["metric"] == "adv_wrong_confidence") & (m["attack"] == attack)], keys, "value")
    fig, axes = plt.subplots(1, 3, figsize=(FULL_WIDTH, 2.45), squeeze=False,
                             gridspec_kw={"width_ratios": [1.25, 1.25, 1.0]})
    eps_label = _eps_axis_label(attack)
    paper_drawn = False
    for j, (st, metric, title) in enumerate([(err, "error", f"{T.attack_label(attack)} error (%)"),
                                             (conf, "confidence", "confidence on errors (%)")]):
        ax = axes[0, j]
        ax.set_title(title.replace(" (%)", "") + ("\nε = 0: clean error" if metric == "error" else
                                                  "\n(mean max-softmax, misclassified adv.)"))
        ax.set_ylabel(title)
        ax.set_xlabel(eps_label)
        if st.empty:
            _note(ax, f"{NO_DATA}:\nno {'robust_acc' if metric == 'error' else 'adv_wrong_confidence'}\n"
                      f"for {attack}")
            continue
        for arch in archs:
            for regime in regimes:
                for norm in norms:
                    s = st[(st["arch"] == arch) & (st["regime"] == regime) & (st["norm"] == norm)].sort_values("eps")
                    if s.empty:
                        continue
                    col = colours[arch]
                    ax.plot(s["eps"], s["mean"] * 100, color=col, ls=regime_linestyle(regime),
                            marker=norm_marker(norm) if len(norms) > 1 else "o", gid=f"{metric}|{arch}|{regime}|{norm}")
                    ax.fill_between(s["eps"], s["min"] * 100, s["max"] * 100, color=col, alpha=0.13, lw=0)
                    ref = (G_ERROR if metric == "error" else G_CONFIDENCE).get(
                        (kind_of.get(arch), "standard" if regime == "standard" else "fgsm"))
                    if on_mnist and ref is not None:
                        ax.plot([G_EPS], [ref * 100], linestyle="none", marker="*", markersize=7,
                                markerfacecolor="white", markeredgecolor=col, zorder=4)
                        paper_drawn = True
        ax.set_ylim(-2, 102)
        ax.set_xlim(left=0)
    # transfer: FGSM error_rate between the standard and the FGSM-trained model of each arch
    ax = axes[0, 2]
    ax.set_title("transfer: error on the other\nmodel's FGSM examples")
    ax.set_ylabel("error rate (%)")
    t = _transfer_rows(transfer, sel, sel.study)
    if "error_rate" not in t.columns:
        t = t.iloc[0:0]
    t = t[t["source_final"] & t["error_rate"].notna() & (t["source_arch"] == t["target_arch"])
          & (t["source_norm"] == t["target_norm"])]
    std = (t["source_regime"] == "standard") != (t["target_regime"] == "standard")
    t = t[std]
    if sel.archs is not None:
        t = t[t["source_arch"].isin(sel.archs)]
    if t.empty:
        _note(ax, f"{NO_DATA}:\nno transfer error_rate\nin transfer.csv")
    else:
        t = t.assign(direction=np.where(t["source_regime"] == "standard", "standard→adv", "adv→standard"),
                     group=t["source_arch"] + np.where(t["source_norm"] == "none", "",
                                                       " " + t["source_norm"].map(T.norm_label)))
        st = _agg(t, ["group", "source_arch", "direction"], "error_rate")
        groups = sorted(st["group"].unique(), key=lambda g: (archs.index(g.split(" ")[0])
                                                             if g.split(" ")[0] in archs else 99, g))
        arch_of = dict(zip(st["group"], st["source_arch"]))
        _bars(ax, st, "group", groups, [{"match": {"direction": "standard→adv"}, "colour": None, "alpha": 0.9},
                                        {"match": {"direction": "adv→standard"}, "colour": None, "hatch": "////",
                                         "alpha": 0.5}],
              scale=100.0, gid="transfer", group_colour=lambda g: colours.get(arch_of.get(g), "0.5"))
        ax.set_xticks(range(len(groups)), groups)
        for gi, g in enumerate(groups):
            for si, direction in enumerate(["standard→adv", "adv→standard"]):
                ref = G_TRANSFER.get((kind_of.get(arch_of.get(g)), direction))
                if on_mnist and ref is not None:
                    ax.plot([gi - 0.2 + 0.4 * si], [ref * 100], linestyle="none", marker="*", markersize=7,
                            markerfacecolor="white", markeredgecolor="0.1", zorder=4)
                    paper_drawn = True
        ax.set_ylim(0, 105)
    handles = [Line2D([], [], color=colours[a], marker="o", label=a) for a in archs]
    handles += [Line2D([], [], color="0.2", ls=regime_linestyle(r), label=T.regime_label(r)) for r in regimes]
    if len(norms) > 1:
        handles += [Line2D([], [], color="0.2", ls="none", marker=norm_marker(n), label=T.norm_label(n))
                    for n in norms]
    handles += [Patch(facecolor="0.6", edgecolor="0.15", lw=0.5, label="standard → adv. trained"),
                Patch(facecolor="0.85", edgecolor="0.15", lw=0.5, hatch="////", label="adv. trained → standard")]
    if paper_drawn:
        handles.append(Line2D([], [], ls="none", marker="*", markersize=7, markerfacecolor="white",
                              markeredgecolor="0.1", label="[G] (MNIST, ε=0.25)"))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, handlelength=2.4,
               columnspacing=1.2, title=f"line/bar: mean over seeds; band/whisker: min–max ({_nseeds_note(m)}); "
                                        f"colour: architecture")
    fig.tight_layout(w_pad=0.8)
    return fig


@dataclass(frozen=True)
class FigureSpec:
    func: Callable[..., Any]
    table: str | tuple[str, ...]  # the CSV it reads (several: the function gets a dict name -> frame)
    study: str  # the study whose cells it shows by default

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.table,) if isinstance(self.table, str) else tuple(self.table)


_FIGURE_FUNCS: dict[str, tuple[Callable[..., Any], str | tuple[str, ...]]] = {
    "trajectories": (fig_trajectories, "history"),
    "robust_vs_eps": (fig_robust_vs_eps, "metrics"),
    "ligs_per_norm": (fig_ligs_per_norm, "metrics"),
    "transfer_heatmap": (fig_transfer_heatmap, "transfer"),
    "nrf_reliance": (fig_nrf_reliance, "metrics"),
    "disentangled": (fig_disentangled, "metrics"),
    "conflict": (fig_conflict, "metrics"),
    "ligs_vs_nrf": (fig_ligs_vs_nrf, "metrics"),
    "factors": (fig_factors, "metrics"),
    "adv_training": (fig_adv_training, "metrics"),
    "ligs_reg": (fig_ligs_reg, "metrics"),
    "transfer_sources": (fig_transfer_sources, "transfer"),
    "fgsm": (fig_fgsm, ("metrics", "transfer")),
}
#: every figure, in the studies' order (studies.py is the map study -> figures)
FIGURES: dict[str, FigureSpec] = {name: FigureSpec(*_FIGURE_FUNCS[name], FIGURE_STUDY[name])
                                  for name in FIGURE_STUDY}


def save_figure(fig, out: str | Path) -> None:
    """Write a vector PDF atomically, without creation date (byte-identical reruns)."""
    from .utils import atomic_write

    meta = {"CreationDate": None, "ModDate": None, "Creator": "normrobust figures", "Producer": None}
    atomic_write(out, lambda f: fig.savefig(f, format="pdf", metadata=meta))
    plt.close(fig)


def _make(name: str, tables_dir: str | Path, study: str | None, dataset: str | None,
          archs: Sequence[str] | None):
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r} (choose from {', '.join(FIGURES)})")
    spec = FIGURES[name]
    frames = {t: T.read_table(tables_dir, t) for t in spec.tables}
    info = T.read_run_info(tables_dir, required=False)
    st = spec.study if study == "default" else (None if study in (None, "all", "none") else study)
    sel = make_selection(info, st, dataset=dataset, archs=archs)
    return spec.func(frames[spec.table] if isinstance(spec.table, str) else frames, sel, info)


def make_figure(name: str, tables_dir: str | Path, *, study: str | None = "default", dataset: str | None = None,
                archs: Sequence[str] | None = None):
    """Figure ``name`` from ``tables_dir`` as a matplotlib Figure, not saved (the caller closes it).

    Bars carry a gid ``metric|...|group|series`` and lines ``metric|...`` so their values can be read back.
    """
    with plt.rc_context(STYLE):
        return _make(name, tables_dir, study, dataset, archs)


def build_figure(name: str, tables_dir: str | Path, out: str | Path, *, study: str | None = "default",
                 dataset: str | None = None, archs: Sequence[str] | None = None) -> Path:
    """Build figure ``name`` from ``tables_dir`` into ``out`` (PDF).

    ``study="default"`` uses the figure's own study, ``None`` / ``"all"`` every cell of one dataset.
    Raises :class:`normrobust.tables.MissingInputError` when an input CSV is absent (naming it).
    """
    with plt.rc_context(STYLE):
        fig = _make(name, tables_dir, study, dataset, archs)
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
