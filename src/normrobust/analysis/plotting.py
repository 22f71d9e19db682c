"""The figures' style and drawing helpers: colours, bars with min–max whiskers, legends, notes, saving.

One look for every figure: the Okabe–Ito colour-blind-safe palette with one fixed colour per norm, line style
or hatch per training regime, the mean over seeds with min–max bands or whiskers (said in every legend), units
on the axes, deterministic vector PDFs. A figure whose data are missing draws a note instead of failing.

matplotlib is imported on first use (:func:`pyplot`), so planning the workflow does not need it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..utils import atomic_write
from .labels import norm_label, regime_label

#: Okabe & Ito (2008) colour-blind-safe palette
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "skyblue": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7"}
NORM_COLOUR = {"none": OKABE_ITO["black"], "bn": OKABE_ITO["vermillion"], "ln": OKABE_ITO["blue"],
               "in": OKABE_ITO["green"], "gn": OKABE_ITO["purple"]}
EXTRA_COLOURS = [OKABE_ITO["orange"], OKABE_ITO["skyblue"], OKABE_ITO["yellow"]]
#: colours by position where the norm is fixed (e.g. one per architecture)
SERIES_COLOURS = [OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["green"], OKABE_ITO["skyblue"],
                  OKABE_ITO["purple"], OKABE_ITO["vermillion"], OKABE_ITO["black"]]
NORM_MARKER = {"none": "o", "bn": "s", "ln": "^", "in": "D", "gn": "v"}
EXTRA_MARKERS = ["P", "X", "*"]
REGIME_LINESTYLE = {"standard": "-", "pgd_linf": "--"}
EXTRA_LINESTYLES = [":", "-.", (0, (5, 1, 1, 1, 1, 1))]
REGIME_HATCH = {"standard": "", "pgd_linf": "////"}
EXTRA_HATCHES = ["....", "xxxx", "\\\\\\\\"]
REGIME_MARKER = {"standard": "o", "pgd_linf": "s"}
EXTRA_REGIME_MARKERS = ["^", "D", "v", "P"]
SPREAD_NOTE = "line: mean over seeds; band: min–max over seeds"
BAR_NOTE = "bar: mean over seeds; whisker: min–max over seeds"
NO_DATA = "no data"

STYLE = {
    "font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8,
    "legend.fontsize": 7, "legend.title_fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "axes.spines.top": False, "axes.spines.right": False, "axes.linewidth": 0.6, "axes.grid": True,
    "grid.alpha": 0.3, "grid.linewidth": 0.5, "lines.linewidth": 1.3, "lines.markersize": 3.5,
    "legend.frameon": False, "pdf.fonttype": 42, "savefig.bbox": "tight", "savefig.pad_inches": 0.02,
    "hatch.linewidth": 0.6, "figure.dpi": 100,
}
FULL_WIDTH = 6.3  # inches: the report's text width; it includes figures at natural size (shrunk if wider)


@dataclass(frozen=True)
class Figure:
    """One figure of a study: ``draw(tables, view)`` returns a matplotlib figure from the tables it names
    (``tables``: metrics, history, transfer) for a StudyView; ``caption`` goes into Snakemake's HTML report."""

    draw: Callable[..., Any]
    tables: tuple[str, ...]
    caption: str


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def style():
    """The figures' rc settings, for the time of one figure."""
    with pyplot().rc_context(STYLE):
        yield


def subplots(nrows: int = 1, ncols: int = 1, **kw):
    """``plt.subplots`` with ``squeeze=False``: axes is always 2-D."""
    return pyplot().subplots(nrows, ncols, squeeze=False, **kw)


def save_figure(fig, out: str | Path) -> None:
    """Write a vector PDF atomically, without creation date (byte-identical reruns), and close the figure."""
    meta = {"CreationDate": None, "ModDate": None, "Creator": "normrobust figures", "Producer": None}
    atomic_write(out, lambda f: fig.savefig(f, format="pdf", metadata=meta))
    pyplot().close(fig)


# ------------------------------------------------------------------------------------ colours, marks

def _pick(mapping: dict[str, Any], extras: list[Any], key: str) -> Any:
    if key in mapping:
        return mapping[key]
    return extras[sum(ord(c) for c in str(key)) % len(extras)]


def norm_colour(norm: str) -> str:
    return _pick(NORM_COLOUR, EXTRA_COLOURS, norm)


def norm_marker(norm: str) -> str:
    return _pick(NORM_MARKER, EXTRA_MARKERS, norm)


def regime_linestyle(regime: str) -> Any:
    return _pick(REGIME_LINESTYLE, EXTRA_LINESTYLES, regime)


def regime_hatch(regime: str) -> str:
    return _pick(REGIME_HATCH, EXTRA_HATCHES, regime)


def regime_marker(regime: str) -> str:
    return _pick(REGIME_MARKER, EXTRA_REGIME_MARKERS, regime)


