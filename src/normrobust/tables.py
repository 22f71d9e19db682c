"""Reading the aggregated tables, display names, and the report's LaTeX tables.

Everything downstream of training (figures, claims, report) reads only the aggregated files in a tables
directory (default ``results/tables/``): ``metrics.csv``, ``history.csv``, ``transfer.csv`` and
``run_info.json``. This module holds the shared helpers for them:

* :func:`read_table` / :func:`read_run_info` load a file, check its columns, and fail with a
  :class:`MissingInputError` that names the file when it is absent;
* display names, a fixed order and LaTeX escaping for norms, regimes and attacks;
* :func:`seed_stats` (mean, std, min, max, n over seeds) and number formatting;
* the LaTeX tables of the report (booktabs, built with ``DataFrame.to_latex``): the main results
  (:func:`main_results_table`), the synthetic-data table (:func:`nrf_table`), the claims
  (:func:`claims_table`) and the transfer matrix (:func:`transfer_table`).

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
    for c in NUMERIC_COLUMNS.get(name, []):
        df[c] = pd.to_numeric(df[c].replace({"": None}), errors="coerce")
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
                "conflict_nrf_rate": "conflict: NRF label rate", "success_rate": "transfer success rate"}
#: metrics that are fractions shown in percent (differences of them in percentage points)
PERCENT_METRICS = {"clean_acc", "robust_acc", "noise_acc", "rf_only_acc", "nrf_only_acc", "conflict_rf_rate",
                   "conflict_nrf_rate", "success_rate"}


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


def eps_label(attack: str, eps: float) -> str:
    """ε with its unit: L∞ in /255 steps (``4/255``), L2 absolute, noise as σ."""
    if attack == "gaussian":
        return f"σ={fmt_num(eps)}"
    if is_linf(attack):
        return f"ε={fmt_num(eps)}/255"
    return f"ε={fmt_num(eps)}"


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
    "…": r"\ldots{}", "≈": r"$\approx$", "\u00a0": "~",
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


def main_results_frame(metrics: pd.DataFrame, head: dict[str, Any], *, dataset: str | None = None,
                       archs: Sequence[str] | None = None, norms: Sequence[str] | None = None,
                       regimes: Sequence[str] | None = None) -> pd.DataFrame:
    """Per (dataset, arch, regime, norm): mean and std over seeds of the main-table columns.

    Returns a long frame with columns dataset, arch, regime, norm, column (label), metric, mean, std, n.
    """
    m = _filter(metrics, dataset=dataset, arch=archs, norm=norms, regime=regimes)
    keys = ["dataset", "arch", "regime", "norm"]
    parts = []
    for spec in main_results_columns(m, head):
        sel = m[m["metric"] == spec["metric"]]
        if spec["attack"] is not None:
            sel = sel[sel["attack"] == spec["attack"]]
        if spec["eps"] is not None:
            sel = sel[_eps_match(sel["eps"], spec["eps"])]
        st = seed_stats(sel, keys)
        st["column"] = spec["label"]
        st["metric"] = spec["metric"]
        st["percent"] = spec["percent"]
        parts.append(st)
    if not parts:
        return pd.DataFrame(columns=keys + ["column", "metric", "mean", "std", "n", "percent"])
    return pd.concat(parts, ignore_index=True)


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
            key = lambda x: (0, str(x))  # noqa: E731
        df[f"_o_{k}"] = df[k].map(key)
        order_cols.append(f"_o_{k}")
    return df.sort_values(order_cols, kind="stable").drop(columns=order_cols).reset_index(drop=True)


def main_results_table(metrics: pd.DataFrame, head: dict[str, Any], *, dataset: str | None = None,
                       archs: Sequence[str] | None = None, norms: Sequence[str] | None = None,
                       regimes: Sequence[str] | None = None) -> str:
    """Table (a): clean, headline robust, PGD-L2 at the largest ε, noise at the largest σ, LIGS.

    One row per (dataset, arch, regime, norm), mean ± std over seeds; dataset / arch columns appear
    only when they take more than one value.
    """
    long = main_results_frame(metrics, head, dataset=dataset, archs=archs, norms=norms, regimes=regimes)
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
    body["_g"] = groups
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


def nrf_table(metrics: pd.DataFrame, *, dataset: str | None = None, archs: Sequence[str] | None = None,
              norms: Sequence[str] | None = None, regimes: Sequence[str] | None = None) -> str:
    """E5 table: NRF reliance, RF-only / NRF-only accuracy, conflict rates and LIGS, mean ± std."""
    m = _filter(metrics, dataset=dataset, arch=archs, norm=norms, regime=regimes)
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


def claims_table(claims: pd.DataFrame) -> str:
    """Table (b): one row per claim with the paired difference (mean [min, max]), seeds and verdict."""
    if claims.empty:
        return _empty_table("no claims")
    out = pd.DataFrame({
        "ID": claims["id"].map(tex_escape),
        "Claim": claims["claim"].map(tex_escape),
        "$\\Delta$ mean [min, max]": [claim_diff_tex(r) for _, r in claims.iterrows()],
        "$n$": claims["n_seeds"].fillna(0).astype(int).astype(str),
        "Verdict": claims["verdict"].map(verdict_tex),
    })
    groups = list(claims["study"])
    out["_group"] = groups
    return _to_latex_grouped(out, r"l>{\raggedright\arraybackslash}p{0.47\linewidth}rrl", "_group")


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
