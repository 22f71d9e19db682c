"""Reading the aggregated tables, display names, and the report's LaTeX tables.

Everything downstream of training (figures, claims, report) reads only the aggregated files in a tables
directory (default ``results/tables/``): ``metrics.csv``, ``history.csv``, ``transfer.csv`` and
``run_info.json``. This module holds the shared helpers for them:

* :func:`read_table` / :func:`read_run_info` load a file, check its columns, and fail with a
  :class:`MissingInputError` that names the file when it is absent;
* display names, a fixed order and LaTeX escaping for norms, regimes and attacks;
* :func:`seed_stats` (mean, std, min, max, n over seeds) and number formatting;
* the LaTeX tables of the report (booktabs, built with ``DataFrame.to_latex``): the main results
  (:func:`main_results_table`), any set of metric columns per cell (:func:`stats_table`, with extra
  columns such as a paper's numbers: E3, E4, E7, E8), the last epoch of the history (E2,
  :func:`history_final_table`), the synthetic-data table (:func:`nrf_table`) and the rank correlation of
  LIGS with NRF reliance (E5, :func:`rank_correlation_table`), the one-factor-at-a-time variants (E6,
  :func:`factors_table`), the transfer matrix (:func:`transfer_table`) and the kinds of source (E9,
  :func:`transfer_sources_table`), [G]'s FGSM numbers beside ours (E10, :func:`fgsm_models_table`,
  :func:`fgsm_transfer_table`) and the claims (:func:`claims_table`, a longtable; :func:`normalize_claims`
  reads older claims files too).

Numbers in tables are the mean ± sample standard deviation (ddof=1) over seeds; accuracies and rates
are shown in percent. A cell with one seed shows the mean only; a missing cell shows ``--``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------------------------- inputs

TABLE_COLUMNS: dict[str, list[str]] = {
    "metrics": ["dataset", "arch", "norm", "regime", "seed", "metric", "attack", "eps", "value"],
    "history": ["dataset", "arch", "norm", "regime", "seed", "epoch", "lr", "train_loss", "clean_acc",
                "robust_acc", "ligs", "seconds"],
    "transfer": ["dataset", "seed", "source_arch", "source_norm", "source_regime", "target_arch",
                 "target_norm", "target_regime", "success_rate", "n"],
    "costs": ["rule", "target", "wall_s", "cpu_s", "max_rss_mib", "peak_gpu_mem_mib"],
}
NUMERIC_COLUMNS: dict[str, list[str]] = {
    "metrics": ["seed", "eps", "value"],
    "history": ["seed", "epoch", "lr", "train_loss", "clean_acc", "robust_acc", "ligs", "seconds"],
    "transfer": ["seed", "success_rate", "n"],
    "costs": ["wall_s", "cpu_s", "max_rss_mib", "peak_gpu_mem_mib"],
}
#: numeric columns of newer tables, converted where they exist (older tables lack them)
OPTIONAL_NUMERIC: dict[str, list[str]] = {
    "transfer": ["source_epoch", "error_rate", "n_total"],
}
DEFAULT_HEADLINE = {"attack": "pgd_linf", "eps": 4}


class MissingInputError(FileNotFoundError):
    """An input table is absent or unusable; the message names the file."""


def table_path(tables_dir: str | os.PathLike, name: str) -> Path:
    return Path(tables_dir) / (name if name.endswith((".csv", ".json")) else f"{name}.csv")


def read_table(tables_dir: str | os.PathLike, name: str) -> pd.DataFrame:
    """Load ``<tables_dir>/<name>.csv`` (name ∈ metrics, history, transfer) with typed columns.

    Strings are kept verbatim (the norm ``none`` and the attack ``none`` are not NaN); numeric columns
    are parsed with unparsable entries as NaN.
    """
    path = table_path(tables_dir, name)
    if not path.is_file():
        raise MissingInputError(
            f"missing input table {path} (it is written by the aggregate step: "
            f"run `snakemake` (its aggregate rule) first)")
    df = pd.read_csv(path, keep_default_na=False, na_values=[], dtype=str)
    need = TABLE_COLUMNS.get(name, [])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise MissingInputError(f"input table {path} lacks column(s) {', '.join(missing)}")
    for c in NUMERIC_COLUMNS.get(name, []) + [c for c in OPTIONAL_NUMERIC.get(name, []) if c in df.columns]:
        df[c] = pd.to_numeric(df[c].replace({"": None}), errors="coerce")
    if name == "history":  # one robust_acc_<name> column per extra history attack
        for c in [c for c in df.columns if c.startswith("robust_acc_")]:
            df[c] = pd.to_numeric(df[c].replace({"": None}), errors="coerce")
    if "source_final" in df.columns:  # written as True/False (or 1/0); missing: a final source
        df["source_final"] = df["source_final"].map(
            lambda v: str(v).strip().lower() not in ("false", "0", "no", "0.0"))
    if "seed" in df.columns:
        df = df[df["seed"].notna()].copy()
        df["seed"] = df["seed"].astype(int)
    if "epoch" in df.columns:
        df = df[df["epoch"].notna()].copy()
        df["epoch"] = df["epoch"].astype(int)
    return df.reset_index(drop=True)


def read_run_info(tables_dir: str | os.PathLike, required: bool = True) -> dict[str, Any]:
    """Load ``run_info.json``; an empty dict when absent and not ``required``."""
    path = Path(tables_dir) / "run_info.json"
    if not path.is_file():
        if required:
            raise MissingInputError(f"missing input file {path} (written by the aggregate step)")
        return {}
    with open(path) as f:
        try:
            info = json.load(f)
        except json.JSONDecodeError as e:
            raise MissingInputError(f"input file {path} is not valid JSON: {e}") from e
    return info if isinstance(info, dict) else {}


def headline(run_info: dict[str, Any]) -> dict[str, Any]:
    """The headline robust accuracy (attack, eps) from the config, with the default as fallback."""
    h = ((run_info.get("config") or {}).get("evaluation") or {}).get("headline") or {}
    return {"attack": str(h.get("attack", DEFAULT_HEADLINE["attack"])),
            "eps": float(h.get("eps", DEFAULT_HEADLINE["eps"]))}


def studies(run_info: dict[str, Any], enabled_only: bool = True) -> dict[str, dict[str, Any]]:
    """Study name → study dict (dataset, archs, norms, regimes) from the config."""
    out = {}
    for name, st in ((run_info.get("config") or {}).get("studies") or {}).items():
        if not isinstance(st, dict):
            continue
        if enabled_only and not st.get("enabled", True):
            continue
        out[name] = st
    return out


# ----------------------------------------------------------------------------------- display names

NORM_ORDER = ["none", "bn", "ln", "in", "gn"]
NORM_LABEL = {"none": "no norm", "bn": "BN", "ln": "LN", "in": "IN", "gn": "GN"}
REGIME_ORDER = ["standard", "pgd_linf", "pgd_l2", "pgd_l2_targeted", "fgsm_linf", "fgsm", "mixed", "advprop"]
REGIME_LABEL = {
    "standard": "standard",
    "pgd_linf": "PGD-L∞ AT",
    "pgd_l2": "PGD-L2 AT",
    "pgd_l2_targeted": "targeted PGD-L2 AT",
    "fgsm_linf": "FGSM AT",
    "fgsm": "FGSM AT",
    "mixed": "clean+adv. (shared BN)",
    "advprop": "AdvProp",
}
REGIME_SHORT = {"standard": "std", "pgd_linf": "AT-L∞", "pgd_l2": "AT-L2", "pgd_l2_targeted": "AT-L2t",
                "fgsm_linf": "AT-FGSM", "fgsm": "AT-FGSM", "mixed": "mixed", "advprop": "AdvProp"}
ATTACK_ORDER = ["fgsm_linf", "pgd_linf", "pgd_l2", "gaussian"]
ATTACK_LABEL = {"fgsm_linf": "FGSM-L∞", "pgd_linf": "PGD-L∞", "pgd_l2": "PGD-L2", "fgsm_l2": "FGSM-L2",
                "gaussian": "Gaussian noise"}
METRIC_LABEL = {"clean_acc": "clean accuracy", "robust_acc": "robust accuracy", "noise_acc": "noise accuracy",
                "ligs": "LIGS", "nrf_reliance": "NRF reliance", "rf_only_acc": "RF-only accuracy",
                "nrf_only_acc": "NRF-only accuracy", "conflict_rf_rate": "conflict: RF label rate",
                "conflict_nrf_rate": "conflict: NRF label rate", "success_rate": "transfer success rate",
                "shifted_acc": "accuracy on the shifted labels (t+1)",
                "adv_confidence": "confidence on adversarial examples",
                "adv_wrong_confidence": "confidence on misclassified adversarial examples",
                "error_rate": "transfer error rate"}
#: metrics that are fractions shown in percent (differences of them in percentage points)
PERCENT_METRICS = {"clean_acc", "robust_acc", "noise_acc", "rf_only_acc", "nrf_only_acc", "conflict_rf_rate",
                   "conflict_nrf_rate", "success_rate", "shifted_acc", "adv_confidence", "adv_wrong_confidence",
                   "error_rate", "clean_error", "robust_error", "fgsm_error"}


def norm_label(norm: str) -> str:
    return NORM_LABEL.get(norm, str(norm))


def regime_label(regime: str) -> str:
    return REGIME_LABEL.get(regime, str(regime))


def regime_short(regime: str) -> str:
    return REGIME_SHORT.get(regime, str(regime))


def attack_label(attack: str) -> str:
    return ATTACK_LABEL.get(attack, str(attack))


def is_linf(attack: str) -> bool:
    return "linf" in str(attack)


def ligs_weights(regimes: Sequence[str], config: dict[str, Any]) -> dict[str, float]:
    """E8's x axis: regime → LIGS-regulariser weight: the weight of ligs_reg regimes, 0 for clean training
    (``standard``); regimes of any other objective are left out."""
    from .config import ligs_weight, objective

    rcfg = config.get("regimes") or {}
    out = {}
    for r in regimes:
        c = rcfg.get(r)
        if c is None:
            if r == "standard":
                out[r] = 0.0
            continue
        obj = objective(c)
        if obj == "ligs_reg":
            out[r] = ligs_weight(c)
        elif obj == "clean":
            out[r] = 0.0
    return out


def eps_label(attack: str, eps: float) -> str:
    """ε with its unit: L∞ in /255 steps (``4/255``), L2 absolute, noise as σ."""
    if attack == "gaussian":
        return f"σ={fmt_num(eps, 4)}"
    if is_linf(attack):
        return f"ε={fmt_num(eps, 4)}/255"  # 63.75/255 is [G]'s 0.25
    return f"ε={fmt_num(eps, 4)}"


def attack_eps_label(attack: str, eps: float) -> str:
    return f"{attack_label(attack)} {eps_label(attack, eps)}"


def metric_is_percent(metric: str) -> bool:
    base = str(metric).split("@")[0].split("[")[0]
    return base in PERCENT_METRICS


def _order_key(order: Sequence[str]):
    def key(x):
        return (order.index(x), "") if x in order else (len(order), str(x))
    return key


def sort_norms(norms: Iterable[str]) -> list[str]:
    return sorted(set(norms), key=_order_key(NORM_ORDER))


def sort_regimes(regimes: Iterable[str]) -> list[str]:
    return sorted(set(regimes), key=_order_key(REGIME_ORDER))


def sort_attacks(attacks: Iterable[str]) -> list[str]:
    return sorted(set(attacks), key=_order_key(ATTACK_ORDER))


# ------------------------------------------------------------------------------------ LaTeX escaping

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"$<$", ">": r"$>$",
}
_TEX_UNICODE = {
    "∞": r"$\infty$", "ε": r"$\varepsilon$", "σ": r"$\sigma$", "±": r"$\pm$", "≥": r"$\geq$",
    "≤": r"$\leq$", "−": r"$-$", "Δ": r"$\Delta$", "×": r"$\times$", "→": r"$\rightarrow$",
    "·": r"$\cdot$", "–": "--", "—": "---", "’": "'", "‘": "`", "“": "``", "”": "''", "|": r"$|$",
    "…": r"\ldots{}", "≈": r"$\approx$", "\u00a0": "~", "ρ": r"$\rho$", "τ": r"$\tau$", "λ": r"$\lambda$",
    "α": r"$\alpha$", "η": r"$\eta$", "μ": r"$\mu$", "≠": r"$\neq$", "∈": r"$\in$", "√": r"$\surd$",
    "÷": r"$\div$", "°": r"$^\circ$", "²": r"$^2$", "∇": r"$\nabla$", "←": r"$\leftarrow$",
    "˜": r"\textasciitilde{}", "≲": r"$\lesssim$", "≳": r"$\gtrsim$", "ℓ": r"$\ell$",
}


def tex_escape(text: Any) -> str:
    """Escape LaTeX special characters and map the few Unicode symbols used in labels to math."""
    s = str(text).replace("L∞", "\x00")
    out = []
    for ch in s:
        if ch == "\x00":
            out.append(r"$L_\infty$")
        elif ch in _TEX_UNICODE:
            out.append(_TEX_UNICODE[ch])
        elif ch in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:  # anything else outside ASCII: drop to '?' rather than break pdflatex
            out.append("?")
    return "".join(out)


# -------------------------------------------------------------------------------- numbers & stats

def fmt_num(x: float, digits: int = 3) -> str:
    """A short plain number: integers without decimals, others with up to ``digits`` significant."""
    x = float(x)
    if math.isfinite(x) and abs(x - round(x)) < 1e-9:
        return str(int(round(x)))
    return f"{x:.{digits}g}"


def seed_stats(df: pd.DataFrame, keys: Sequence[str], value: str = "value") -> pd.DataFrame:
    """Mean, sample std (ddof=1), min, max and number of seeds of ``value`` per ``keys``.

    Several rows of one seed (should not happen) are averaged first, so each seed counts once.
    """
    keys = list(keys)
    cols = keys + ["mean", "std", "min", "max", "n"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    d = df[df[value].notna()]
    if "seed" in d.columns and "seed" not in keys:
        d = d.groupby(keys + ["seed"], as_index=False, sort=False)[value].mean()
    if d.empty:
        return pd.DataFrame(columns=cols)
    g = d.groupby(keys, sort=False)[value]
    out = g.agg(mean="mean", std=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan,
                min="min", max="max", n="count").reset_index()
    return out[cols]


def fmt_mean_std(mean: float, std: float | None = None, percent: bool = False, digits: int | None = None,
                 tex: bool = True) -> str:
    """``$85.3 \\pm 1.2$`` (percent: ×100, 1 decimal; else 3 decimals); ``--`` when missing."""
    if mean is None or not np.isfinite(mean):
        return "--" if tex else "n/a"
    scale = 100.0 if percent else 1.0
    if digits is None:
        digits = 1 if percent else 3
    m = f"{mean * scale:.{digits}f}"
    if std is None or not np.isfinite(std):
        return f"${m}$" if tex else m
    s = f"{std * scale:.{digits}f}"
    return f"${m} \\pm {s}$" if tex else f"{m} ± {s}"


def fmt_signed(x: float, percent: bool = False, digits: int | None = None, tex: bool = True) -> str:
    """A signed difference: ``$-12.3$`` (points when ``percent``)."""
    if x is None or not np.isfinite(x):
        return "--" if tex else "n/a"
    scale = 100.0 if percent else 1.0
    if digits is None:
        digits = 1 if percent else 3
    v = x * scale
    if round(v, digits) == 0:
        v = 0.0
    s = f"{v:+.{digits}f}"
    return f"${s}$" if tex else s.replace("-", "−")


# ------------------------------------------------------------------------------------ LaTeX tables

def _to_latex(df: pd.DataFrame, column_format: str, group_col: str | None = None) -> str:
    """``DataFrame.to_latex`` (booktabs rules) with a ``\\midrule`` wherever ``group_col`` changes.

    Cells must already be LaTeX (escaped); header names are escaped here.
    """
    df = df.copy()
    groups = list(df[group_col]) if group_col is not None and group_col in df.columns else None
    df.columns = [tex_escape(c) if not str(c).startswith("\\") and "$" not in str(c) else str(c)
                  for c in df.columns]
    text = df.to_latex(index=False, escape=False, column_format=column_format, na_rep="--")
    if not groups:
        return text
    lines = text.splitlines()
    start = lines.index(r"\midrule") + 1
    out = lines[:start]
    prev = None
    for i, line in enumerate(lines[start:]):
        if i < len(groups):
            if prev is not None and groups[i] != prev:
                out.append(r"\midrule")
            prev = groups[i]
        out.append(line)
    return "\n".join(out) + "\n"


def _blank_repeats(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """Show a label only where it changes (the hierarchy reads left to right)."""
    df = df.copy()
    prev: list[Any] = [None] * len(cols)
    for i in range(len(df)):
        cur = [df.iloc[i][c] for c in cols]
        for j, c in enumerate(cols):
            if cur[: j + 1] == prev[: j + 1]:
                df.iloc[i, df.columns.get_loc(c)] = ""
        prev = cur
    return df


def _filter(df: pd.DataFrame, **conds: Any) -> pd.DataFrame:
    """Rows whose column equals a value (or is in a list); ``None`` means no filter."""
    m = pd.Series(True, index=df.index)
    for col, val in conds.items():
        if val is None:
            continue
        if isinstance(val, (list, tuple, set)):
            m &= df[col].isin(list(val))
        else:
            m &= df[col] == val
    return df[m]


def _eps_match(series: pd.Series, eps: float) -> pd.Series:
    return np.isclose(series.astype(float), float(eps), rtol=1e-6, atol=1e-9)


def main_results_columns(metrics: pd.DataFrame, head: dict[str, Any]) -> list[dict[str, Any]]:
    """The columns of the main table: spec dicts (label, metric, attack, eps, percent)."""
    cols = [{"label": "Clean (%)", "metric": "clean_acc", "attack": None, "eps": None, "percent": True},
            {"label": f"{attack_eps_label(head['attack'], head['eps'])} (%)", "metric": "robust_acc",
             "attack": head["attack"], "eps": head["eps"], "percent": True}]
    l2 = metrics[(metrics["metric"] == "robust_acc") & (metrics["attack"] == "pgd_l2")]["eps"].dropna()
    if len(l2):
        e = float(l2.max())
        if not (head["attack"] == "pgd_l2" and math.isclose(e, head["eps"])):
            cols.append({"label": f"{attack_eps_label('pgd_l2', e)} (%)", "metric": "robust_acc",
                         "attack": "pgd_l2", "eps": e, "percent": True})
    nz = metrics[metrics["metric"] == "noise_acc"]["eps"].dropna()
    if len(nz):
        e = float(nz.max())
        cols.append({"label": f"Noise σ={fmt_num(e)} (%)", "metric": "noise_acc", "attack": None, "eps": e,
                     "percent": True})
    cols.append({"label": "LIGS", "metric": "ligs", "attack": None, "eps": None, "percent": False})
    return cols


def main_results_frame(metrics: pd.DataFrame, head: dict[str, Any], *, dataset: str | Sequence[str] | None = None,
                       archs: Sequence[str] | None = None, norms: Sequence[str] | None = None,
                       regimes: Sequence[str] | None = None, cells: Iterable[Sequence[str]] | None = None,
                       columns: Sequence[dict[str, Any]] | None = None) -> pd.DataFrame:
    """Per (dataset, arch, regime, norm): mean and std over seeds of the main-table columns.

    ``cells`` keeps only these (dataset, arch, norm, regime) tuples; ``columns`` replaces the default
    columns (:func:`main_results_columns`) with other specs (see :func:`metric_spec`).
    Returns a long frame with columns dataset, arch, regime, norm, column (label), metric, mean, std, n.
    """
    m = filter_cells(_filter(metrics, dataset=dataset, arch=archs, norm=norms, regime=regimes), cells)
    keys = ["dataset", "arch", "regime", "norm"]
    specs = list(columns) if columns is not None else main_results_columns(m, head)
    return specs_frame(m, specs, keys)


def _plain_key(x: Any) -> tuple:
    """Numbers in numeric order first, then text in alphabetical order."""
    if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and np.isfinite(x):
        return (0, float(x), "")
    return (1, 0.0, str(x))


def cell_order(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Sort rows by dataset, arch (alphabetical), regime and norm (fixed orders)."""
    df = df.copy()
    order_cols = []
    for k in keys:
        if k == "norm" or k.endswith("_norm"):
            key = _order_key(NORM_ORDER)
        elif k == "regime" or k.endswith("_regime"):
            key = _order_key(REGIME_ORDER)
        else:
            key = _plain_key
        df[f"_o_{k}"] = df[k].map(key)
        order_cols.append(f"_o_{k}")
    return df.sort_values(order_cols, kind="stable").drop(columns=order_cols).reset_index(drop=True)