def series_colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per name, by position."""
    return {a: SERIES_COLOURS[i % len(SERIES_COLOURS)] for i, a in enumerate(names)}


# -------------------------------------------------------------------------------------- legends

def line_handle(**kw):
    from matplotlib.lines import Line2D

    return Line2D([], [], **kw)


def patch_handle(**kw):
    from matplotlib.patches import Patch

    return Patch(**kw)


def norm_handles(norms: Sequence[str], marker: bool = True) -> list[Any]:
    return [line_handle(color=norm_colour(n), marker=norm_marker(n) if marker else None, label=norm_label(n))
            for n in norms]


def regime_handles(regimes: Sequence[str]) -> list[Any]:
    return [line_handle(color="0.2", linestyle=regime_linestyle(r), label=regime_label(r)) for r in regimes]


def hatch_handles(regimes: Sequence[str]) -> list[Any]:
    return [patch_handle(facecolor="0.85", edgecolor="0.2", hatch=regime_hatch(r), label=regime_label(r), lw=0.6)
            for r in regimes]


def norm_patches(norms: Sequence[str]) -> list[Any]:
    return [patch_handle(facecolor=norm_colour(n), edgecolor="0.15", lw=0.5, alpha=0.85, label=norm_label(n))
            for n in norms]


def legend_top(fig, handles: list[Any], title: str = SPREAD_NOTE, ncol: int | None = None) -> None:
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0),
               ncol=ncol or min(len(handles), 7), title=title, handlelength=2.4, columnspacing=1.2)


# ---------------------------------------------------------------------------------------- notes

def note(ax, text: str) -> None:
    """A visible note inside an (otherwise empty) axis: data missing."""
    # per-axis tick settings only: axes may share their scales with panels that do have data
    ax.tick_params(left=False, bottom=False, labelleft=False, labelbottom=False)
    ax.grid(False)
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=7, color="0.3",
            multialignment="center", bbox={"boxstyle": "round", "fc": "0.95", "ec": "0.7", "lw": 0.5})


def note_figure(text: str, width: float = FULL_WIDTH / 2, height: float = 1.6):
    """A whole figure that only says what is missing (the report stays buildable)."""
    fig, axes = subplots(figsize=(width, height))
    note(axes[0, 0], text)
    for sp in axes[0, 0].spines.values():
        sp.set_visible(False)
    return fig


def no_data_figure(study: str, what: str, table: str):
    return note_figure(f"{NO_DATA}: no {what}\nfor study {study}\nin {table}")


# ----------------------------------------------------------------------------------------- axes

def panel_labels(ax, label: str, arch: str | None = None) -> None:
    """Title (without the unit, with the arch when a figure has a row per arch, and the label's second line)
    and y label (the label's first line) of one metric panel."""
    first, *rest = label.split("\n")
    ax.set_title(first.replace(" (%)", "").replace(" (cosine similarity)", "") + (f" · {arch}" if arch else "")
                 + ("\n" + rest[0] if rest else ""))
    ax.set_ylabel(first)


def pct_ylim(ax) -> None:
    ax.set_ylim(0, 105)


def ligs_ylim(ax, st: pd.DataFrame) -> None:
    lo = float(st["min"].min()) if len(st) and np.isfinite(st["min"].min()) else 0.0
    ax.set_ylim(min(0.0, lo - 0.05), 1.05)


def colormap(name: str, bad: str = "0.88"):
    """A matplotlib colormap with the colour of missing values set."""
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad=bad)


def integer_xticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def bars(ax, st: pd.DataFrame, group_col: str, groups: Sequence[Any], series: Sequence[dict[str, Any]],
         *, scale: float = 1.0, gid: str = "", group_colour: Callable[[Any], str] | None = None) -> None:
    """Grouped bars: ``groups`` on x (values of ``group_col``), one bar per series within a group.

    ``st`` holds seed statistics (mean, min, max per row). A series is a dict: ``match`` (column → value the
    rows must have), ``colour`` (None: the group's, from ``group_colour``), ``hatch``, ``alpha``. Bars are the
    mean over seeds with min–max whiskers; missing ones say n/a. Every bar's gid is ``gid|group|match values``
    (tests read the heights back)."""
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
            ax.errorbar(x, mean, yerr=[[mean - lo], [hi - mean]], color="0.1", lw=0.8, capsize=1.8, capthick=0.8)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.grid(axis="x", visible=False)


def norm_series(norms: Sequence[str], regimes: Sequence[str] = ("standard",)) -> list[dict[str, Any]]:
    """One bar series per norm × regime: colour per norm, hatch per regime (first regime solid)."""
    return [{"match": {"norm": n, "regime": r}, "colour": norm_colour(n), "hatch": regime_hatch(r),
             "alpha": 0.85 if ri == 0 else 0.55} for ri, r in enumerate(regimes) for n in norms]


def regime_series(regimes: Sequence[str]) -> list[dict[str, Any]]:
    """One bar series per regime within a group whose colour is the group's (bars per norm): hatch per regime."""
    return [{"match": {"regime": r}, "colour": None, "hatch": regime_hatch(r), "alpha": 0.85 if ri == 0 else 0.55}
            for ri, r in enumerate(regimes)]


def band(ax, x, mean, lo, hi, colour: str, *, scale: float = 1.0, alpha: float = 0.15, **line_kw) -> None:
    """A line of the mean with a min–max band."""
    ax.plot(x, np.asarray(mean, float) * scale, color=colour, **line_kw)
    ax.fill_between(x, np.asarray(lo, float) * scale, np.asarray(hi, float) * scale, color=colour, alpha=alpha, lw=0)