def main_results_table(metrics: pd.DataFrame, head: dict[str, Any], *, dataset: str | Sequence[str] | None = None,
                       archs: Sequence[str] | None = None, norms: Sequence[str] | None = None,
                       regimes: Sequence[str] | None = None, cells: Iterable[Sequence[str]] | None = None,
                       columns: Sequence[dict[str, Any]] | None = None) -> str:
    """Table (a): clean, headline robust, PGD-L2 at the largest ε, noise at the largest σ, LIGS.

    One row per (dataset, arch, regime, norm), mean ± std over seeds; dataset / arch columns appear
    only when they take more than one value. ``cells`` / ``columns`` as in :func:`main_results_frame`.
    """
    long = main_results_frame(metrics, head, dataset=dataset, archs=archs, norms=norms, regimes=regimes,
                              cells=cells, columns=columns)
    if long.empty:
        return _empty_table("no results for this selection")
    keys = ["dataset", "arch", "regime", "norm"]
    labels = list(dict.fromkeys(long["column"]))
    long["cell"] = [fmt_mean_std(m, s, p) for m, s, p in zip(long["mean"], long["std"], long["percent"])]
    wide = long.pivot_table(index=keys, columns="column", values="cell", aggfunc="first").reset_index()
    nseeds = long.groupby(keys)["n"].max().reset_index()
    wide = wide.merge(nseeds, on=keys, how="left")
    wide = cell_order(wide, keys)
    for c in labels:
        if c not in wide.columns:
            wide[c] = "--"
    wide[labels] = wide[labels].fillna("--")
    show_keys = [k for k in ("dataset", "arch") if wide[k].nunique() > 1] + ["regime", "norm"]
    out = pd.DataFrame({
        "Dataset": wide["dataset"].map(tex_escape), "Arch": wide["arch"].map(tex_escape),
        "Regime": wide["regime"].map(lambda r: tex_escape(regime_label(r))),
        "Norm": wide["norm"].map(lambda n: tex_escape(norm_label(n))),
    })
    out = out[[{"dataset": "Dataset", "arch": "Arch", "regime": "Regime", "norm": "Norm"}[k] for k in show_keys]]
    out["$n$"] = wide["n"].fillna(0).astype(int).astype(str)
    for c in labels:
        out[c] = wide[c]
    group_col = "_group"
    out[group_col] = ["/".join(str(wide.iloc[i][k]) for k in show_keys[:-1]) for i in range(len(wide))]
    label_cols = [c for c in ("Dataset", "Arch", "Regime") if c in out.columns]
    groups = list(out[group_col])
    out = _blank_repeats(out.drop(columns=[group_col]), label_cols)
    out[group_col] = groups
    fmt = "l" * len(label_cols) + "l" + "r" + "r" * len(labels)
    return _to_latex_grouped(out, fmt, group_col)


def _to_latex_grouped(out: pd.DataFrame, fmt: str, group_col: str) -> str:
    groups = list(out[group_col])
    body = out.drop(columns=[group_col])
    body["_g"] = [f"g{i}" for i in pd.factorize(pd.Series(groups, dtype=str))[0]]  # never empty: stripped below
    text = _to_latex(body, fmt + "l", group_col="_g")
    # drop the helper column again (it is the last one of every row)
    lines = []
    for line in text.splitlines():
        if line.endswith(r"\\") and " & " in line:
            cells = line[: -2].rstrip().split(" & ")
            line = " & ".join(cells[:-1]) + r" \\"
        elif line.startswith(r"\begin{tabular}"):
            line = r"\begin{tabular}{" + fmt + "}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _empty_table(message: str) -> str:
    return ("\\begin{tabular}{l}\n\\toprule\n\\emph{" + tex_escape(message) + "} \\\\\n\\bottomrule\n"
            "\\end{tabular}\n")


NRF_COLUMNS = [("nrf_reliance", "NRF reliance", False), ("rf_only_acc", "RF only (%)", True),
               ("nrf_only_acc", "NRF only (%)", True), ("conflict_rf_rate", "Conflict→RF (%)", True),
               ("conflict_nrf_rate", "Conflict→NRF (%)", True), ("ligs", "LIGS", False)]


def nrf_table(metrics: pd.DataFrame, *, dataset: str | Sequence[str] | None = None,
              archs: Sequence[str] | None = None, norms: Sequence[str] | None = None,
              regimes: Sequence[str] | None = None, cells: Iterable[Sequence[str]] | None = None) -> str:
    """E5 table: NRF reliance, RF-only / NRF-only accuracy, conflict rates and LIGS, mean ± std."""
    m = filter_cells(_filter(metrics, dataset=dataset, arch=archs, norm=norms, regime=regimes), cells)
    keys = ["dataset", "arch", "regime", "norm"]
    parts = []
    for metric, label, pct in NRF_COLUMNS:
        st = seed_stats(m[m["metric"] == metric], keys)
        if st.empty:
            continue
        st["column"], st["percent"] = label, pct
        parts.append(st)
    if not parts or all(p["column"].iloc[0] == "LIGS" for p in parts):
        return _empty_table("no NRF-reliance metrics for this selection")
    long = pd.concat(parts, ignore_index=True)
    labels = [lab for _, lab, _ in NRF_COLUMNS if lab in set(long["column"])]
    long["cell"] = [fmt_mean_std(a, b, p) for a, b, p in zip(long["mean"], long["std"], long["percent"])]
    wide = long.pivot_table(index=keys, columns="column", values="cell", aggfunc="first").reset_index()
    wide = cell_order(wide, keys)
    wide[labels] = wide[labels].fillna("--")
    show_keys = [k for k in ("dataset", "arch") if wide[k].nunique() > 1] + ["regime", "norm"]
    names = {"dataset": "Dataset", "arch": "Arch", "regime": "Regime", "norm": "Norm"}
    out = pd.DataFrame()
    for k in show_keys:
        f = {"regime": regime_label, "norm": norm_label}.get(k, str)
        out[names[k]] = wide[k].map(lambda v, f=f: tex_escape(f(v)))
    for c in labels:
        out[c] = wide[c]
    groups = ["/".join(str(wide.iloc[i][k]) for k in show_keys[:-1]) for i in range(len(wide))]
    label_cols = [names[k] for k in show_keys[:-1]]
    out = _blank_repeats(out, label_cols)
    out["_group"] = groups
    fmt = "l" * len(show_keys) + "r" * len(labels)
    return _to_latex_grouped(out, fmt, "_group")


VERDICT_COLOUR = {"PASS": "passgreen", "FAIL": "failred", "INCONCLUSIVE": "inconcgray"}


def verdict_tex(verdict: str) -> str:
    v = str(verdict)
    colour = VERDICT_COLOUR.get(v)
    return rf"\textcolor{{{colour}}}{{\textbf{{{tex_escape(v)}}}}}" if colour else tex_escape(v)


def claim_diff_tex(row: pd.Series | dict[str, Any]) -> str:
    """``$-12.3$ [$-14.0$, $-10.6$]`` (points for accuracy-type metrics)."""
    pct = metric_is_percent(row["metric"])
    mean = row.get("mean_diff")
    if mean is None or not np.isfinite(float(mean)):
        return "--"
    lo, hi = row.get("min_diff"), row.get("max_diff")
    s = fmt_signed(float(mean), pct)
    if lo is not None and hi is not None and np.isfinite(float(lo)) and np.isfinite(float(hi)):
        s += f" [{fmt_signed(float(lo), pct)}, {fmt_signed(float(hi), pct)}]"
    return s


#: claims.csv columns (contract of issue 7); older files lack some of them
CLAIM_COLUMNS = ["id", "study", "claim", "rule", "metric", "direction", "tolerance", "treatment_mean",
                 "treatment_min", "treatment_max", "baseline_mean", "baseline_min", "baseline_max", "mean_diff",
                 "min_diff", "max_diff", "n_seeds", "paper", "verdict", "note"]
CLAIM_NUMERIC = ["tolerance", "treatment_mean", "treatment_min", "treatment_max", "baseline_mean", "baseline_min",
                 "baseline_max", "mean_diff", "min_diff", "max_diff", "n_seeds"]


def normalize_claims(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims with every contract column: missing numbers NaN, missing text empty; numbers parsed."""
    df = claims.copy()
    for c in CLAIM_COLUMNS:
        if c not in df.columns:
            df[c] = np.nan if c in CLAIM_NUMERIC else ""
    for c in CLAIM_NUMERIC:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    for c in set(CLAIM_COLUMNS) - set(CLAIM_NUMERIC):
        df[c] = df[c].map(lambda v: "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else str(v))
    return df


def default_rule(direction: str, tol: float | None, metric: str = "") -> str:
    """The verdict rule in words for a claims row without a ``rule`` column (older claims.csv)."""
    pct = metric_is_percent(metric)
    t = float(tol) if tol is not None and np.isfinite(float(tol)) else 0.0
    ts = f"{fmt_num(t * 100)} points" if pct else fmt_num(t)
    n = "(n ≥ 2)"
    return {
        "increase": f"PASS if Δ > 0 on every seed {n}; FAIL if Δ < 0 on every seed; else INCONCLUSIVE",
        "decrease": f"PASS if Δ < 0 on every seed {n}; FAIL if Δ > 0 on every seed; else INCONCLUSIVE",
        "increase_or_keep": f"PASS if Δ ≥ −{ts} on every seed {n}; FAIL if Δ < −{ts} on every seed; "
                            "else INCONCLUSIVE",
        "decrease_or_keep": f"PASS if Δ ≤ {ts} on every seed {n}; FAIL if Δ > {ts} on every seed; "
                            "else INCONCLUSIVE",
        "small": f"PASS if |Δ| ≤ {ts} on every seed {n}; FAIL if Δ lies beyond ±{ts} on one side on every seed; "
                 "else INCONCLUSIVE",
    }.get(str(direction), f"direction {direction}")


def claim_stat_tex(mean: Any, lo: Any, hi: Any, pct: bool, signed: bool = False) -> str:
    """``$85.3$ [$80.1$, $90.2$]`` (×100 when ``pct``); ``--`` when the mean is missing."""
    def f(x: Any) -> str:
        return fmt_signed(float(x), pct) if signed else fmt_mean_std(float(x), None, pct)

    try:
        m = float(mean)
    except (TypeError, ValueError):
        return "--"
    if not np.isfinite(m):
        return "--"
    s = f(m)
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        return s
    if np.isfinite(lo) and np.isfinite(hi):
        s += f" [{f(lo)}, {f(hi)}]"
    return s


def claim_measured_tex(row: pd.Series | dict[str, Any]) -> str:
    """Treatment, baseline and Δ of one claims row, each mean [min, max] over seeds, on separate lines."""
    pct = metric_is_percent(row["metric"])
    parts = []
    for key, name in (("treatment", "treatment"), ("baseline", "baseline")):
        s = claim_stat_tex(row.get(f"{key}_mean"), row.get(f"{key}_min"), row.get(f"{key}_max"), pct)
        if s != "--":
            parts.append(f"{name} {s}")
    d = claim_diff_tex(row)
    if d != "--":
        parts.append(f"$\\Delta$ {d}" + (" pts" if pct else ""))
    n = row.get("n_seeds")
    if n is not None and np.isfinite(float(n)):
        parts.append(f"$n = {int(n)}$")
    return r"\newline ".join(parts) if parts else "--"


def claims_table(claims: pd.DataFrame, caption: str | None = r"\nrltcaption",
                 titles: dict[str, str] | None = None) -> str:
    """Table (b), a ``longtable`` (breaks across pages): per claim its verdict, id and statement, the verdict
    rule, the measured numbers (treatment, baseline and paired difference Δ: mean [min, max] over seeds;
    n seeds) and the paper's number where it has one. A header row per study (``titles``: study → text).

    ``caption`` is LaTeX placed as the longtable's first row (default: the template's ``\\nrltcaption``
    macro, which holds the caption and label); None for no caption row.
    """
    p = r">{\raggedright\arraybackslash}p"
    head = [r"\begin{longtable}{@{}" + p + r"{0.28\linewidth}" + p + r"{0.31\linewidth}" + p
            + r"{0.23\linewidth}" + p + r"{0.12\linewidth}@{}}"]
    if caption:
        head.append(caption + r" \\")
    cols = r"Verdict, claim & Rule (fixed before the run) & Measured: mean [min, max] & Paper \\"
    head += [r"\toprule", cols, r"\midrule", r"\endfirsthead",
             r"\multicolumn{4}{@{}l}{\emph{(continued)}} \\", r"\toprule", cols, r"\midrule", r"\endhead",
             r"\midrule", r"\multicolumn{4}{r@{}}{\emph{(continued on the next page)}} \\", r"\endfoot",
             r"\bottomrule", r"\endlastfoot"]
    if claims is None or claims.empty:
        return "\n".join(head + [r"\multicolumn{4}{@{}l}{\emph{no claims}} \\", r"\end{longtable}", ""])
    df = normalize_claims(claims)
    lines = list(head)
    prev = None
    for _, r in df.iterrows():
        if r["study"] != prev:
            if prev is not None:
                lines.append(r"\midrule")
            title = (titles or {}).get(r["study"], r["study"])
            lines.append(rf"\multicolumn{{4}}{{@{{}}l}}{{\textbf{{{tex_escape(title)}}}}} \\* ")
            prev = r["study"]
        rule = r["rule"] or default_rule(r["direction"], r["tolerance"], r["metric"])
        claim = (rf"{verdict_tex(r['verdict'])} \texttt{{{tex_escape(r['id'])}}}\newline "
                 rf"{tex_escape(r['claim'])}")
        paper = tex_escape(r["paper"]) if r["paper"] else "--"
        lines.append(" & ".join([claim, tex_escape(rule), claim_measured_tex(r), paper]) + r" \\")
    lines += [r"\end{longtable}", ""]
    return "\n".join(lines)


def transfer_matrix(transfer: pd.DataFrame, *, dataset: str | None = None,
                    norms: Sequence[str] | None = None, regimes: Sequence[str] | None = None,
                    archs: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean, std, n over seeds of success rate per (source arch/norm/regime, target arch/norm/regime)."""
    t = _filter(transfer, dataset=dataset)
    if norms is not None:
        t = t[t["source_norm"].isin(norms) & t["target_norm"].isin(norms)]
    if regimes is not None:
        t = t[t["source_regime"].isin(regimes)]
    if archs is not None:
        t = t[t["source_arch"].isin(archs) & t["target_arch"].isin(archs)]
    keys = ["source_arch", "source_norm", "source_regime", "target_arch", "target_norm", "target_regime"]
    return seed_stats(t, keys, value="success_rate")


def transfer_source_means(transfer: pd.DataFrame, **filters: Any) -> pd.DataFrame:
    """Per source and seed: mean success rate over the targets other than the source itself."""
    t = _filter(transfer, dataset=filters.get("dataset"))
    if filters.get("norms") is not None:
        t = t[t["source_norm"].isin(filters["norms"]) & t["target_norm"].isin(filters["norms"])]
    if filters.get("regimes") is not None:
        t = t[t["source_regime"].isin(filters["regimes"])]
    if filters.get("archs") is not None:
        t = t[t["source_arch"].isin(filters["archs"]) & t["target_arch"].isin(filters["archs"])]
    self_ = ((t["source_arch"] == t["target_arch"]) & (t["source_norm"] == t["target_norm"])
             & (t["source_regime"] == t["target_regime"]))
    t = t[~self_ & t["success_rate"].notna()]
    return (t.groupby(["source_arch", "source_norm", "source_regime", "seed"], as_index=False)["success_rate"]
            .mean())


def transfer_table(transfer: pd.DataFrame, *, dataset: str | None = None, norms: Sequence[str] | None = None,
                   regimes: Sequence[str] | None = None, archs: Sequence[str] | None = None) -> str:
    """Table (c): transfer success (%) per source (rows) and target (columns), mean over seeds, and the
    mean over targets (self excluded) as mean ± std over seeds."""
    mat = transfer_matrix(transfer, dataset=dataset, norms=norms, regimes=regimes, archs=archs)
    if mat.empty:
        return _empty_table("no transfer results for this selection")
    multi_arch = len(set(mat["source_arch"]) | set(mat["target_arch"])) > 1
    multi_treg = mat["target_regime"].nunique() > 1

    def tgt_name(a, n, r):
        s = norm_label(n)
        if multi_treg:
            s += f" ({regime_short(r)})"
        if multi_arch:
            s = f"{a}/{s}"
        return s

    tkeys = cell_order(mat[["target_arch", "target_norm", "target_regime"]].drop_duplicates(),
                        ["target_arch", "target_norm", "target_regime"])
    tcols = [tuple(r) for r in tkeys.itertuples(index=False)]
    skeys = cell_order(mat[["source_arch", "source_regime", "source_norm"]].drop_duplicates(),
                        ["source_arch", "source_regime", "source_norm"])
    per_source = transfer_source_means(transfer, dataset=dataset, norms=norms, regimes=regimes, archs=archs)
    src_stats = seed_stats(per_source, ["source_arch", "source_norm", "source_regime"], value="success_rate")
    rows = []
    for sa, sr, sn in skeys.itertuples(index=False):
        row: dict[str, str] = {}
        if multi_arch:
            row["Source arch"] = tex_escape(sa)
        row["Source regime"] = tex_escape(regime_label(sr))
        row["Source norm"] = tex_escape(norm_label(sn))
        for ta, tn, tr in tcols:
            hit = mat[(mat["source_arch"] == sa) & (mat["source_norm"] == sn) & (mat["source_regime"] == sr)
                      & (mat["target_arch"] == ta) & (mat["target_norm"] == tn) & (mat["target_regime"] == tr)]
            row[tex_escape(tgt_name(ta, tn, tr))] = fmt_mean_std(hit["mean"].iloc[0], None, True) if len(hit) else "--"
        s = src_stats[(src_stats["source_arch"] == sa) & (src_stats["source_norm"] == sn)
                      & (src_stats["source_regime"] == sr)]
        row["Mean (%)"] = fmt_mean_std(s["mean"].iloc[0], s["std"].iloc[0], True) if len(s) else "--"
        row["_group"] = f"{sa}/{sr}"
        rows.append(row)
    out = pd.DataFrame(rows)
    label_cols = [c for c in ("Source arch", "Source regime") if c in out.columns]
    groups = list(out["_group"])
    out = _blank_repeats(out.drop(columns=["_group"]), label_cols)
    out["_group"] = groups
    n_lab = len(label_cols) + 1
    fmt = "l" * n_lab + "r" * len(tcols) + "r"
    return _to_latex_grouped(out, fmt, "_group")


# ------------------------------------------------------------------------------ study tables (E2–E10)

CELL_KEYS = ["dataset", "arch", "norm", "regime"]


def metric_spec(label: str, metric: str, attack: str | None = None, eps: float | None = None,
                percent: bool | None = None) -> dict[str, Any]:
    """A table column: ``label`` showing ``metric`` (at ``attack`` / ``eps`` where given)."""
    return {"label": label, "metric": metric, "attack": attack, "eps": eps,
            "percent": metric_is_percent(metric) if percent is None else bool(percent)}


def filter_cells(df: pd.DataFrame, cells: Iterable[Sequence[str]] | None) -> pd.DataFrame:
    """Rows of a metrics-like frame whose (dataset, arch, norm, regime) is one of ``cells`` (None: all)."""
    if cells is None:
        return df
    want = {tuple(str(v) for v in c) for c in cells}
    if df.empty:
        return df
    keys = list(zip(*(df[k].astype(str) for k in CELL_KEYS)))
    return df[[k in want for k in keys]]


def spec_rows(metrics: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """The rows of ``metrics`` one column spec reads."""
    sel = metrics[metrics["metric"] == spec["metric"]]
    if spec.get("attack") is not None:
        sel = sel[sel["attack"] == spec["attack"]]
    if spec.get("eps") is not None and len(sel):
        sel = sel[_eps_match(sel["eps"], spec["eps"])]
    return sel


def specs_frame(metrics: pd.DataFrame, specs: Sequence[dict[str, Any]], keys: Sequence[str]) -> pd.DataFrame:
    """Long frame: ``keys`` + column (label), metric, mean, std, min, max, n, percent, one row per spec."""
    keys = list(keys)
    parts = []
    for spec in specs:
        st = seed_stats(spec_rows(metrics, spec), keys)
        st["column"], st["metric"], st["percent"] = spec["label"], spec["metric"], spec["percent"]
        parts.append(st)
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=keys + ["mean", "std", "min", "max", "n", "column", "metric", "percent"])
    return pd.concat(parts, ignore_index=True)


def per_seed(metrics: pd.DataFrame, spec: dict[str, Any], keys: Sequence[str] = CELL_KEYS) -> pd.Series:
    """One value per (keys, seed) for a column spec (several rows of one seed are averaged)."""
    sel = spec_rows(metrics, spec)
    sel = sel[sel["value"].notna()]
    return sel.groupby(list(keys) + ["seed"])["value"].mean()


KEY_HEADER = {"dataset": "Dataset", "arch": "Arch", "regime": "Regime", "norm": "Norm"}
KEY_FORMAT = {"regime": regime_label, "norm": norm_label}


def stats_table(metrics: pd.DataFrame, specs: Sequence[dict[str, Any]], keys: Sequence[str] = (
        "dataset", "arch", "regime", "norm"), *, always: Sequence[str] = ("regime", "norm"),
        headers: dict[str, str] | None = None, formats: dict[str, Any] | None = None,
        extra: Any = None, orders: dict[str, Sequence[Any]] | None = None,
        empty: str = "no results for this selection") -> str:
    """A table with one row per value of ``keys`` (mean ± std over seeds of each spec).

    Key columns other than ``always`` appear only when they take more than one value; ``headers`` and
    ``formats`` name and format the key columns; ``extra(row) -> {label: LaTeX}`` adds columns per row
    (e.g. a paper's numbers); ``orders`` fixes the row order of a key (values listed first, in that order).
    Rows are grouped (a rule between groups) by all shown keys but the last.
    """
    keys = list(keys)
    headers = {**KEY_HEADER, **(headers or {})}
    formats = {**KEY_FORMAT, **(formats or {})}
    long = specs_frame(metrics, specs, keys)
    if long.empty:
        return _empty_table(empty)
    labels = [s["label"] for s in specs if s["label"] in set(long["column"])]
    labels = list(dict.fromkeys(labels))
    long["cell"] = [fmt_mean_std(m, s, p) for m, s, p in zip(long["mean"], long["std"], long["percent"])]
    wide = long.pivot_table(index=keys, columns="column", values="cell", aggfunc="first").reset_index()
    nseeds = long.groupby(keys)["n"].max().reset_index()
    wide = cell_order(wide.merge(nseeds, on=keys, how="left"), keys)
    if orders:
        sort_cols = []
        for k in keys:
            pos = {v: i for i, v in enumerate((orders or {}).get(k, []))}
            wide[f"_s_{k}"] = [pos.get(v, len(pos)) for v in wide[k]]
            sort_cols.append(f"_s_{k}")
        wide = wide.sort_values(sort_cols, kind="stable").drop(columns=sort_cols).reset_index(drop=True)
    for c in labels:
        if c not in wide.columns:
            wide[c] = "--"
    wide[labels] = wide[labels].fillna("--")
    show = [k for k in keys if k in always or wide[k].nunique() > 1]
    out = pd.DataFrame({headers[k]: wide[k].map(lambda v, f=formats.get(k, str): tex_escape(f(v)))
                        for k in show})
    out["$n$"] = wide["n"].fillna(0).astype(int).astype(str)
    for c in labels:
        out[c] = wide[c]
    if extra is not None:
        ext = [extra({k: wide.iloc[i][k] for k in keys}) or {} for i in range(len(wide))]
        for lab in dict.fromkeys(lab for e in ext for lab in e):
            out[lab] = [e.get(lab, "--") for e in ext]
    label_cols = [headers[k] for k in show[:-1]]
    groups = ["/".join(str(wide.iloc[i][k]) for k in show[:-1]) for i in range(len(wide))]
    out = _blank_repeats(out, label_cols)
    out["_group"] = groups
    fmt = "l" * len(show) + "r" * (out.shape[1] - len(show) - 1)
    return _to_latex_grouped(out, fmt, "_group")


def history_final_frame(history: pd.DataFrame, columns: dict[str, str], *,
                        cells: Iterable[Sequence[str]] | None = None) -> pd.DataFrame:
    """The last epoch of every (cell, seed) of ``history`` as a metrics-like long frame.

    ``columns`` maps history columns (clean_acc, robust_acc, robust_acc_<name>, ligs) to labels; the
    result has the cell keys, seed, epoch, metric (the history column), attack/eps (none/0) and value.
    """
    h = filter_cells(history, cells)
    keys = CELL_KEYS + ["seed"]
    if h.empty:
        return pd.DataFrame(columns=keys + ["epoch", "metric", "attack", "eps", "value"])
    last = h.sort_values("epoch", kind="stable").groupby(keys, as_index=False).tail(1)
    cols = [c for c in columns if c in last.columns]
    long = last.melt(id_vars=keys + ["epoch"], value_vars=cols, var_name="metric", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    long["attack"], long["eps"] = "none", 0.0
    return long


def history_final_table(history: pd.DataFrame, columns: dict[str, str], *,
                        cells: Iterable[Sequence[str]] | None = None) -> str:
    """E2: the history's last epoch per cell (clean, the per-epoch attacks, LIGS), mean ± std over seeds."""
    long = history_final_frame(history, columns, cells=cells)
    specs = [metric_spec(lab, col, percent=col != "ligs") for col, lab in columns.items()
             if col in set(long["metric"])]
    return stats_table(long, specs, empty="no per-epoch history for this selection")


def rank_correlation_frame(metrics: pd.DataFrame, x: str = "ligs", y: str = "nrf_reliance", *,
                           cells: Iterable[Sequence[str]] | None = None) -> pd.DataFrame:
    """Spearman's ρ between two metrics over the cells, per seed and over the seed means.

    Columns: scope (``seed`` or ``seed means``), seed (NaN for the means), n_cells, spearman. ρ is NaN
    with fewer than three cells or a constant metric. pandas ranks (average ranks for ties) and
    correlates the ranks; no SciPy needed.
    """
    m = filter_cells(metrics, cells)
    sx, sy = per_seed(m, metric_spec(x, x)), per_seed(m, metric_spec(y, y))
    both = pd.concat({"x": sx, "y": sy}, axis=1).dropna().reset_index()

    def rho(d: pd.DataFrame) -> float:
        if len(d) < 3 or d["x"].nunique() < 2 or d["y"].nunique() < 2:
            return float("nan")
        return float(d["x"].corr(d["y"], method="spearman"))

    rows = []
    for seed in sorted(set(both["seed"])) if len(both) else []:
        d = both[both["seed"] == seed]
        rows.append({"scope": "seed", "seed": int(seed), "n_cells": len(d), "spearman": rho(d)})
    if len(both):
        means = both.groupby(CELL_KEYS, as_index=False)[["x", "y"]].mean()
        rows.append({"scope": "seed means", "seed": np.nan, "n_cells": len(means), "spearman": rho(means)})
    return pd.DataFrame(rows, columns=["scope", "seed", "n_cells", "spearman"])


def rank_correlation_table(frame: pd.DataFrame, x_label: str = "LIGS", y_label: str = "NRF reliance") -> str:
    """The rows of :func:`rank_correlation_frame`: scope, number of cells, Spearman's ρ."""
    if frame.empty:
        return _empty_table(f"no cell has both {x_label} and {y_label}")
    lines = [r"\begin{tabular}{lrr}", r"\toprule", r"Scope & Cells & Spearman $\rho$ \\", r"\midrule"]
    for _, r in frame.iterrows():
        scope = f"seed {int(r['seed'])}" if r["scope"] == "seed" else "mean over seeds"
        if r["scope"] != "seed" and len(frame) > 1:
            lines.append(r"\midrule")
        lines.append(f"{scope} & {int(r['n_cells'])} & {fmt_signed(r['spearman'], digits=3)} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def factors_frame(metrics: pd.DataFrame, specs: Sequence[dict[str, Any]], base: tuple[str, str],
                  variants: Sequence[tuple[str, str, str]], *, dataset: str | Sequence[str] | None = None,
                  norms: Sequence[str] | None = None, base_label: str = "base") -> pd.DataFrame:
    """E6: per norm and variant (arch, regime, label), each spec's mean/std/n over seeds and the mean of the
    per-seed differences to the base cell ``base`` = (arch, regime) of the same norm and seed.

    Columns: norm, arch, regime, variant, is_base, column, mean, std, n, delta, delta_n, percent.
    """
    m = _filter(metrics, dataset=dataset, norm=norms)
    rows = []
    allv = [(base[0], base[1], base_label)] + [v for v in variants if (v[0], v[1]) != tuple(base)]
    keys = ["arch", "regime", "norm"]
    for spec in specs:
        vals = per_seed(m, spec, keys)
        for norm in sort_norms(set(m["norm"])):
            try:
                b = vals.xs((base[0], base[1], norm), level=("arch", "regime", "norm"))
            except KeyError:
                b = pd.Series(dtype=float)
            for arch, regime, label in allv:
                try:
                    v = vals.xs((arch, regime, norm), level=("arch", "regime", "norm"))
                except KeyError:
                    continue
                d = (v - b).dropna()
                is_base = (arch, regime) == tuple(base)
                rows.append({"norm": norm, "arch": arch, "regime": regime, "variant": label, "is_base": is_base,
                             "column": spec["label"], "mean": float(v.mean()),
                             "std": float(v.std(ddof=1)) if len(v) > 1 else np.nan, "n": len(v),
                             "delta": float(d.mean()) if len(d) and not is_base else np.nan,
                             "delta_n": 0 if is_base else len(d), "percent": spec["percent"]})
    return pd.DataFrame(rows, columns=["norm", "arch", "regime", "variant", "is_base", "column", "mean", "std",
                                       "n", "delta", "delta_n", "percent"])


def factors_table(frame: pd.DataFrame) -> str:
    """The LaTeX table of :func:`factors_frame`: values, then Δ vs the base cell (mean of per-seed Δ)."""
    if frame.empty:
        return _empty_table("no results for the base cell or its variants")
    labels = list(dict.fromkeys(frame["column"]))
    order = list(dict.fromkeys(zip(frame["arch"], frame["regime"])))
    rows = []
    for norm in sort_norms(set(frame["norm"])):
        f = frame[frame["norm"] == norm]
        for arch, regime in order:
            g = f[(f["arch"] == arch) & (f["regime"] == regime)]
            if g.empty:
                continue
            row = {"Norm": tex_escape(norm_label(norm)), "Variant": tex_escape(g["variant"].iloc[0]),
                   "$n$": str(int(g["n"].max()))}
            for lab in labels:
                r = g[g["column"] == lab]
                row[lab] = (fmt_mean_std(r["mean"].iloc[0], r["std"].iloc[0], bool(r["percent"].iloc[0]))
                            if len(r) else "--")
            for lab in labels:
                r = g[g["column"] == lab]
                head = "$\\Delta$ " + tex_escape(lab.replace("(%)", "(pts)"))
                if not len(r):
                    row[head] = "--"
                else:
                    row[head] = "" if r["is_base"].iloc[0] else fmt_signed(r["delta"].iloc[0],
                                                                           bool(r["percent"].iloc[0]))
            row["_group"] = norm
            rows.append(row)
    out = pd.DataFrame(rows)
    groups = list(out["_group"])
    out = _blank_repeats(out.drop(columns=["_group"]), ["Norm"])
    out["_group"] = groups
    return _to_latex_grouped(out, "ll" + "r" * (out.shape[1] - 3), "_group")


def transfer_source_kind(final: bool, epoch: Any, regime: str, target_regimes: Sequence[str]) -> tuple[tuple, str]:
    """(sort key, label) of a transfer source: final, early-stopped at epoch k, or another regime."""
    if not final:
        e = int(epoch) if epoch is not None and np.isfinite(float(epoch)) else -1
        other = "" if regime in target_regimes else f" ({regime_label(regime)})"
        return (1, e, 0), f"early-stopped, epoch {e}{other}"
    if regime in target_regimes:
        return (0, 0, _order_key(REGIME_ORDER)(regime)[0]), f"final ({regime_label(regime)})"
    return (2, 0, _order_key(REGIME_ORDER)(regime)[0]), f"final, {regime_label(regime)}"


def transfer_sources_frame(transfer: pd.DataFrame, target_regimes: Sequence[str], *,
                           dataset: str | Sequence[str] | None = None, study: str | None = None,
                           norms: Sequence[str] | None = None) -> pd.DataFrame:
    """E9: mean success rate by kind of source (final, early-stopped at epoch k, another regime) and norm.

    Per source and seed the success rate is averaged over the targets other than the source itself; then
    per kind, norm and seed over the sources of that kind; the result is mean/std/n over seeds.
    Columns: kind, order, source_norm, mean, std, min, max, n.
    """
    t = _filter(transfer, dataset=dataset)
    if study is not None and "study" in t.columns:
        t = t[t["study"] == study]
    if norms is not None:
        t = t[t["source_norm"].isin(norms)]
    cols = ["kind", "order", "source_norm", "mean", "std", "min", "max", "n"]
    if t.empty:
        return pd.DataFrame(columns=cols)
    t = t.copy()
    final = t["source_final"] if "source_final" in t.columns else pd.Series(True, index=t.index)
    epoch = t["source_epoch"] if "source_epoch" in t.columns else pd.Series(np.nan, index=t.index)
    same = ((t["source_arch"] == t["target_arch"]) & (t["source_norm"] == t["target_norm"])
            & (t["source_regime"] == t["target_regime"]) & final.astype(bool))
    t = t[~same & t["success_rate"].notna()]
    kinds = [transfer_source_kind(bool(f), e, r, target_regimes)
             for f, e, r in zip(final[t.index], epoch[t.index], t["source_regime"])]
    t["order"] = [k[0] for k in kinds]
    t["kind"] = [k[1] for k in kinds]
    src = ["source_arch", "source_norm", "source_regime", "kind", "order", "seed"]
    per_src = t.groupby(src, as_index=False, sort=False)["success_rate"].mean()
    per_kind = per_src.groupby(["kind", "source_norm", "seed"], as_index=False, sort=False)["success_rate"].mean()
    st = seed_stats(per_kind, ["kind", "source_norm"], value="success_rate")
    order = dict(zip(per_src["kind"], per_src["order"]))
    st["order"] = st["kind"].map(order)
    st["_n"] = st["source_norm"].map(_order_key(NORM_ORDER))
    st = st.sort_values(["order", "_n"], kind="stable").drop(columns="_n").reset_index(drop=True)
    return st[cols]


def transfer_sources_table(frame: pd.DataFrame) -> str:
    """Rows: kind of source; columns: source norm (mean ± std over seeds of the mean success rate, %)."""
    if frame.empty:
        return _empty_table("no transfer results for this selection")
    norms = sort_norms(set(frame["source_norm"]))
    kinds = list(dict.fromkeys(frame["kind"]))
    lines = [r"\begin{tabular}{l" + "r" * len(norms) + "r}", r"\toprule",
             "Source & " + " & ".join(tex_escape(norm_label(n)) for n in norms) + r" & $n$ \\", r"\midrule"]
    for k in kinds:
        f = frame[frame["kind"] == k]
        cells = []
        for n in norms:
            r = f[f["source_norm"] == n]
            cells.append(fmt_mean_std(r["mean"].iloc[0], r["std"].iloc[0], True) if len(r) else "--")
        lines.append(" & ".join([tex_escape(k)] + cells + [str(int(f["n"].max()))]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


FGSM_QUANTITIES = [("clean_error", "Clean error (%)"), ("fgsm_error", "FGSM error (%)"),
                   ("wrong_confidence", "Confidence on wrong adv. (%)")]


def fgsm_frame(metrics: pd.DataFrame, transfer: pd.DataFrame | None, *, dataset: str | Sequence[str] | None,
               archs: Sequence[str], norms: Sequence[str], regimes: Sequence[str], attack: str | None,
               eps: float | None, reference: Any = None, study: str | None = "e10_fgsm") -> pd.DataFrame:
    """E10 ([G]): per model (arch, norm, regime) clean error, FGSM error at ``eps`` and the mean confidence
    on misclassified FGSM examples; per pair of models of one arch and norm the transfer error rate.

    ``reference(arch, regime, quantity, target_regime)`` gives [G]'s number (percent) or None.
    Columns: kind (model | transfer), arch, norm, regime, target_regime, quantity, mean, std, n (in
    percent), paper, diff (mean − paper, points).
    """
    m = _filter(metrics, dataset=dataset, arch=archs, norm=norms, regime=regimes)
    keys = ["arch", "norm", "regime"]
    specs = {"clean_error": metric_spec("clean", "clean_acc")}
    if attack is not None and eps is not None:
        specs["fgsm_error"] = metric_spec("fgsm", "robust_acc", attack, eps)
        specs["wrong_confidence"] = metric_spec("conf", "adv_wrong_confidence", attack, eps)
    rows = []

    def add(kind, arch, norm, regime, target, quantity, v):
        v = v.dropna()
        if not len(v):
            return
        paper = reference(arch, regime, quantity, target) if reference is not None else None
        mean = float(v.mean())
        rows.append({"kind": kind, "arch": arch, "norm": norm, "regime": regime, "target_regime": target,
                     "quantity": quantity, "mean": mean, "std": float(v.std(ddof=1)) if len(v) > 1 else np.nan,
                     "n": len(v), "paper": np.nan if paper is None else float(paper),
                     "diff": np.nan if paper is None else mean - float(paper)})

    vals = {q: per_seed(m, s, keys) for q, s in specs.items()}
    cells = cell_order(m[keys].drop_duplicates(), keys)
    for arch, norm, regime in cells.itertuples(index=False):
        for q, s in vals.items():
            try:
                v = s.xs((arch, norm, regime), level=("arch", "norm", "regime"))
            except KeyError:
                continue
            v = v * 100 if q == "wrong_confidence" else (1 - v) * 100
            add("model", arch, norm, regime, None, q, v)
    if transfer is not None and len(transfer):
        t = _filter(transfer, dataset=dataset)
        if study is not None and "study" in t.columns:
            t = t[t["study"] == study]
        if "source_final" in t.columns:
            t = t[t["source_final"].astype(bool)]
        t = t[(t["source_arch"] == t["target_arch"]) & (t["source_norm"] == t["target_norm"])
              & (t["source_regime"] != t["target_regime"]) & t["source_arch"].isin(archs)
              & t["source_norm"].isin(norms) & t["source_regime"].isin(regimes) & t["target_regime"].isin(regimes)]
        col = "error_rate" if "error_rate" in t.columns and t["error_rate"].notna().any() else "success_rate"
        pairs = cell_order(t[["source_arch", "source_norm", "source_regime", "target_regime"]].drop_duplicates(),
                           ["source_arch", "source_norm", "source_regime", "target_regime"])
        for arch, norm, src, tgt in pairs.itertuples(index=False):
            p = t[(t["source_arch"] == arch) & (t["source_norm"] == norm) & (t["source_regime"] == src)
                  & (t["target_regime"] == tgt)]
            add("transfer", arch, norm, src, tgt, "transfer_error" if col == "error_rate" else "transfer_success",
                p.groupby("seed")[col].mean() * 100)
    return pd.DataFrame(rows, columns=["kind", "arch", "norm", "regime", "target_regime", "quantity", "mean",
                                       "std", "n", "paper", "diff"])


def _pct(mean: float, std: float | None = None, digits: int = 1) -> str:
    """A percentage already in percent: ``$12.3 \\pm 0.4$``."""
    if mean is None or not np.isfinite(mean):
        return "--"
    if std is None or not np.isfinite(std):
        return f"${mean:.{digits}f}$"
    return f"${mean:.{digits}f} \\pm {std:.{digits}f}$"


def _pts(x: float, digits: int = 1) -> str:
    if x is None or not np.isfinite(x):
        return "--"
    v = 0.0 if round(x, digits) == 0 else x
    return f"${v:+.{digits}f}$"


def fgsm_models_table(frame: pd.DataFrame, arch_label: Any = str) -> str:
    """E10 models: per quantity ours (mean ± std), [G] and the difference in points."""
    f = frame[frame["kind"] == "model"] if len(frame) else frame
    if f.empty:
        return _empty_table("no results for the E10 models")
    qs = [(q, lab) for q, lab in FGSM_QUANTITIES if q in set(f["quantity"])]
    multi_norm = f["norm"].nunique() > 1
    nlab = 3 if multi_norm else 2
    lines = [r"\begin{tabular}{" + "l" * nlab + "r" + "rrr" * len(qs) + "}", r"\toprule",
             " & " * nlab + "& " + " & ".join(rf"\multicolumn{{3}}{{c}}{{{tex_escape(lab)}}}" for _, lab in qs)
             + r" \\",
             " ".join(rf"\cmidrule(lr){{{nlab + 2 + 3 * i}-{nlab + 4 + 3 * i}}}" for i in range(len(qs))),
             "Model & " + ("Norm & " if multi_norm else "") + "Regime & $n$ & "
             + " & ".join(["ours & [G] & $\\Delta$"] * len(qs)) + r" \\", r"\midrule"]
    prev = None
    for (arch, norm, regime), g in f.groupby(["arch", "norm", "regime"], sort=False):
        if prev is not None and arch != prev:
            lines.append(r"\midrule")
        cells = [tex_escape(arch_label(arch)) if arch != prev else ""]
        prev = arch
        if multi_norm:
            cells.append(tex_escape(norm_label(norm)))
        cells += [tex_escape(regime_label(regime)), str(int(g["n"].max()))]
        for q, _ in qs:
            r = g[g["quantity"] == q]
            if len(r):
                r = r.iloc[0]
                cells += [_pct(r["mean"], r["std"], 2 if q == "clean_error" else 1),
                          _pct(r["paper"], None, 2 if q == "clean_error" else 1),
                          _pts(r["diff"], 2 if q == "clean_error" else 1)]
            else:
                cells += ["--", "--", "--"]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def fgsm_transfer_table(frame: pd.DataFrame, arch_label: Any = str) -> str:
    """E10 transfer: per arch and direction the error rate on the target, [G]'s and the difference."""
    f = frame[frame["kind"] == "transfer"] if len(frame) else frame
    if f.empty:
        return _empty_table("no transfer results between the E10 models")
    what = "Error on target (%)" if (f["quantity"] == "transfer_error").all() else "Success rate (%)"
    multi_norm = f["norm"].nunique() > 1
    lines = [r"\begin{tabular}{l" + ("l" if multi_norm else "") + "lrrrr}", r"\toprule",
             "Model & " + ("Norm & " if multi_norm else "") + rf"Source $\rightarrow$ target & $n$ & "
             + tex_escape(what) + r" & [G] & $\Delta$ \\", r"\midrule"]
    prev = None
    for _, r in f.iterrows():
        cells = [tex_escape(arch_label(r["arch"])) if r["arch"] != prev else ""]
        prev = r["arch"]
        if multi_norm:
            cells.append(tex_escape(norm_label(r["norm"])))
        src, tgt = tex_escape(regime_label(r["regime"])), tex_escape(regime_label(r["target_regime"]))
        cells += [f"{src} $\\rightarrow$ {tgt}",
                  str(int(r["n"])), _pct(r["mean"], r["std"]), _pct(r["paper"]), _pts(r["diff"])]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- costs

COST_RULE_ORDER = ["prepare_data", "train", "evaluate", "transfer"]


def costs_table(costs: pd.DataFrame) -> str:
    """Per-rule costs from costs.csv (Snakemake benchmark files + the jobs' own GPU memory)."""
    if costs is None or not len(costs):
        return _empty_table("no benchmark records (results/tables/costs.csv is missing or empty)")
    g = costs.groupby("rule")
    df = pd.DataFrame({"jobs": g.size(), "total": g["wall_s"].sum() / 60, "mean": g["wall_s"].mean(),
                       "max": g["wall_s"].max(), "rss": g["max_rss_mib"].max(),
                       "gpu": g["peak_gpu_mem_mib"].max()})
    df = df.loc[sorted(df.index, key=_order_key(COST_RULE_ORDER))]

    def f(x: float, d: int = 1) -> str:
        return f"{x:,.{d}f}" if pd.notna(x) and np.isfinite(x) else "--"

    lines = [r"\begin{tabular}{lrrrrrr}", r"\toprule",
             r"Rule & Jobs & Total wall (min) & Mean (s) & Max (s) & Peak RSS (MiB) & Peak GPU mem.\ (MiB) \\",
             r"\midrule"]
    for rule, r in df.iterrows():
        lines.append(f"\\texttt{{{tex_escape(rule)}}} & {int(r['jobs'])} & {f(r['total'])} & {f(r['mean'])} & "
                     f"{f(r['max'])} & {f(r['rss'], 0)} & {f(r['gpu'], 0)} \\\\")
    lines += [r"\midrule", f"all & {int(df['jobs'].sum())} & {f(df['total'].sum())} & & & & \\\\",
              r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)
